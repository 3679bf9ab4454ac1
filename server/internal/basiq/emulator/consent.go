package emulator

import (
	"net/http"
	"net/url"
)

// consentPages are the Consent UI stub's two pages. They name the emulator in the title so
// nobody mistakes them for Basiq's real Consent UI.
const consentPages = `
{{define "page"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Basiq Consent UI (emulator)</title></head>
<body>
<h1>Basiq Consent UI (emulator)</h1>
<p>This page stands in for https://consent.basiq.io/home. No bank is contacted.</p>
<p>Basiq user: <code id="user">{{.UserID}}</code>{{if .Action}}, action: <code id="action">{{.Action}}</code>{{end}}</p>
{{if .FinishURL}}<p><a id="finish" href="{{.FinishURL}}">Finish</a></p>
{{else}}<p id="no-redirect">No consent redirect is configured for this emulator, so there is nowhere to send you back to.
Set Options.ConsentRedirect or call SetConsentRedirect.</p>
{{end}}</body></html>
{{end}}
{{define "error"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Basiq Consent UI (emulator): error</title></head>
<body>
<h1>Basiq Consent UI (emulator)</h1>
<p id="error">{{.}}</p>
</body></html>
{{end}}`

// handleConsent is the Consent UI stub, GET /home?token=..[&action=..][&state=..].
//
// It refuses, with 400 and an HTML page (the real Consent UI is a page, not an API), a token
// that is missing, forged, expired, not CLIENT_ACCESS or not bound to a user, and an action
// other than connect or manage. Otherwise it shows a page whose Finish link goes to the
// configured redirect with state appended [inferred: Basiq configures the redirect in its
// dashboard and echoes state].
func (e *Emulator) handleConsent(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	// The page's own URL carries the token: never leak it to the redirect target as a Referer.
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		e.consentError(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	q := r.URL.Query()
	tok, action := q.Get("token"), q.Get("action")
	c, ok := e.verify(tok)
	switch {
	case tok == "":
		e.consentError(w, http.StatusBadRequest, "The token parameter is required.")
		return
	case !ok:
		e.consentError(w, http.StatusBadRequest, "The token is not valid.")
		return
	case e.now().Unix() >= c.ExpiresAt:
		e.consentError(w, http.StatusBadRequest, "The token has expired.")
		return
	case c.Scope != ScopeClient:
		e.consentError(w, http.StatusBadRequest, "The Consent UI needs a CLIENT_ACCESS token.")
		return
	case c.UserID == "":
		e.consentError(w, http.StatusBadRequest, "The token is not bound to a user (userId).")
		return
	case action != "" && action != "connect" && action != "manage":
		e.consentError(w, http.StatusBadRequest, "The action is not supported.")
		return
	}

	e.mu.Lock()
	redirect := e.consentRedirect
	e.mu.Unlock()
	data := struct{ UserID, Action, FinishURL string }{UserID: c.UserID, Action: action}
	if redirect != "" {
		u, err := url.Parse(redirect)
		if err != nil {
			e.consentError(w, http.StatusInternalServerError, "The configured consent redirect is not a valid URL.")
			return
		}
		if state := q.Get("state"); state != "" {
			v := u.Query()
			v.Set("state", state)
			u.RawQuery = v.Encode()
		}
		data.FinishURL = u.String()
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	e.pages.ExecuteTemplate(w, "page", data)
}

func (e *Emulator) consentError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	e.pages.ExecuteTemplate(w, "error", msg)
}
