package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// oidcStack is a deployment whose acme tenant signs in through a test provider (password
// login kept) and whose beta tenant uses a provider that is down.
func oidcStack(t *testing.T, acmePassword bool, acmeOIDC ...string) (*stack, *testIdP, *replica) {
	t.Helper()
	idp := newTestIdP(t, "http://app.localhost/auth/oidc/callback")
	dead := httpDeadURL(t)
	s := newStack(t, stackOptions{logins: map[string]string{
		"acme": idp.loginYAML(acmePassword) + strings.Join(acmeOIDC, ""),
		"beta": "    login:\n      oidc: {issuer: '" + dead + "', client_id: bff, client_secret: {env: OIDC_SECRET}}\n",
	}})
	s.env["OIDC_SECRET"] = idpClientSecret
	s.writeConfig(s.extra)
	return s, idp, s.start()
}

// httpDeadURL is a loopback URL where nothing listens any more.
func httpDeadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// oidcStart asks the BFF to start a login and returns the provider URL it redirects to.
func oidcStart(t *testing.T, c *client, query string) string {
	t.Helper()
	r := c.do("GET", "/auth/oidc/start?"+query, "", nil)
	loc := r.header.Get("Location")
	if r.status != http.StatusFound || loc == "" || strings.HasPrefix(loc, "/") {
		t.Fatalf("start: %d %q %s", r.status, loc, r.body)
	}
	return loc
}

// callback delivers the provider's redirect to the BFF.
func (c *client) callback(u *url.URL) response {
	c.t.Helper()
	return c.do("GET", u.Path+"?"+u.RawQuery, "", nil)
}

// signIn runs the whole code flow for username and returns the BFF's answer to the callback.
func signIn(t *testing.T, idp *testIdP, c *client, username, returnTo string) response {
	t.Helper()
	return c.callback(idp.authorize(t, oidcStart(t, c, "tenant=acme&return_to="+url.QueryEscape(returnTo)), username))
}

func mustSignIn(t *testing.T, idp *testIdP, c *client, username string) {
	t.Helper()
	if r := signIn(t, idp, c, username, "/"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		t.Fatalf("sign in %s: %d %q %s", username, r.status, r.header.Get("Location"), r.body)
	}
}

// loginError returns the login_error of a redirect to the SPA, failing unless r is one.
func loginError(t *testing.T, r response) string {
	t.Helper()
	loc := r.header.Get("Location")
	u, err := url.Parse(loc)
	if r.status != http.StatusSeeOther || err != nil || u.Path != "/" || u.Host != "" {
		t.Fatalf("want a 303 to /?login_error=..., got %d %q %s", r.status, loc, r.body)
	}
	return u.Query().Get("login_error")
}

// oidcSignIn is what the steps of TestOIDCSignIn share: the stack, its provider and replica,
// and alice, signed in by the round trip.
type oidcSignIn struct {
	s     *stack
	idp   *testIdP
	r     *replica
	alice *client
}

func TestOIDCSignIn(t *testing.T) {
	s, idp, r := oidcStack(t, true)
	s.addUser("acme", "carol@acme.test", testPassword) // a local user the provider also knows
	f := &oidcSignIn{s: s, idp: idp, r: r}

	t.Run("tenants list their login methods", f.tenantsListLoginMethods)
	t.Run("round trip ends signed in with a client token", f.roundTrip)
	t.Run("second sign-in is the same user with a new session", f.secondSignIn)
	t.Run("a local user with the verified email is linked and keeps the password", f.linksVerifiedEmail)
	t.Run("an unverified email is not linked to a local user", f.refusesUnverifiedEmail)
	t.Run("return_to leaving the origin goes to /", f.returnToStaysHome)
	t.Run("a user disabled locally cannot sign in through the provider", f.disabledUser)
	t.Run("provider down: idp_unavailable, existing sessions keep working", f.providerDown)
}

// checkOIDCStart checks the answer to /auth/oidc/start: the provider's authorization URL with
// PKCE, state and nonce, and a pre-login cookie that keeps neither in clear. It returns that URL.
func checkOIDCStart(t *testing.T, idp *testIdP, start response) *url.URL {
	t.Helper()
	auth := mustURL(t, start.header.Get("Location"))
	q := auth.Query()
	if !strings.HasPrefix(auth.String(), idp.issuer+"/") || q.Get("client_id") != idpClientID || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" || q.Get("redirect_uri") != "http://app.localhost/auth/oidc/callback" ||
		q.Get("scope") != "openid email profile" {
		t.Errorf("authorization URL = %s", auth)
	}
	cookie := start.header.Get("Set-Cookie")
	for _, want := range []string{"bff-login=", "Path=/", "Max-Age=600", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("pre-login cookie %q lacks %q", cookie, want)
		}
	}
	for _, secret := range []string{q.Get("state"), q.Get("nonce")} {
		if strings.Contains(cookie, secret) {
			t.Errorf("the pre-login cookie shows the state or nonce in clear")
		}
	}
	return auth
}

// tenantsListLoginMethods: /auth/tenants names each tenant's password and provider logins.
func (f *oidcSignIn) tenantsListLoginMethods(t *testing.T) {
	resp := newClient(t, f.r.url).do("GET", "/auth/tenants", "", map[string]string{"X-CSRF": "1"})
	var body struct {
		Tenants []struct {
			ID    string
			Login struct {
				Password bool
				OIDC     *struct {
					DisplayName string `json:"display_name"`
					StartURL    string `json:"start_url"`
				}
			}
		}
	}
	resp.json(t, &body)
	if len(body.Tenants) != 2 || body.Tenants[0].ID != "acme" || !body.Tenants[0].Login.Password || body.Tenants[0].Login.OIDC == nil ||
		body.Tenants[0].Login.OIDC.DisplayName != "Test SSO" || body.Tenants[0].Login.OIDC.StartURL != "/auth/oidc/start?tenant=acme" {
		t.Errorf("tenants = %s", resp.body)
	}
}

// roundTrip: a sign-in through the provider ends signed in, with a client token, and logs no
// ID token. It signs alice in for the steps after it.
func (f *oidcSignIn) roundTrip(t *testing.T) {
	f.alice = newClient(t, f.r.url)
	start := f.alice.do("GET", "/auth/oidc/start?tenant=acme&return_to=%2Faccounts%3Ftab%3D1", "", nil)
	if start.status != http.StatusFound {
		t.Fatalf("start: %d %s", start.status, start.body)
	}
	auth := checkOIDCStart(t, f.idp, start)
	back := f.idp.authorize(t, auth.String(), "alice")
	began := time.Now()
	cb := f.alice.callback(back)
	t.Logf("callback (code exchange, ID token and userinfo, user created, session) took %v", time.Since(began))
	if cb.status != http.StatusSeeOther || cb.header.Get("Location") != "/accounts?tab=1" {
		t.Fatalf("callback: %d %q %s", cb.status, cb.header.Get("Location"), cb.body)
	}
	if sc := strings.Join(cb.header.Values("Set-Cookie"), "\n"); !strings.Contains(sc, "bff=") || !strings.Contains(sc, "bff-login=;") {
		t.Errorf("callback cookies = %q, want the session set and the pre-login cookie cleared", sc)
	}
	me := f.alice.me()
	if me.User.Email != "alice@acme.test" || me.User.Tenant != "acme" || me.User.BasiqUserID != "" {
		t.Errorf("me = %+v", me.User)
	}
	f.alice.mustToken()
	if me := f.alice.me(); me.User.BasiqUserID == "" {
		t.Error("the first token did not create the 3.0 Basiq user")
	}
	if strings.Contains(f.r.logs.String(), f.idp.idToken[len(f.idp.idToken)-1]) {
		t.Error("the ID token was logged")
	}
	if !slices.Contains(securityEvents(t, f.r.logs.String()), "login.succeeded/oidc") {
		t.Error("no login.succeeded/oidc security event")
	}
}

// secondSignIn: a second sign-in is the same user with a new session.
func (f *oidcSignIn) secondSignIn(t *testing.T) {
	again := newClient(t, f.r.url)
	mustSignIn(t, f.idp, again, "alice")
	if a, b := f.alice.me().User.ID, again.me().User.ID; a != b {
		t.Errorf("user ids %d and %d, want one user", a, b)
	}
	u := mustURL(t, f.r.url)
	if f.alice.http.Jar.Cookies(u)[0].Value == again.http.Jar.Cookies(u)[0].Value {
		t.Error("two sign-ins share a session id")
	}
}

// linksVerifiedEmail: a local user with the verified email is linked and keeps the password.
func (f *oidcSignIn) linksVerifiedEmail(t *testing.T) {
	c := newClient(t, f.r.url)
	mustSignIn(t, f.idp, c, "carol")
	pw := newClient(t, f.r.url)
	pw.mustLogin("acme", "carol@acme.test", testPassword)
	if a, b := c.me().User.ID, pw.me().User.ID; a != b {
		t.Errorf("provider user %d, password user %d: want the same user", a, b)
	}
	out, err := f.s.cli("", "users", "show", "--tenant", "acme", "--email", "carol@acme.test")
	if err != nil || !strings.Contains(out, "password") || !strings.Contains(out, f.idp.issuer) || !strings.Contains(out, "sub-carol") {
		t.Errorf("users show: %v\n%s", err, out)
	}
}

// refusesUnverifiedEmail: an unverified email is not linked to a local user.
func (f *oidcSignIn) refusesUnverifiedEmail(t *testing.T) {
	f.s.addUser("acme", "erin@acme.test", testPassword)
	f.idp.setTamper(func(c map[string]any) string {
		c["email"], c["email_verified"] = "erin@acme.test", false
		return "RS256"
	})
	defer f.idp.setTamper(nil)
	if code := loginError(t, signIn(t, f.idp, newClient(t, f.r.url), "bob", "/")); code != "account_conflict" {
		t.Errorf("login_error = %q, want account_conflict", code)
	}
	if !securityEvent(t, f.r.logs.String(), "account_conflict") {
		t.Error("no security event for account_conflict")
	}
}

// returnToStaysHome: a return_to that leaves the origin goes to /.
func (f *oidcSignIn) returnToStaysHome(t *testing.T) {
	for _, rt := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"} {
		c := newClient(t, f.r.url)
		if got := signIn(t, f.idp, c, "bob", rt); got.header.Get("Location") != "/" {
			t.Errorf("return_to %q: redirected to %q", rt, got.header.Get("Location"))
		}
	}
}

// disabledUser: a user disabled locally cannot sign in through the provider, and their
// session ends.
func (f *oidcSignIn) disabledUser(t *testing.T) {
	c := newClient(t, f.r.url)
	mustSignIn(t, f.idp, c, "dave")
	if out, err := f.s.cli("", "users", "disable", "--tenant", "acme", "--email", "dave@acme.test"); err != nil {
		t.Fatalf("disable: %v %s", err, out)
	}
	t.Run("its session ends", func(t *testing.T) {
		f.s.needRedisFor(t, "the command line reaches a replica's sessions only through Redis")
		if _, resp := c.token(); resp.status != http.StatusUnauthorized {
			t.Errorf("token after disable: %d", resp.status)
		}
	})
	if code := loginError(t, signIn(t, f.idp, newClient(t, f.r.url), "dave", "/")); code != "account_disabled" {
		t.Errorf("login_error = %q, want account_disabled", code)
	}
}

// providerDown: idp_unavailable, while existing sessions keep working.
func (f *oidcSignIn) providerDown(t *testing.T) {
	// beta's provider has been unreachable from the start.
	c := newClient(t, f.r.url)
	if code := loginError(t, c.do("GET", "/auth/oidc/start?tenant=beta", "", nil)); code != "idp_unavailable" {
		t.Errorf("start at a dead provider: login_error = %q", code)
	}
	// acme's goes down between the person's sign-in there and the callback.
	c = newClient(t, f.r.url)
	back := f.idp.authorize(t, oidcStart(t, c, "tenant=acme"), "bob")
	f.idp.down.Store(true)
	defer f.idp.down.Store(false)
	if code := loginError(t, c.callback(back)); code != "idp_unavailable" {
		t.Errorf("callback with the provider down: login_error = %q", code)
	}
	f.alice.mustToken()
	if me := f.alice.me(); me.User.Email != "alice@acme.test" {
		t.Errorf("me = %+v", me.User)
	}
}

// TestOIDCRefusals meets each check of the callback with an answer that fails only that
// check: each is refused with its own login_error, starts no session and is logged as a
// security event.
func TestOIDCRefusals(t *testing.T) {
	_, idp, r := oidcStack(t, true, "        allowed_email_domains: [acme.test]\n")
	cases := []struct {
		name   string
		code   string
		tamper func(claims map[string]any) string
		// run returns the BFF's answer to the bad callback, made by c.
		run func(t *testing.T, c *client) response
	}{
		{name: "replayed callback", code: "callback_replayed", run: func(t *testing.T, c *client) response {
			victim := newClient(t, r.url)
			back := idp.authorize(t, oidcStart(t, victim, "tenant=acme"), "bob")
			first := victim.callback(back)
			if first.status != http.StatusSeeOther || first.header.Get("Location") != "/" {
				t.Fatalf("first use: %d %q", first.status, first.header.Get("Location"))
			}
			return c.callback(back)
		}},
		{name: "replayed callback with a copy of the pre-login cookie", code: "callback_replayed", run: func(t *testing.T, c *client) response {
			victim := newClient(t, r.url)
			back := idp.authorize(t, oidcStart(t, victim, "tenant=acme"), "bob")
			saved := victim.http.Jar.Cookies(mustURL(t, r.url))
			victim.callback(back)
			c.http.Jar.SetCookies(mustURL(t, r.url), saved)
			return c.callback(back)
		}},
		{name: "swapped state", code: "state_mismatch", run: func(t *testing.T, c *client) response {
			oidcStart(t, c, "tenant=acme") // the victim's own login, in progress
			attacker := newClient(t, r.url)
			back := idp.authorize(t, oidcStart(t, attacker, "tenant=acme"), "bob")
			return c.callback(back) // the attacker's code and state, in the victim's browser
		}},
		{name: "callback without a login in progress", code: "login_expired", run: func(t *testing.T, c *client) response {
			return c.do("GET", "/auth/oidc/callback?code=abc&state=never-issued", "", nil)
		}},
		{name: "ID token for another client", code: "wrong_audience", tamper: func(c map[string]any) string {
			c["aud"] = []string{"other-client"}
			c["azp"] = "other-client"
			return "RS256"
		}},
		{name: "ID token also for another client", code: "wrong_audience", tamper: func(c map[string]any) string {
			c["aud"] = []string{idpClientID, "other-client"}
			c["azp"] = "other-client"
			return "RS256"
		}},
		{name: "expired ID token", code: "token_expired", tamper: func(c map[string]any) string {
			c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
			return "RS256"
		}},
		{name: "nonce mismatch", code: "nonce_mismatch", tamper: func(c map[string]any) string {
			c["nonce"] = "a-nonce-from-another-login"
			return "RS256"
		}},
		{name: "unsigned ID token (alg none)", code: "invalid_id_token", tamper: func(c map[string]any) string { return "none" }},
		{name: "ID token from another issuer", code: "invalid_id_token", tamper: func(c map[string]any) string {
			c["iss"] = "https://evil.example"
			return "RS256"
		}},
		{name: "email outside the allowed domains", code: "email_not_allowed", tamper: func(c map[string]any) string {
			c["email"], c["email_verified"] = "bob@elsewhere.test", true
			return "RS256"
		}},
		{name: "unverified email in an allowed domain", code: "email_not_allowed", tamper: func(c map[string]any) string {
			c["email"], c["email_verified"] = "bob@acme.test", false
			return "RS256"
		}},
		{name: "response from another issuer (mix-up)", code: "issuer_mismatch", run: func(t *testing.T, c *client) response {
			back := idp.authorize(t, oidcStart(t, c, "tenant=acme"), "bob")
			q := back.Query()
			q.Set("iss", "https://evil.example")
			back.RawQuery = q.Encode()
			return c.callback(back)
		}},
		{name: "provider refused the person", code: "idp_denied", run: func(t *testing.T, c *client) response {
			auth := mustURL(t, oidcStart(t, c, "tenant=acme"))
			return c.do("GET", "/auth/oidc/callback?error=access_denied&state="+url.QueryEscape(auth.Query().Get("state")), "", nil)
		}},
		{name: "code rejected by the provider", code: "code_exchange_failed", run: func(t *testing.T, c *client) response {
			auth := mustURL(t, oidcStart(t, c, "tenant=acme"))
			return c.do("GET", "/auth/oidc/callback?code=forged&state="+url.QueryEscape(auth.Query().Get("state")), "", nil)
		}},
		{name: "tenant without a provider", code: "oidc_not_configured", run: func(t *testing.T, c *client) response {
			return c.do("GET", "/auth/oidc/start?tenant=nosuch", "", nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, r.url)
			var resp response
			if tc.tamper != nil {
				idp.setTamper(tc.tamper)
				resp = signIn(t, idp, c, "bob", "/")
				idp.setTamper(nil)
			} else {
				resp = tc.run(t, c)
			}
			if code := loginError(t, resp); code != tc.code {
				t.Errorf("login_error = %q, want %q", code, tc.code)
			}
			if got := c.do("GET", "/auth/me", "", nil); got.status != http.StatusUnauthorized {
				t.Errorf("after a refused login /auth/me = %d, want 401", got.status)
			}
			if !securityEvent(t, r.logs.String(), tc.code) {
				t.Errorf("no security event with code %s in the log", tc.code)
			}
		})
	}
}

// securityEvent reports whether the JSON log holds a refused-login security event with code.
func securityEvent(t *testing.T, logs, code string) bool {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["security"] == true && rec["event"] == "login.failed" &&
			rec["method"] == "oidc" && rec["reason"] == code {
			return true
		}
	}
	return false
}

func TestOIDCPasswordOff(t *testing.T) {
	s, idp, r := oidcStack(t, false)
	s.addUser("acme", "erin@acme.test", testPassword)
	c := newClient(t, r.url)
	resp := c.login("acme", "erin@acme.test", testPassword)
	if resp.status != http.StatusForbidden || resp.errorCode(t) != "password_login_disabled" {
		t.Errorf("password login: %d %s, want 403 password_login_disabled", resp.status, resp.body)
	}
	if resp := c.login("acme", "nobody@acme.test", "whatever-password"); resp.status != http.StatusForbidden {
		t.Errorf("password login for an unknown user: %d, want 403 as well", resp.status)
	}
	if resp := c.login("beta", "x@beta.test", "whatever-password"); resp.status != http.StatusUnauthorized {
		t.Errorf("beta keeps password login: %d, want 401", resp.status)
	}
	mustSignIn(t, idp, c, "alice")
	c.mustToken()
}

// TestOIDCReload adds a provider to a running tenant by editing the config file: sign-in
// through it works without a restart.
func TestOIDCReload(t *testing.T) {
	idp := newTestIdP(t, "http://app.localhost/auth/oidc/callback")
	s := newStack(t, stackOptions{})
	s.env["OIDC_SECRET"] = idpClientSecret
	r := s.start()
	if code := loginError(t, newClient(t, r.url).do("GET", "/auth/oidc/start?tenant=acme", "", nil)); code != "oidc_not_configured" {
		t.Fatalf("before: login_error = %q", code)
	}
	s.logins = map[string]string{"acme": idp.loginYAML(true)}
	// The replica's file watch may not be set up yet when it starts answering: the file is
	// written again until a reload is seen.
	for deadline := time.Now().Add(20 * time.Second); counter(t, r, "bff_config_reloads_total", `result="applied"`) < 1; {
		if time.Now().After(deadline) {
			t.Fatalf("no reload applied\n%s", r.logs)
		}
		s.writeConfig(s.extra)
		time.Sleep(500 * time.Millisecond)
	}
	c := newClient(t, r.url)
	mustSignIn(t, idp, c, "alice")
	c.mustToken()
}

// TestOIDCPrivateKeyJWT signs in with private_key_jwt client authentication: the token
// request carries an assertion signed with the configured key instead of a secret.
func TestOIDCPrivateKeyJWT(t *testing.T) {
	pemKey := func() (string, any) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalECPrivateKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), &k.PublicKey
	}
	registered, public := pemKey()
	other, _ := pemKey()
	idp := newTestIdP(t, "http://app.localhost/auth/oidc/callback")
	idp.assertionKey = public
	login := strings.Replace(idp.loginYAML(true), "client_secret: {env: OIDC_SECRET}",
		"private_key: {env: OIDC_KEY}\n        private_key_id: bff-key-1", 1)
	s := newStack(t, stackOptions{logins: map[string]string{"acme": login}})
	s.env["OIDC_KEY"] = registered
	s.writeConfig(s.extra)
	r := s.start()

	c := newClient(t, r.url)
	mustSignIn(t, idp, c, "alice")
	c.mustToken()
	if n := idp.assertions.Load(); n != 1 {
		t.Errorf("the provider accepted %d client assertions, want 1", n)
	}
	if strings.Contains(r.logs.String(), "PRIVATE KEY") {
		t.Error("the private key was logged")
	}

	// The same deployment with a key the provider does not know.
	s2 := newStack(t, stackOptions{logins: map[string]string{"acme": login}})
	s2.env["OIDC_KEY"] = other
	s2.writeConfig(s2.extra)
	r2 := s2.start()
	if code := loginError(t, signIn(t, idp, newClient(t, r2.url), "alice", "/")); code != "code_exchange_failed" {
		t.Errorf("with an unknown key: login_error = %q, want code_exchange_failed", code)
	}
}
