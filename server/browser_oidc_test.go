package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserOIDCSignIn drives the real SPA in headless Chromium through a sign-in at the
// tenant's identity provider: the "Sign in with …" link, the provider's own login page, the
// callback, then signed in with a live client token; logout then continues at the provider.
// beta signs in only through the provider, so its password form is hidden.
func TestBrowserOIDCSignIn(t *testing.T) {
	exe := chromiumPath(t)
	proxy := newRecordingProxy(t)
	idp := newTestIdP(t, proxy.url+"/auth/oidc/callback")
	beta := strings.Replace(idp.loginYAML(false), "display_name: Test SSO", "display_name: Beta Login", 1)
	s := newStack(t, stackOptions{logins: map[string]string{"acme": idp.loginYAML(true), "beta": beta}})
	s.env["OIDC_SECRET"] = idpClientSecret
	s.env["BFF_PUBLIC_ORIGIN"] = proxy.url // the origin the browser uses: the proxy's
	r := s.start()
	proxy.forwardTo(t, r.url)

	b := newBrowser(t, exe)
	tab := b.tab(t,
		allowNetwork(proxy.url+"/auth/me", 401),      // "signed in?" is answered "no" with a 401
		allowNetwork(idp.issuer+"/favicon.ico", 404), // the provider's pages have no icon
		// The example provider's clients cannot register a post-logout redirect URI, so it
		// answers the end-session request that names one with a 400 page.
		allowNetwork(idp.issuer+"/end_session?", 400),
	)
	defer tab.checkProblems()
	tab.navigate(proxy.url + "/?login_error=callback_replayed")
	tab.waitFor("the login form", `!document.getElementById('login-view').hidden && document.getElementById('tenant').options.length === 2`)
	choose := func(tenant string) {
		tab.eval(fmt.Sprintf(`(() => { const s = document.getElementById('tenant'); s.value = %s;
			s.dispatchEvent(new Event('change')); return ''; })()`, jsString(tenant)))
	}

	t.Run("a refused login is explained and removed from the address", func(t *testing.T) {
		tab := tab.in(t)
		if got := tab.text("login-error"); got != "This sign-in link was already used. Please start again." {
			t.Errorf("login-error = %q", got)
		}
		if got := tab.eval(`location.search`); got != "" {
			t.Errorf("location.search = %q, want the login_error removed", got)
		}
	})

	t.Run("each tenant shows its ways in", func(t *testing.T) {
		tab := tab.in(t)
		choose("beta")
		got := tab.eval(`JSON.stringify([document.getElementById('password-fields').hidden,
			document.getElementById('oidc-block').hidden, document.getElementById('oidc-start').textContent])`)
		if got != `[true,false,"Sign in with Beta Login"]` {
			t.Errorf("beta: [password hidden, provider hidden, label] = %s", got)
		}
		choose("acme")
		got = tab.eval(`JSON.stringify([document.getElementById('password-fields').hidden,
			document.getElementById('oidc-block').hidden, document.getElementById('oidc-start').textContent])`)
		if got != `[false,false,"Sign in with Test SSO"]` {
			t.Errorf("acme: [password hidden, provider hidden, label] = %s", got)
		}
		tab.screenshot("browser-oidc-login-methods")
	})

	if !t.Run("sign in at the provider and get a client token", func(t *testing.T) {
		tab := tab.in(t)
		tab.do(chromedp.Click(chromedp.ID("oidc-start")))
		tab.waitFor("the provider's login page", fmt.Sprintf(`location.href.startsWith(%s) && document.getElementById('username') !== null`,
			jsString(idp.issuer+"/login/username")))
		tab.screenshot("browser-oidc-provider-login")
		tab.do(
			chromedp.SendKeys(chromedp.ID("username"), "alice"),
			chromedp.SendKeys(chromedp.ID("password"), idpPassword),
			chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		)
		tab.waitFor("signed in with a live token", fmt.Sprintf(`location.href === %s && !document.getElementById('app-view').hidden &&
			document.getElementById('user-email').textContent === 'alice@acme.test' &&
			document.getElementById('user-tenant').textContent === 'Acme Lending' &&
			/^\d{2}:\d{2}$/.test(document.getElementById('token-expiry').textContent)`, jsString(proxy.url+"/")))
		tab.screenshot("browser-oidc-signed-in")
		var callback, token bool
		for _, ex := range proxy.exchanges() {
			callback = callback || ex.path == "/auth/oidc/callback" && ex.status == http.StatusSeeOther
			token = token || ex.path == "/client-token" && ex.status == http.StatusOK
		}
		if !callback || !token {
			t.Errorf("through the BFF: callback 303 %v, client token 200 %v", callback, token)
		}
		if got := tab.eval(`JSON.stringify([document.cookie, localStorage.length, sessionStorage.length])`); got != `["",0,0]` {
			t.Errorf("the page keeps state a script can read: %s", got)
		}
	}) {
		return
	}

	t.Run("logout continues at the provider", func(t *testing.T) {
		tab := tab.in(t)
		tab.do(chromedp.Click(chromedp.ID("logout")))
		tab.waitFor("the provider's end-session endpoint", fmt.Sprintf(`location.href.startsWith(%s)`, jsString(idp.issuer+"/")))
		var ended bool
		for _, ex := range proxy.exchanges() {
			ended = ended || ex.method == "POST" && ex.path == "/auth/logout" && ex.status == http.StatusOK
		}
		if !ended {
			t.Error("POST /auth/logout was not answered 200 with the provider's logout URL")
		}
		tab.navigate(proxy.url)
		tab.waitFor("the login form again", `!document.getElementById('login-view').hidden`)
	})
}
