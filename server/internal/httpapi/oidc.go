package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/auth"
	"github.com/basiq-bff/bff/server/internal/clienttoken"
	"github.com/basiq-bff/bff/server/internal/metrics"
	"github.com/basiq-bff/bff/server/internal/ratelimit"
	"github.com/basiq-bff/bff/server/internal/secevent"
	"github.com/basiq-bff/bff/server/internal/session"
	"github.com/basiq-bff/bff/server/internal/sso"
	"github.com/basiq-bff/bff/server/internal/tenant"
)

// The OpenID Connect routes are browser navigations (start, callback) and a server-to-server
// call from the provider (back-channel logout): none of them can send X-CSRF, and the
// callback arrives from the provider's origin. They are exempt from the cross-site guard;
// the signed pre-login cookie and the single-use state protect the login, and the signed
// logout token protects logout.
const oidcPrefix = "/auth/oidc/"

// callbackURL is the redirect URI registered at providers: public_origin, as reloaded, and
// the callback path.
func callbackURL(origins *atomic.Pointer[originPolicy]) string {
	return origins.Load().public + sso.CallbackPath
}

// loginRedirect is where every refused OpenID Connect login lands: the SPA shows the code.
func loginRedirect(code string) string { return "/?login_error=" + url.QueryEscape(code) }

// refuseLogin logs a refused login as a security event and sends the browser to the SPA.
func refuseLogin(c echo.Context, log *slog.Logger, svc *sso.Service, err error) error {
	var r *sso.Refusal
	if !errors.As(err, &r) {
		r = &sso.Refusal{Code: sso.CodeStoreUnavailable, Err: err}
		if !errors.Is(err, apperr.StoreUnavailable) {
			r.Code = "login_failed"
		}
	}
	ctx := c.Request().Context()
	// The reason is the login_error code the browser is sent to, so a SIEM rule and a
	// support call name the same thing; the cause is for the operator.
	attrs := []any{"method", "oidc", "ip", c.RealIP()}
	if r.Tenant != "" {
		attrs = append(attrs, "tenant", r.Tenant)
	}
	if r.Err != nil {
		attrs = append(attrs, "cause", r.Err.Error())
	}
	secevent.Log(ctx, log, secevent.LoginFailed, r.Code, attrs...)
	http.SetCookie(c.Response(), svc.ClearCookie())
	return c.Redirect(http.StatusSeeOther, loginRedirect(r.Code))
}

// safeReturnTo keeps return_to to a path on this origin: "/x", never "//host", "/\host",
// a scheme or control characters. Anything else is "/".
func safeReturnTo(s string) string {
	if s == "" || len(s) > 512 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") ||
		strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == '\\' }) {
		return "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return s
}

// handleOIDCStart sends the browser to the tenant's provider with a fresh pre-login cookie.
func handleOIDCStart(log *slog.Logger, svc *sso.Service, tenants *tenant.Registry, origins *atomic.Pointer[originPolicy]) echo.HandlerFunc {
	return func(c echo.Context) error {
		snap := tenants.Load()
		id := c.QueryParam("tenant")
		if id == "" {
			// Like password login: the tenant may be left out when only one has a provider.
			var withOIDC []*tenant.Tenant
			for _, t := range snap.List() {
				if t.OIDC != nil {
					withOIDC = append(withOIDC, t)
				}
			}
			if len(withOIDC) == 1 {
				id = withOIDC[0].ID
			}
		}
		t, ok := snap.Get(id)
		if !ok || t.OIDC == nil {
			return refuseLogin(c, log, svc, &sso.Refusal{Code: sso.CodeNotConfigured, Err: errors.New("unknown tenant or no provider")})
		}
		authURL, cookie, err := svc.Start(c.Request().Context(), t, callbackURL(origins), safeReturnTo(c.QueryParam("return_to")))
		if err != nil {
			return refuseLogin(c, log, svc, err)
		}
		http.SetCookie(c.Response(), cookie)
		return c.Redirect(http.StatusFound, authURL)
	}
}

// handleOIDCCallback completes a login: the provider's answer is verified, the local user
// found or created, and a new session started (the id is never one the browser had before).
func handleOIDCCallback(log *slog.Logger, svc *sso.Service, users *auth.Service, store *session.Store, tenants *tenant.Registry,
	tokens *clienttoken.Service, m *metrics.Metrics, origins *atomic.Pointer[originPolicy]) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		snap := tenants.Load()
		id, err := svc.Callback(ctx, c.Request(), snap, callbackURL(origins))
		if err != nil {
			return refuseLogin(c, log, svc, err)
		}
		t, ok := snap.Get(id.Tenant)
		if !ok {
			return refuseLogin(c, log, svc, &sso.Refusal{Code: sso.CodeNotConfigured, Tenant: id.Tenant})
		}
		u, linked, err := svc.SignIn(ctx, t, id)
		if err != nil {
			return refuseLogin(c, log, svc, err)
		}
		d := session.Data{UserID: u.ID, Tenant: t.ID, Email: u.Email, BasiqUserID: u.BasiqUserID,
			OIDC: &session.OIDCLogin{Issuer: id.Issuer, SID: id.SID, IDTokenHint: id.IDToken}}
		// As for a password login: a `users disable` that ran while this sign-in did is either
		// seen by the re-check or ends the new session itself.
		still := func(ctx context.Context) error { return users.StillValid(ctx, u) }
		if err := store.BeginChecked(c.Response(), c.Request(), d, still); err != nil {
			code := sso.CodeStoreUnavailable
			if errors.Is(err, apperr.InvalidCredentials) {
				code = sso.CodeAccountDisabled
			}
			return refuseLogin(c, log, svc, &sso.Refusal{Code: code, Tenant: t.ID, Err: err})
		}
		m.Session("created", 1)
		if ri := infoFrom(ctx); ri != nil {
			ri.tenant, ri.user = t.ID, tokens.HashUser(t.ID, u.ID)
		}
		log.InfoContext(ctx, "oidc login", "audit", true, "tenant", t.ID, "linked", linked)
		secevent.Log(ctx, log, secevent.LoginSucceeded, secevent.ReasonOIDC, "method", "oidc", "ip", c.RealIP())
		http.SetCookie(c.Response(), svc.ClearCookie())
		return c.Redirect(http.StatusSeeOther, safeReturnTo(id.ReturnTo))
	}
}

// handleBackchannelLogout ends, on every replica, the sessions a provider's logout token
// names (OpenID Connect Back-Channel Logout 1.0): those of its sid, or every session of its
// subject. A bad token is a 400 with the error body.
func handleBackchannelLogout(log *slog.Logger, svc *sso.Service, store *session.Store, tenants *tenant.Registry, m *metrics.Metrics,
	limiter *ratelimit.Limiter) echo.HandlerFunc {
	return func(c echo.Context) error {
		// Counted before any work: a forged token costs a key-set fetch from the provider.
		if limiter != nil {
			if ok, wait := limiter.Allow(c.RealIP()); !ok {
				return apperr.Retry(apperr.RateLimited, nil, "", wait)
			}
		}
		ctx := c.Request().Context()
		r := c.Request()
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			return apperr.New(apperr.Invalid, "Send the logout token as application/x-www-form-urlencoded.")
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			return apperr.Wrap(apperr.Invalid, err, "The form could not be read.")
		}
		lo, err := svc.VerifyLogout(ctx, tenants.Load(), r.PostForm.Get("logout_token"))
		if err != nil {
			if errors.Is(err, apperr.Invalid) {
				secevent.Log(ctx, log, secevent.LogoutTokenRefused, secevent.ReasonInvalidToken, "cause", err.Error(), "ip", c.RealIP())
			}
			return err
		}
		ended, err := endLoggedOut(ctx, svc, store, lo)
		if err != nil {
			// The provider retries a logout that failed; let the same token through again.
			svc.ForgetLogout(context.WithoutCancel(ctx), lo)
			return err
		}
		m.Session("revoked", ended)
		secevent.Log(ctx, log, secevent.SessionRevoked, secevent.ReasonProviderLogout, "sessions", ended)
		log.InfoContext(ctx, "oidc back-channel logout", "audit", true, "tenants", strings.Join(lo.Tenants, ","),
			"by", map[bool]string{true: "sid", false: "sub"}[lo.SID != ""], "sessions_ended", ended)
		return c.NoContent(http.StatusOK)
	}
}

// endLoggedOut ends the sessions a verified logout token names, in each of its tenants.
func endLoggedOut(ctx context.Context, svc *sso.Service, store *session.Store, lo *sso.Logout) (int, error) {
	ended := 0
	for _, tid := range lo.Tenants {
		if lo.SID != "" {
			n, err := store.EndProviderSession(ctx, tid, lo.Issuer, lo.SID)
			if err != nil {
				return ended, err
			}
			ended += n
			continue
		}
		uid, ok, err := svc.UserOf(ctx, tid, lo.Issuer, lo.Subject)
		if err != nil {
			return ended, err
		}
		if !ok {
			continue
		}
		n, err := store.EndUser(ctx, tid, uid)
		if err != nil {
			return ended, err
		}
		ended += n
	}
	return ended, nil
}
