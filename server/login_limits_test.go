package main

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// loginExtra configures the login limits (window 15m by default); a browser with a device
// cookie gets as many attempts as one without.
func loginExtra(perAccount, perIP int, more string) string {
	return fmt.Sprintf("login:\n  max_attempts_per_account: %d\n  max_attempts_per_device: %[1]d\n  max_attempts_per_ip: %d\n%s", perAccount, perIP, more)
}

// rawLoginWith sends a login whose extra header names are written exactly as given (Go's
// client would canonicalise X_Forwarded_For's spelling, and the spelling is the point).
func rawLoginWith(t *testing.T, base, tenant, email, password string, header map[string]string) response {
	t.Helper()
	body := loginBody(tenant, email, password)
	var b strings.Builder
	fmt.Fprintf(&b, "POST /auth/login HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\nX-CSRF: 1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n" + body)
	return rawExchange(t, base, b.String())
}

// wantTooMany checks a 429 too_many_attempts whose Retry-After lies within the window.
func wantTooMany(t *testing.T, resp response, window time.Duration) {
	t.Helper()
	if resp.status != 429 {
		t.Fatalf("status = %d, want 429: %s", resp.status, resp.body)
	}
	if code := resp.errorCode(t); code != "too_many_attempts" {
		t.Errorf("code = %q, want too_many_attempts", code)
	}
	secs, err := strconv.Atoi(resp.header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > int(window/time.Second) {
		t.Errorf("Retry-After = %q, want whole seconds within %v", resp.header.Get("Retry-After"), window)
	}
}

func wantBadCredentials(t *testing.T, what string, resp response) {
	t.Helper()
	if resp.status != 401 || resp.errorCode(t) != "invalid_credentials" {
		t.Fatalf("%s: %d %s, want 401 invalid_credentials", what, resp.status, resp.body)
	}
}

// clientFrom is a client whose connections come from localIP (any 127/8 address works on
// loopback), so the server sees another socket address.
func clientFrom(t *testing.T, base, localIP string) *client {
	t.Helper()
	c := newClient(t, base)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	c.http.Transport = tr
	return c
}

func TestLoginPerAccountLimit(t *testing.T) {
	s := newStack(t, stackOptions{extra: loginExtra(3, 1000, "")})
	s.addUser("acme", "alice@acme.test", testPassword)
	s.addUser("acme", "bob@acme.test", testPassword)
	r := s.start()
	c := newClient(t, r.url)
	for i := range 3 {
		wantBadCredentials(t, fmt.Sprintf("wrong password %d", i+1), c.login("acme", "alice@acme.test", "wrong password"))
	}
	wantTooMany(t, c.login("acme", "alice@acme.test", "wrong password"), 15*time.Minute)
	// Locked means locked: the right password waits too, in any spelling of the address.
	wantTooMany(t, c.login("acme", "alice@acme.test", testPassword), 15*time.Minute)
	wantTooMany(t, c.login("acme", "  ALICE@acme.TEST ", testPassword), 15*time.Minute)
	// Other accounts, and the same address in another tenant, are not affected.
	if resp := c.login("acme", "bob@acme.test", testPassword); resp.status != 200 {
		t.Errorf("bob: %d %s", resp.status, resp.body)
	}
	wantBadCredentials(t, "alice in beta", c.login("beta", "alice@acme.test", "wrong password"))
}

func TestLoginPerIPLimit(t *testing.T) {
	s := newStack(t, stackOptions{extra: loginExtra(1000, 4, "")})
	s.addUser("acme", "alice@acme.test", testPassword)
	r := s.start()
	c := newClient(t, r.url)
	for i := range 4 {
		wantBadCredentials(t, "guess", c.login("acme", fmt.Sprintf("guess%d@acme.test", i), "wrong password"))
	}
	wantTooMany(t, c.login("acme", "guess9@acme.test", "wrong password"), 15*time.Minute)
	wantTooMany(t, c.login("acme", "alice@acme.test", testPassword), 15*time.Minute)

	// The limit belongs to the address: another socket address logs in.
	other := clientFrom(t, r.url, "127.0.0.2")
	if resp := other.login("acme", "alice@acme.test", testPassword); resp.status != 200 {
		t.Errorf("from 127.0.0.2: %d %s", resp.status, resp.body)
	}
	wantTooMany(t, c.login("acme", "alice@acme.test", testPassword), 15*time.Minute)
}

// TestLoginSameAnswer: an unknown user, a wrong password and a disabled account get the very
// same answer, so the login form cannot be used to find out who has an account.
func TestLoginSameAnswer(t *testing.T) {
	s := newStack(t, stackOptions{extra: loginExtra(1000, 1000, "")})
	s.addUser("acme", "alice@acme.test", testPassword)
	s.addUser("acme", "dora@acme.test", testPassword)
	r := s.start()
	if out, err := s.cli("", "users", "disable", "--tenant", "acme", "--email", "dora@acme.test"); err != nil {
		t.Fatalf("users disable: %v\n%s", err, out)
	}
	c := newClient(t, r.url)
	answers := map[string]response{
		"unknown user":                 c.login("acme", "nobody@acme.test", testPassword),
		"wrong password":               c.login("acme", "alice@acme.test", "wrong password"),
		"disabled, right password":     c.login("acme", "dora@acme.test", testPassword),
		"disabled, wrong password":     c.login("acme", "dora@acme.test", "wrong password"),
		"user of another tenant":       c.login("beta", "alice@acme.test", testPassword),
		"Cyrillic look-alike of alice": c.login("acme", "\u0430lice@acme.test", testPassword),
	}
	want := answers["wrong password"]
	wantBadCredentials(t, "wrong password", want)
	for name, got := range answers {
		if got.status != want.status || string(got.body) != string(want.body) {
			t.Errorf("%s: %d %s; wrong password: %d %s", name, got.status, got.body, want.status, want.body)
		}
		if got.header.Get("Set-Cookie") != "" {
			t.Errorf("%s set a cookie", name)
		}
	}
}

// TestLoginSuccessResetsAccountCounter: a successful login forgives the account's earlier
// failures, so a person who mistypes now and then is never locked out.
func TestLoginSuccessResetsAccountCounter(t *testing.T) {
	s := newStack(t, stackOptions{extra: loginExtra(3, 1000, "")})
	s.addUser("acme", "alice@acme.test", testPassword)
	r := s.start()
	c := newClient(t, r.url)
	for round := range 3 {
		for i := range 2 {
			wantBadCredentials(t, fmt.Sprintf("round %d, failure %d", round, i), c.login("acme", "alice@acme.test", "wrong password"))
		}
		if resp := c.login("acme", "alice@acme.test", testPassword); resp.status != 200 {
			t.Fatalf("round %d: %d %s", round, resp.status, resp.body)
		}
	}
	// After the last success, a full allowance of failures, then the limit again.
	for i := range 3 {
		wantBadCredentials(t, fmt.Sprintf("failure %d after a success", i), c.login("acme", "alice@acme.test", "wrong password"))
	}
	wantTooMany(t, c.login("acme", "alice@acme.test", testPassword), 15*time.Minute)
}

// spoofHeaders are client-address headers a proxy might set; with no trusted proxies none of
// them (in any spelling) may move the address that rate limits count against.
var spoofHeaders = []struct{ name, value string }{
	{"X-Forwarded-For", "203.0.113.1"},
	{"X-Forwarded-For", "203.0.113.2, 198.51.100.2"},
	{"X-Real-IP", "203.0.113.3"},
	{"Forwarded", "for=203.0.113.4"},
	{"X_Forwarded_For", "203.0.113.5"},
	{"X-Forwarded_For", "203.0.113.6"},
	{"x-forwarded-for", "203.0.113.7"},
	{"True-Client-IP", "203.0.113.8"},
	{"CF-Connecting-IP", "203.0.113.9"},
}

func TestSpoofedForwardedForIsNotBelieved(t *testing.T) {
	t.Run("per-account limit", func(t *testing.T) {
		s := newStack(t, stackOptions{extra: loginExtra(5, 1000, "")})
		s.addUser("acme", "alice@acme.test", testPassword)
		r := s.start()
		for i := range 5 {
			h := map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", 10+i)}
			wantBadCredentials(t, "guess", rawLoginWith(t, r.url, "acme", "alice@acme.test", "wrong password", h))
		}
		wantTooMany(t, rawLoginWith(t, r.url, "acme", "alice@acme.test", "wrong password",
			map[string]string{"X-Forwarded-For": "203.0.113.99"}), 15*time.Minute)
	})

	t.Run("per-IP limit", func(t *testing.T) {
		s := newStack(t, stackOptions{extra: loginExtra(1000, len(spoofHeaders), "")})
		s.addUser("acme", "alice@acme.test", testPassword)
		r := s.start()
		for i, h := range spoofHeaders {
			resp := rawLoginWith(t, r.url, "acme", fmt.Sprintf("guess%d@acme.test", i), "wrong password", map[string]string{h.name: h.value})
			wantBadCredentials(t, h.name, resp)
		}
		for _, h := range spoofHeaders {
			resp := rawLoginWith(t, r.url, "acme", "alice@acme.test", testPassword, map[string]string{h.name: "198.51.100.77"})
			wantTooMany(t, resp, 15*time.Minute)
		}
		if resp := clientFrom(t, r.url, "127.0.0.2").login("acme", "alice@acme.test", testPassword); resp.status != 200 {
			t.Errorf("from 127.0.0.2: %d %s", resp.status, resp.body)
		}
		logs := r.logs.String()
		if strings.Contains(logs, "203.0.113.") || strings.Contains(logs, "198.51.100.") {
			t.Error("a spoofed address appears in the logs")
		}
		if !strings.Contains(logs, `"ip":"127.0.0.1"`) {
			t.Errorf("the request log does not carry the socket address:\n%.2000s", logs)
		}
	})

	// The control: with loopback as a trusted proxy, X-Forwarded-For is believed (so the
	// test above would notice if it were), but misspelt variants still are not.
	t.Run("trusted proxy", func(t *testing.T) {
		s := newStack(t, stackOptions{extra: loginExtra(1000, 2, "trusted_proxies: [127.0.0.1/32]\n")})
		r := s.start()
		for i := range 5 {
			h := map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", 20+i)}
			wantBadCredentials(t, "believed", rawLoginWith(t, r.url, "acme", fmt.Sprintf("p%d@acme.test", i), "wrong password", h))
		}
		for i, name := range []string{"X_Forwarded_For", "X-Forwarded_For"} {
			h := map[string]string{name: fmt.Sprintf("203.0.113.%d", 40+i)}
			wantBadCredentials(t, name, rawLoginWith(t, r.url, "acme", fmt.Sprintf("q%d@acme.test", i), "wrong password", h))
		}
		wantTooMany(t, rawLoginWith(t, r.url, "acme", "q9@acme.test", "wrong password",
			map[string]string{"X_Forwarded_For": "203.0.113.49"}), 15*time.Minute)
		if !strings.Contains(r.logs.String(), `"ip":"203.0.113.20"`) {
			t.Error("the trusted proxy's X-Forwarded-For was not used as the client address")
		}
	})
}

// TestLoginPerIPLimitUnderConcurrency: a burst of parallel guesses from one address, each
// against another account (password spraying), gets no more guesses past the per-address
// limit than the same guesses made one after another.
func TestLoginPerIPLimitUnderConcurrency(t *testing.T) {
	const perIP, burst = 5, 40
	s := newStack(t, stackOptions{extra: loginExtra(1000, perIP, "")})
	r := s.start()
	c := newClient(t, r.url)
	statuses := make(chan int, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", r.url+"/auth/login", strings.NewReader(loginBody("acme", fmt.Sprintf("spray%d@acme.test", i), "Winter2026!")))
			req.Header.Set("X-CSRF", "1")
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.http.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for st := range statuses {
		counts[st]++
	}
	// A guess past the count may still find every password-hash slot busy (503): it was
	// counted all the same.
	if counts[401]+counts[503] > perIP || counts[401]+counts[429]+counts[503] != burst {
		t.Errorf("of %d parallel guesses with a limit of %d per address: %d checked (401), %d refused (429), %d busy (503), others %v",
			burst, perIP, counts[401], counts[429], counts[503], counts)
	}
}
