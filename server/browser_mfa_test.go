package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
)

// TestBrowserMFA drives the API 2.1 connection form against a bank that asks for a one-time
// code after login: the page offers the bank list with each bank's login fields, asks for the
// code when the job waits on it, posts it once straight to Basiq, and the job completes.
func TestBrowserMFA(t *testing.T) {
	exe := chromiumPath(t)
	s := newStack(t, stackOptions{})
	gamma := emulator.GenerateKey()
	s.emu.AddKey(gamma, emulator.KeyOptions{})
	s.env["GAMMA_KEY"] = gamma
	s.writeConfig(fmt.Sprintf(`  - id: gamma
    name: Gamma Savings
    basiq:
      base_url: %s
      version: "2.1"
      api_keys:
        - {id: gamma-1, env: GAMMA_KEY}
`, s.emuURL))
	s.addUser("gamma", "dan@gamma.test", testPassword)
	proxy := newRecordingProxy(t)
	s.env["BFF_PUBLIC_ORIGIN"] = proxy.url
	r := s.start()
	proxy.forwardTo(t, r.url)

	b := newBrowser(t, exe)
	tab := b.tab(t, allowNetwork(proxy.url+"/auth/me", 401))
	defer tab.checkProblems()
	tab.navigate(proxy.url)
	tab.login("gamma", "dan@gamma.test", testPassword)
	tab.waitFor("the 2.1 form with the bank list", `document.getElementById('basiq-version').textContent === '2.1' &&
		document.querySelectorAll('#institution-list option').length >= 3`)

	// The business bank asks for a customer number: the page shows that field, labelled by the bank.
	tab.eval(`(() => { const i = document.getElementById('institution'); i.value = 'AU00002'; i.dispatchEvent(new Event('input')); return 'ok'; })()`)
	tab.waitFor("the secondary login field", `!document.getElementById('secondary-login-field').hidden &&
		document.getElementById('secondary-login-label').textContent === 'Customer number'`)

	tab.eval(`(() => { const i = document.getElementById('institution'); i.value = 'AU00001'; i.dispatchEvent(new Event('input')); return 'ok'; })()`)
	tab.waitFor("the MFA bank chosen", `document.getElementById('secondary-login-field').hidden &&
		document.getElementById('institution-hint').textContent.includes('Hooli MFA')`)
	tab.do(
		chromedp.SendKeys(chromedp.ID("login-id"), "dan"),
		chromedp.SendKeys(chromedp.ID("bank-password"), "hooli2016"),
		chromedp.Click(chromedp.ID("connect-submit")),
	)
	tab.waitFor("the bank's code prompt", `!document.getElementById('mfa-form').hidden &&
		document.getElementById('mfa-prompt').textContent.includes('6-digit code')`)
	tab.screenshot("browser-2.1-mfa-prompt")
	tab.do(
		chromedp.SendKeys(chromedp.ID("mfa-code"), emulator.MFACode),
		chromedp.Click(chromedp.ID("mfa-submit")),
	)
	tab.waitFor("every job step to succeed", `(() => {
		const steps = [...document.querySelectorAll('#job-steps li')];
		return steps.length === 3 && steps.every((li) => li.dataset.status === 'success') &&
			document.getElementById('connect-result').textContent.startsWith('Connected') &&
			document.getElementById('mfa-form').hidden;
	})()`)
	tab.screenshot("browser-2.1-mfa-connected")
	if n := s.emu.MFAAnswers(); n != 1 {
		t.Errorf("Basiq received %d MFA answers, want 1", n)
	}
	if n := s.emu.Requests(emulator.RouteInstitutions); n != 1 {
		t.Errorf("the bank list was fetched %d times, want once per session", n)
	}
	for _, ex := range proxy.exchanges() {
		if strings.Contains(string(ex.body)+ex.rawURL, emulator.MFACode) {
			t.Errorf("the one-time code went through the BFF: %s %s", ex.method, ex.path)
		}
	}
}
