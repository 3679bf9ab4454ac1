package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
)

// consentQuery posts body to /connect/consent and returns the Consent UI URL's query.
func (c *client) consentQuery(body string) (map[string]string, response) {
	c.t.Helper()
	h := map[string]string{"X-CSRF": "1"}
	if body != "" {
		h["Content-Type"] = "application/json"
	}
	r := c.do("POST", "/connect/consent", body, h)
	if r.status != http.StatusOK {
		return nil, r
	}
	var b struct{ URL string }
	r.json(c.t, &b)
	q := map[string]string{}
	for k, v := range mustURL(c.t, b.URL).Query() {
		q[k] = v[0]
	}
	return q, r
}

// TestConsentLaunch: the flow a person is sent into, and the token that goes with it.
func TestConsentLaunch(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.addUser("acme", "ann@acme.test", testPassword)
	r := s.start()
	// The 2.0 tenant's shared token is called out at start-up; the 3.0 one is not.
	var shared []string
	for _, line := range strings.Split(r.logs.String(), "\n") {
		if strings.Contains(line, "client tokens are shared") {
			shared = append(shared, line)
		}
	}
	if len(shared) != 1 || !strings.Contains(shared[0], `"tenant":"beta"`) {
		t.Errorf("start-up warnings about shared 2.x tokens: %q, want one for beta", shared)
	}
	ann := newClient(t, r.url)
	ann.mustLogin("acme", "ann@acme.test", testPassword)
	ann.mustToken()
	id := ann.me().User.BasiqUserID

	tests := []struct {
		name, body string
		consent    bool // give ann a consent first
		want       map[string]string
	}{
		{name: "first time: Basiq's default flow", want: map[string]string{"action": ""}},
		{name: "explicit manage", body: `{"action":"manage"}`, want: map[string]string{"action": "manage"}},
		{name: "connect a named bank", body: `{"action":"connect","institutionId":"AU00000"}`, want: map[string]string{"action": "connect", "institutionId": "AU00000"}},
		{name: "reauthorise a connection: connectionId alone, as Basiq documents", body: `{"action":"reauthorise","connectionId":"3f2b8c1e-connection"}`, want: map[string]string{"action": "", "connectionId": "3f2b8c1e-connection"}},
		{name: "reauthorise every expiring connection", body: `{"action":"reauthorise"}`, want: map[string]string{"action": "reauthorise", "connectionId": ""}},
		{name: "returning with a consent: connect", consent: true, want: map[string]string{"action": "connect"}},
		{name: "an empty object is no action", body: `{}`, want: map[string]string{"action": "connect"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.consent {
				s.emu.AddConsent(id)
				// A Consent UI return forgets the cached consent answer; here the consent
				// arrived behind the BFF's back, so go through a return.
				q, _ := ann.consentQuery("")
				ann.do("GET", "/connect/return?state="+q["state"]+"&jobIds=", "", nil)
			}
			q, resp := ann.consentQuery(tc.body)
			if q == nil {
				t.Fatalf("consent: %d %s", resp.status, resp.body)
			}
			for k, v := range tc.want {
				if q[k] != v {
					t.Errorf("%s = %q, want %q (url query %v)", k, q[k], v, q)
				}
			}
			info, ok := s.emu.Inspect(q["token"])
			if !ok || info.UserID != id || info.Scope != emulator.ScopeClient || time.Until(info.ExpiresAt) < 50*time.Minute {
				t.Errorf("launch token: known %v, user %q (want %q), scope %s, %v left", ok, info.UserID, id, info.Scope, time.Until(info.ExpiresAt))
			}
		})
	}
}

// TestStaleBasiqUser: Basiq deleted the person's user. The BFF notices on the next mint (a
// refused userId) or the next consent launch (404 on the consents read), creates exactly one
// new user, and the person carries on.
func TestStaleBasiqUser(t *testing.T) {
	t.Run("next /client-token", func(t *testing.T) {
		// Ten-minute tokens are never good for the default ten minutes of min_remaining, so
		// every /client-token mints: the next one after the deletion reaches Basiq.
		s := newStack(t, stackOptions{emu: emulator.Options{TokenTTL: 10 * time.Minute}})
		s.addUser("acme", "bo@acme.test", testPassword)
		r := s.start()
		bo := newClient(t, r.url)
		bo.mustLogin("acme", "bo@acme.test", testPassword)
		bo.mustToken()
		stale := bo.me().User.BasiqUserID
		s.emu.DeleteUser(s.emu.ApplicationOf(s.keys["ACME_KEY"]), stale)

		tok := bo.mustToken()
		info, _ := s.emu.Inspect(tok.AccessToken)
		fresh := bo.me().User.BasiqUserID
		if fresh == "" || fresh == stale || info.UserID != fresh {
			t.Fatalf("after the deletion: token bound to %q, session says %q, stale %q", info.UserID, fresh, stale)
		}
		bo.mustToken()
		if n := s.emu.UsersCreated(); n != 2 {
			t.Errorf("Basiq users created = %d, want 2 (the first and exactly one replacement)", n)
		}
		if !strings.Contains(r.logs.String(), "basiq user re-created") {
			t.Error("no audit log line for the re-creation")
		}
		scrape := newClient(t, r.admin).do("GET", "/metrics", "", nil)
		if want := `bff_basiq_users_recreated_total{result="recreated",tenant="acme"} 1`; !strings.Contains(string(scrape.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	})
	t.Run("next consent launch", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		s.addUser("acme", "cy@acme.test", testPassword)
		r := s.start()
		cy := newClient(t, r.url)
		cy.mustLogin("acme", "cy@acme.test", testPassword)
		cached := cy.mustToken()
		stale := cy.me().User.BasiqUserID
		s.emu.DeleteUser(s.emu.ApplicationOf(s.keys["ACME_KEY"]), stale)

		q, resp := cy.consentQuery("")
		if q == nil {
			t.Fatalf("consent after the deletion: %d %s", resp.status, resp.body)
		}
		info, _ := s.emu.Inspect(q["token"])
		fresh := cy.me().User.BasiqUserID
		if fresh == stale || info.UserID != fresh || q["action"] != "" {
			t.Errorf("launch bound to %q with action %q; session %q, stale %q", info.UserID, q["action"], fresh, stale)
		}
		if tok := cy.mustToken(); tok.AccessToken == cached.AccessToken {
			t.Error("/client-token still serves the deleted user's token")
		}
		if n := s.emu.UsersCreated(); n != 2 {
			t.Errorf("Basiq users created = %d, want 2", n)
		}
	})
}
