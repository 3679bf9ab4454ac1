package httpapi

import (
	"net/http"
	"sync/atomic"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/server/internal/sso"
)

// addRoutes is the whole public HTTP surface (README, "The HTTP contract"). Middleware
// order, outermost first: request id (in the log context and for calls to Basiq), span name,
// panic recovery, security event lines, security headers, 405 for non-standard
// methods, CORS (answers preflights), then the cross-site checks, which guard every
// state-changing and token route without any per-route opt-in.
func addRoutes(e *echo.Echo, d Deps, origins *atomic.Pointer[originPolicy]) {
	e.Use(
		requestContext(d.Log, d.Metrics, d.RequestLines),
		requestIdentity(),
		recoverPanics(d.Log),
		securityEvents(d.Log),
		securityHeaders(d.Config, d.Tenants),
		standardMethods(),
		corsMiddleware(origins),
		crossSiteGuard(origins),
	)

	authed := requireSession(d.Sessions, d.Tenants, d.Tokens, d.Metrics)

	e.GET("/auth/tenants", handleTenants(d.Tenants, d.Config.Demo, d.DemoLogin))
	e.POST("/auth/login", handleLogin(d.Auth, d.Sessions, d.Tenants, d.Tokens, d.Metrics, d.Config.Session.IsSecure()))
	e.POST("/auth/logout", handleLogout(d.Sessions, d.Metrics, d.SSO, origins), authed)

	e.GET("/auth/oidc/start", handleOIDCStart(d.Log, d.SSO, d.Tenants, origins))
	e.GET(sso.CallbackPath, handleOIDCCallback(d.Log, d.SSO, d.Auth, d.Sessions, d.Tenants, d.Tokens, d.Metrics, origins))
	e.POST("/auth/oidc/backchannel-logout", handleBackchannelLogout(d.Log, d.SSO, d.Sessions, d.Tenants, d.Metrics, d.LogoutLimiter))
	e.GET("/auth/me", handleMe(), authed)

	e.GET("/client-token", handleClientToken(d.Tokens, d.Sessions, d.Limiter), authed)

	e.POST("/connect/consent", handleConsent(d.Tokens, d.Sessions, d.KV, d.StateKey, d.Limiter), authed)
	e.GET("/connect/return", handleConsentReturn(d.Tokens, d.KV, d.StateKey))

	static := handleStatic(d.Static)
	e.Match([]string{http.MethodGet, http.MethodHead}, "/", static)
	e.Match([]string{http.MethodGet, http.MethodHead}, "/*", static)
}
