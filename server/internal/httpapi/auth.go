package httpapi

import (
	"net/http"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/auth"
	"github.com/basiq-bff/bff/server/internal/clienttoken"
	"github.com/basiq-bff/bff/server/internal/metrics"
	"github.com/basiq-bff/bff/server/internal/session"
	"github.com/basiq-bff/bff/server/internal/tenant"
)

// echo context keys set by requireSession.
const (
	ctxSession     = "bff.session"
	ctxData        = "bff.data"
	ctxTenant      = "bff.tenant"
	ctxSessionHash = "bff.session_hash" // session.HashID of the session id
)

// requireSession loads the request's session: 401 unauthenticated without one, 503
// store_unavailable (never 401) when kv fails. A session whose tenant was removed from config
// is ended. It slides the idle timeout (one write a minute at most).
func requireSession(store *session.Store, tenants *tenant.Registry, tokens *clienttoken.Service, m *metrics.Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			sess, d, err := store.Current(r)
			if err != nil {
				return err
			}
			user, sessHash := tokens.HashUser(d.Tenant, d.UserID), session.HashID(sess.ID)
			if ri := infoFrom(r.Context()); ri != nil {
				ri.session, ri.tenant, ri.user = sessHash, d.Tenant, user
			}
			t, ok := tenants.Load().Get(d.Tenant)
			if !ok {
				if err := store.End(c.Response(), r, sess); err != nil {
					return err
				}
				m.Session("revoked", 1)
				return apperr.New(apperr.Unauthenticated, "Your organisation is no longer configured; log in again.")
			}
			if err := store.Touch(r.Context(), sess); err != nil {
				return err
			}
			c.Set(ctxSession, sess)
			c.Set(ctxData, d)
			c.Set(ctxTenant, t)
			c.Set(ctxSessionHash, sessHash)
			return next(c)
		}
	}
}

func sessionOf(c echo.Context) (*sessions.Session, session.Data, *tenant.Tenant) {
	return c.Get(ctxSession).(*sessions.Session), c.Get(ctxData).(session.Data), c.Get(ctxTenant).(*tenant.Tenant)
}

// handleTenants lists the tenants for the login picker; in demo mode it says so, and the SPA
// shows a banner.
func handleTenants(tenants *tenant.Registry, demo bool) echo.HandlerFunc {
	type item struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	type response struct {
		Tenants []item `json:"tenants"`
		Demo    bool   `json:"demo,omitempty"`
	}
	return func(c echo.Context) error {
		list := tenants.Load().List()
		resp := response{Tenants: make([]item, 0, len(list)), Demo: demo}
		for _, t := range list {
			resp.Tenants = append(resp.Tenants, item{ID: t.ID, Name: t.Name})
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

func handleLogin(svc *auth.Service, store *session.Store, tenants *tenant.Registry, tokens *clienttoken.Service, m *metrics.Metrics) echo.HandlerFunc {
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
		ip, _ := netip.ParseAddr(c.RealIP())
		u, err := svc.Login(c.Request().Context(), t.ID, req.Email, req.Password, ip)
		if err != nil {
			return err
		}
		d := session.Data{UserID: u.ID, Tenant: t.ID, Email: u.Email, BasiqUserID: u.BasiqUserID}
		if err := store.Begin(c.Response(), c.Request(), d); err != nil {
			return err
		}
		m.Session("created", 1)
		if ri := infoFrom(c.Request().Context()); ri != nil {
			ri.tenant, ri.user = t.ID, tokens.HashUser(t.ID, u.ID)
		}
		return c.JSON(http.StatusOK, response{User: userJSON{ID: u.ID, Email: u.Email, Tenant: t.ID, BasiqUserID: u.BasiqUserID}})
	}
}

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

func handleLogout(store *session.Store, m *metrics.Metrics) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess, _, _ := sessionOf(c)
		if err := store.End(c.Response(), c.Request(), sess); err != nil {
			return err
		}
		m.Session("ended", 1)
		return c.NoContent(http.StatusNoContent)
	}
}

func handleMe() echo.HandlerFunc {
	type basiqJSON struct {
		APIURL     string `json:"api_url"`
		ConsentURL string `json:"consent_url"`
		Version    string `json:"version"`
	}
	type response struct {
		User  userJSON  `json:"user"`
		Basiq basiqJSON `json:"basiq"`
	}
	return func(c echo.Context) error {
		_, d, t := sessionOf(c)
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, response{
			User:  userJSON{ID: d.UserID, Email: d.Email, Tenant: d.Tenant, BasiqUserID: d.BasiqUserID},
			Basiq: basiqJSON{APIURL: t.BaseURL, ConsentURL: t.ConsentURL, Version: t.Version},
		})
	}
}
