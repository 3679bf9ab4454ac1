package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
)

const testPassword = "correct horse battery staple"

// TestClientTokenTwoTenants is the core flow on Postgres, Redis and the emulator: a 3.0 tenant
// whose tokens are bound to each person's Basiq user, and a 2.0 tenant whose people share one
// unbound token. No token is ever minted with another tenant's key.
func TestClientTokenTwoTenants(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.addUser("acme", "alice@acme.test", testPassword)
	s.addUser("acme", "bob@acme.test", testPassword)
	s.addUser("beta", "carol@beta.test", testPassword)
	s.addUser("beta", "dave@beta.test", testPassword)
	r := s.start()

	alice := newClient(t, r.url)
	alice.mustLogin("acme", "alice@acme.test", testPassword)
	tok, info := checkBoundToken(t, s, alice)

	checkServedFromCache(t, s, alice, tok)

	bob := newClient(t, r.url)
	bob.mustLogin("acme", "bob@acme.test", testPassword)
	bobTok := bob.mustToken()
	bobInfo, _ := s.emu.Inspect(bobTok.AccessToken)
	if bobTok.AccessToken == tok.AccessToken || bobInfo.UserID == info.UserID || bobInfo.UserID != bob.me().User.BasiqUserID {
		t.Errorf("bob's token must be his own: bound to %q (alice %q)", bobInfo.UserID, info.UserID)
	}

	checkSharedTenantToken(t, s, r)

	checkMintKeys(t, s, info.UserID, bobInfo.UserID)

	if tenants := alice.do("GET", "/auth/tenants", "", map[string]string{"X-CSRF": "1"}); strings.Contains(string(tenants.body), "demo") {
		t.Errorf("a configured deployment calls itself demo: %s", tenants.body)
	}

	checkTokenMetrics(t, r)

	t.Run("the cache keys hold every mint parameter, under the configured prefix", func(t *testing.T) {
		s.needRedisFor(t, "reads the token keys in Redis")
		keys := strings.Join(kvtest.Keys(t, s.redisURL, s.prefix+"tok:*"), "\n")
		for _, want := range []string{
			s.prefix + "tok:acme:acme-1:", ":CLIENT_ACCESS:" + info.UserID,
			s.prefix + "tok:beta:beta-1:", ":CLIENT_ACCESS:-",
		} {
			if !strings.Contains(keys, want) {
				t.Errorf("Redis keys lack %q:\n%s", want, keys)
			}
		}
	})
}

// checkBoundToken fetches alice's first token and checks it: a Bearer token of acme's key,
// scope and version, bound to her Basiq user, with the Basiq settings her /auth/me reports.
func checkBoundToken(t *testing.T, s *stack, alice *client) (tokenResponse, emulator.TokenInfo) {
	t.Helper()
	tok := alice.mustToken()
	if tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 || tok.ExpiresIn > 3600 {
		t.Fatalf("token = %+v, want Bearer with 0 < expires_in <= 3600", tok)
	}
	me := alice.me()
	info, ok := s.emu.Inspect(tok.AccessToken)
	if !ok {
		t.Fatal("the emulator did not mint alice's token")
	}
	if info.Key != s.keys["ACME_KEY"] || info.Scope != "CLIENT_ACCESS" || info.Version != "3.0" {
		t.Errorf("alice's token: key is acme's = %v, scope %s, version %s", info.Key == s.keys["ACME_KEY"], info.Scope, info.Version)
	}
	if me.User.BasiqUserID == "" || info.UserID != me.User.BasiqUserID {
		t.Errorf("alice's token is bound to %q, her Basiq user is %q", info.UserID, me.User.BasiqUserID)
	}
	if me.Basiq.Version != "3.0" || me.Basiq.APIURL != s.emuURL || me.Basiq.ConsentURL != s.emuURL+"/home" {
		t.Errorf("me.basiq = %+v", me.Basiq)
	}
	return tok, info
}

// checkServedFromCache: a second request gets the same token, no younger, without calling
// Basiq's /token.
func checkServedFromCache(t *testing.T, s *stack, alice *client, tok tokenResponse) {
	t.Helper()
	calls := s.emu.TokenCalls()
	again := alice.mustToken()
	if again.AccessToken != tok.AccessToken {
		t.Error("a second request got a different token")
	}
	if again.ExpiresIn > tok.ExpiresIn {
		t.Errorf("expires_in grew from %d to %d", tok.ExpiresIn, again.ExpiresIn)
	}
	if got := s.emu.TokenCalls(); got != calls {
		t.Errorf("the second request called /token: %d calls, want %d", got, calls)
	}
}

// checkSharedTenantToken: the two people of the 2.0 tenant beta share one unbound token of
// beta's key, and each still has a Basiq user to create connections for.
func checkSharedTenantToken(t *testing.T, s *stack, r *replica) {
	t.Helper()
	carol, dave := newClient(t, r.url), newClient(t, r.url)
	carol.mustLogin("beta", "carol@beta.test", testPassword)
	dave.mustLogin("beta", "dave@beta.test", testPassword)
	ct, dt := carol.mustToken(), dave.mustToken()
	if ct.AccessToken != dt.AccessToken {
		t.Error("two users of the 2.0 tenant got different tokens; want one per tenant")
	}
	cInfo, _ := s.emu.Inspect(ct.AccessToken)
	if cInfo.Key != s.keys["BETA_KEY"] || cInfo.UserID != "" || cInfo.Version != "2.0" {
		t.Errorf("beta token: key is beta's = %v, bound to %q, version %s", cInfo.Key == s.keys["BETA_KEY"], cInfo.UserID, cInfo.Version)
	}
	if carol.me().User.BasiqUserID == "" {
		t.Error("a 2.0 user has no Basiq user to create connections for")
	}
}

// checkMintKeys: every CLIENT_ACCESS mint used the minting tenant's own key: one for beta,
// and one with acme's key (none with beta's) for each acme Basiq user.
func checkMintKeys(t *testing.T, s *stack, acmeUsers ...string) {
	t.Helper()
	// Every CLIENT_ACCESS mint used the minting tenant's own key.
	if n := s.emu.Minted(s.keys["BETA_KEY"], "CLIENT_ACCESS", ""); n != 1 {
		t.Errorf("beta client mints = %d, want 1", n)
	}
	for _, who := range acmeUsers {
		if n := s.emu.Minted(s.keys["BETA_KEY"], "CLIENT_ACCESS", who); n != 0 {
			t.Errorf("an acme user's token was minted with beta's key")
		}
		if n := s.emu.Minted(s.keys["ACME_KEY"], "CLIENT_ACCESS", who); n != 1 {
			t.Errorf("acme mints for %s = %d, want 1", who, n)
		}
	}
}

// checkTokenMetrics: the counters of tokens served, Basiq calls, requests and sessions moved.
func checkTokenMetrics(t *testing.T, r *replica) {
	t.Helper()
	// The counters moved.
	scrape := newClient(t, r.admin).do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`bff_client_tokens_served_total{key_id="acme-1",source="upstream",tenant="acme"}`,
		`bff_client_tokens_served_total{key_id="acme-1",source="l1",tenant="acme"}`,
		`bff_upstream_calls_total{endpoint="POST /token",key_id="beta-1",outcome="ok",tenant="beta"}`,
		`bff_upstream_calls_total{endpoint="POST /users",key_id="acme-1",outcome="ok",tenant="acme"} 2`,
		`bff_http_requests_total{method="GET",route="/client-token",status="200"}`,
		`bff_sessions_total{event="created"} 4`,
	} {
		if !strings.Contains(string(scrape.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestConcurrentFirstRequestsCreateOneBasiqUser: Basiq does not de-duplicate users, so 50
// simultaneous first requests of one person on two replicas must create exactly one.
func TestConcurrentFirstRequestsCreateOneBasiqUser(t *testing.T) {
	s := newStack(t, stackOptions{extra: "client_token:\n  deadline: 15s\n"})
	s.addUser("acme", "erin@acme.test", testPassword)
	rs := s.replicas(2)
	r1, r2 := rs[0], rs[1]
	s.emu.SetLatency(50 * time.Millisecond)

	c := newClient(t, r1.url)
	c.mustLogin("acme", "erin@acme.test", testPassword)
	other := newClient(t, r2.url)
	other.http.Jar = c.http.Jar // the same session, through the other replica
	u1, _ := http.NewRequest("GET", r1.url, nil)
	u2, _ := http.NewRequest("GET", r2.url, nil)
	other.http.Jar.SetCookies(u2.URL, c.http.Jar.Cookies(u1.URL))

	var wg sync.WaitGroup
	tokens := make([]string, 50)
	for i := range tokens {
		wg.Go(func() {
			cl := c
			if i%2 == 1 {
				cl = other
			}
			tr, resp := cl.token()
			if resp.status != 200 {
				t.Errorf("request %d: %d %s", i, resp.status, resp.body)
				return
			}
			tokens[i] = tr.AccessToken
		})
	}
	wg.Wait()
	if n := s.emu.UsersCreated(); n != 1 {
		t.Errorf("Basiq users created = %d, want 1", n)
	}
	for i, tok := range tokens {
		if tok != tokens[0] {
			t.Fatalf("request %d got a different token", i)
		}
	}
	info, _ := s.emu.Inspect(tokens[0])
	if n := s.emu.Minted(s.keys["ACME_KEY"], "CLIENT_ACCESS", info.UserID); n != 1 {
		t.Errorf("CLIENT_ACCESS mints = %d, want 1", n)
	}
}

// TestRefusals: every bad request gets a 4xx with the JSON error body, never a 5xx.
func TestRefusals(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.addUser("acme", "frank@acme.test", testPassword)
	r := s.start()
	authed := newClient(t, r.url)
	authed.mustLogin("acme", "frank@acme.test", testPassword)
	anon := newClient(t, r.url)
	csrf := map[string]string{"X-CSRF": "1"}
	login := func(body string) (string, string, string, map[string]string) {
		return "POST", "/auth/login", body, spaHeaders
	}

	tests := []struct {
		name   string
		c      *client
		method string
		path   string
		body   string
		header map[string]string
		status int
		code   string
	}{
		{"token without a session", anon, "GET", "/client-token", "", csrf, 401, "unauthenticated"},
		{"me without a session", anon, "GET", "/auth/me", "", nil, 401, "unauthenticated"},
		{"logout without a session", anon, "POST", "/auth/logout", "", csrf, 401, "unauthenticated"},
		{"token without X-CSRF", authed, "GET", "/client-token", "", nil, 403, "csrf_failed"},
		{"token with X-CSRF: 0", authed, "GET", "/client-token", "", map[string]string{"X-CSRF": "0"}, 403, "csrf_failed"},
		{"token from a foreign origin", authed, "GET", "/client-token", "", map[string]string{"X-CSRF": "1", "Origin": "http://evil.example"}, 403, "csrf_failed"},
		{"token with a foreign referer", authed, "GET", "/client-token", "", map[string]string{"X-CSRF": "1", "Referer": "http://evil.example/page"}, 403, "csrf_failed"},
		{"login without X-CSRF", anon, "POST", "/auth/login", `{"tenant":"acme","email":"a@b.c","password":"x"}`, map[string]string{"Content-Type": "application/json"}, 403, "csrf_failed"},
		{"cross-site fetch metadata", anon, "POST", "/auth/login", `{}`, map[string]string{"X-CSRF": "1", "Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403, "csrf_failed"},
		{"unknown tenant", nil, "", "", "", nil, 400, "invalid_request"},
		{"malformed JSON", nil, "", "", "", nil, 400, "invalid_request"},
		{"wrong content type", anon, "POST", "/auth/login", `{"tenant":"acme","email":"a@b.c","password":"x"}`, map[string]string{"X-CSRF": "1", "Content-Type": "text/plain"}, 400, "invalid_request"},
		{"oversized body", nil, "", "", "", nil, 400, "invalid_request"},
		{"unknown field", nil, "", "", "", nil, 400, "invalid_request"},
		{"duplicate key", nil, "", "", "", nil, 400, "invalid_request"},
		{"trailing data", nil, "", "", "", nil, 400, "invalid_request"},
		{"empty body", nil, "", "", "", nil, 400, "invalid_request"},
		{"array body", nil, "", "", "", nil, 400, "invalid_request"},
		{"wrong password", nil, "", "", "", nil, 401, "invalid_credentials"},
		{"unknown user", nil, "", "", "", nil, 401, "invalid_credentials"},
		{"unknown route", anon, "GET", "/no/such/page", "", nil, 404, "not_found"},
		{"wrong method", authed, "PUT", "/client-token", "", csrf, 405, "method_not_allowed"},
	}
	bodies := map[string]string{
		"unknown tenant": `{"tenant":"nope","email":"a@b.c","password":"x"}`,
		"malformed JSON": `{"tenant":"acme",`,
		"oversized body": `{"tenant":"acme","email":"a@b.c","password":"` + strings.Repeat("x", 20<<10) + `"}`,
		"unknown field":  `{"tenant":"acme","email":"a@b.c","password":"x","admin":true}`,
		"duplicate key":  `{"tenant":"acme","email":"a@b.c","password":"x","tenant":"beta"}`,
		"trailing data":  `{"tenant":"acme","email":"a@b.c","password":"x"} {}`,
		"empty body":     ``,
		"array body":     `[{"tenant":"acme"}]`,
		"wrong password": `{"tenant":"acme","email":"frank@acme.test","password":"not the password"}`,
		"unknown user":   `{"tenant":"acme","email":"nobody@acme.test","password":"whatever password"}`,
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, method, path, body, header := tc.c, tc.method, tc.path, tc.body, tc.header
			if b, ok := bodies[tc.name]; ok {
				c = anon
				method, path, body, header = login(b)
			}
			resp := c.do(method, path, body, header)
			if resp.status != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.status, tc.status, resp.body)
			}
			if got := resp.errorCode(t); got != tc.code {
				t.Errorf("code = %q, want %q", got, tc.code)
			}
			if resp.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-ID")
			}
		})
	}

	t.Run("CORS grants only the allowlist", func(t *testing.T) {
		pre := func(origin string) response {
			return anon.do("OPTIONS", "/client-token", "", map[string]string{
				"Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-csrf"})
		}
		good := pre("http://spa.example.test")
		if good.header.Get("Access-Control-Allow-Origin") != "http://spa.example.test" || good.header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("allowed origin: preflight headers %v", good.header)
		}
		bad := pre("http://evil.example")
		if v := bad.header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("foreign origin granted %q", v)
		}
		// And the allowed origin really can fetch a token with the cookie.
		resp := authed.do("GET", "/client-token", "", map[string]string{"X-CSRF": "1", "Origin": "http://spa.example.test"})
		if resp.status != 200 || resp.header.Get("Access-Control-Allow-Origin") != "http://spa.example.test" {
			t.Errorf("allowed origin: %d, ACAO %q", resp.status, resp.header.Get("Access-Control-Allow-Origin"))
		}
	})
}

// TestUpstreamFailuresMapToDesign drives the emulator's faults and checks the answer docs/architecture.md ("Failures") gives,
// then that the service recovers by itself once Basiq is healthy again.
func TestUpstreamFailuresMapToDesign(t *testing.T) {
	tests := []struct {
		name   string
		fault  emulator.Fault
		remove bool
		status int
		code   string
		retry  bool
	}{
		{"basiq 500", emulator.Fault{Status: 500, Endpoint: emulator.RouteToken}, false, 503, "upstream_unavailable", true},
		{"basiq 503", emulator.Fault{Status: 503, Endpoint: emulator.RouteToken}, false, 503, "upstream_unavailable", true},
		{"basiq 429", emulator.Fault{Status: 429, Endpoint: emulator.RouteToken}, false, 503, "upstream_unavailable", true},
		{"basiq 403 request-not-valid", emulator.Fault{Status: 403, Endpoint: emulator.RouteToken}, false, 503, "upstream_unavailable", true},
		{"basiq hangs", emulator.Fault{Hang: true, Endpoint: emulator.RouteToken}, false, 503, "upstream_unavailable", true},
		{"key deleted at basiq (404)", emulator.Fault{}, true, 502, "upstream_rejected", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, stackOptions{extra: "client_token:\n  deadline: 2s\n"})
			s.addUser("beta", "gina@beta.test", testPassword)
			r := s.start()
			c := newClient(t, r.url)
			c.mustLogin("beta", "gina@beta.test", testPassword)
			s.emu.SetFault(tc.fault)
			if tc.remove {
				s.emu.RemoveKey(s.keys["BETA_KEY"])
			}
			start := time.Now()
			_, resp := c.token()
			if took := time.Since(start); took > 3500*time.Millisecond {
				t.Errorf("answered after %v; the deadline is 2s", took)
			}
			if resp.status != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.status, tc.status, resp.body)
			}
			if got := resp.errorCode(t); got != tc.code {
				t.Errorf("code = %q, want %q", got, tc.code)
			}
			if tc.retry && resp.header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			if strings.Contains(tc.name, "429") || strings.Contains(tc.name, "request-not-valid") {
				// A throttle pauses the tenant's calls: no retry storm.
				calls := s.emu.TokenCalls()
				for range 5 {
					c.token()
				}
				if got := s.emu.TokenCalls(); got != calls {
					t.Errorf("/token called %d more times while throttled", got-calls)
				}
				return
			}
			s.emu.SetFault(emulator.Fault{})
			if tc.remove {
				s.emu.AddKey(s.keys["BETA_KEY"], emulator.KeyOptions{})
			}
			waitTokenRecovered(t, c)
		})
	}

	t.Run("a long outage opens the circuit", func(t *testing.T) {
		s := newStack(t, stackOptions{extra: "client_token:\n  deadline: 1s\n"})
		s.addUser("beta", "hal@beta.test", testPassword)
		r := s.start()
		c := newClient(t, r.url)
		c.mustLogin("beta", "hal@beta.test", testPassword)
		s.emu.SetFault(emulator.Fault{Status: 500, Endpoint: emulator.RouteToken})
		for range 3 {
			c.token()
		}
		calls := s.emu.TokenCalls()
		for range 10 {
			if _, resp := c.token(); resp.status != 503 || resp.header.Get("Retry-After") == "" {
				t.Fatalf("with the circuit open: %d %s", resp.status, resp.body)
			}
		}
		if got := s.emu.TokenCalls(); got != calls {
			t.Errorf("/token called %d times with the circuit open", got-calls)
		}
	})
}

// TestNoSecretsInLogsOrErrors runs successes and failures, then searches every log line and
// error body for API keys, tokens, passwords and session cookies.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	s := newStack(t, stackOptions{extra: "client_token:\n  l1_ttl: 0s\n"})
	s.addUser("acme", "hana@acme.test", testPassword)
	s.addUser("beta", "ivan@beta.test", testPassword)
	r := s.start()
	var secrets []string
	var errorBodies []string
	keyFailures := false // the removed key raised an ALERT line
	for _, tenant := range []struct{ id, email string }{{"acme", "hana@acme.test"}, {"beta", "ivan@beta.test"}} {
		c := newClient(t, r.url)
		if resp := c.login(tenant.id, tenant.email, "wrong password here"); resp.status != 401 {
			t.Fatalf("wrong password: %d", resp.status)
		} else {
			errorBodies = append(errorBodies, string(resp.body))
		}
		c.mustLogin(tenant.id, tenant.email, testPassword)
		for _, ck := range c.http.Jar.Cookies(mustURL(t, r.url)) {
			secrets = append(secrets, ck.Value)
		}
		tok := c.mustToken()
		secrets = append(secrets, tok.AccessToken)
		// Failures with the key in play: a deleted key and an outage. Dropping the cached
		// token so that the next request mints again needs the keys in Redis.
		t.Run(tenant.id+" key failures", func(t *testing.T) {
			s.needRedisFor(t, "drops the cached tokens in Redis")
			if err := kvtest.DeletePrefix(s.redisURL, s.prefix+"tok:"); err != nil {
				t.Fatal(err)
			}
			for _, k := range s.keys {
				s.emu.RemoveKey(k)
			}
			_, resp := c.token()
			errorBodies = append(errorBodies, string(resp.body))
			for _, k := range s.keys {
				s.emu.AddKey(k, emulator.KeyOptions{})
			}
			s.emu.SetFault(emulator.Fault{Status: 500})
			_, resp = c.token()
			errorBodies = append(errorBodies, string(resp.body))
			s.emu.SetFault(emulator.Fault{})
			keyFailures = true
		})
	}
	for _, k := range s.keys {
		secrets = append(secrets, k)
	}
	secrets = append(secrets, testPassword, "wrong password here", s.env["SESSION_KEY"], s.env["CACHE_KEY"])
	logs := r.logs.String()
	if !strings.Contains(logs, `"audit":true,"key_id":`) || keyFailures && !strings.Contains(logs, "ALERT") {
		t.Fatalf("the logs do not show the flow ran:\n%s", logs)
	}
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		if strings.Contains(logs, sec) {
			t.Errorf("a secret (%d chars, starting %.6q) appears in the logs", len(sec), sec)
		}
		for _, b := range errorBodies {
			if strings.Contains(b, sec) {
				t.Errorf("a secret appears in an error body: %s", b)
			}
		}
	}
}

// TestDemoMode is the fresh-clone experience: no config at all.
func TestDemoMode(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"BFF_LISTEN": "127.0.0.1:0", "BFF_ADMIN_LISTEN": "127.0.0.1:0", "BFF_DEMO_DATA_DIR": dir}
	r := startRun(t, func(k string) string { return env[k] })
	c := newClient(t, r.url)
	resp := c.do("POST", "/auth/login", `{"email":"demo@example.com","password":"demo-password"}`, spaHeaders)
	if resp.status != 200 {
		t.Fatalf("demo login: %d %s", resp.status, resp.body)
	}
	first, second := c.mustToken(), c.mustToken()
	if first.AccessToken != second.AccessToken || first.ExpiresIn <= 0 || first.ExpiresIn > 3600 {
		t.Errorf("tokens: %+v then %+v", first, second)
	}
	// Demo mode buffers its logs as shipped: the mint line is written within the flush
	// interval.
	n := 0
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n = strings.Count(r.logs.String(), "scope=CLIENT_ACCESS"); n > 0 || time.Now().After(deadline) {
			break
		}
	}
	if n != 1 {
		t.Errorf("CLIENT_ACCESS mints = %d, want 1", n)
	}
	tenants := c.do("GET", "/auth/tenants", "", map[string]string{"X-CSRF": "1"})
	if want := `{"tenants":[{"id":"demo","name":"Demo Lending","login":{"password":true}}],"demo":true,"demo_login":{"email":"demo@example.com","password":"demo-password"}}`; strings.TrimSpace(string(tenants.body)) != want {
		t.Errorf("GET /auth/tenants = %s, want demo mode and its account announced: %s", tenants.body, want)
	}
	if me := c.me(); me.User.TenantName != "Demo Lending" || me.User.Tenant != "demo" {
		t.Errorf("/auth/me user tenant = %q named %q, want demo named Demo Lending", me.User.Tenant, me.User.TenantName)
	}
	page := c.do("GET", "/", "", nil)
	if page.status != 200 || !strings.Contains(string(page.body), "<script type=\"module\"") {
		t.Errorf("GET / = %d", page.status)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp := newClient(t, r.admin).do("GET", p, "", nil)
		if resp.status != 200 {
			t.Errorf("%s = %d %s", p, resp.status, resp.body)
		}
	}
	if !strings.Contains(fmt.Sprint(r.url), "127.0.0.1") {
		t.Errorf("demo mode is not on loopback: %s", r.url)
	}
}

// sameSession returns a client for replica r that shares c's cookies.
func sameSession(t *testing.T, c *client, r *replica) *client {
	t.Helper()
	other := newClient(t, r.url)
	other.http.Jar.SetCookies(mustURL(t, r.url), c.http.Jar.Cookies(mustURL(t, c.base)))
	return other
}

// TestSessionsEndEverywhere: a logout on one replica, and `users disable` / `users passwd`
// from the CLI, end the session on every replica at once, although each replica keeps an
// in-process copy of the session for its hot path.
func TestSessionsEndEverywhere(t *testing.T) {
	s := newStack(t, stackOptions{extra: "client_token:\n  deadline: 10s\n"})
	s.addUser("acme", "kim@acme.test", testPassword)
	s.addUser("acme", "lee@acme.test", testPassword)
	r1, r2 := s.start(), s.start()
	waitEnded := func(c *client, what string) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for {
			_, resp := c.token()
			if resp.status == 401 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the other replica still serves the session: %d", what, resp.status)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	kim := newClient(t, r1.url)
	kim.mustLogin("acme", "kim@acme.test", testPassword)
	kim2 := sameSession(t, kim, r2)
	kim.mustToken()
	kim2.mustToken() // replica 2 now holds a copy of the session
	if resp := kim.do("POST", "/auth/logout", "", map[string]string{"X-CSRF": "1"}); resp.status != 204 {
		t.Fatalf("logout: %d %s", resp.status, resp.body)
	}
	waitEnded(kim2, "logout")

	lee := newClient(t, r1.url)
	lee.mustLogin("acme", "lee@acme.test", testPassword)
	lee2 := sameSession(t, lee, r2)
	lee.mustToken()
	lee2.mustToken()
	if out, err := s.cli("new password for lee\n", "users", "passwd", "--tenant", "acme", "--email", "lee@acme.test"); err != nil {
		t.Fatalf("users passwd: %v\n%s", err, out)
	}
	waitEnded(lee, "users passwd")
	waitEnded(lee2, "users passwd")
	if resp := lee.login("acme", "lee@acme.test", testPassword); resp.status != 401 {
		t.Errorf("the old password still works: %d", resp.status)
	}
	lee.mustLogin("acme", "lee@acme.test", "new password for lee")
	lee.mustToken()
	if out, err := s.cli("", "users", "disable", "--tenant", "acme", "--email", "lee@acme.test"); err != nil {
		t.Fatalf("users disable: %v\n%s", err, out)
	}
	waitEnded(lee, "users disable")
	if resp := lee.login("acme", "lee@acme.test", "new password for lee"); resp.status != 401 || resp.errorCode(t) != "invalid_credentials" {
		t.Errorf("a disabled user logged in: %d %s", resp.status, resp.body)
	}
}

// TestClientTokenLimits: the per-session limit holds across replicas, and the per-tenant mint
// budget refuses new mints while still serving what is cached.
func TestClientTokenLimits(t *testing.T) {
	s := newStack(t, stackOptions{extra: "client_token:\n  rate_limit: 5\n  mint_budget: 3\n  l1_ttl: 0s\n"})
	rs := []*replica{s.start(), s.start()}
	startEarlyInMinute()
	users := loginMany(t, s, rs, "beta", 2) // one token each: 1 client mint, 1 server mint
	a1, a2 := sameSession(t, users[0], rs[0]), sameSession(t, users[0], rs[1])
	// Replicas learn each other's counts when they flush theirs (every 250 ms).
	for range 2 { // with loginMany's, 3 on replica 1
		a1.mustToken()
	}
	time.Sleep(time.Second)
	a2.mustToken() // 4th
	time.Sleep(time.Second)
	a2.mustToken() // 5th: replica 2 now knows the fleet's count
	_, resp := a2.token()
	if resp.status != 429 || resp.errorCode(t) != "rate_limited" || resp.header.Get("Retry-After") == "" {
		t.Fatalf("6th request in a minute over two replicas: %d %s", resp.status, resp.body)
	}
	sameSession(t, users[1], rs[1]).mustToken() // another session is not affected

	// Budget 3: the two mints above plus one more; the next is refused.
	fresh := sameSession(t, users[1], rs[0])
	if err := kvtest.DeletePrefix(s.redisURL, s.prefix+"tok:"); err != nil {
		t.Fatal(err)
	}
	fresh.mustToken() // the third /token call
	calls := s.emu.TokenCalls()
	if err := kvtest.DeletePrefix(s.redisURL, s.prefix+"tok:"); err != nil {
		t.Fatal(err)
	}
	_, resp = fresh.token()
	if resp.status != 503 || resp.errorCode(t) != "upstream_unavailable" || resp.header.Get("Retry-After") == "" {
		t.Errorf("a mint past the budget: %d %s", resp.status, resp.body)
	}
	if got := s.emu.TokenCalls(); got != calls {
		t.Errorf("/token was called past the budget")
	}
}

// TestClientTokenLimitsOneReplica: on one replica, whatever the store, the per-session limit
// answers 429 with Retry-After past its count without touching other sessions, and the
// per-tenant mint budget refuses a new mint with 503 while still serving cached tokens.
// (TestClientTokenLimits adds what a fleet sharing Redis must also hold.)
func TestClientTokenLimitsOneReplica(t *testing.T) {
	t.Run("per-session limit", func(t *testing.T) {
		s := newStack(t, stackOptions{extra: "client_token:\n  rate_limit: 5\n"})
		r := s.start()
		startEarlyInMinute()
		users := loginMany(t, s, []*replica{r}, "beta", 2) // one request each
		for range 4 {
			users[0].mustToken()
		}
		_, resp := users[0].token()
		if resp.status != 429 || resp.errorCode(t) != "rate_limited" || resp.header.Get("Retry-After") == "" {
			t.Fatalf("6th request in a minute: %d %s", resp.status, resp.body)
		}
		users[1].mustToken() // another session is not affected
	})
	t.Run("mint budget", func(t *testing.T) {
		// Each 3.0 user's token is bound to their Basiq user: every new user needs a new mint.
		s := newStack(t, stackOptions{extra: "client_token:\n  mint_budget: 3\n  l1_ttl: 0s\n"})
		r := s.start()
		var served []*client
		for i := 0; ; i++ {
			if i > 3 {
				t.Fatalf("%d users served with a budget of 3 mints (%d /token calls)", i, s.emu.TokenCalls())
			}
			email := fmt.Sprintf("budget%d@acme.test", i)
			s.addUser("acme", email, testPassword)
			c := newClient(t, r.url)
			c.mustLogin("acme", email, testPassword)
			calls := s.emu.TokenCalls()
			_, resp := c.token()
			if resp.status == 200 {
				served = append(served, c)
				continue
			}
			if calls < 3 {
				t.Fatalf("refused after %d /token calls, budget 3: %d %s", calls, resp.status, resp.body)
			}
			if resp.status != 503 || resp.errorCode(t) != "upstream_unavailable" || resp.header.Get("Retry-After") == "" {
				t.Fatalf("a mint past the budget: %d %s", resp.status, resp.body)
			}
			if got := s.emu.TokenCalls(); got != calls {
				t.Errorf("/token was called past the budget (%d calls, then %d)", calls, got)
			}
			break
		}
		if len(served) == 0 {
			t.Fatal("nobody was served before the budget ran out")
		}
		t.Logf("%d users served with a budget of 3 mints, the next refused", len(served))
		for _, c := range served {
			c.mustToken() // cached tokens are still served
		}
	})
}

// startEarlyInMinute waits, if need be, until a new minute has just begun. The per-session
// limit counts in fixed one-minute windows: requests that straddle a window's end are two
// windows' worth, and a test expecting a refusal would rightly see it admitted.
func startEarlyInMinute() {
	if left := time.Minute - time.Duration(time.Now().UnixNano()%int64(time.Minute)); left < 20*time.Second {
		time.Sleep(left + 100*time.Millisecond)
	}
}

// waitTokenRecovered waits until c gets a token again after Basiq recovered. It happens by
// itself, but a call that hung may still hold the mint lock until its lease ends, and a
// loaded machine stretches that, so it allows a few seconds.
func waitTokenRecovered(t *testing.T, c *client) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, resp := c.token()
		if resp.status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered 15 s after Basiq was healthy again: %d %s", resp.status, resp.body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
