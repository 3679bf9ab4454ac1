package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/server/internal/basiq"
	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
)

// benchParallelism is goroutines per GOMAXPROCS in the parallel benchmarks. A request spends
// most of its time waiting on loopback and Redis, so one goroutine per core would leave the
// CPU idle; 16 per core (32 on a two-core box) matches the load test's default connections.
const benchParallelism = 16

// target is one server under load: a loopback URL and the headers every request carries.
type target struct {
	name   string
	url    string
	header http.Header // read-only once built; each worker clones it
}

// hotStack is a replica with a warm token cache and one signed-in person per API version.
type hotStack struct {
	s      *stack
	r      *replica
	v2, v3 target
}

// startHotStack starts a replica on real Redis and Postgres, signs in a 2.0 (beta) and a 3.0
// (acme) user and fetches their tokens twice, so that every later GET /client-token is a
// cache hit: the Basiq user exists, its id is in the session, the token is in Redis and L1.
func startHotStack(tb testing.TB) *hotStack {
	tb.Helper()
	// The per-session limit stays on, so its bookkeeping is measured, but far above what one
	// session can send here: a 429 would end the run. Logs are on, at info level, buffered as
	// shipped and written to a file, as a process manager would collect them.
	return startHotStackWith(tb, stackOptions{logTo: logFile(tb), extra: "client_token:\n  rate_limit: 1000000000\n"})
}

// logFile is a file in tb's temporary directory for a replica's logs, closed when tb ends
// (after the replica, whose cleanup is registered later and so runs first).
func logFile(tb testing.TB) *os.File {
	tb.Helper()
	f, err := os.Create(filepath.Join(tb.TempDir(), "bff.log"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// startHotStackWith is startHotStack on a stack built from o.
func startHotStackWith(tb testing.TB, o stackOptions) *hotStack {
	tb.Helper()
	s := newStack(tb, o)
	s.addUser("beta", "carol@beta.test", testPassword)
	s.addUser("acme", "alice@acme.test", testPassword)
	r := s.start()
	requireLoopback(tb, r.url)
	h := &hotStack{s: s, r: r}
	for _, u := range []struct {
		dst           *target
		name          string
		tenant, email string
	}{
		{&h.v2, "hot /client-token (2.0)", "beta", "carol@beta.test"},
		{&h.v3, "hot /client-token (3.0)", "acme", "alice@acme.test"},
	} {
		*u.dst = signedInTarget(tb, r.url, u.name, u.tenant, u.email, 2)
	}
	return h
}

// signedInTarget signs email in on the replica at base, fetches its token `tokens` times
// and returns GET /client-token with that session's cookie as a load target.
func signedInTarget(tb testing.TB, base, name, tenant, email string, tokens int) target {
	tb.Helper()
	c := newClient(tb, base)
	c.mustLogin(tenant, email, testPassword)
	for range tokens {
		c.mustToken()
	}
	var cookies []string
	for _, ck := range c.http.Jar.Cookies(mustURL(tb, base)) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	if len(cookies) == 0 {
		tb.Fatalf("login %s: no session cookie", email)
	}
	tg := target{name: name, url: base + "/client-token", header: http.Header{
		"Cookie": {strings.Join(cookies, "; ")},
		"X-Csrf": {"1"},
	}}
	// The same request the load will send, without the cookie jar, must succeed.
	lc := newLoadClient(1)
	err := fetch(context.Background(), lc, tg.url, tg.header)
	lc.CloseIdleConnections()
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return tg
}

// baselineKey is the one key the baseline server reads.
const baselineKey = "bench:baseline"

// startBaseline serves the reference the hot path is compared with: a bare Echo handler doing
// exactly one Redis GET through the project's adapter and writing the bytes back, behind the
// same kind of http.Server the BFF uses, on loopback. The value is as long as a client-token
// response, so both write the same amount to the wire.
func startBaseline(tb testing.TB) target {
	tb.Helper()
	redisURL := kvtest.RedisURL(tb)
	prefix := kvtest.Prefix(tb, redisURL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := kv.NewRedis(ctx, redisURL, prefix)
	if err != nil {
		tb.Fatalf("redis: %v", err)
	}
	tb.Cleanup(func() { store.Close() })
	value := fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, strings.Repeat("x", 416))
	if err := store.Set(ctx, baselineKey, []byte(value), 0); err != nil {
		tb.Fatalf("redis set: %v", err)
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/", func(c echo.Context) error {
		v, err := store.Get(c.Request().Context(), baselineKey)
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "application/json", v)
	})
	return serveTarget(tb, "baseline Echo + Redis GET", e)
}

// startBareEcho serves the upper limit of what any Echo handler can do on this machine: bare
// Echo returning a constant JSON body as long as a client-token response, with no middleware
// and no logs, behind the same kind of http.Server the BFF uses, on loopback.
func startBareEcho(tb testing.TB) target {
	tb.Helper()
	body := []byte(fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer","expires_in":3600}`+"\n", strings.Repeat("x", 416)))
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
	})
	return serveTarget(tb, "bare Echo constant JSON", e)
}

// serveTarget serves h on a loopback port until tb ends and returns it as a load target,
// checked with one request.
func serveTarget(tb testing.TB, name string, h http.Handler) target {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := newHTTPServer(h, slog.New(slog.DiscardHandler))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("%s shutdown: %v", name, err)
		}
		if err := <-served; err != http.ErrServerClosed {
			tb.Errorf("%s serve: %v", name, err)
		}
	})
	tg := target{name: name, url: "http://" + ln.Addr().String() + "/", header: http.Header{}}
	requireLoopback(tb, tg.url)
	lc := newLoadClient(1)
	err = fetch(context.Background(), lc, tg.url, tg.header)
	lc.CloseIdleConnections()
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return tg
}

// requireLoopback fails unless rawURL's host is 127.0.0.1: load is only ever sent to this
// machine.
func requireLoopback(tb testing.TB, rawURL string) {
	tb.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		tb.Fatalf("refusing to load an unparsable URL: %v", err)
	}
	if u.Hostname() != "127.0.0.1" {
		tb.Fatalf("refusing to load %q: the host must be 127.0.0.1", u.Redacted())
	}
}

// newLoadClient is a keep-alive client for up to conns concurrent requests to one host. It
// never uses a proxy, so requests go straight to the loopback address.
func newLoadClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// fetch GETs rawURL with header, reads and discards the body and wants a 200. Errors never
// include the headers: they carry a session cookie.
func fetch(ctx context.Context, c *http.Client, rawURL string, header http.Header) error {
	_, err := fetchN(ctx, c, rawURL, header)
	return err
}

// fetchN is fetch that also returns the body's length.
func fetchN(ctx context.Context, c *http.Client, rawURL string, header http.Header) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, err
	}
	req.Header = header
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: status %d", req.URL.Path, resp.StatusCode)
	}
	if err != nil {
		return n, fmt.Errorf("GET %s: read body: %w", req.URL.Path, err)
	}
	return n, nil
}

// benchTarget hits tg from benchParallelism*GOMAXPROCS goroutines over keep-alive connections
// and reports throughput next to ns/op.
func benchTarget(b *testing.B, tg target) {
	requireLoopback(b, tg.url)
	conns := benchParallelism * runtime.GOMAXPROCS(0)
	c := newLoadClient(conns)
	b.Cleanup(c.CloseIdleConnections)
	ctx := b.Context()
	// Open every connection before timing, so dials are not measured.
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			if err := fetch(ctx, c, tg.url, tg.header); err != nil {
				b.Errorf("warm-up: %v", err)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}

	var failed atomic.Bool
	b.SetParallelism(benchParallelism)
	// allocs/op counts the whole process, the load client included: compare it with
	// BenchmarkBareEchoJSON's to see what the server adds.
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		h := tg.header.Clone()
		for pb.Next() {
			if failed.Load() {
				return
			}
			if err := fetch(ctx, c, tg.url, h); err != nil {
				// FailNow may only be called from the benchmark's goroutine.
				if failed.CompareAndSwap(false, true) {
					b.Error(err)
				}
				return
			}
		}
	})
	b.StopTimer()
	if failed.Load() {
		b.FailNow()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkClientTokenHit measures GET /client-token on a warm cache through the whole stack:
// net/http, Echo, every middleware (request log line at info level included), the session
// read and the token cache, on real Redis and Postgres.
func BenchmarkClientTokenHit(b *testing.B) {
	h := startHotStack(b)
	for _, bc := range []struct {
		name string
		tg   target
	}{{"v2", h.v2}, {"v3", h.v3}} {
		b.Run(bc.name, func(b *testing.B) {
			calls := h.s.emu.TokenCalls()
			benchTarget(b, bc.tg)
			if got := h.s.emu.TokenCalls(); got != calls {
				b.Errorf("Basiq /token was called %d times: not a cache hit", got-calls)
			}
		})
	}
}

// BenchmarkBaselineRedisGet is the reference for BenchmarkClientTokenHit: an HTTP round trip
// and one Redis round trip with nothing else. It is not a floor: a hit the in-process caches
// answer makes no Redis round trip at all.
func BenchmarkBaselineRedisGet(b *testing.B) {
	benchTarget(b, startBaseline(b))
}

// BenchmarkBareEchoJSON is the upper limit for BenchmarkClientTokenHit: bare Echo answering a
// constant JSON body of the same size, no middleware, no logs.
func BenchmarkBareEchoJSON(b *testing.B) {
	benchTarget(b, startBareEcho(b))
}

// coldMissEmulator is the emulator both cold-miss benchmarks talk to: Basiq's documented
// behaviour, except that its per-key limit of 1,500 /token calls per 5 minutes is off, since a
// benchmark mints that many in seconds.
func coldMissEmulator() emulator.Options { return emulator.Options{PerKeyLimit: -1} }

// coldMissBudgetEvery is how many mints the cold-miss benchmark makes between clearing the
// tenant's mint budget: its counters must keep counting as in production (so most mints
// increment an existing counter), but the budget (at most 1,500 per 5 minutes) must not run
// out during the run.
const coldMissBudgetEvery = 1000

// BenchmarkClientTokenColdMiss measures one GET /client-token that finds nothing cached, for
// the 2.0 tenant, through the whole stack on real Redis and Postgres: the kv read miss, the
// mint budget, the fleet lock, the /token call to the emulator, sealing, the kv write and its
// index, the lock release and the HTTP exchange. Before each request (untimed) the cached
// token is deleted; L1 is off, so every request mints. Requests run one at a time: this is one
// request's latency, not throughput. Compare with BenchmarkUpstreamTokenDirect, the /token
// call alone: the difference is what the BFF adds on a cold miss.
func BenchmarkClientTokenColdMiss(b *testing.B) {
	s := newStack(b, stackOptions{discardLogs: true, emu: coldMissEmulator(),
		extra: "client_token:\n  rate_limit: 1000000000\n  l1_ttl: 0s\n"})
	s.addUser("beta", "carol@beta.test", testPassword)
	r := s.start()
	tg := signedInTarget(b, r.url, "cold /client-token (2.0)", "beta", "carol@beta.test", 1)
	requireLoopback(b, tg.url)
	tokPrefix, budgetPrefix := s.prefix+"tok:beta:", s.prefix+"rl:mint:beta:"
	c := newLoadClient(1)
	b.Cleanup(c.CloseIdleConnections)
	ctx := b.Context()
	// Open the connection before timing, so the dial is not measured.
	if err := fetch(ctx, c, tg.url, tg.header); err != nil {
		b.Fatalf("warm-up: %v", err)
	}

	mints := 0
	for b.Loop() {
		b.StopTimer()
		if mints%coldMissBudgetEvery == 0 {
			if err := kvtest.DeletePrefix(s.redisURL, budgetPrefix); err != nil {
				b.Fatalf("clear the mint budget: %v", err)
			}
		}
		if err := kvtest.DeletePrefix(s.redisURL, tokPrefix); err != nil {
			b.Fatalf("delete the cached token: %v", err)
		}
		calls := s.emu.TokenCalls()
		b.StartTimer()

		err := fetch(ctx, c, tg.url, tg.header)

		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		// Every request must have minted: exactly one /token call each.
		if got := s.emu.TokenCalls() - calls; got != 1 {
			b.Fatalf("request %d made %d /token calls, want exactly 1 (a cold miss)", mints+1, got)
		}
		mints++
		b.StartTimer()
	}
	reportMillis(b)
}

// BenchmarkUpstreamTokenDirect is the reference for BenchmarkClientTokenColdMiss: the same
// emulator's POST /token (2.0, CLIENT_ACCESS, no user), called directly with the project's
// Basiq client over a keep-alive connection, one call at a time.
func BenchmarkUpstreamTokenDirect(b *testing.B) {
	emu := emulator.New(coldMissEmulator())
	srv := httptest.NewServer(emu)
	b.Cleanup(srv.Close)
	requireLoopback(b, srv.URL)
	key := emulator.GenerateKey()
	emu.AddKey(key, emulator.KeyOptions{})
	client := basiq.New(nil, 0)
	req := basiq.TokenRequest{BaseURL: srv.URL, APIKey: key, Version: "2.0", Scope: basiq.ScopeClient}
	ctx := b.Context()
	// Open the connection before timing, so the dial is not measured.
	if _, err := client.Token(ctx, req); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	calls := emu.TokenCalls()

	for b.Loop() {
		if _, err := client.Token(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	if got := emu.TokenCalls() - calls; got != b.N {
		b.Errorf("/token calls = %d, want %d (one per iteration)", got, b.N)
	}
	reportMillis(b)
}

// reportMillis adds ms/op next to ns/op: the latency targets are written in milliseconds.
func reportMillis(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(time.Millisecond), "ms/op")
	}
}
