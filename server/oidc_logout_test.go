package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// backchannel posts a logout token as the provider does.
func backchannel(t *testing.T, base, token string) response {
	t.Helper()
	return newClient(t, base).do("POST", "/auth/oidc/backchannel-logout", url.Values{"logout_token": {token}}.Encode(),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// TestOIDCBackchannelLogout ends sessions from the provider's side on two replicas sharing
// Redis: every replica answers 401 for them at once, and nobody else is signed out.
func TestOIDCBackchannelLogout(t *testing.T) {
	s, idp, r1 := oidcStack(t, true)
	r2 := r1 // the in-process store: one replica
	if s.redisURL != "" {
		r2 = s.start()
	}
	tokenStatus := func(c *client) int {
		_, resp := c.token()
		return resp.status
	}

	t.Run("by subject: every session of the person, on both replicas", func(t *testing.T) {
		a1, a2, b := newClient(t, r1.url), newClient(t, r2.url), newClient(t, r2.url)
		mustSignIn(t, idp, a1, "alice")
		mustSignIn(t, idp, a2, "alice")
		mustSignIn(t, idp, b, "bob")
		for _, c := range []*client{a1, a2, b} {
			c.mustToken()
		}
		began := time.Now()
		if resp := backchannel(t, r1.url, idp.logoutToken("sub-alice", "", nil)); resp.status != http.StatusOK {
			t.Fatalf("back-channel logout: %d %s", resp.status, resp.body)
		}
		answered := time.Since(began)
		if got := [2]int{tokenStatus(a1), tokenStatus(a2)}; got != [2]int{401, 401} {
			t.Errorf("alice's tokens on replicas 1 and 2 right after logout: %v, want 401 on both", got)
		}
		t.Logf("logout token answered in %v; both replicas answered 401 %v after it was sent", answered, time.Since(began))
		if got := tokenStatus(b); got != 200 {
			t.Errorf("bob's token: %d, want 200", got)
		}
	})

	t.Run("by sid: only the sessions of that provider session", func(t *testing.T) {
		idp.setTamper(func(c map[string]any) string { c["sid"] = "idp-session-1"; return "RS256" })
		in1, in2 := newClient(t, r1.url), newClient(t, r2.url)
		mustSignIn(t, idp, in1, "carol")
		mustSignIn(t, idp, in2, "carol")
		idp.setTamper(func(c map[string]any) string { c["sid"] = "idp-session-2"; return "RS256" })
		other := newClient(t, r2.url)
		mustSignIn(t, idp, other, "carol")
		idp.setTamper(nil)
		if resp := backchannel(t, r2.url, idp.logoutToken("", "idp-session-1", nil)); resp.status != http.StatusOK {
			t.Fatalf("back-channel logout: %d %s", resp.status, resp.body)
		}
		if got := [2]int{tokenStatus(in1), tokenStatus(in2)}; got != [2]int{401, 401} {
			t.Errorf("tokens of sid idp-session-1 on replicas 1 and 2: %v, want 401 on both", got)
		}
		if got := tokenStatus(other); got != 200 {
			t.Errorf("the session of another sid: %d, want 200", got)
		}
	})

	t.Run("a subject with no local user is fine", func(t *testing.T) {
		if resp := backchannel(t, r1.url, idp.logoutToken("sub-nobody", "", nil)); resp.status != http.StatusOK {
			t.Errorf("%d %s", resp.status, resp.body)
		}
	})

	replayed := idp.logoutToken("sub-dave", "", nil)
	if resp := backchannel(t, r1.url, replayed); resp.status != http.StatusOK {
		t.Fatalf("first use: %d %s", resp.status, resp.body)
	}
	bad := []struct {
		name  string
		token string
	}{
		{"replayed jti on the other replica", replayed},
		{"no events claim", idp.logoutToken("sub-bob", "", func(c map[string]any) { delete(c, "events") })},
		{"another event", idp.logoutToken("sub-bob", "", func(c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		})},
		{"a nonce", idp.logoutToken("sub-bob", "", func(c map[string]any) { c["nonce"] = "n" })},
		{"neither sub nor sid", idp.logoutToken("", "", nil)},
		{"no jti", idp.logoutToken("sub-bob", "", func(c map[string]any) { delete(c, "jti") })},
		{"another audience", idp.logoutToken("sub-bob", "", func(c map[string]any) { c["aud"] = "other-client" })},
		{"another issuer", idp.logoutToken("sub-bob", "", func(c map[string]any) { c["iss"] = "https://evil.example" })},
		{"expired", idp.logoutToken("sub-bob", "", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })},
		{"an ID token", func() string {
			return idp.sign(map[string]any{"iss": idp.issuer, "aud": idpClientID, "sub": "sub-bob",
				"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "nonce": "x"}, "JWT")
		}()},
		{"unsigned", "eyJhbGciOiJub25lIn0." + strings.Split(idp.logoutToken("sub-bob", "", nil), ".")[1] + "."},
		{"bad signature", func() string {
			p := strings.Split(idp.logoutToken("sub-bob", "", nil), ".")
			return p[0] + "." + p[1] + ".AAAA"
		}()},
		{"empty", ""},
		{"garbage", "not a token"},
	}
	bob := newClient(t, r1.url)
	mustSignIn(t, idp, bob, "bob")
	for _, tc := range bad {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			resp := backchannel(t, r2.url, tc.token)
			if resp.status != http.StatusBadRequest || resp.errorCode(t) != "invalid_request" {
				t.Errorf("%d %s, want 400 invalid_request", resp.status, resp.body)
			}
			if strings.Contains(resp.header.Get("Cache-Control"), "no-store") == false {
				t.Errorf("Cache-Control = %q", resp.header.Get("Cache-Control"))
			}
		})
	}
	if got := tokenStatus(bob); got != 200 {
		t.Errorf("bob after the refused tokens: %d, want 200", got)
	}
	events := securityEvents(t, r1.logs.String()+r2.logs.String())
	for _, want := range []string{"session.revoked/provider_logout", "oidc.logout_token_refused/invalid"} {
		if !slices.Contains(events, want) {
			t.Errorf("no %s security event; got %v", want, events)
		}
	}
	t.Run("wrong content type", func(t *testing.T) {
		resp := newClient(t, r1.url).do("POST", "/auth/oidc/backchannel-logout", `{"logout_token":"x"}`, map[string]string{"Content-Type": "application/json"})
		if resp.status != http.StatusBadRequest {
			t.Errorf("%d %s", resp.status, resp.body)
		}
	})
}

// TestOIDCLogoutEndsProviderSession: logging out of a session begun at a provider with an
// end_session_endpoint answers its URL for the SPA to follow; a password session gets 204.
func TestOIDCLogoutEndsProviderSession(t *testing.T) {
	s, idp, r := oidcStack(t, true)
	c := newClient(t, r.url)
	mustSignIn(t, idp, c, "alice")
	resp := c.do("POST", "/auth/logout", "", map[string]string{"X-CSRF": "1"})
	var body struct {
		EndSessionURL string `json:"end_session_url"`
	}
	if resp.status != http.StatusOK {
		t.Fatalf("logout: %d %s", resp.status, resp.body)
	}
	resp.json(t, &body)
	u := mustURL(t, body.EndSessionURL)
	if !strings.HasPrefix(body.EndSessionURL, idp.issuer+"/") || u.Query().Get("client_id") != idpClientID ||
		u.Query().Get("post_logout_redirect_uri") != "http://app.localhost/" || u.Query().Get("id_token_hint") == "" {
		t.Errorf("end_session_url = %s", body.EndSessionURL)
	}
	if _, resp := c.token(); resp.status != http.StatusUnauthorized {
		t.Errorf("token after logout: %d", resp.status)
	}
	s.addUser("acme", "pat@acme.test", testPassword)
	p := newClient(t, r.url)
	p.mustLogin("acme", "pat@acme.test", testPassword)
	if resp := p.do("POST", "/auth/logout", "", map[string]string{"X-CSRF": "1"}); resp.status != http.StatusNoContent {
		t.Errorf("password logout: %d %s", resp.status, resp.body)
	}
}

// TestOIDCBackchannelLogoutLimit: one address gets at most 60 back-channel logout calls a
// minute, so forged logout tokens cannot make the BFF refetch a provider's keys without end.
func TestOIDCBackchannelLogoutLimit(t *testing.T) {
	_, _, r := oidcStack(t, true)
	startEarlyInMinute()
	for i := range 60 {
		if resp := backchannel(t, r.url, "not a token"); resp.status != http.StatusBadRequest {
			t.Fatalf("call %d: %d %s, want 400 within the limit", i+1, resp.status, resp.body)
		}
	}
	resp := backchannel(t, r.url, "not a token")
	if resp.status != http.StatusTooManyRequests || resp.errorCode(t) != "rate_limited" || resp.header.Get("Retry-After") == "" {
		t.Fatalf("61st call: %d %s (Retry-After %q), want 429 rate_limited", resp.status, resp.body, resp.header.Get("Retry-After"))
	}
}
