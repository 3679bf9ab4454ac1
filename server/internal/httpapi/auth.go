package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/auth"
	"github.com/basiq-bff/bff/server/internal/clienttoken"
	"github.com/basiq-bff/bff/server/internal/metrics"
	"github.com/basiq-bff/bff/server/internal/ratelimit"
	"github.com/basiq-bff/bff/server/internal/session"
	"github.com/basiq-bff/bff/server/internal/sso"
	"github.com/basiq-bff/bff/server/internal/tenant"
)

// authed is what requireSession learned about the request: its session (whose Hash is the
// form of the id that may appear in logs and limiter keys) and the session's tenant.
type authed struct {
	sess   *session.Session
	tenant *tenant.Tenant
}

// requireSession loads the request's session: 401 unauthenticated without one, 503
// store_unavailable (never 401) when kv fails. A session whose tenant was removed from config
// is ended. It slides the idle timeout (one write a minute at most).
func requireSession(store *session.Store, tenants *tenant.Registry, tokens *clienttoken.Service, m *metrics.Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			ri := infoFrom(r.Context())
			if ri == nil {
				return errNoSession
			}
			sess, err := store.Current(r)
			if err != nil {
				return err
			}
			d := sess.Data
			ri.session, ri.tenant, ri.user = sess.Hash, d.Tenant, tokens.HashUser(d.Tenant, d.UserID)
			t, ok := tenants.Load().Get(d.Tenant)
			if !ok {
				if err := store.End(c.Response(), r, sess); err != nil {
					return err
				}
				m.Session("revoked", 1)
				return apperr.Wrap(apperr.Unauthenticated, errTenantRemoved, "Your organisation is no longer configured; log in again.")
			}
			if err := store.Touch(r.Context(), sess); err != nil {
				return err
			}
			// Kept on the request's log context rather than in echo's per-request map, which
			// would be allocated for it.
			ri.auth = &authed{sess: sess, tenant: t}
			return next(c)
		}
	}
}

// errNoSession is a route served without requireSession (or requireSession without
// requestContext) in front of it.
var errNoSession = errors.New("httpapi: session route without requireSession")

// authOf returns what requireSession stored. A route without requireSession in front of it
// is a wiring mistake: it answers 500 rather than panicking.
func authOf(c echo.Context) (*authed, error) {
	ri := infoFrom(c.Request().Context())
	if ri == nil || ri.auth == nil {
		return nil, errNoSession
	}
	return ri.auth, nil
}

// limitedAuthOf is authOf for the routes under the per-session limit (/client-token and
// /connect/consent share it): past the limit it is 429 rate_limited with Retry-After.
func limitedAuthOf(c echo.Context, limiter *ratelimit.Limiter) (*authed, error) {
	a, err := authOf(c)
	if err != nil {
		return nil, err
	}
	if ok, wait := limiter.Allow(a.sess.Hash); !ok {
		return nil, apperr.Retry(apperr.RateLimited, nil, "", wait)
	}
	return a, nil
}

// handleTenants lists the tenants for the login picker, each with its login methods; in demo
// mode it says so, and the SPA shows a banner and the demo account's credentials.
func handleTenants(tenants *tenant.Registry, demo bool, demoLogin *DemoLogin) echo.HandlerFunc {
	type oidcJSON struct {
		DisplayName string `json:"display_name"`
		StartURL    string `json:"start_url"`
	}
	type loginJSON struct {
		Password bool      `json:"password"`
		OIDC     *oidcJSON `json:"oidc,omitempty"`
	}
	type item struct {
		ID    string    `json:"id"`
		Name  string    `json:"name"`
		Login loginJSON `json:"login"`
	}
	type response struct {
		Tenants []item `json:"tenants"`
		Demo    bool   `json:"demo,omitempty"`
		// DemoLogin is set in demo mode only.
		DemoLogin *DemoLogin `json:"demo_login,omitempty"`
	}
	return func(c echo.Context) error {
		list := tenants.Load().List()
		resp := response{Tenants: make([]item, 0, len(list)), Demo: demo}
		if demo {
			resp.DemoLogin = demoLogin
		}
		for _, t := range list {
			it := item{ID: t.ID, Name: t.Name, Login: loginJSON{Password: t.PasswordLogin}}
			if t.OIDC != nil {
				it.Login.OIDC = &oidcJSON{DisplayName: t.OIDC.Label(), StartURL: "/auth/oidc/start?tenant=" + url.QueryEscape(t.ID)}
			}
			resp.Tenants = append(resp.Tenants, it)
		}
		return c.JSON(http.StatusOK, resp)
	}
}

// userJSON is the user as the SPA sees it.
type userJSON struct {
	ID          int64  `json:"id"`
	Email       string `json:"email"`
	Tenant      string `json:"tenant"`
	BasiqUserID string `json:"basiq_user_id"`
}

// handleLogin checks credentials, starts a session and gives the browser a device cookie:
// proof that this browser logged in to the account before, which keeps it out of the lockout
// strangers' failed guesses cause.
func handleLogin(svc *auth.Service, store *session.Store, tenants *tenant.Registry, tokens *clienttoken.Service, m *metrics.Metrics, secure bool) echo.HandlerFunc {
	deviceCookie := deviceCookieName(secure)
	type request struct {
		Tenant   string `json:"tenant"`
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	type response struct {
		User userJSON `json:"user"`
	}
	return func(c echo.Context) error {
		var req request
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		snap := tenants.Load()
		if req.Tenant == "" && len(snap.List()) == 1 {
			req.Tenant = snap.List()[0].ID
		}
		if problem := loginProblem(req.Tenant, req.Email, req.Password); problem != "" {
			return apperr.New(apperr.Invalid, problem)
		}
		t, ok := snap.Get(req.Tenant)
		if !ok {
			return apperr.New(apperr.Invalid, "Unknown tenant.")
		}
		if !t.PasswordLogin {
			return apperr.New(apperr.PasswordLoginOff, "")
		}
		if ri := infoFrom(c.Request().Context()); ri != nil {
			ri.tenant = t.ID // failed attempts are logged with their tenant too
		}
		ip, _ := netip.ParseAddr(c.RealIP())
		a := auth.Attempt{Tenant: t.ID, Email: req.Email, Password: req.Password, IP: ip}
		if ck, err := c.Cookie(deviceCookie); err == nil {
			a.Device = ck.Value
		}
		u, device, err := svc.Login(c.Request().Context(), a)
		if err != nil {
			return err
		}
		d := session.Data{UserID: u.ID, Tenant: t.ID, Email: u.Email, BasiqUserID: u.BasiqUserID}
		still := func(ctx context.Context) error { return svc.StillValid(ctx, u) }
		if err := store.BeginChecked(c.Response(), c.Request(), d, still); err != nil {
			return err
		}
		c.SetCookie(&http.Cookie{Name: deviceCookie, Value: device, Path: "/", MaxAge: int(auth.DeviceLifetime / time.Second),
			Secure: secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		m.Session("created", 1)
		if ri := infoFrom(c.Request().Context()); ri != nil {
			ri.tenant, ri.user = t.ID, tokens.HashUser(t.ID, u.ID)
		}
		return c.JSON(http.StatusOK, response{User: userJSON{ID: u.ID, Email: u.Email, Tenant: t.ID, BasiqUserID: u.BasiqUserID}})
	}
}

// deviceCookieName is __Host-bff-device for secure cookies and bff-device for plain-http
// development, as the session cookie's name.
func deviceCookieName(secure bool) string { return session.CookieName(secure) + "-device" }

// loginProblem checks the shape of a login before any lookup.
func loginProblem(tenantID, email, password string) string {
	switch {
	case tenantID == "":
		return "Choose a tenant."
	case len(tenantID) > 64 || strings.ContainsFunc(tenantID, unicode.IsControl):
		return "Unknown tenant."
	case email == "":
		return "Enter your email address."
	case len(email) > 254 || !utf8.ValidString(email) || strings.ContainsFunc(email, unicode.IsControl) ||
		!strings.Contains(email, "@"):
		return "The email address is not valid."
	case password == "":
		return "Enter your password."
	case len(password) > auth.MaxPasswordLen || !utf8.ValidString(password):
		return "The password is not valid."
	}
	return ""
}

// handleLogout ends the session: 204, or for a person who signed in through a provider that
// has an end_session_endpoint, 200 {"end_session_url"} for the SPA to follow so the
// provider's session ends too.
func handleLogout(store *session.Store, m *metrics.Metrics, svc *sso.Service, origins *atomic.Pointer[originPolicy]) echo.HandlerFunc {
	type response struct {
		EndSessionURL string `json:"end_session_url"`
	}
	return func(c echo.Context) error {
		a, err := authOf(c)
		if err != nil {
			return err
		}
		d, t := a.sess.Data, a.tenant
		if err := store.End(c.Response(), c.Request(), a.sess); err != nil {
			return err
		}
		m.Session("ended", 1)
		if d.OIDC != nil && t.OIDC != nil && t.OIDC.Issuer == d.OIDC.Issuer {
			if u := svc.EndSessionURL(c.Request().Context(), t, d.OIDC.IDTokenHint, origins.Load().public+"/"); u != "" {
				return c.JSON(http.StatusOK, response{EndSessionURL: u})
			}
		}
		return c.NoContent(http.StatusNoContent)
	}
}

func handleMe() echo.HandlerFunc {
	// meUser adds the tenant's display name, which only /auth/me needs.
	type meUser struct {
		userJSON
		TenantName string `json:"tenant_name"`
	}
	type basiqJSON struct {
		APIURL     string `json:"api_url"`
		ConsentURL string `json:"consent_url"`
		Version    string `json:"version"`
	}
	type response struct {
		User  meUser    `json:"user"`
		Basiq basiqJSON `json:"basiq"`
	}
	return func(c echo.Context) error {
		a, err := authOf(c)
		if err != nil {
			return err
		}
		d, t := a.sess.Data, a.tenant
		return c.JSON(http.StatusOK, response{
			User: meUser{
				userJSON:   userJSON{ID: d.UserID, Email: d.Email, Tenant: d.Tenant, BasiqUserID: d.BasiqUserID},
				TenantName: t.Name,
			},
			Basiq: basiqJSON{APIURL: t.BaseURL, ConsentURL: t.ConsentURL, Version: t.Version},
		})
	}
}
