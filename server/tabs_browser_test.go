package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
)

// TestBrowserTabsShareOneToken opens the SPA in four tabs of one browser. The tabs elect one
// leader (Web Locks) that alone calls GET /client-token and hands the token to the others over
// a BroadcastChannel: opening tabs 2 to 4 costs no call, one scheduled refresh is exactly one
// call for all four, and signing out in one tab returns every tab to the login form.
func TestBrowserTabsShareOneToken(t *testing.T) {
	exe := chromiumPath(t)
	// Tokens live 20 s, so the SPA's scheduled refresh (80% of the life, ±10%) comes within
	// the test. min_remaining makes the BFF mint a fresh token for that refresh rather than
	// hand back the old one with a few seconds left.
	s := newStack(t, stackOptions{
		extra: "client_token:\n  refresh_after: 9s\n  min_remaining: 8s\n",
		emu:   emulator.Options{TokenTTL: 20 * time.Second},
	})
	s.addUser("acme", "erin@acme.test", testPassword)
	proxy := newRecordingProxy(t)
	s.env["BFF_PUBLIC_ORIGIN"] = proxy.url
	r := s.start()
	proxy.forwardTo(t, r.url)

	tokenCalls := func() int {
		n := 0
		for _, ex := range proxy.exchanges() {
			if ex.method == "GET" && ex.path == "/client-token" {
				n++
			}
		}
		return n
	}
	const signedIn = `!document.getElementById('app-view').hidden &&
		document.getElementById('status').textContent.startsWith('Basiq token ready')`

	b := newBrowser(t, exe)
	tabs := []*tab{b.tab(t, allowNetwork(proxy.url+"/auth/me", 401))}
	tabs[0].navigate(proxy.url)
	tabs[0].login("acme", "erin@acme.test", testPassword)
	tabs[0].waitFor("the first token", signedIn)
	if n := tokenCalls(); n != 1 {
		t.Fatalf("signing in made %d GET /client-token calls, want 1", n)
	}

	for i := 2; i <= 4; i++ {
		tb := b.tab(t)
		tb.navigate(proxy.url)
		tb.waitFor(fmt.Sprintf("tab %d signed in with a token", i), signedIn)
		tabs = append(tabs, tb)
	}
	if n := tokenCalls(); n != 1 {
		t.Errorf("opening tabs 2 to 4 made %d more GET /client-token calls, want 0", n-1)
	}
	first := make([]string, len(tabs))
	for i, tb := range tabs {
		first[i] = tb.text("token-refreshed")
		if got := tb.eval(`JSON.stringify([document.cookie, localStorage.length, sessionStorage.length])`); got != `["",0,0]` {
			t.Errorf("tab %d keeps state a script can read: [document.cookie, localStorage, sessionStorage] = %s", i+1, got)
		}
	}

	// The scheduled refresh: every tab shows the new token's time, from one call.
	for i, tb := range tabs {
		tb.waitFor(fmt.Sprintf("tab %d to show the refreshed token", i+1), fmt.Sprintf(
			`document.getElementById('token-refreshed').textContent !== %s && %s`, jsString(first[i]), signedIn))
	}
	time.Sleep(time.Second) // a second call, had there been one, would have arrived by now
	if n := tokenCalls(); n != 2 {
		t.Errorf("one scheduled refresh across 4 tabs made %d GET /client-token calls, want 1", n-1)
	}
	refreshed := tabs[0].text("token-refreshed")
	for i, tb := range tabs[1:] {
		if got := tb.text("token-refreshed"); got != refreshed {
			t.Errorf("tab %d shows a token refreshed at %s, tab 1 at %s", i+2, got, refreshed)
		}
	}

	// Sign out in tab 1: every tab is back at the login form within 2 seconds.
	start := time.Now()
	tabs[0].do(chromedp.Click(chromedp.ID("logout")))
	const signedOut = `!document.getElementById('login-view').hidden && document.getElementById('app-view').hidden &&
		document.getElementById('token-expiry').textContent === '--:--'`
	for i, tb := range tabs {
		tb.waitFor(fmt.Sprintf("tab %d at the login form", i+1), signedOut)
	}
	took := time.Since(start)
	t.Logf("GET /client-token calls: %d for 4 tabs and one scheduled refresh; all tabs at the login form %v after the sign-out",
		tokenCalls(), took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("every tab reached the login form %v after the sign-out, want within 2s", took.Round(time.Millisecond))
	}
	for i, tb := range tabs[1:] {
		if got := tb.text("status"); !strings.Contains(got, "signed out") {
			t.Errorf("tab %d says %q, want that the person signed out", i+2, got)
		}
	}
	if n := tokenCalls(); n != 2 {
		t.Errorf("signing out made %d more GET /client-token calls, want 0", n-2)
	}
	for _, tb := range tabs {
		tb.checkProblems()
	}
}
