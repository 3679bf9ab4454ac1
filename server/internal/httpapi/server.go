// Package httpapi is the BFF's HTTP surface: the public API and SPA, and the admin listener.
// It is the only importer of echo and rs/cors. routes.go lists every route; handlers return
// errors and one error handler renders them as {"error":{"code","message"}}.
package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/auth"
	"github.com/basiq-bff/bff/server/internal/clienttoken"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/metrics"
	"github.com/basiq-bff/bff/server/internal/ratelimit"
	"github.com/basiq-bff/bff/server/internal/session"
	"github.com/basiq-bff/bff/server/internal/sso"
	"github.com/basiq-bff/bff/server/internal/tenant"
)

// Deps are what the public server needs. All fields are required except DemoLogin.
type Deps struct {
	Log      *slog.Logger
	Config   *config.Config
	Tenants  *tenant.Registry
	Sessions *session.Store
	Auth     *auth.Service
	Tokens   *clienttoken.Service
	KV       kv.Store
	// StateKey signs Consent UI state values.
	StateKey []byte
	// Static is the SPA's file system (web.FS).
	Static  http.FileSystem
	Metrics *metrics.Metrics
	// Limiter bounds GET /client-token and POST /connect/consent per session.
	Limiter *ratelimit.Limiter
	// LogoutLimiter bounds POST /auth/oidc/backchannel-logout per client address; nil: no limit.
	LogoutLimiter *ratelimit.Limiter
	// DemoLogin is the demo user, shown on the login form; nil outside demo mode.
	DemoLogin *DemoLogin
	// SSO signs people in through their tenant's OpenID Connect provider.
	SSO *sso.Service
	// RequestLines, when set, takes the request line formatted by hand (JSON logs only);
	// nil logs it through Log. Set it only when Log is the root logger of the same handler:
	// the hand-formatted line carries no attributes added with Log.With.
	RequestLines *RequestLines
}

// DemoLogin is the built-in demo account. It exists only in the demo database, which is why
// /auth/tenants may show it.
type DemoLogin struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Server is the public handler.
type Server struct {
	*echo.Echo
	origins atomic.Pointer[originPolicy]
}

// NewServer returns the public handler.
func NewServer(d Deps) (*Server, error) {
	s := &Server{Echo: echo.New()}
	s.HideBanner, s.HidePort = true, true
	s.HTTPErrorHandler = errorHandler(d.Log)
	ipx, err := ipExtractor(d.Config.TrustedProxies)
	if err != nil {
		return nil, err
	}
	s.IPExtractor = ipx
	s.origins.Store(newOriginPolicy(d.Config))
	addRoutes(s.Echo, d, &s.origins)
	return s, nil
}

// ApplyOrigins installs the origin rules of a reloaded configuration (public_origin and
// cors.allowed_origins); requests already past the checks are not affected.
func (s *Server) ApplyOrigins(cfg *config.Config) { s.origins.Store(newOriginPolicy(cfg)) }

// OriginAllowed reports whether origin is public_origin or listed in cors.allowed_origins,
// under the configuration in force.
func (s *Server) OriginAllowed(origin string) bool { return s.origins.Load().allowed[origin] }

// Pinger answers a real round trip to a backing store.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Admin is what the admin listener needs.
type Admin struct {
	DB      Pinger
	KV      kv.Store
	Metrics http.Handler
	// ConfigOK reports whether a valid configuration is in force.
	ConfigOK func() bool
	// OpenAPI is the contract's OpenAPI document (YAML), served at /openapi.yaml; "" leaves
	// the route out.
	OpenAPI string
	// Draining reports whether the process is shutting down; /readyz then fails at once.
	Draining func() bool
}

// NewAdmin returns the admin handler: /healthz (alive), /readyz (database, kv and config
// usable, each with a real round trip; 503 without checking while draining), /metrics,
// /openapi.yaml.
func NewAdmin(a Admin) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if a.Draining != nil && a.Draining() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "draining": true})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]string{"database": "ok", "kv": "ok", "config": "ok"}
		ok := true
		if err := a.DB.Ping(ctx); err != nil {
			checks["database"], ok = "unavailable", false
		}
		if err := a.KV.Ping(ctx); err != nil {
			checks["kv"], ok = "unavailable", false
		}
		if a.ConfigOK != nil && !a.ConfigOK() {
			checks["config"], ok = "invalid", false
		}
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]any{"ready": ok, "checks": checks})
	})
	if a.Metrics != nil {
		mux.Handle("GET /metrics", a.Metrics)
	}
	if a.OpenAPI != "" {
		mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write([]byte(a.OpenAPI))
		})
	}
	return mux
}

// ipExtractor takes the client IP from the socket unless the peer is a trusted proxy; then
// X-Forwarded-For is read right to left through trusted hops only. Echo trusts loopback and
// private ranges by default; we trust exactly the configured ranges.
func ipExtractor(trusted []string) (echo.IPExtractor, error) {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect(), nil
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, s := range trusted {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			ip := net.ParseIP(s)
			if ip == nil {
				return nil, err
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			n = &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
		}
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), nil
}
