package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/cors"
	"go.opentelemetry.io/otel/trace"

	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/metrics"
	"github.com/basiq-bff/bff/server/internal/reqid"
	"github.com/basiq-bff/bff/server/internal/tenant"
)

// reqInfo is the per-request logging context; handlers fill in who the request is for and,
// on token routes, the audit fields of the token served, which the request line carries.
type reqInfo struct {
	id      string
	tenant  string
	user    string // hashed
	session string // hashed

	// Set when a token was handed out: the request line is then its audit event.
	keyID, source, correlation string

	// auth is what requireSession learned, on the routes behind it.
	auth *authed

	// idHeader is the X-Request-ID response header's value slice, allocated with the rest.
	idHeader [1]string
}

// served records on the request line the audit fields of a token handed to the browser.
func (ri *reqInfo) served(keyID, source, correlation string) {
	if ri != nil {
		ri.keyID, ri.source, ri.correlation = keyID, source, correlation
	}
}

type ctxKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(ctxKey{}).(*reqInfo)
	return ri
}

// LogHandler wraps h so that every record logged with a request's context carries the request
// id, tenant, hashed user and hashed session.
func LogHandler(h slog.Handler) slog.Handler { return ctxHandler{h} }

type ctxHandler struct{ slog.Handler }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if ri := infoFrom(ctx); ri != nil {
		var hasTenant, hasUser bool
		r.Attrs(func(a slog.Attr) bool {
			hasTenant = hasTenant || a.Key == "tenant"
			hasUser = hasUser || a.Key == "user"
			return true
		})
		r.AddAttrs(slog.String("request_id", ri.id))
		if ri.tenant != "" && !hasTenant {
			r.AddAttrs(slog.String("tenant", ri.tenant))
		}
		if ri.user != "" && !hasUser {
			r.AddAttrs(slog.String("user", ri.user))
		}
		if ri.session != "" {
			r.AddAttrs(slog.String("session", ri.session))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h ctxHandler) WithAttrs(a []slog.Attr) slog.Handler { return ctxHandler{h.Handler.WithAttrs(a)} }
func (h ctxHandler) WithGroup(n string) slog.Handler      { return ctxHandler{h.Handler.WithGroup(n)} }

// requestContext assigns the request id (a well-formed incoming X-Request-ID is kept, so a
// trace spans the load balancer and us), echoes it on the response and logs one line per
// request. On a request that was handed a token the line is also that token's audit event
// ("audit": true, tenant, user, key_id, source, correlation_id); mints, refusals and security
// events are lines of their own.
func requestContext(log *slog.Logger, m *metrics.Metrics, lines *RequestLines) echo.MiddlewareFunc {
	bufs := sync.Pool{New: func() any { return new([]byte) }}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			r := c.Request()
			id := r.Header.Get(echo.HeaderXRequestID)
			if !validRequestID(id) {
				id = newRequestID()
			}
			ri := &reqInfo{id: id, idHeader: [1]string{id}}
			c.Response().Header()[echo.HeaderXRequestID] = ri.idHeader[:]
			// One copy of the request carries both the log context and the request id that
			// calls to Basiq send.
			c.SetRequest(r.WithContext(reqid.With(context.WithValue(r.Context(), ctxKey{}, ri), id)))
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			// One clock reading ends the request: its duration and its log line's time.
			end := time.Now()
			took, route, status := end.Sub(start), routeOf(c), c.Response().Status
			m.HTTP(route, r.Method, status, took)
			if !log.Enabled(r.Context(), slog.LevelInfo) {
				return nil
			}
			var buf [14]slog.Attr
			attrs := append(buf[:0],
				slog.String("method", metrics.Method(r.Method)), slog.String("route", route),
				slog.Int("status", status), slog.Duration("duration", took),
				slog.String("ip", c.RealIP()), slog.String("request_id", ri.id))
			if ri.tenant != "" {
				attrs = append(attrs, slog.String("tenant", ri.tenant), slog.String("user", ri.user), slog.String("session", ri.session))
			}
			if ri.source != "" {
				attrs = append(attrs, slog.Bool("audit", true), slog.String("key_id", ri.keyID), slog.String("source", ri.source))
				if ri.correlation != "" {
					attrs = append(attrs, slog.String("correlation_id", ri.correlation))
				}
			}
			// With JSON logs and no span to name, the line is formatted here and handed to
			// the log buffer; otherwise (text logs, a trace id to add, a value to escape)
			// slog formats it.
			if lines != nil && !trace.SpanContextFromContext(r.Context()).IsValid() {
				bp := bufs.Get().(*[]byte)
				b, ok := appendRequestLine((*bp)[:0], end, "request", attrs)
				if ok {
					w := lines.Routine
					if ri.source != "" {
						w = lines.Priority
					}
					_, _ = w.Write(b)
				}
				*bp = b
				bufs.Put(bp)
				if ok {
					return nil
				}
			}
			// The line carries the request's fields itself, so it is logged with the context
			// from before they were attached: the log handler has nothing to add or look up.
			log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
			return nil
		}
	}
}

// standardMethods refuses, with 405 and before any other work, a request whose method is not
// one of metrics.Method's set: no route takes one, and its text must not reach a label, a
// log line or a handler.
func standardMethods() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if metrics.Method(c.Request().Method) == metrics.OtherMethod {
				return echo.ErrMethodNotAllowed
			}
			return next(c)
		}
	}
}

// routeOf is the matched route pattern, never the raw path: paths can carry anything.
func routeOf(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "unmatched"
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, ch := range id {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// recoverPanics turns a panic into a logged 500 instead of a dropped connection.
func recoverPanics(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					err = fmt.Errorf("panic: %v", v)
				}
			}()
			return next(c)
		}
	}
}

// securityHeaders sets the headers every response carries. The CSP lets the SPA reach its own
// origin and the tenants' Basiq APIs and nothing else; it is rebuilt when the tenant snapshot
// changes.
func securityHeaders(cfg *config.Config, tenants *tenant.Registry) echo.MiddlewareFunc {
	type cached struct {
		snap *tenant.Snapshot
		csp  []string
	}
	var cur atomic.Pointer[cached]
	csp := func() []string {
		snap := tenants.Load()
		if c := cur.Load(); c != nil && c.snap == snap {
			return c.csp
		}
		connect := []string{"'self'"}
		for _, t := range snap.List() {
			if u, err := url.Parse(t.BaseURL); err == nil && !slices.Contains(connect, u.Scheme+"://"+u.Host) {
				connect = append(connect, u.Scheme+"://"+u.Host)
			}
		}
		v := "default-src 'self'; connect-src " + strings.Join(connect, " ") +
			"; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
		c := &cached{snap: snap, csp: []string{v}}
		cur.Store(c)
		return c.csp
	}
	secure := cfg.Session.IsSecure()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			// Assigned rather than Set: the keys are canonical already and the value slices are
			// shared by every response (as rs/cors does), saving an allocation per header.
			h := c.Response().Header()
			h["Content-Security-Policy"] = csp()
			h["X-Content-Type-Options"] = hdrNosniff
			h["Referrer-Policy"] = hdrNoReferrer
			h["X-Frame-Options"] = hdrDeny
			h["Cross-Origin-Opener-Policy"] = hdrSameOrigin
			// No other site may embed our scripts, styles or answers (no-cors reads); CORS
			// requests from the allowed origins are not affected.
			h["Cross-Origin-Resource-Policy"] = hdrSameOrigin
			if p := c.Request().URL.Path; apiPath(p) || strings.HasPrefix(p, "/connect/") {
				// Answers about a person (sessions, tokens, errors) must not sit in any cache:
				// set here once for every such route, so no handler repeats it.
				h["Cache-Control"] = hdrNoStore
			}
			if secure {
				h["Strict-Transport-Security"] = hdrHSTS
			}
			return next(c)
		}
	}
}

// Header values every response carries; read-only.
var (
	hdrNosniff    = []string{"nosniff"}
	hdrNoReferrer = []string{"no-referrer"}
	hdrDeny       = []string{"DENY"}
	hdrSameOrigin = []string{"same-origin"}
	hdrHSTS       = []string{"max-age=63072000; includeSubDomains"}
	hdrNoStore    = []string{"no-store"}
	hdrJSON       = []string{echo.MIMEApplicationJSON}
)

// originPolicy is everything that depends on which origins may call us. It is rebuilt and
// swapped whole when the configuration is reloaded.
type originPolicy struct {
	cors    *cors.Cors
	allowed map[string]bool
	cop     *http.CrossOriginProtection
	public  string // public_origin
}

func newOriginPolicy(cfg *config.Config) *originPolicy {
	p := &originPolicy{
		allowed: map[string]bool{cfg.PublicOrigin: true},
		cop:     http.NewCrossOriginProtection(),
		public:  cfg.PublicOrigin,
	}
	// rs/cors reads an empty list as "every origin": with no allowed origins there is no
	// CORS at all. config.Validate refuses "*" and patterns: with credentials, rs/cors would
	// otherwise reflect almost any origin.
	if len(cfg.CORS.AllowedOrigins) > 0 {
		p.cors = cors.New(cors.Options{
			AllowedOrigins:   cfg.CORS.AllowedOrigins,
			AllowCredentials: true,
			AllowedMethods:   []string{http.MethodGet, http.MethodPost},
			AllowedHeaders:   []string{"Content-Type", "X-CSRF", "X-Request-ID", "traceparent", "tracestate"},
			ExposedHeaders:   []string{"X-Request-ID", "Retry-After"},
			MaxAge:           600,
		})
	}
	for _, o := range cfg.CORS.AllowedOrigins {
		p.allowed[o] = true
		_ = p.cop.AddTrustedOrigin(o) // validated at config load
	}
	return p
}

// corsMiddleware grants credentialed cross-origin access to exactly the configured origins and
// answers preflights.
func corsMiddleware(policy *atomic.Pointer[originPolicy]) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := policy.Load()
			if p.cors == nil {
				return next(c)
			}
			var err error
			p.cors.ServeHTTP(c.Response(), c.Request(), func(http.ResponseWriter, *http.Request) {
				err = next(c)
			})
			return err
		}
	}
}

// crossSiteGuard is the one CSRF check. Every state-changing request, and every token or auth
// read except GET /auth/me, must carry X-CSRF: 1 (a custom header forces a CORS preflight, so
// a foreign page cannot send it) and, when the browser says where it comes from, an allowed
// Origin (or Referer). Go's Fetch-Metadata check runs first as a second layer.
func crossSiteGuard(policy *atomic.Pointer[originPolicy]) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if strings.HasPrefix(r.URL.Path, oidcPrefix) {
				return next(c)
			}
			csrf := needsCSRF(r)
			if !csrf && !apiPath(r.URL.Path) {
				return next(c)
			}
			p := policy.Load()
			if csrf {
				if err := p.cop.Check(r); err != nil {
					return apperr.Wrap(apperr.CSRF, errors.Join(errCrossSite, err), "Cross-site requests are not allowed.")
				}
				// X-CSRF in its canonical spelling: Get would otherwise build that spelling
				// anew on every request.
				if r.Header.Get("X-Csrf") != "1" {
					return apperr.Wrap(apperr.CSRF, errMissingCSRFHeader, "The X-CSRF: 1 header is required.")
				}
			}
			// Every API read, GET /auth/me included, refuses an origin that is not allowed:
			// CORS alone would hide the answer from a foreign page but still serve it.
			if o := r.Header.Get("Origin"); o != "" {
				if !p.allowed[o] {
					return apperr.Wrap(apperr.CSRF, errForeignOrigin, "The request's origin is not allowed.")
				}
			} else if ref := r.Header.Get("Referer"); ref != "" {
				u, err := url.Parse(ref)
				if err != nil || !p.allowed[u.Scheme+"://"+u.Host] {
					return apperr.Wrap(apperr.CSRF, errForeignOrigin, "The request's origin is not allowed.")
				}
			}
			return next(c)
		}
	}
}

// apiPath reports whether p is an API route that carries the session.
func apiPath(p string) bool {
	return p == "/client-token" || p == "/connect/consent" || strings.HasPrefix(p, "/auth/")
}

func needsCSRF(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p := r.URL.Path
		return p == "/client-token" || strings.HasPrefix(p, "/auth/") && p != "/auth/me"
	case http.MethodOptions:
		return false
	}
	return true
}
