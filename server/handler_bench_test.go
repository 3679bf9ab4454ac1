package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/derive"
	"github.com/basiq-bff/bff/server/internal/httpapi"
	"github.com/basiq-bff/bff/server/internal/metrics"
	"github.com/basiq-bff/bff/server/internal/ratelimit"
	"github.com/basiq-bff/bff/web"
)

// discardResponse is a ResponseWriter that keeps nothing but its header map, cleared and
// reused between requests, so that a handler benchmark measures the handler alone.
type discardResponse struct {
	h      http.Header
	status int
}

func (w *discardResponse) Header() http.Header         { return w.h }
func (w *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardResponse) WriteHeader(status int)      { w.status = status }

// benchHandler runs req through h b.N times on one goroutine and fails unless each answer is
// a 200. It reports allocations: this is the handler's own cost per request, without sockets,
// HTTP parsing or a load client.
func benchHandler(b *testing.B, h http.Handler, req *http.Request) {
	w := &discardResponse{h: http.Header{}}
	h.ServeHTTP(w, req)
	if w.status != http.StatusOK && w.status != 0 {
		b.Fatalf("warm-up: status %d", w.status)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK && w.status != 0 {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkClientTokenHandler is the server-side CPU and allocation cost of one warm
// GET /client-token (2.0 tenant): the public handler built exactly as serve builds it, with
// logs on at info level, buffered as shipped, into a file, called directly.
func BenchmarkClientTokenHandler(b *testing.B) {
	h := startHotStack(b)
	ctx := context.Background()
	cfg, err := config.Load(h.s.cfgPath, h.s.getenv)
	if err != nil {
		b.Fatal(err)
	}
	m := metrics.New()
	log, lines, closeLog := newLogger(cfg, logFile(b), m)
	b.Cleanup(closeLog)
	a, err := open(ctx, cfg, log, m, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.close)
	stateKey, err := cfg.Session.Keys[0].Hex32()
	if err != nil {
		b.Fatal(err)
	}
	limiter := ratelimit.NewLimiter(a.kv, "rl:tok:", cfg.ClientToken.RateLimit, time.Minute, nil, log)
	e, err := httpapi.NewServer(httpapi.Deps{
		Log: log, Config: cfg, Tenants: a.tenants, Sessions: a.sessions, Auth: a.auth, Tokens: a.tokens,
		KV: a.kv, StateKey: derive.Key(stateKey, "bff consent state v1"), Static: http.FS(web.FS), Metrics: m, Limiter: limiter,
		RequestLines: lines,
	})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/client-token", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header = h.v2.header.Clone()
	benchHandler(b, e, req)
}

// BenchmarkBareEchoHandler is BenchmarkClientTokenHandler's reference: bare Echo's constant
// JSON handler (as in BenchmarkBareEchoJSON), called directly.
func BenchmarkBareEchoHandler(b *testing.B) {
	body := []byte(`{"access_token":"x","token_type":"Bearer","expires_in":3600}` + "\n")
	e := echo.New()
	e.GET("/", func(c echo.Context) error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body) })
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	benchHandler(b, e, req)
}
