package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
	"github.com/basiq-bff/bff/server/internal/store/storetest"
	"github.com/basiq-bff/bff/server/internal/testenv"
)

// stack is a test deployment: the Basiq emulator, a config file, a database and a kv store.
// With BFF_TEST_DATABASE_URL and BFF_TEST_REDIS_URL set it uses a fresh Postgres schema and a
// fresh Redis prefix shared by every replica started from it; without them, a SQLite file and
// the in-process store of a single replica (single_replica: true), so the HTTP contract is
// tested on every `go test`. Tests that need what only a shared Redis gives (two replicas, the
// keys themselves) say so with needRedis.
type stack struct {
	t        testing.TB
	emu      *emulator.Emulator
	emuURL   string
	dir      string
	cfgPath  string
	env      map[string]string
	keys     map[string]string // tenant key env var -> API key
	dbURL    string
	redisURL string
	prefix   string
	cors     []string // cors.allowed_origins; nil: http://spa.example.test
	// betaKeys are the beta tenant's api_keys entries as YAML flow mappings; nil: BETA_KEY.
	betaKeys []string
	// withoutAcme leaves the acme tenant out of the config.
	withoutAcme bool
	extra       string // stackOptions.extra, kept for rewrites
	// discardLogs sends replicas' logs to io.Discard (benchmarks, load tests).
	discardLogs bool
	cacheTTL    string // session.cache_ttl; empty: the default
	logins      map[string]string
	// bufferedLogs keeps the shipped log buffer (see stackOptions.bufferedLogs).
	bufferedLogs bool
	// logTo, when set, receives replicas' logs instead of r.logs (see stackOptions.logTo).
	logTo io.Writer
	// started counts the replicas started; on the in-process store only the first may run.
	started int
}

// stackOptions shape the config written for a stack.
type stackOptions struct {
	extra string // YAML appended at top level (e.g. client_token: ...)
	emu   emulator.Options
	cors  []string // cors.allowed_origins; nil: [http://spa.example.test]
	// discardLogs sends replicas' logs to io.Discard instead of a buffer: under a benchmark the
	// buffer would grow with every request and its lock would be measured too. The level
	// stays as configured, so the cost of formatting each line is still paid.
	discardLogs bool
	// redisURL replaces BFF_TEST_REDIS_URL's Redis with a throwaway deployment (such as
	// kvtest.StartSentinel's), whose keys need no cleanup.
	redisURL string
	// redisQuery is appended to the Redis URL as go-redis query options, for tests whose
	// subject is not Redis latency (e.g. "read_timeout=5s&pool_timeout=5s": a thousand
	// concurrent requests on a loaded 2-core machine under -race queue longer than the
	// production defaults allow, and that is not what those tests measure).
	redisQuery string
	cacheTTL   string // session.cache_ttl; empty: the default
	// logins are tenants' login: blocks by tenant id, as YAML indented 4 spaces.
	logins map[string]string
	// bufferedLogs keeps the shipped log buffer. Otherwise a stack whose logs are kept sets
	// log.buffer_size 0, so that a line is in r.logs as soon as the request that logged it
	// has been answered; benchmarks and load tests (discardLogs) always run as shipped.
	bufferedLogs bool
	// logTo, when set, receives replicas' logs (a file, a pipe) with the log buffer as shipped;
	// r.logs stays empty.
	logTo io.Writer
}

func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	redisURL, prefix := o.redisURL, "bfftest:"
	if redisURL == "" && haveRedis() {
		redisURL = kvtest.RedisURL(t)
		prefix = kvtest.Prefix(t, redisURL)
	}
	if o.redisQuery != "" && redisURL != "" {
		sep := "?"
		if strings.Contains(redisURL, "?") {
			sep = "&"
		}
		redisURL += sep + o.redisQuery
	}
	dir := t.TempDir()
	dbURL := "sqlite:" + filepath.Join(dir, "bff.db")
	if havePostgres() {
		dbURL = storetest.PostgresURL(t)
	}
	s := &stack{
		t:           t,
		dir:         dir,
		redisURL:    redisURL,
		prefix:      prefix,
		dbURL:       dbURL,
		keys:        map[string]string{"ACME_KEY": emulator.GenerateKey(), "ACME_KEY_OLD": emulator.GenerateKey(), "BETA_KEY": emulator.GenerateKey()},
		cors:        o.cors,
		discardLogs: o.discardLogs,
		cacheTTL:    o.cacheTTL,
		logins:      o.logins,
	}
	s.bufferedLogs = o.bufferedLogs || o.discardLogs || o.logTo != nil
	s.logTo = o.logTo
	s.emu = emulator.New(o.emu)
	srv := httptest.NewServer(s.emu)
	t.Cleanup(srv.Close)
	s.emuURL = srv.URL
	for _, k := range s.keys {
		s.emu.AddKey(k, emulator.KeyOptions{})
	}
	s.env = map[string]string{"BFF_CONFIG": filepath.Join(s.dir, "bff.yaml")}
	for k, v := range s.keys {
		s.env[k] = v
	}
	s.cfgPath = s.env["BFF_CONFIG"]
	s.extra = o.extra
	s.writeConfig(o.extra)
	return s
}

func randomHex(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// writeConfig writes two tenants: acme on API 3.0 and beta on API 2.0.
func (s *stack) writeConfig(extra string) {
	s.t.Helper()
	// Most tests send far more than a person would: lift the per-session limit unless the
	// test sets client_token.rate_limit itself.
	if !strings.Contains(extra, "rate_limit:") {
		if i := strings.Index(extra, "client_token:\n"); i >= 0 {
			i += len("client_token:\n")
			extra = extra[:i] + "  rate_limit: 1000000\n" + extra[i:]
		} else {
			extra += "\nclient_token:\n  rate_limit: 1000000\n"
		}
	}
	// A stopped replica drains for shutdown.drain first; tests stop hundreds of replicas and
	// only the drain test waits for it.
	if !strings.Contains(extra, "shutdown:") {
		extra += "\nshutdown:\n  drain: 0s\n"
	}
	if !s.bufferedLogs {
		extra += "\nlog:\n  buffer_size: 0\n"
	}
	if s.env["SESSION_KEY"] == "" {
		s.env["SESSION_KEY"], s.env["CACHE_KEY"] = randomHex(s.t), randomHex(s.t)
	}
	cors := []string{"http://spa.example.test"}
	if s.cors != nil {
		cors = s.cors
	}
	corsYAML, _ := json.Marshal(cors) // a JSON array is a YAML flow sequence
	if s.redisURL == "" {
		extra += "\nsingle_replica: true\n"
	}
	var session string
	if s.cacheTTL != "" {
		session = "\n  cache_ttl: " + s.cacheTTL
	}
	betaKeys := s.betaKeys
	if betaKeys == nil {
		betaKeys = []string{"{id: beta-1, env: BETA_KEY}"}
	}
	acme := fmt.Sprintf(`  - id: acme
    name: Acme Lending
    basiq:
      base_url: %[1]s
      version: "3.0"
      consent_url: %[1]s/home
      api_keys:
        - {id: acme-1, env: ACME_KEY}
%[2]s`, s.emuURL, s.logins["acme"])
	if s.withoutAcme {
		acme = ""
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
public_origin: http://app.localhost
database_url: %q
redis_url: %q
redis_prefix: %q
session:
  secure: false
  keys: [{env: SESSION_KEY}]%[9]s
cache:
  encryption_key: {env: CACHE_KEY}
cors:
  allowed_origins: %[6]s
tenants:
%[7]s  - id: beta
    name: Beta Credit
    basiq:
      base_url: %[4]s
      version: "2.0"
      api_keys:
        - %[8]s
%[10]s%[5]s`, s.dbURL, s.redisURL, s.prefix, s.emuURL, extra, corsYAML, acme, strings.Join(betaKeys, "\n        - "), session, s.logins["beta"])
	// Written whole and renamed into place, as deployment tools do, so a watching replica
	// never reads half a file.
	tmp := s.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, s.cfgPath); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) getenv(k string) string { return s.env[k] }

// cli runs one command to completion.
func (s *stack) cli(stdin string, args ...string) (string, error) {
	s.t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"server"}, args...), s.getenv, strings.NewReader(stdin), &out, &errOut)
	if err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

func (s *stack) addUser(tenant, email, password string) {
	s.t.Helper()
	if out, err := s.cli(password+"\n", "users", "add", "--tenant", tenant, "--email", email); err != nil {
		s.t.Fatalf("users add %s/%s: %v\n%s", tenant, email, err, out)
	}
}

// replica is one running BFF process (in-process, through run).
type replica struct {
	url, admin string
	logs       *testenv.Buffer // tests read them to prove nothing secret is logged
	stop       context.CancelFunc
	done       chan error
}

// needRedis skips the test unless the stack's replicas share a Redis: the test runs more than
// one replica, or reads the keys themselves.
func (s *stack) needRedis(why string) {
	s.t.Helper()
	s.needRedisFor(s.t, why)
}

// needRedisFor is needRedis for t, a subtest of the stack's test.
func (s *stack) needRedisFor(t testing.TB, why string) {
	t.Helper()
	if s.redisURL == "" {
		skipFor(t, skipNoRedis, why)
	}
}

// start runs a replica with s's config until the test ends. On the in-process store a second
// replica would not share the first one's sessions and tokens, so the test skips there.
func (s *stack) start() *replica {
	s.t.Helper()
	if s.started++; s.started > 1 {
		s.needRedis("a second replica")
	}
	if s.logTo != nil {
		return startReplicaTo(s.t, s.getenv, s.logTo)
	}
	return startReplica(s.t, s.getenv, s.discardLogs)
}

// replicas starts n replicas sharing the stack's Redis. On the in-process store it starts one
// and returns it n times: the test still checks the single-replica contract, and what only a
// fleet adds is tested when BFF_TEST_REDIS_URL is set.
func (s *stack) replicas(n int) []*replica {
	s.t.Helper()
	rs := make([]*replica, n)
	for i := range rs {
		if i > 0 && s.redisURL == "" {
			rs[i] = rs[0]
			continue
		}
		rs[i] = s.start()
	}
	if n > 1 && s.redisURL == "" {
		s.t.Logf("one replica in place of %d: the in-process store is not shared", n)
	}
	return rs
}

func startRun(t testing.TB, getenv func(string) string) *replica {
	t.Helper()
	return startReplica(t, getenv, false)
}

// startReplica runs a replica until the test ends; with discardLogs its logs go to io.Discard
// and r.logs stays empty.
func startReplica(t testing.TB, getenv func(string) string, discardLogs bool) *replica {
	t.Helper()
	if discardLogs {
		return startReplicaTo(t, getenv, io.Discard)
	}
	return startReplicaTo(t, getenv, nil)
}

// startReplicaTo is startReplica with the logs going to w (nil: r.logs).
func startReplicaTo(t testing.TB, getenv func(string) string, w io.Writer) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &replica{logs: &testenv.Buffer{}, stop: cancel, done: make(chan error, 1)}
	var logs io.Writer = r.logs
	if w != nil {
		logs = w
	}
	go func() {
		err := run(ctx, []string{"server"}, getenv, strings.NewReader(""), pw, logs)
		pw.CloseWithError(io.EOF)
		r.done <- err
	}()
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var pub, adm string
			if n, _ := fmt.Sscanf(sc.Text(), "listening on %s (admin %s", &pub, &adm); n == 2 {
				r.url, r.admin = pub, strings.TrimSuffix(adm, ")")
				ready <- nil
				break
			}
		}
		io.Copy(io.Discard, pr)
		ready <- fmt.Errorf("server exited before listening")
	}()
	select {
	case err := <-ready:
		if err != nil {
			cancel()
			t.Fatalf("start: %v: %v\n%s", err, <-r.done, r.logs)
		}
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("start: timed out\n%s", r.logs)
	}
	t.Cleanup(func() {
		r.stop()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("server stopped with error: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("server did not stop within 15s")
		}
	})
	return r
}

// client is a browser stand-in: a cookie jar and the SPA's headers. Every response it gets is
// checked against the contract (api/openapi.yaml); a mismatch fails the test.
type client struct {
	t    testing.TB
	base string
	http *http.Client
}

func newClient(t testing.TB, base string) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	check := contractTransport{t: t, c: loadContract(t), next: http.DefaultTransport}
	return &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: check,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// response is a finished exchange, body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errorCode returns the code of an error body, failing the test if the body is not one.
func (r response) errorCode(t testing.TB) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("status %d: not an error body: %q", r.status, r.body)
	}
	return e.Error.Code
}

func (c *client) do(method, path string, body string, header map[string]string) response {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

var spaHeaders = map[string]string{"X-CSRF": "1", "Content-Type": "application/json"}

func (c *client) login(tenant, email, password string) response {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"tenant": tenant, "email": email, "password": password})
	return c.do("POST", "/auth/login", string(b), spaHeaders)
}

func (c *client) mustLogin(tenant, email, password string) {
	c.t.Helper()
	if r := c.login(tenant, email, password); r.status != 200 {
		c.t.Fatalf("login %s: %d %s", email, r.status, r.body)
	}
}

// tokenResponse is GET /client-token's body.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (c *client) token() (tokenResponse, response) {
	c.t.Helper()
	r := c.do("GET", "/client-token", "", map[string]string{"X-CSRF": "1"})
	var tr tokenResponse
	if r.status == 200 {
		r.json(c.t, &tr)
	}
	return tr, r
}

func (c *client) mustToken() tokenResponse {
	c.t.Helper()
	tr, r := c.token()
	if r.status != 200 {
		c.t.Fatalf("client-token: %d %s", r.status, r.body)
	}
	return tr
}

type meResponse struct {
	User struct {
		ID          int64  `json:"id"`
		Email       string `json:"email"`
		Tenant      string `json:"tenant"`
		TenantName  string `json:"tenant_name"`
		BasiqUserID string `json:"basiq_user_id"`
	} `json:"user"`
	Basiq struct {
		APIURL     string `json:"api_url"`
		ConsentURL string `json:"consent_url"`
		Version    string `json:"version"`
	} `json:"basiq"`
}

func (c *client) me() meResponse {
	c.t.Helper()
	r := c.do("GET", "/auth/me", "", nil)
	if r.status != 200 {
		c.t.Fatalf("me: %d %s", r.status, r.body)
	}
	var m meResponse
	r.json(c.t, &m)
	return m
}

func mustURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
