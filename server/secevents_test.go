package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// securityEvents returns the "event/reason" pairs of the security event lines in logs, and
// fails the test if one lacks its fields or carries a secret.
func securityEvents(t *testing.T, logs string, secrets ...string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"security":true`) {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a security event is not one JSON line: %q", line)
		}
		ev, _ := rec["event"].(string)
		reason, _ := rec["reason"].(string)
		if ev == "" || reason == "" || rec["msg"] != "security event" {
			t.Errorf("event line without event or reason: %s", line)
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("a security event carries a secret: %s", line)
			}
		}
		out = append(out, ev+"/"+reason)
	}
	return out
}

// TestSecurityEvents: every event and reason of the README's table is emitted, as one JSON
// line with a stable name, by the server (logins, logout, cross-site refusals, a revoked
// session) or by the CLI (user changes).
func TestSecurityEvents(t *testing.T) {
	s := newStack(t, stackOptions{extra: "login:\n  max_attempts_per_account: 2\n  max_attempts_per_device: 2\n  max_attempts_per_ip: 12\n"})
	var cliLogs bytes.Buffer
	cli := func(stdin string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out bytes.Buffer
		if err := run(ctx, append([]string{"server"}, args...), s.getenv, strings.NewReader(stdin), &out, &cliLogs); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, cliLogs.String())
		}
	}
	cli(testPassword+"\n", "users", "add", "--tenant", "beta", "--email", "ann@beta.test")
	cli(testPassword+"\n", "users", "add", "--tenant", "beta", "--email", "dora@beta.test")
	cli(testPassword+"\n", "users", "add", "--tenant", "acme", "--email", "kim@acme.test")
	cli("", "users", "disable", "--tenant", "beta", "--email", "dora@beta.test")
	cli("", "users", "enable", "--tenant", "beta", "--email", "dora@beta.test")
	cli("", "users", "disable", "--tenant", "beta", "--email", "dora@beta.test")
	cli(testPassword+" 2\n", "users", "passwd", "--tenant", "beta", "--email", "ann@beta.test")
	cli(testPassword+"\n", "users", "passwd", "--tenant", "beta", "--email", "ann@beta.test")
	r := s.start()

	// A session whose tenant is removed is revoked on its next request.
	kim := newClient(t, r.url)
	kim.mustLogin("acme", "kim@acme.test", testPassword)
	s.withoutAcme = true
	s.writeConfig(s.extra)
	waitReload(t, []*replica{r}, "applied", 1)
	if got := kim.do("GET", "/auth/me", "", nil); got.status != 401 {
		t.Fatalf("/auth/me after the tenant was removed: %d", got.status)
	}

	ann := newClient(t, r.url)
	ann.mustLogin("beta", "ann@beta.test", testPassword)
	if got := ann.do("POST", "/auth/logout", "", spaHeaders); got.status != 204 {
		t.Fatalf("logout: %d", got.status)
	}
	for _, h := range []map[string]string{
		{"Content-Type": "application/json"}, // no X-CSRF
		{"Content-Type": "application/json", "X-CSRF": "1", "Sec-Fetch-Site": "cross-site"},
	} {
		if got := ann.do("POST", "/auth/login", `{"tenant":"beta","email":"ann@beta.test","password":"x"}`, h); got.status != 403 {
			t.Fatalf("cross-site login with %v: %d", h, got.status)
		}
	}
	if got := ann.do("GET", "/auth/me", "", map[string]string{"Origin": "https://evil.example"}); got.status != 403 {
		t.Fatalf("/auth/me from a foreign origin: %d", got.status)
	}
	ann.login("beta", "ann@beta.test", "wrong password 1")
	ann.login("beta", "nobody@beta.test", "wrong password 2")
	ann.login("beta", "dora@beta.test", testPassword) // right password, disabled account
	for i := 0; i < 3; i++ {
		ann.login("beta", "ann@beta.test", fmt.Sprintf("wrong password %d", i+3))
	}
	for i := 0; i < 12; i++ {
		if got := ann.login("beta", fmt.Sprintf("guess%d@beta.test", i), "wrong password"); got.status == 429 {
			break
		}
	}

	logs := r.logs.String() + cliLogs.String()
	got := securityEvents(t, logs, testPassword, "wrong password")
	want := []string{
		"login.succeeded/password", "login.failed/bad_password", "login.failed/unknown_user", "login.failed/disabled",
		"login.locked_out/account_limit", "login.locked_out/ip_limit", "logout/user_request",
		"csrf.refused/missing_header", "csrf.refused/foreign_origin", "csrf.refused/cross_site",
		"session.revoked/tenant_removed", "session.revoked/user_disabled", "session.revoked/password_change",
		"user.created/cli", "user.disabled/cli", "user.enabled/cli", "user.password_changed/cli",
	}
	checkEventTable(t, got, want)
	// A failed login names its tenant and address, never the email typed.
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"event":"login.failed"`) && (!strings.Contains(line, `"tenant":"beta"`) ||
			!strings.Contains(line, `"ip":"127.0.0.1"`) || strings.Contains(line, "@beta.test")) {
			t.Errorf("login.failed line: %s", line)
		}
	}
}

// checkEventTable: every wanted security event was logged and has its row in the README's
// table, and every event logged is one of the wanted ones.
func checkEventTable(t *testing.T, got, want []string) {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("no %s event; got %v", w, got)
		}
		ev, reason, _ := strings.Cut(w, "/")
		if !strings.Contains(string(readme), "| `"+ev+"` | `"+reason+"` |") {
			t.Errorf("the README's security event table lacks | `%s` | `%s` |", ev, reason)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("event %s is not in the documented table", g)
		}
	}
}
