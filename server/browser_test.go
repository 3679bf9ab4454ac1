package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/testenv"
	"github.com/basiq-bff/bff/web"
)

// browserTestTimeout bounds each browser test, Chromium included.
const browserTestTimeout = 60 * time.Second

// TestBrowserConnectionFlows drives the real SPA in headless Chromium through both ways of
// connecting a bank: the API 2.0 form, whose bank login goes from the page straight to Basiq,
// and the API 3.0 Consent UI round trip. The browser talks to the BFF through a recording
// proxy, so the last subtest can prove from the BFF's whole traffic that the bank credentials
// never reached it.
func TestBrowserConnectionFlows(t *testing.T) {
	exe := chromiumPath(t)
	s := newStack(t, stackOptions{})
	s.addUser("beta", "carol@beta.test", testPassword)
	s.addUser("acme", "alice@acme.test", testPassword)
	proxy := newRecordingProxy(t)
	s.env["BFF_PUBLIC_ORIGIN"] = proxy.url // the origin the browser uses: the proxy's
	r := s.start()
	proxy.forwardTo(t, r.url)
	s.emu.SetConsentRedirect(proxy.url + "/connect/return")

	// Fresh per run, and plain letters and digits, so that no encoding can hide them from a
	// substring search of the BFF's traffic.
	bankLogin, bankPassword := "hooli"+randomToken(t, 6), "bankpw"+randomToken(t, 10)

	b := newBrowser(t, exe)
	tab := b.tab(t,
		allowNetwork(proxy.url+"/auth/me", 401),    // "signed in?" is answered "no" with a 401
		allowNetwork(s.emuURL+"/favicon.ico", 404), // the Consent UI stub has no icon
		allowNetwork(s.emuURL+"/users/", 403),      // the refused connection, on purpose
	)
	defer tab.checkProblems()
	tab.navigate(proxy.url)
	tab.waitFor("the login form", `!document.getElementById('login-view').hidden`)
	tab.watchMessages()

	f := &connectionFlows{s: s, r: r, proxy: proxy, b: b, tab: tab, bankLogin: bankLogin, bankPassword: bankPassword}
	// Each step builds on the one before: the first to fail ends the test.
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"tenant picker", f.tenantPicker},
		{"2.0 login shows a live token countdown", f.tokenCountdown},
		{"2.0 connection goes to Basiq and reaches success", f.connect20},
		{"2.0 a refusal that is not token expiry is shown once, credentials sent once", f.refusal20},
		{"3.0 consent UI round trip shows the true outcome", f.consent30},
		{"bank credentials never reached the BFF", f.credentialsNeverReachedBFF},
	}
	for _, step := range steps {
		if !t.Run(step.name, step.run) {
			return
		}
	}
	// The console watch above would pass vacuously if it could not see what it looks for.
	t.Run("the console watch sees CSP violations and exceptions", f.consoleWatch)
}

// connectionFlows is what the steps of TestBrowserConnectionFlows share: the stack, its one
// replica behind the recording proxy, the browser and its tab, and the bank credentials typed
// into the page.
type connectionFlows struct {
	s                       *stack
	r                       *replica
	proxy                   *recordingProxy
	b                       *browser
	tab                     *tab
	bankLogin, bankPassword string
}

// tenantPicker: the login form offers both tenants, by name.
func (f *connectionFlows) tenantPicker(t *testing.T) {
	tab := f.tab.in(t)
	got := tab.eval(`JSON.stringify({hidden: document.getElementById('tenant-field').hidden,
		options: [...document.getElementById('tenant').options].map(o => o.value + '=' + o.text)})`)
	want := `{"hidden":false,"options":["acme=Acme Lending","beta=Beta Credit"]}`
	if got != want {
		t.Errorf("tenant picker = %s, want %s", got, want)
	}
}

// tokenCountdown: a 2.0 login shows a token expiry that counts down, the page keeps no state a
// script can read, and the SPA learns the Basiq user id created with the first token.
func (f *connectionFlows) tokenCountdown(t *testing.T) {
	tab := f.tab.in(t)
	tab.login("beta", "carol@beta.test", testPassword)
	tab.waitFor("the 2.0 connect form", `document.getElementById('basiq-version').textContent === '2.0' &&
		!document.getElementById('connect-form').hidden`)
	countdown := regexp.MustCompile(`^\d{2}:\d{2}$`)
	tab.waitFor("a token expiry countdown", `/^\d{2}:\d{2}$/.test(document.getElementById('token-expiry').textContent)`)
	first := tab.text("token-expiry")
	time.Sleep(2100 * time.Millisecond)
	second := tab.text("token-expiry")
	if !countdown.MatchString(second) || mmss(t, first)-mmss(t, second) < 1 || mmss(t, first)-mmss(t, second) > 4 {
		t.Errorf("token-expiry went from %q to %q in 2.1 s; want a countdown by about 2 s", first, second)
	}
	if mmss(t, first) < 55*60 {
		t.Errorf("a fresh token expires in %s; want about 60:00", first)
	}
	if got := tab.eval(`JSON.stringify([document.cookie, localStorage.length, sessionStorage.length])`); got != `["",0,0]` {
		t.Errorf("the page keeps state a script can read: [document.cookie, localStorage, sessionStorage] = %s", got)
	}

	// The first /auth/me came before the token that creates carol's Basiq user; the SPA
	// asks again once that token is there, without waiting for the connect form.
	var ids []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		ids = basiqUserIDsAfterFirstToken(t, f.proxy.exchanges())
		if len(ids) > 0 && ids[len(ids)-1] != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(ids) == 0 || ids[len(ids)-1] == "" {
		t.Errorf("no GET /auth/me after the first token returned the Basiq user id: %q", ids)
	}
}

// connect20: the 2.0 form sends the bank login to Basiq and follows the job to success.
func (f *connectionFlows) connect20(t *testing.T) {
	tab := f.tab.in(t)
	if v := tab.value("institution"); v != "AU00000" {
		t.Errorf("institution defaults to %q, want AU00000", v)
	}
	tab.do(
		chromedp.SendKeys(chromedp.ID("login-id"), f.bankLogin),
		chromedp.SendKeys(chromedp.ID("bank-password"), f.bankPassword),
		chromedp.Click(chromedp.ID("connect-submit")),
	)
	tab.waitFor("every job step to succeed", `(() => {
		const steps = [...document.querySelectorAll('#job-steps li')];
		return steps.length === 3 && steps.every((li) => li.dataset.status === 'success') &&
			document.getElementById('connect-result').textContent.startsWith('Connected');
	})()`)
	if got := tab.text("job-steps"); !strings.Contains(got, "verify-credentials success") || !strings.Contains(got, "retrieve-transactions success") {
		t.Errorf("job-steps = %q", got)
	}
	if v := tab.value("bank-password"); v != "" {
		t.Error("the bank password is still in its field after the request left")
	}
	seen := tab.seen()
	if !slices.ContainsFunc(seen.Steps, func(s string) bool { return strings.Contains(s, "in-progress") }) {
		t.Errorf("the page never showed a step in progress: %q", seen.Steps)
	}
	for _, m := range seen.Messages {
		if strings.Contains(m, "no Basiq user") {
			t.Errorf("the page showed %q although the BFF creates the Basiq user with the first token", m)
		}
	}
	tab.screenshot("browser-2.0-connected")
}

// refusal20: a refusal other than token expiry is shown once, and the credentials are posted
// once.
func (f *connectionFlows) refusal20(t *testing.T) {
	tab := f.tab.in(t)
	before, tokensBefore := f.s.emu.Requests(emulator.RouteConnections), countExchanges(f.proxy.exchanges(), "/client-token")
	// Basiq's answer to an account without the Connections feature.
	f.s.emu.SetFault(emulator.Fault{Status: http.StatusForbidden, Code: "forbidden-access", Endpoint: emulator.RouteConnections})
	defer f.s.emu.SetFault(emulator.Fault{})
	tab.eval(`document.getElementById('login-id').value = ''`)
	tab.do(
		chromedp.SendKeys(chromedp.ID("login-id"), "refused"+f.bankLogin),
		chromedp.SendKeys(chromedp.ID("bank-password"), f.bankPassword),
		chromedp.Click(chromedp.ID("connect-submit")),
	)
	tab.waitFor("the refusal, with its code", `document.getElementById('connect-result').dataset.kind === 'error' &&
		document.getElementById('connect-result').textContent.includes('forbidden-access') &&
		!document.getElementById('connect-submit').disabled`)
	time.Sleep(500 * time.Millisecond) // a re-post, if there were one, would have left by now
	if got := f.s.emu.Requests(emulator.RouteConnections) - before; got != 1 {
		t.Errorf("the bank credentials were posted %d times for one submit, want exactly 1", got)
	}
	if got := countExchanges(f.proxy.exchanges(), "/client-token") - tokensBefore; got != 0 {
		t.Errorf("a 403 forbidden-access made the page fetch %d new tokens, want 0", got)
	}
	tab.screenshot("browser-2.0-refused")
}

// consent30: the 3.0 Consent UI round trip shows the true outcome of each visit, and its state
// cannot be replayed or forged.
func (f *connectionFlows) consent30(t *testing.T) {
	tab := f.tab.in(t)
	tab.logout()
	tab.login("acme", "alice@acme.test", testPassword)
	tab.waitFor("the consent button", `document.getElementById('basiq-version').textContent === '3.0' &&
		!document.getElementById('consent-block').hidden && document.getElementById('token-refreshed').textContent !== 'not yet'`)
	alice := newClient(t, f.r.url)
	alice.mustLogin("acme", "alice@acme.test", testPassword)
	aliceID := alice.me().User.BasiqUserID
	spaHome := jsString(f.proxy.url + "/")

	// open clicks a button of the SPA and waits for the emulator's Consent UI. It checks the
	// page is for alice, with a token of at least 50 minutes, and returns the action shown.
	open := func(button string) string {
		t.Helper()
		tab.do(chromedp.Click(chromedp.ID(button)))
		tab.waitFor("the emulator's Consent UI", fmt.Sprintf(`location.href.startsWith(%s) && document.getElementById('finish') !== null`, jsString(f.s.emuURL+"/home?")))
		if got := tab.text("user"); aliceID == "" || got != aliceID {
			t.Errorf("the Consent UI is for Basiq user %q, want alice's %q", got, aliceID)
		}
		page := mustURL(t, tab.eval(`location.href`))
		info, ok := f.s.emu.Inspect(page.Query().Get("token"))
		if left := time.Until(info.ExpiresAt); !ok || left < 50*time.Minute {
			t.Errorf("the launch token has %v of life left (known: %v), want at least 50 minutes", left, ok)
		}
		return tab.eval(`document.getElementById('action')?.textContent ?? ''`)
	}

	// First visit: no consent yet, so Basiq's first-time flow (no action). The bank fails.
	if action := open("connect-consent"); action != "" {
		t.Errorf("a person without a consent was sent with action=%q, want none", action)
	}
	tab.do(chromedp.Click(chromedp.ID("finish-failed")))
	tab.waitFor("the failure, in words, with a retry", fmt.Sprintf(`location.href === %s &&
		document.getElementById('connect-result').dataset.kind === 'error' &&
		document.getElementById('connect-result').textContent.includes('did not accept the login details') &&
		!document.getElementById('connect-retry').hidden &&
		[...document.querySelectorAll('#job-steps li')].some((li) => li.dataset.status === 'failed')`, spaHome))
	if got := tab.text("connect-result"); strings.Contains(got, "connected.") {
		t.Errorf("a failed job shows %q", got)
	}
	tab.screenshot("browser-3.0-failed")

	// Try again, then close the Consent UI: nothing was connected.
	open("connect-retry")
	tab.do(chromedp.Click(chromedp.ID("close")))
	tab.waitFor("nothing connected", fmt.Sprintf(`location.href === %s &&
		document.getElementById('connect-result').textContent.startsWith('Nothing was connected')`, spaHome))

	// Then the bank connects: the page says so only once the job succeeded.
	open("connect-consent")
	tab.do(chromedp.Click(chromedp.ID("finish")))
	tab.waitFor("the SPA with the success message", fmt.Sprintf(`location.href === %s &&
		document.getElementById('connect-result').textContent === 'Your bank is connected.' &&
		document.getElementById('connect-result').dataset.kind === 'ok' &&
		!document.getElementById('connect-another').hidden`, spaHome))
	if got := tab.text("job-steps"); !strings.Contains(got, "verify-credentials success") || !strings.Contains(got, "retrieve-transactions success") {
		t.Errorf("job-steps = %q", got)
	}
	tab.screenshot("browser-3.0-returned")

	// Now alice has a consent: the default button sends her to add a bank (action=connect).
	if action := open("connect-consent"); action != "connect" {
		t.Errorf("a returning person with a consent was sent with action=%q, want connect", action)
	}
	tab.navigate(f.proxy.url)
	tab.waitFor("the SPA again", `!document.getElementById('app-view').hidden`)

	// The state was spent on the way back: the same return cannot be replayed, and a
	// browser that tries lands on the page with an error, not on JSON.
	var back string
	for _, ex := range f.proxy.exchanges() {
		if ex.path == "/connect/return" && strings.Contains(ex.rawURL, "jobIds=") {
			back = ex.rawURL
		}
	}
	replay := newClient(t, f.r.url).do("GET", back, "", nil)
	if back == "" || replay.status != http.StatusSeeOther || replay.header.Get("Location") != "/?connect_error=invalid_state" {
		t.Errorf("replaying the return %q: %d %q", back, replay.status, replay.header.Get("Location"))
	}
	tab.navigate(f.proxy.url + "/connect/return?state=forged.state")
	tab.waitFor("the page with the error", fmt.Sprintf(`location.href === %s &&
		document.getElementById('connect-result').textContent.includes('expired or was already used') &&
		document.getElementById('connect-result').dataset.kind === 'error'`, spaHome))
	tab.screenshot("browser-3.0-bad-state")
	tab.logout()
	tab.screenshot("browser-signed-out")
}

// credentialsNeverReachedBFF: Basiq received the bank credentials, and neither the BFF's
// traffic nor its logs hold them.
func (f *connectionFlows) credentialsNeverReachedBFF(t *testing.T) {
	var got []string
	for _, c := range f.s.emu.ConnectionsReceived() {
		got = append(got, c.LoginID+"/"+c.Password+"/"+c.InstitutionID)
	}
	if want := f.bankLogin + "/" + f.bankPassword + "/AU00000"; len(got) != 1 || got[0] != want {
		t.Fatalf("Basiq received connections %q, want exactly [%s]", got, want)
	}
	exchanges := f.proxy.exchanges()
	var sawLogin, sawToken bool
	for _, ex := range exchanges {
		dump := ex.dump()
		sawLogin = sawLogin || ex.method == "POST" && ex.path == "/auth/login" && strings.Contains(dump, testPassword)
		sawToken = sawToken || ex.path == "/client-token" && ex.status == 200
		for _, secret := range []string{f.bankLogin, f.bankPassword} {
			if strings.Contains(dump, secret) {
				t.Errorf("the bank credentials went through the BFF: %s %s", ex.method, ex.path)
			}
		}
	}
	// The recording is complete enough to mean something: it holds the app login's body
	// and the token fetches.
	if !sawLogin || !sawToken || len(exchanges) < 10 {
		t.Errorf("the proxy recorded %d exchanges (login with body: %v, token: %v); the browser did not use it", len(exchanges), sawLogin, sawToken)
	}
	for _, secret := range []string{f.bankLogin, f.bankPassword} {
		if strings.Contains(f.r.logs.String(), secret) {
			t.Error("the bank credentials appear in the BFF's logs")
		}
	}
}

// consoleWatch: the console watch sees CSP violations and exceptions.
func (f *connectionFlows) consoleWatch(t *testing.T) {
	probe := f.b.tab(t, allowNetwork(f.proxy.url+"/auth/me", 401))
	probe.navigate(f.proxy.url)
	probe.waitFor("the SPA", `!document.getElementById('login-view').hidden`)
	probe.eval(`document.head.append(Object.assign(document.createElement('script'), {textContent: 'window.inlineRan = true'})), 'ok'`)
	probe.evalAwait(`new Promise((resolve) => {
		setTimeout(() => { throw new Error('probe exception'); });
		setTimeout(() => resolve('thrown'), 10);
	})`)
	var csp, exception bool
	for _, p := range probe.takeProblems() {
		csp = csp || strings.Contains(p, "Content Security Policy")
		exception = exception || strings.Contains(p, "probe exception")
	}
	if !csp || !exception {
		t.Errorf("the watch saw a CSP violation: %v, an uncaught exception: %v", csp, exception)
	}
	if ran := probe.eval(`String(window.inlineRan === true)`); ran != "false" {
		t.Error("an inline script ran under the BFF's CSP")
	}
}

// TestBrowserCrossOriginSPA serves the SPA from an origin other than the BFF's, as a
// deployment with a separate static host does. The allowlisted origin logs in and gets a token
// with credentialed CORS; a third origin, same-site so the cookie does travel, is refused by
// CORS alone.
func TestBrowserCrossOriginSPA(t *testing.T) {
	exe := chromiumPath(t)
	proxy := newRecordingProxy(t)
	spa := httptest.NewServer(spaHandler(t, proxy.url))
	t.Cleanup(spa.Close)
	other := httptest.NewServer(spaHandler(t, proxy.url))
	t.Cleanup(other.Close)
	// public_origin stays http://app.localhost: only the CORS allowlist admits the SPA.
	s := newStack(t, stackOptions{cors: []string{spa.URL}})
	s.addUser("acme", "dora@acme.test", testPassword)
	r := s.start()
	proxy.forwardTo(t, r.url)

	b := newBrowser(t, exe)
	tab := b.tab(t, allowNetwork(proxy.url+"/auth/me", 401))
	tab.navigate(spa.URL)
	tab.waitFor("the login form", `!document.getElementById('login-view').hidden &&
		document.getElementById('tenant').options.length === 2`)
	tab.login("acme", "dora@acme.test", testPassword)
	tab.waitFor("a token countdown", `/^\d{2}:\d{2}$/.test(document.getElementById('token-expiry').textContent) &&
		document.getElementById('status').textContent.startsWith('Basiq token ready')`)
	if got := tab.eval(`location.origin`); got != spa.URL {
		t.Fatalf("the page is at %s, want %s", got, spa.URL)
	}
	granted := false
	for _, ex := range proxy.exchanges() {
		if ex.path == "/client-token" && ex.method == "GET" && ex.origin == spa.URL && ex.status == 200 {
			granted = granted || ex.response.Get("Access-Control-Allow-Origin") == spa.URL &&
				ex.response.Get("Access-Control-Allow-Credentials") == "true"
		}
	}
	if !granted {
		t.Errorf("no GET /client-token from %s was answered 200 with credentialed CORS headers", spa.URL)
	}
	tab.checkProblems()

	// The third origin: the page's own start-up is refused, and so are hand-made requests, one
	// needing a preflight and one simple request that the BFF answers without granting access.
	third := b.tab(t, allowNetwork(proxy.url, 0), allowCORSRefusal(other.URL))
	third.navigate(other.URL)
	third.waitFor("the SPA to report the BFF unreachable", `document.getElementById('status').textContent.includes('could not be reached')`)
	for _, js := range []string{
		fmt.Sprintf(`fetch(%s, {credentials: 'include', headers: {'X-CSRF': '1'}, cache: 'no-store'})`, jsString(proxy.url+"/client-token")),
		fmt.Sprintf(`fetch(%s, {credentials: 'include', cache: 'no-store'})`, jsString(proxy.url+"/auth/me")),
	} {
		got := third.evalAwait(js + `.then((r) => 'answered ' + r.status, (e) => e.name)`)
		if got != "TypeError" {
			t.Errorf("%s from %s: %s, want a TypeError", js, other.URL, got)
		}
	}
	var fromThird int
	for _, ex := range proxy.exchanges() {
		if ex.origin != other.URL {
			continue
		}
		fromThird++
		if v := ex.response.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("%s %s from %s was granted Access-Control-Allow-Origin %q", ex.method, ex.path, other.URL, v)
		}
		if ex.method == "GET" && ex.path == "/client-token" {
			t.Errorf("GET /client-token from %s got past its preflight (answered %d)", other.URL, ex.status)
		}
		t.Logf("from the third origin: %s %s -> %d", ex.method, ex.path, ex.status)
	}
	if fromThird == 0 {
		t.Error("no request from the third origin reached the BFF; the refusal proves nothing")
	}
	third.checkProblems()
}

// chromiumPath finds Chromium: BFF_TEST_CHROMIUM, else "chromium" on PATH. Without it the test
// skips, unless BFF_TEST_REQUIRE_SERVICES=1 makes that a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("BFF_TEST_CHROMIUM")
	var err error
	if path == "" {
		path, err = exec.LookPath("chromium")
	} else if _, err = os.Stat(path); err != nil {
		err = fmt.Errorf("BFF_TEST_CHROMIUM=%s: %w", path, err)
	}
	if err != nil {
		if testenv.Required() {
			t.Fatalf("no Chromium, and BFF_TEST_REQUIRE_SERVICES=1: %v", err)
		}
		skipFor(t, skipNoChromium, fmt.Sprintf("%v: set BFF_TEST_CHROMIUM or put chromium on PATH", err))
	}
	return path
}

// browser is one headless Chromium with a fresh profile, closed when the test ends.
type browser struct {
	ctx context.Context
}

func newBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserTestTimeout)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Chromium dials out for updates, sync and QUIC probes unless told not to; the tests
		// stay on loopback.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancel()
	})
	// The first Do starts Chromium; its life is bctx's, so the timeout covers it.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium %s: %v", exe, err)
	}
	return &browser{ctx: bctx}
}

// tab is one browser tab, used by one (sub)test: see in.
type tab struct {
	t   *testing.T
	ctx context.Context
	con *consoleWatch
}

// in returns the same tab for a subtest, so that failures are reported there.
func (tb *tab) in(t *testing.T) *tab { return &tab{t: t, ctx: tb.ctx, con: tb.con} }

// consoleWatch follows a tab's console: uncaught exceptions, console.error calls, CSP
// violations and unexpected browser-log errors are the test's failures.
type consoleWatch struct {
	allow []func(chromedp.ConsoleMessage) bool

	mu       sync.Mutex
	problems []string
	barriers map[string]chan struct{}
}

// tab opens a new tab. allow lists browser-log errors the test expects (a 401 the SPA asks
// for on purpose, a CORS refusal it provokes).
func (b *browser) tab(t *testing.T, allow ...func(chromedp.ConsoleMessage) bool) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	con := &consoleWatch{allow: allow, barriers: map[string]chan struct{}{}}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			con.observe(m)
		}
	}()
	return &tab{t: t, ctx: ctx, con: con}
}

func (c *consoleWatch) observe(m chromedp.ConsoleMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Type == chromedp.ConsoleDebug && strings.HasPrefix(m.Text, "test-barrier-") {
		if ch, ok := c.barriers[m.Text]; ok {
			close(ch)
			delete(c.barriers, m.Text)
		}
		return
	}
	var problem bool
	switch {
	case m.IsException():
		problem = true
	case m.Source == "security" || strings.Contains(m.Text, "Content Security Policy"):
		problem = true // CSP violations are reported by the browser's security log
	case m.Type == chromedp.ConsoleError || m.Type == "assert":
		problem = true
		for _, ok := range c.allow {
			if ok(m) {
				problem = false
				break
			}
		}
	}
	if problem {
		c.problems = append(c.problems, fmt.Sprintf("%s [%s] %s (%s:%d)", m.Type, m.Source, m.Text, m.URL, m.Line+1))
	}
}

// checkProblems fails the test for every console problem the page has reported so far.
func (tb *tab) checkProblems() {
	tb.t.Helper()
	for _, p := range tb.takeProblems() {
		tb.t.Errorf("browser console: %s", p)
	}
}

// takeProblems returns, and forgets, the console problems the page has reported so far. A
// console.debug barrier, delivered in order with everything before it, makes "so far" exact.
func (tb *tab) takeProblems() []string {
	tb.t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "test-barrier-" + hex.EncodeToString(b[:])
	ch := make(chan struct{})
	tb.con.mu.Lock()
	tb.con.barriers[name] = ch
	tb.con.mu.Unlock()
	if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("console.debug(%s)", jsString(name)))); err != nil {
		tb.t.Errorf("console barrier: %v", err)
	} else {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			tb.t.Error("the console barrier did not come back within 5 s")
		}
	}
	tb.con.mu.Lock()
	defer tb.con.mu.Unlock()
	problems := tb.con.problems
	tb.con.problems = nil
	return problems
}

// allowNetwork accepts the browser's "Failed to load resource" entry for answers with the given
// status (0: any) from URLs starting with prefix.
func allowNetwork(prefix string, status int) func(chromedp.ConsoleMessage) bool {
	return func(m chromedp.ConsoleMessage) bool {
		if m.Source != "network" || !strings.HasPrefix(m.URL, prefix) {
			return false
		}
		return status == 0 || strings.Contains(m.Text, fmt.Sprintf("status of %d ", status))
	}
}

// allowCORSRefusal accepts the browser's report of a request from origin refused by CORS.
func allowCORSRefusal(origin string) func(chromedp.ConsoleMessage) bool {
	return func(m chromedp.ConsoleMessage) bool {
		return strings.Contains(m.Text, "from origin '"+origin+"' has been blocked by CORS policy")
	}
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v\n%s", err, tb.pageText())
	}
}

func (tb *tab) navigate(u string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(u))
}

// eval evaluates a JavaScript expression with a string result.
func (tb *tab) eval(js string) string {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// evalAwait evaluates an expression that yields a promise of a string.
func (tb *tab) evalAwait(js string) string {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// text is an element's textContent; it does not wait for the element.
func (tb *tab) text(id string) string {
	tb.t.Helper()
	return tb.eval(fmt.Sprintf(`document.getElementById(%s)?.textContent ?? ''`, jsString(id)))
}

func (tb *tab) value(id string) string {
	tb.t.Helper()
	return tb.eval(fmt.Sprintf(`document.getElementById(%s)?.value ?? ''`, jsString(id)))
}

// pageText is what the page says, for failure messages.
func (tb *tab) pageText() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + '\n' + document.body.innerText`))
	if err != nil {
		return "(page text unavailable: " + err.Error() + ")"
	}
	return "page: " + v
}

// waitFor polls a JavaScript condition until it holds. It polls from Go with Runtime.evaluate
// rather than with chromedp.Poll, whose in-page new Function() the CSP (rightly) refuses.
// Errors while a navigation swaps the document count as "not yet".
func (tb *tab) waitFor(what, js string) {
	tb.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for {
		ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) || tb.ctx.Err() != nil {
			tb.t.Fatalf("waiting for %s: timed out (last error: %v)\n%s", what, last, tb.pageText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (tb *tab) login(tenant, email, password string) {
	tb.t.Helper()
	tb.waitFor("the login form", `!document.getElementById('login-view').hidden`)
	// The form keeps the last email; neither chromedp.Clear (it resets the attribute, not the
	// live value) nor SetValue with "" empties it, so the page's own property is set.
	tb.eval(`document.getElementById('email').value = ''`)
	tb.do(
		chromedp.SetValue(chromedp.ID("tenant"), tenant),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	// The page names the organisation as the tenant picker does (/auth/me's tenant_name).
	tb.waitFor("signed in as "+email, fmt.Sprintf(`!document.getElementById('app-view').hidden &&
		document.getElementById('user-email').textContent === %s &&
		document.getElementById('user-tenant').textContent ===
			[...document.getElementById('tenant').options].find((o) => o.value === %s).text`, jsString(email), jsString(tenant)))
}

func (tb *tab) logout() {
	tb.t.Helper()
	tb.do(chromedp.Click(chromedp.ID("logout")))
	tb.waitFor("the signed-out login form", `!document.getElementById('login-view').hidden &&
		document.getElementById('app-view').hidden &&
		document.getElementById('status').textContent === 'You are signed out.' &&
		document.getElementById('token-expiry').textContent === '--:--'`)
}

// watchMessages records, from now on in this document, every text of #connect-result and
// every rendering of #job-steps, so a test can see what only flashed by.
func (tb *tab) watchMessages() {
	tb.t.Helper()
	tb.eval(`(() => {
		const seen = { messages: [], steps: [] };
		window.__seen = seen;
		const result = document.getElementById('connect-result');
		new MutationObserver(() => seen.messages.push(result.textContent))
			.observe(result, { childList: true, characterData: true, subtree: true });
		const steps = document.getElementById('job-steps');
		new MutationObserver(() => seen.steps.push([...steps.children].map((li) => li.dataset.status).join(',')))
			.observe(steps, { childList: true, subtree: true, attributes: true });
		return 'ok';
	})()`)
}

type seenTexts struct {
	Messages []string `json:"messages"`
	Steps    []string `json:"steps"`
}

func (tb *tab) seen() seenTexts {
	tb.t.Helper()
	var s seenTexts
	if err := json.Unmarshal([]byte(tb.eval(`JSON.stringify(window.__seen)`)), &s); err != nil {
		tb.t.Fatal(err)
	}
	return s
}

// screenshot saves a full-page PNG under $BFF_TEST_ARTIFACTS, else the test's temp dir.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	buf, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100) /* 100: PNG */)
	if err != nil {
		tb.t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("BFF_TEST_ARTIFACTS")
	if dir == "" {
		dir = tb.t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", path)
}

// recordingProxy stands between the browser and the BFF and keeps every exchange, bodies
// included: the BFF runs in-process, so this is where its traffic can be seen whole.
type recordingProxy struct {
	url    string
	target atomic.Pointer[url.URL]

	mu   sync.Mutex
	exes []*exchange
}

// exchange is one recorded request and the BFF's answer.
type exchange struct {
	method, path, origin string
	request              http.Header
	rawURL               string
	body                 []byte
	status               int
	response             http.Header
	responseBody         []byte
}

// dump is everything the BFF saw and said in one exchange.
func (ex *exchange) dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", ex.method, ex.rawURL)
	ex.request.Write(&b)
	b.Write(ex.body)
	fmt.Fprintf(&b, "\n%d\n", ex.status)
	ex.response.Write(&b)
	b.Write(ex.responseBody)
	return b.String()
}

type exchangeKey struct{}

func newRecordingProxy(t *testing.T) *recordingProxy {
	t.Helper()
	p := &recordingProxy{}
	c := loadContract(t)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.target.Load())
			pr.Out.Host = pr.In.Host // the BFF sees the origin the browser used
		},
		ModifyResponse: func(resp *http.Response) error {
			ex, _ := resp.Request.Context().Value(exchangeKey{}).(*exchange)
			if ex == nil {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(body))
			// Everything the browser got from the BFF is checked against api/openapi.yaml.
			if cerr := c.check(resp.Request, resp.StatusCode, resp.Header, body); cerr != nil {
				t.Errorf("contract: %v", cerr)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			ex.status, ex.response, ex.responseBody = resp.StatusCode, resp.Header.Clone(), body
			return err
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.target.Load() == nil {
			http.Error(w, "the BFF is not up yet", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ex := &exchange{method: r.Method, path: r.URL.Path, origin: r.Header.Get("Origin"),
			rawURL: r.URL.String(), request: r.Header.Clone(), body: body}
		p.mu.Lock()
		p.exes = append(p.exes, ex)
		p.mu.Unlock()
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex)))
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *recordingProxy) forwardTo(t *testing.T, bff string) {
	t.Helper()
	p.target.Store(mustURL(t, bff))
}

// exchanges returns copies of what was recorded so far.
func (p *recordingProxy) exchanges() []exchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]exchange, len(p.exes))
	for i, ex := range p.exes {
		out[i] = *ex
		if out[i].response == nil {
			out[i].response = http.Header{}
		}
	}
	return out
}

// spaHandler serves the SPA's embedded files as a static host would, with index.html pointing
// at the BFF and a CSP like the BFF's own (connect-src adds the BFF).
func spaHandler(t *testing.T, bffOrigin string) http.Handler {
	t.Helper()
	index, err := fs.ReadFile(web.FS, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	const meta = `<meta name="bff-origin" content="">`
	if bytes.Count(index, []byte(meta)) != 1 {
		t.Fatalf("index.html does not have exactly one %s", meta)
	}
	index = bytes.Replace(index, []byte(meta), []byte(`<meta name="bff-origin" content="`+bffOrigin+`">`), 1)
	files := http.FileServerFS(web.FS)
	csp := "default-src 'self'; connect-src 'self' " + bffOrigin +
		"; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/" || r.URL.Path == "/index.html" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(index)
			return
		}
		files.ServeHTTP(w, r)
	})
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func randomToken(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// basiqUserIDsAfterFirstToken lists the basiq_user_id of every successful GET /auth/me that
// followed the first successful GET /client-token.
func basiqUserIDsAfterFirstToken(t *testing.T, exchanges []exchange) []string {
	t.Helper()
	var ids []string
	tokenSeen := false
	for _, ex := range exchanges {
		switch {
		case ex.method != "GET" || ex.status != 200:
		case ex.path == "/client-token":
			tokenSeen = true
		case ex.path == "/auth/me" && tokenSeen:
			var me meResponse
			if err := json.Unmarshal(ex.responseBody, &me); err != nil {
				t.Fatalf("GET /auth/me body %q: %v", ex.responseBody, err)
			}
			ids = append(ids, me.User.BasiqUserID)
		}
	}
	return ids
}

// mmss parses the countdown's mm:ss into seconds.
func mmss(t *testing.T, s string) int {
	t.Helper()
	var m, sec int
	if _, err := fmt.Sscanf(s, "%d:%d", &m, &sec); err != nil {
		t.Errorf("countdown %q is not mm:ss", s)
		return 0
	}
	return m*60 + sec
}

// countExchanges counts recorded requests to path.
func countExchanges(exchanges []exchange, path string) int {
	n := 0
	for _, ex := range exchanges {
		if ex.path == path {
			n++
		}
	}
	return n
}
