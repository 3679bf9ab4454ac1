package httpapi

import (
	"net/http"
	"sync/atomic"

	"github.com/labstack/echo/v4"
)

// addRoutes is the whole public HTTP surface (DESIGN.md §4). Middleware order, outermost
// first: request id and log context, panic recovery, security headers, CORS (answers
// preflights), then the cross-site checks, which guard every state-changing and token route
// without any per-route opt-in.
func addRoutes(e *echo.Echo, d Deps, origins *atomic.Pointer[originPolicy]) {
	e.Use(
		requestContext(d.Log, d.Metrics),
		recoverPanics(d.Log),
		securityHeaders(d.Config, d.Tenants),
		corsMiddleware(origins),
		crossSiteGuard(origins),
	)

	authed := requireSession(d.Sessions, d.Tenants, d.Tokens, d.Metrics)

	e.GET("/auth/tenants", handleTenants(d.Tenants, d.Config.Demo))
	e.POST("/auth/login", handleLogin(d.Auth, d.Sessions, d.Tenants, d.Tokens, d.Metrics))
	e.POST("/auth/logout", handleLogout(d.Sessions, d.Metrics), authed)
	e.GET("/auth/me", handleMe(), authed)

	e.GET("/client-token", handleClientToken(d.Tokens, d.Sessions, d.Limiter), authed)

	e.POST("/connect/consent", handleConsent(d.Tokens, d.Sessions, d.KV, d.StateKey), authed)
	e.GET("/connect/return", handleConsentReturn(d.Tokens, d.KV, d.StateKey))

	static := handleStatic(d.Static)
	e.Match([]string{http.MethodGet, http.MethodHead}, "/", static)
	e.Match([]string{http.MethodGet, http.MethodHead}, "/*", static)
}
