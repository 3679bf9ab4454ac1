package main

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDemoOriginsMustBeLoopback: BFF_DEMO_ORIGINS admits dev servers on this machine only; a
// remote origin stops the demo from starting, with the reason.
func TestDemoOriginsMustBeLoopback(t *testing.T) {
	tests := []struct {
		name    string
		origins string
		want    string
	}{
		{name: "a remote site", origins: "https://app.example.com", want: `"https://app.example.com" is not a loopback origin`},
		{name: "a LAN address", origins: "http://127.0.0.1:5173,http://192.168.1.20:5173", want: `"http://192.168.1.20:5173" is not a loopback origin`},
		{name: "a path, not an origin", origins: "http://127.0.0.1:5173/app", want: "remove the path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"BFF_LISTEN": "127.0.0.1:0", "BFF_ADMIN_LISTEN": "127.0.0.1:0",
				"BFF_DEMO_DATA_DIR": t.TempDir(), "BFF_DEMO_ORIGINS": tc.origins}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout strings.Builder
			err := run(ctx, []string{"server"}, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(stdout.String(), "listening on") {
				t.Errorf("the demo served before refusing the origin:\n%s", stdout.String())
			}
		})
	}
}

// TestBrowserDemoDevServer is the local-development recipe: the demo BFF started with
// BFF_DEMO_ORIGINS naming a dev server on another loopback port, and the SPA served from that
// port. The page shows the demo account, logs in across origins with credentials, shows the
// tenant's name and gets a token.
func TestBrowserDemoDevServer(t *testing.T) {
	exe := chromiumPath(t)
	proxy := newRecordingProxy(t) // stands in front of the demo BFF, so its traffic is seen
	dev := httptest.NewServer(spaHandler(t, proxy.url))
	t.Cleanup(dev.Close)
	env := map[string]string{"BFF_LISTEN": "127.0.0.1:0", "BFF_ADMIN_LISTEN": "127.0.0.1:0",
		"BFF_DEMO_DATA_DIR": t.TempDir(), "BFF_DEMO_ORIGINS": dev.URL}
	r := startRun(t, func(k string) string { return env[k] })
	proxy.forwardTo(t, r.url)
	if !strings.HasPrefix(dev.URL, "http://127.0.0.1:") || strings.TrimPrefix(dev.URL, "http://") == strings.TrimPrefix(r.url, "http://") {
		t.Fatalf("the dev server %s is not a second loopback origin beside the BFF %s", dev.URL, r.url)
	}

	b := newBrowser(t, exe)
	tab := b.tab(t, allowNetwork(proxy.url+"/auth/me", 401))
	tab.navigate(dev.URL)
	tab.waitFor("the login form with the demo account", `!document.getElementById('login-view').hidden &&
		!document.getElementById('demo-login').hidden && !document.getElementById('demo-banner').hidden`)
	if got, want := tab.text("demo-login"), "Demo account: demo@example.com / demo-password"; got != want {
		t.Errorf("the login form says %q, want %q", got, want)
	}
	tab.do(
		chromedp.SendKeys(chromedp.ID("email"), "demo@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "demo-password"),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	tab.waitFor("a token in the signed-in view", `!document.getElementById('app-view').hidden &&
		document.getElementById('status').textContent.startsWith('Basiq token ready')`)
	if got := tab.text("user-tenant"); got != "Demo Lending" {
		t.Errorf("the page names the organisation %q, want the tenant's name Demo Lending", got)
	}
	if got := tab.eval(`location.origin`); got != dev.URL {
		t.Fatalf("the page is at %s, want the dev server %s", got, dev.URL)
	}

	var login, token bool
	for _, ex := range proxy.exchanges() {
		if ex.origin != dev.URL || ex.status != 200 {
			continue
		}
		granted := ex.response.Get("Access-Control-Allow-Origin") == dev.URL &&
			ex.response.Get("Access-Control-Allow-Credentials") == "true"
		login = login || ex.method == "POST" && ex.path == "/auth/login" && granted
		token = token || ex.method == "GET" && ex.path == "/client-token" && granted &&
			strings.Contains(ex.request.Get("Cookie"), "bff=")
	}
	if !login || !token {
		t.Errorf("from %s: credentialed login answered 200 = %v, token with the cookie answered 200 = %v; want both", dev.URL, login, token)
	}
	tab.checkProblems()
}
