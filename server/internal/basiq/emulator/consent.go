package emulator

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// consentPages are the Consent UI stub's pages. They name the emulator in the title so nobody
// mistakes them for Basiq's real Consent UI.
const consentPages = `
{{define "page"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Basiq Consent UI (emulator)</title></head>
<body>
<h1>Basiq Consent UI (emulator)</h1>
<p>This page stands in for https://consent.basiq.io/home. No bank is contacted.</p>
<p>Basiq user: <code id="user">{{.UserID}}</code>{{if .Action}}, action: <code id="action">{{.Action}}</code>{{end}}{{if .InstitutionID}}, institution: <code id="institution">{{.InstitutionID}}</code>{{end}}{{if .ConnectionID}}, connection: <code id="connection">{{.ConnectionID}}</code>{{end}}</p>
{{if .FinishURL}}<ul>
<li><a id="finish" href="{{.FinishURL}}">Finish</a> (the bank connects: one job that succeeds)</li>
<li><a id="finish-failed" href="{{.FailURL}}">Finish with a failed connection</a> (one job whose first step fails)</li>
<li><a id="close" href="{{.CloseURL}}">Close</a> (nothing connected: no jobs)</li>
</ul>
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

// Consent UI outcomes, the three ways a person leaves it.
const (
	OutcomeSuccess = "success" // one job that succeeds, and an active consent
	OutcomeFailed  = "failed"  // one job whose first step fails
	OutcomeClosed  = "closed"  // no jobs: the person pressed Close
)

// consentActions are the documented values of the Consent UI's action parameter
// (Basiq-docs docs/PLatform/consent/consent-actions.md). "null" is the documented spelling of
// "no action".
var consentActions = map[string]bool{"": true, "null": true, "connect": true, "manage": true, "extend": true, "update": true, "reauthorise": true}

// consentVisit is one opening of the Consent UI, kept until the person leaves it.
type consentVisit struct {
	userID, applicationID, state, institutionID string
	expires                                     time.Time
}

// consentRecord is a consent the emulator holds for a user (GET /users/{id}/consents).
type consentRecord struct {
	id               string
	created, expires time.Time
	status           string // active, revoked
}

// handleConsent is the Consent UI stub, GET /home?token=..[&action=..][&institutionId=..]
// [&connectionId=..][&state=..].
//
// It refuses, with 400 and an HTML page (the real Consent UI is a page, not an API), a token
// that is missing, forged, expired, not CLIENT_ACCESS or not bound to a user; an action Basiq
// does not document; extend or update without an active consent (Basiq: "An error occurs if
// this action is used without active user consent"); and an institutionId or connectionId that
// is not valid for the user. Otherwise it shows a page with three ways out, each going back to
// the configured redirect with state echoed [doc: the redirect is set in Basiq's dashboard].
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
	institutionID, connectionID := q.Get("institutionId"), q.Get("connectionId")
	c, ok := e.verify(tok)
	now := e.now()
	if problem := consentLinkProblem(tok, ok, c, now, action, institutionID); problem != "" {
		e.consentError(w, http.StatusBadRequest, problem)
		return
	}

	e.mu.Lock()
	redirect := e.consentRedirect
	active := e.activeConsentLocked(c.UserID, now)
	conn, connFound := e.conns[connectionID]
	e.mu.Unlock()
	switch {
	case (action == "extend" || action == "update") && !active:
		e.consentError(w, http.StatusBadRequest, "This action needs an active consent, and the user has none.")
		return
	case connectionID != "" && (!connFound || conn.userID != c.UserID):
		e.consentError(w, http.StatusBadRequest, "The connection is not valid for this user.")
		return
	}

	data := struct{ UserID, Action, InstitutionID, ConnectionID, FinishURL, FailURL, CloseURL string }{
		UserID: c.UserID, Action: action, InstitutionID: institutionID, ConnectionID: connectionID}
	if redirect != "" {
		if _, err := url.Parse(redirect); err != nil {
			e.consentError(w, http.StatusInternalServerError, "The configured consent redirect is not a valid URL.")
			return
		}
		if institutionID == "" {
			institutionID = "AU00000"
			if connFound {
				institutionID = conn.institutionID
			}
		}
		id := newUUID()
		e.mu.Lock()
		e.visits[id] = consentVisit{userID: c.UserID, applicationID: c.ApplicationID, state: q.Get("state"),
			institutionID: institutionID, expires: now.Add(time.Hour)}
		e.mu.Unlock()
		link := func(outcome string) string {
			return "/home/finish?" + url.Values{"visit": {id}, "outcome": {outcome}}.Encode()
		}
		data.FinishURL, data.FailURL, data.CloseURL = link(OutcomeSuccess), link(OutcomeFailed), link(OutcomeClosed)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	e.pages.ExecuteTemplate(w, "page", data)
}

// consentLinkProblem says what is wrong with a Consent UI link (its token, action and
// institution), or "".
func consentLinkProblem(tok string, ok bool, c claims, now time.Time, action, institutionID string) string {
	switch {
	case tok == "":
		return "The token parameter is required."
	case !ok:
		return "The token is not valid."
	case now.Unix() >= c.ExpiresAt:
		return "The token has expired."
	case c.Scope != ScopeClient:
		return "The Consent UI needs a CLIENT_ACCESS token."
	case c.UserID == "":
		return "The token is not bound to a user (userId)."
	case !consentActions[action]:
		return "The action is not supported."
	case institutionID != "" && !validInstitutionID(institutionID):
		return "The institution is not valid."
	}
	return ""
}

// handleConsentFinish is where the stub's links lead: it runs the chosen outcome and sends
// the person to the redirect with state and, when a bank was attempted, jobIds (and jobId),
// as Basiq's Consent UI does (Basiq-docs consent-actions.md, "Close Button Functionality":
// "The URL includes any state parameter provided, as well as jobId and jobIds values").
// Each visit can be left once.
func (e *Emulator) handleConsentFinish(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet {
		h.Set("Allow", "GET")
		e.consentError(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	q := r.URL.Query()
	outcome := q.Get("outcome")
	now := e.now()
	e.mu.Lock()
	v, ok := e.visits[q.Get("visit")]
	if ok {
		delete(e.visits, q.Get("visit"))
	}
	redirect := e.consentRedirect
	e.mu.Unlock()
	switch {
	case !ok || now.After(v.expires):
		e.consentError(w, http.StatusBadRequest, "This Consent UI visit has ended.")
		return
	case outcome != OutcomeSuccess && outcome != OutcomeFailed && outcome != OutcomeClosed:
		e.consentError(w, http.StatusBadRequest, "The outcome is not valid.")
		return
	}
	u, err := url.Parse(redirect)
	if redirect == "" || err != nil {
		e.consentError(w, http.StatusInternalServerError, "No valid consent redirect is configured.")
		return
	}
	vals := u.Query()
	if v.state != "" {
		vals.Set("state", v.state)
	}
	if outcome != OutcomeClosed {
		conn := connection{id: newUUID(), userID: v.userID, applicationID: v.applicationID, institutionID: v.institutionID}
		j := &job{id: newUUID(), conn: conn, created: now, updated: now, fails: outcome == OutcomeFailed}
		e.mu.Lock()
		e.jobs[j.id] = j
		if outcome == OutcomeSuccess {
			e.conns[conn.id] = conn
			if !e.activeConsentLocked(v.userID, now) {
				e.consents[v.userID] = append(e.consents[v.userID], consentRecord{id: newUUID(), created: now,
					expires: now.AddDate(1, 0, 0), status: "active"})
			}
		}
		e.mu.Unlock()
		vals.Set("jobIds", j.id)
		vals.Set("jobId", j.id)
	}
	u.RawQuery = vals.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (e *Emulator) activeConsentLocked(userID string, now time.Time) bool {
	for _, c := range e.consents[userID] {
		if c.status == "active" && now.Before(c.expires) {
			return true
		}
	}
	return false
}

// AddConsent gives a user an active consent for a year, as if they had finished the Consent UI.
func (e *Emulator) AddConsent(userID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.consents[userID] = append(e.consents[userID], consentRecord{id: newUUID(), created: now, expires: now.AddDate(1, 0, 0), status: "active"})
}

// handleUser is GET and DELETE /users/{userID}, SERVER_ACCESS only. A deleted user answers 404
// from then on, and a CLIENT_ACCESS token can no longer be minted for it.
func (e *Emulator) handleUser(w http.ResponseWriter, r *http.Request) {
	c, ok := e.serverCall(w, r, RouteUser, http.MethodGet, http.MethodDelete)
	if !ok {
		return
	}
	id := r.PathValue("userID")
	if !e.hasUser(c.ApplicationID, id) {
		writeError(w, errNotFound("User not found."))
		return
	}
	if r.Method == http.MethodDelete {
		e.DeleteUser(c.ApplicationID, id)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Links links  `json:"links"`
	}{Type: "user", ID: id, Links: links{Self: e.publicURL + "/users/" + id}})
}

// handleConsents is GET /users/{userID}/consents, SERVER_ACCESS only (core.json: services_token).
func (e *Emulator) handleConsents(w http.ResponseWriter, r *http.Request) {
	c, ok := e.serverCall(w, r, RouteConsents, http.MethodGet)
	if !ok {
		return
	}
	id := r.PathValue("userID")
	if !e.hasUser(c.ApplicationID, id) {
		writeError(w, errNotFound("User not found."))
		return
	}
	type item struct {
		Type       string `json:"type"`
		ID         string `json:"id"`
		Created    string `json:"created"`
		Updated    string `json:"updated"`
		ExpiryDate string `json:"expiryDate"`
		Origin     string `json:"origin"`
		Status     string `json:"status"`
	}
	now := e.now()
	e.mu.Lock()
	list := make([]item, 0, len(e.consents[id]))
	for _, rec := range e.consents[id] {
		status := rec.status
		if status == "active" && !now.Before(rec.expires) {
			status = "expired"
		}
		list = append(list, item{Type: "consent", ID: rec.id, Created: rec.created.UTC().Format(time.RFC3339),
			Updated: rec.created.UTC().Format(time.RFC3339), ExpiryDate: rec.expires.UTC().Format(time.RFC3339),
			Origin: "user", Status: status})
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Type string `json:"type"`
		Size int    `json:"size"`
		Data []item `json:"data"`
	}{Type: "list", Size: len(list), Data: list})
}

// DeleteUser deletes a Basiq user, as DELETE /users/{id} does: GET /users/{id} then answers
// 404 and /token refuses a CLIENT_ACCESS token bound to it ("User ID value is not valid").
func (e *Emulator) DeleteUser(applicationID, userID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.users[applicationID], userID)
	if e.deleted[applicationID] == nil {
		e.deleted[applicationID] = map[string]bool{}
	}
	e.deleted[applicationID][userID] = true
	delete(e.consents, userID)
}

func (e *Emulator) wasDeleted(applicationID, userID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.deleted[applicationID][userID] && !e.users[applicationID][userID]
}

// ApplicationOf returns the application id behind an API key.
func (e *Emulator) ApplicationOf(key string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.keys[key].ApplicationID
}

func (e *Emulator) consentError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	e.pages.ExecuteTemplate(w, "error", strings.TrimSpace(msg))
}
