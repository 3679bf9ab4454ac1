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
				reason := reasonOf(err, secevent.ReasonForeignOrigin,
					cause{errCrossSite, secevent.ReasonCrossSite}, cause{errMissingCSRFHeader, secevent.ReasonMissingHeader})
				secevent.Log(ctx, log, secevent.CSRFRefused, reason, ip, "method", r.Method, "path", route)
			case errors.Is(err, apperr.InvalidCredentials):
				reason := reasonOf(err, secevent.ReasonBadPassword,
					cause{auth.ErrUnknownUser, secevent.ReasonUnknownUser}, cause{auth.ErrDisabled, secevent.ReasonDisabled})
				secevent.Log(ctx, log, secevent.LoginFailed, reason, ip)
			case errors.Is(err, apperr.TooManyAttempts):
				reason := reasonOf(err, secevent.ReasonAccountLimit,
					cause{auth.ErrIPLimit, secevent.ReasonIPLimit}, cause{auth.ErrGlobalLimit, secevent.ReasonGlobalLimit})
				secevent.Log(ctx, log, secevent.LoginLockedOut, reason, ip)
			case errors.Is(err, errTenantRemoved):
				secevent.Log(ctx, log, secevent.SessionRevoked, secevent.ReasonTenantRemoved, ip)
			}
			return err
		}
	}
}

// cause pairs an error under a refusal with the reason code a security event gives it.
type cause struct {
	err    error
	reason string
}

// reasonOf returns the reason of the first of causes that err wraps, else def.
func reasonOf(err error, def string, causes ...cause) string {
	for _, c := range causes {
		if errors.Is(err, c.err) {
			return c.reason
		}
	}
	return def
}
