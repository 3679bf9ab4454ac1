package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/auth"
	"github.com/basiq-bff/bff/server/internal/secevent"
)

// Causes under the csrf_failed and unauthenticated answers, for security event reasons.
var (
	errCrossSite         = errors.New("fetch metadata: cross-site request")
	errMissingCSRFHeader = errors.New("no X-CSRF: 1 header")
	errForeignOrigin     = errors.New("origin not allowed")
	errTenantRemoved     = errors.New("the session's tenant is no longer configured")
)

// securityEvents writes one security event line for each login (succeeded, failed, locked
// out), logout, cross-site refusal and session revoked here, from the outcome the inner
// handlers return; the request's log context adds request_id, tenant, user and session.
func securityEvents(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			ctx, r := c.Request().Context(), c.Request()
			ip := slog.String("ip", c.RealIP())
			route := c.Path()
			switch {
			case err == nil:
				ok := c.Response().Status < 400
				switch {
				case ok && r.Method == http.MethodPost && route == "/auth/login":
					secevent.Log(ctx, log, secevent.LoginSucceeded, secevent.ReasonPassword, ip)
				case ok && r.Method == http.MethodPost && route == "/auth/logout":
					secevent.Log(ctx, log, secevent.Logout, secevent.ReasonUser, ip)
				}
			case errors.Is(err, apperr.CSRF):
				reason := secevent.ReasonForeignOrigin
				switch {
				case errors.Is(err, errCrossSite):
					reason = secevent.ReasonCrossSite
				case errors.Is(err, errMissingCSRFHeader):
					reason = secevent.ReasonMissingHeader
				}
				secevent.Log(ctx, log, secevent.CSRFRefused, reason, ip, "method", r.Method, "path", route)
			case errors.Is(err, apperr.InvalidCredentials):
				reason := secevent.ReasonBadPassword
				switch {
				case errors.Is(err, auth.ErrUnknownUser):
					reason = secevent.ReasonUnknownUser
				case errors.Is(err, auth.ErrDisabled):
					reason = secevent.ReasonDisabled
				}
				secevent.Log(ctx, log, secevent.LoginFailed, reason, ip)
			case errors.Is(err, apperr.TooManyAttempts):
				reason := secevent.ReasonAccountLimit
				switch {
				case errors.Is(err, auth.ErrIPLimit):
					reason = secevent.ReasonIPLimit
				case errors.Is(err, auth.ErrGlobalLimit):
					reason = secevent.ReasonGlobalLimit
				}
				secevent.Log(ctx, log, secevent.LoginLockedOut, reason, ip)
			case errors.Is(err, errTenantRemoved):
				secevent.Log(ctx, log, secevent.SessionRevoked, secevent.ReasonTenantRemoved, ip)
			}
			return err
		}
	}
}
