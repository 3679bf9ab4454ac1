package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/basiq-bff/bff/api"
	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/auth"
	"github.com/basiq-bff/bff/server/internal/basiq"
	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/buildinfo"
	"github.com/basiq-bff/bff/server/internal/clienttoken"
	"github.com/basiq-bff/bff/server/internal/derive"
	"github.com/basiq-bff/bff/server/internal/httpapi"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/logsink"
	"github.com/basiq-bff/bff/server/internal/metrics"
	"github.com/basiq-bff/bff/server/internal/ratelimit"
	"github.com/basiq-bff/bff/server/internal/session"
	"github.com/basiq-bff/bff/server/internal/sso"
	"github.com/basiq-bff/bff/server/internal/store"
	"github.com/basiq-bff/bff/server/internal/tenant"
	"github.com/basiq-bff/bff/server/internal/tracing"
	"github.com/basiq-bff/bff/web"
)

// Demo credentials, printed at start-up. They exist only in the demo database.
const (
	demoEmail    = "demo@example.com"
	demoPassword = "demo-password"
)

// serve runs the BFF until ctx is done.
func serve(ctx context.Context, env cliEnv) error {
	cfg, emu, err := serveConfig(ctx, env)
	if err != nil {
		return err
	}
	if emu != nil {
		defer emu.close()
	}
	m := metrics.New()
	log, lines, closeLog := newLogger(cfg, env.stderr, m)
	// Registered first, so it runs last: whatever the other deferred closes log is written
	// too, on every way out of serve.
	defer closeLog()
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w)
	}
	warnSharedTokens(log, cfg.Tenants)

	bi := buildinfo.Read()
	m.SetBuildInfo(metrics.BuildInfo{Version: bi.Version, Revision: bi.Revision, Go: bi.Go})
	tr, err := tracing.Setup(env.getenv, bi)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		// After the drain: the spans of the last requests are flushed too.
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(flushCtx); err != nil {
			log.Warn("tracing: spans not flushed", "err", err)
		}
	}()
	if tr.Enabled() {
		log.Info("tracing on: spans are exported over OTLP/HTTP")
	}
	a, err := open(ctx, cfg, log, m, tr)
	if err != nil {
		return err
	}
	defer a.close()
	m.WatchDB(a.db.Pool())
	if a.redis != nil {
		m.WatchRedisPool(func() metrics.RedisPool { return metrics.RedisPool(a.redis.PoolStats()) })
	}
	if err := a.db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	pub, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	defer pub.Close()
	adm, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", cfg.AdminListen, err)
	}
	defer adm.Close()
	publicURL := "http://" + pub.Addr().String()
	if cfg.Demo {
		// The origin the browser will use is the address actually bound.
		cfg.PublicOrigin = publicURL
		if err := seedDemo(ctx, a.db); err != nil {
			return err
		}
		emu.emu.SetConsentRedirect(publicURL + "/connect/return")
	}

	limiter := ratelimit.NewLimiter(a.kv, "rl:tok:", cfg.ClientToken.RateLimit, time.Minute, nil, log)
	logouts := ratelimit.NewLimiter(a.kv, "rl:bcl:", backchannelLogoutLimit, time.Minute, nil, log)
	e, err := publicServer(cfg, a, log, lines, m, limiter, logouts)
	if err != nil {
		return err
	}
	var draining atomic.Bool
	admin := httpapi.NewAdmin(httpapi.Admin{DB: a.db, KV: a.kv, Metrics: m.Handler(), OpenAPI: api.OpenAPI, Draining: draining.Load,
		// A reload never installs an invalid configuration; what can go missing is every
		// tenant (all removed, or all refused at start-up): then nothing can be served.
		ConfigOK: func() bool { return len(a.tenants.Load().List()) > 0 }})

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go a.sessions.Watch(watchCtx)
	go a.tokens.WatchPurges(watchCtx)
	go limiter.Run(watchCtx, 250*time.Millisecond)
	go logouts.Run(watchCtx, 250*time.Millisecond)
	rl := &reloader{path: cfg.Path, getenv: env.getenv, log: log, m: m, tenants: a.tenants, tokens: a.tokens,
		http: e, fpKey: a.fpKey, cfg: cfg}
	// Tokens of keys marked revoked while no replica ran are purged now.
	rl.purge(ctx, nil, a.tenants.Load())
	if !cfg.Demo {
		go rl.run(watchCtx)
	}

	trusted, err := prefixes(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	servers := []*http.Server{newHTTPServer(tr.Handler(e, trusted, e.OriginAllowed), log), newHTTPServer(admin, log)}
	errc := make(chan error, 2)
	go func() { errc <- servers[0].Serve(pub) }()
	go func() { errc <- servers[1].Serve(adm) }()

	if cfg.Demo {
		printDemoBanner(env.stdout, publicURL, "http://"+adm.Addr().String(), emu.url)
	}
	fmt.Fprintf(env.stdout, "listening on %s (admin http://%s)\n", publicURL, adm.Addr())
	log.Info("serving", "public", pub.Addr().String(), "admin", adm.Addr().String(), "demo", cfg.Demo, "tenants", len(cfg.Tenants))

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	return drain(env.force, log, cfg.Shutdown, &draining, servers)
}

// serveConfig loads the configuration file, or with none starts the demo: an emulator on
// loopback (the caller closes it) and the demo configuration.
func serveConfig(ctx context.Context, env cliEnv) (*config.Config, *emulatorServer, error) {
	if path := config.Path(env.configFlag, env.getenv); path != "" {
		cfg, err := config.Load(path, env.getenv, checkRedisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
		if env.getenv("BFF_DEMO_ORIGINS") != "" {
			cfg.Warnings = append(cfg.Warnings, "BFF_DEMO_ORIGINS is ignored outside demo mode; list origins in cors.allowed_origins")
		}
		return cfg, nil, nil
	}
	emu, err := startEmulator(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("demo emulator: %w", err)
	}
	cfg, err := demoConfig(emu.url, env.getenv)
	if err != nil {
		emu.close()
		return nil, nil, err
	}
	return cfg, emu, nil
}

// backchannelLogoutLimit bounds back-channel logout calls per client address per minute. A
// provider sends one per ended provider session; each forged token may make the BFF fetch the
// provider's signing keys again, so the endpoint must not be a free amplifier.
const backchannelLogoutLimit = 60

// publicServer builds the public listener's handler from the app's parts.
func publicServer(cfg *config.Config, a *app, log *slog.Logger, lines *httpapi.RequestLines, m *metrics.Metrics,
	limiter, logouts *ratelimit.Limiter) (*httpapi.Server, error) {
	stateKey, err := cfg.Session.Keys[0].Hex32()
	if err != nil {
		return nil, err
	}
	var demoLogin *httpapi.DemoLogin
	if cfg.Demo {
		demoLogin = &httpapi.DemoLogin{Email: demoEmail, Password: demoPassword}
	}
	ssoSvc, err := newSSO(cfg, a, log)
	if err != nil {
		return nil, err
	}
	return httpapi.NewServer(httpapi.Deps{
		Log: log, Config: cfg, Tenants: a.tenants, Sessions: a.sessions, Auth: a.auth, Tokens: a.tokens,
		KV: a.kv, StateKey: derive.Key(stateKey, "bff consent state v1"), Static: http.FS(web.FS), Metrics: m, Limiter: limiter,
		LogoutLimiter: logouts,
		DemoLogin:     demoLogin,
		SSO:           ssoSvc,
		RequestLines:  lines,
	})
}

// errForced is returned when a second stop signal cut the drain short.
var errForced = errors.New("stopped at once by a second signal")

// drain stops the servers gracefully: readiness fails at once (draining is set), the
// listeners go on serving for sh.Drain so that load balancers take the replica out of
// rotation without a failed request, then they stop accepting and in-flight requests get up
// to sh.Timeout. A close of force ends all of it at once.
func drain(force <-chan struct{}, log *slog.Logger, sh config.Shutdown, draining *atomic.Bool, servers []*http.Server) error {
	draining.Store(true)
	log.Info("shutting down: draining", "drain", sh.Drain.String(), "timeout", sh.Timeout.String())
	// Responses now say Connection: close, so keep-alive clients come back through the load
	// balancer, which sends them elsewhere.
	servers[0].SetKeepAlivesEnabled(false)
	closeAll := func() error {
		for _, s := range servers {
			_ = s.Close()
		}
		log.Warn("stopped at once: second signal")
		return errForced
	}
	t := time.NewTimer(sh.Drain.D())
	defer t.Stop()
	select {
	case <-t.C:
	case <-force:
		return closeAll()
	}
	log.Info("shutting down: no longer accepting; finishing in-flight requests")
	shutCtx, cancel := context.WithTimeout(context.Background(), sh.Timeout.D())
	defer cancel()
	go func() {
		select {
		case <-force:
			cancel()
		case <-shutCtx.Done():
		}
	}()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(shutCtx); err != nil {
			errs = append(errs, err)
		}
	}
	select {
	case <-force:
		return closeAll()
	default:
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// newSSO builds OpenID Connect sign-in. Its pre-login cookie is signed with keys derived from
// every session key, so it rotates with them.
func newSSO(cfg *config.Config, a *app, log *slog.Logger) (*sso.Service, error) {
	var keys [][]byte
	for _, k := range cfg.Session.Keys {
		b, err := k.Hex32()
		if err != nil {
			return nil, err
		}
		keys = append(keys, derive.Key(b, "bff oidc pre-login v1"))
	}
	return sso.New(a.db, a.kv, sso.Options{CookieKeys: keys, Secure: cfg.Session.IsSecure(), Log: log,
		HTTPClient: &http.Client{Timeout: 10 * time.Second}})
}

// newHTTPServer bounds every phase of a connection, so slow clients cannot hold goroutines.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// app is the set of opened dependencies, shared by serve and the CLI commands.
type app struct {
	cfg      *config.Config
	db       *store.DB
	kv       kv.Store
	redis    *kv.Redis // the Redis adapter under kv, nil for the in-process store
	tenants  *tenant.Registry
	fpKey    []byte // keys the API key fingerprints
	sessions *session.Store
	auth     *auth.Service
	tokens   *clienttoken.Service
}

// open opens the database, the kv store and the services on them; with tr enabled, SQL,
// Redis and Basiq calls are traced.
func open(ctx context.Context, cfg *config.Config, log *slog.Logger, m *metrics.Metrics, tr *tracing.Tracing) (_ *app, err error) {
	a := &app{cfg: cfg}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	var dbOpts []store.Option
	if tr.Enabled() {
		dbOpts = append(dbOpts, store.WithTracerProvider(tr.Provider()))
	}
	if a.db, err = store.Open(ctx, cfg.DatabaseURL, dbOpts...); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if cfg.RedisURL == "" {
		a.kv = kv.NewMemory(nil)
	} else {
		if a.redis, err = kv.NewRedis(ctx, cfg.RedisURL, cfg.RedisPrefix); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		a.kv = a.redis
		if tr.Enabled() {
			if err := a.redis.Trace(tr.Provider()); err != nil {
				return nil, err
			}
		}
	}
	if m != nil {
		a.kv = kv.Observed(a.kv, m.KVError)
	}
	cacheKey, err := cfg.Cache.EncryptionKey.Hex32()
	if err != nil {
		return nil, err
	}
	a.fpKey = derive.Key(cacheKey, "bff key fingerprint v1")
	a.tenants = tenant.NewRegistry(tenant.NewSnapshot(cfg.Tenants, a.fpKey))

	var keys [][]byte
	for _, k := range cfg.Session.Keys {
		b, err := k.Hex32()
		if err != nil {
			return nil, err
		}
		keys = append(keys, b)
	}
	if a.sessions, err = session.NewStore(a.kv, session.Options{
		Keys: keys, Secure: cfg.Session.IsSecure(),
		IdleTimeout: cfg.Session.IdleTimeout.D(), AbsoluteTimeout: cfg.Session.AbsoluteTimeout.D(),
		CacheTTL: cfg.Session.CacheTTL.D(),
	}); err != nil {
		return nil, err
	}
	lg := cfg.Login
	deviceKeys := make([][]byte, 0, len(keys))
	for _, k := range keys {
		deviceKeys = append(deviceKeys, derive.Key(k, "bff device cookie v1"))
	}
	if a.auth, err = auth.New(a.db, a.kv, auth.Limits{
		PerAccount: lg.MaxAttemptsPerAccount, PerDevice: lg.MaxAttemptsPerDevice, PerIP: lg.MaxAttemptsPerIP,
		GlobalFailures: lg.MaxFailuresGlobal, Concurrent: lg.MaxConcurrentHashes, Window: lg.Window.D(),
	}, auth.Keys{Hash: derive.Key(cacheKey, "bff personal data in kv keys v1"), Device: deviceKeys}); err != nil {
		return nil, err
	}
	ct := cfg.ClientToken
	upstream := basiq.New(nil, 10*time.Second).Identified(buildinfo.Read().UserAgent(), tr.Transport())
	if a.tokens, err = clienttoken.New(a.kv, upstream, a.db, log, clienttoken.Options{
		RefreshAfter: ct.RefreshAfter.D(), MinRemaining: ct.MinRemaining.D(), Deadline: ct.Deadline.D(),
		L1TTL: ct.L1TTL.D(), EncryptionKey: cacheKey, Metrics: m, MintBudget: ct.MintBudget,
	}); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *app) close() {
	if a.tokens != nil {
		a.tokens.Close()
	}
	if a.kv != nil {
		a.kv.Close()
	}
	if a.db != nil {
		a.db.Close()
	}
}

// newLogger returns the server's logger, where the public handler writes its request lines
// (nil unless logs are JSON and buffered) and the function that writes out what it has
// buffered and stops its writer (log.buffer_size, log.flush_interval). With a buffer, requests
// never wait on a slow log reader; see package logsink for what is dropped when it cannot keep
// up.
func newLogger(cfg *config.Config, w io.Writer, m *metrics.Metrics) (*slog.Logger, *httpapi.RequestLines, func()) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	text := cfg.Log.Format == "text"
	handler := func(w io.Writer) slog.Handler {
		if text {
			return slog.NewTextHandler(w, opts)
		}
		return slog.NewJSONHandler(w, opts)
	}
	if cfg.Log.Buffer() == 0 {
		return slog.New(tracing.LogHandler(httpapi.LogHandler(handler(w)))), nil, func() {}
	}
	var log *slog.Logger
	sink := logsink.New(w, logsink.Options{
		Size:       cfg.Log.Buffer(),
		FlushEvery: cfg.Log.FlushInterval.D(),
		Dropped:    func(c logsink.Class) { m.LogDropped(c.String()) },
		Report: func(routine, priority int) {
			log.Error("log lines dropped: the log reader is slower than the traffic", "alert", true,
				"routine", routine, "priority", priority)
		},
	})
	routine, priority := sink.Writer(logsink.Routine), sink.Writer(logsink.Priority)
	h := logsink.Handler(handler(routine), handler(priority))
	log = slog.New(tracing.LogHandler(httpapi.LogHandler(h)))
	var lines *httpapi.RequestLines
	if !text {
		lines = &httpapi.RequestLines{Routine: routine, Priority: priority}
	}
	return log, lines, func() { _ = sink.Close() }
}

// prefixes parses trusted_proxies (CIDRs or single addresses), already validated by config.
func prefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %q: %w", s, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// demoConfig builds the demo configuration. Its keys are random per start: sessions do not
// outlive the process anyway, since demo mode keeps them in memory.
func demoConfig(emulatorURL string, getenv func(string) string) (*config.Config, error) {
	sk, ck := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(sk); err != nil {
		return nil, err
	}
	if _, err := rand.Read(ck); err != nil {
		return nil, err
	}
	dataDir := "data"
	if d := getenv("BFF_DEMO_DATA_DIR"); d != "" {
		dataDir = d
	}
	cfg := config.Demo(dataDir, emulatorURL, emulator.DemoAPIKey, hex.EncodeToString(sk), hex.EncodeToString(ck))
	// Demo mode stays on loopback: BFF_LISTEN may move the port, never the interface.
	for _, o := range []struct {
		env string
		dst *string
	}{{"BFF_LISTEN", &cfg.Listen}, {"BFF_ADMIN_LISTEN", &cfg.AdminListen}} {
		v := getenv(o.env)
		if v == "" {
			continue
		}
		host, _, err := net.SplitHostPort(v)
		if err != nil || (host != "127.0.0.1" && host != "localhost" && host != "::1") {
			return nil, fmt.Errorf("demo mode listens on loopback only: %s=%q", o.env, v)
		}
		*o.dst = v
	}
	// An SPA on a dev server (another loopback port) calls the demo with credentials.
	origins, err := config.DemoOrigins(getenv("BFF_DEMO_ORIGINS"))
	if err != nil {
		return nil, err
	}
	cfg.CORS.AllowedOrigins = append(cfg.CORS.AllowedOrigins, origins...)
	if err := os.MkdirAll(filepath.Clean(dataDir), 0o700); err != nil {
		return nil, fmt.Errorf("demo data dir: %w", err)
	}
	return cfg, nil
}

func seedDemo(ctx context.Context, db *store.DB) error {
	_, err := db.UserByEmail(ctx, "demo", demoEmail)
	if err == nil {
		return nil
	}
	if !errors.Is(err, apperr.NotFound) {
		return err
	}
	hash, err := auth.HashPassword(demoPassword)
	if err != nil {
		return err
	}
	if _, err := db.CreateUser(ctx, "demo", demoEmail, hash); err != nil && !errors.Is(err, apperr.Conflict) {
		return fmt.Errorf("seed demo user: %w", err)
	}
	return nil
}

func printDemoBanner(w io.Writer, publicURL, adminURL, emuURL string) {
	line := strings.Repeat("=", 72)
	fmt.Fprintf(w, `%s
  DEMO MODE — not for production
  No config given: SQLite under data/, an in-process store (single replica)
  and the built-in Basiq emulator instead of Basiq. Loopback only.

  Open      %s
  Log in    %s / %s   (tenant "demo", Basiq API 3.0)
  Emulator  %s  (the demo API key works only there)
  Dev SPA   BFF_DEMO_ORIGINS=http://127.0.0.1:5173 admits a dev server's origin
  Admin     %s/healthz  %s/metrics
%s
`, line, publicURL, demoEmail, demoPassword, emuURL, adminURL, adminURL, line)
}
