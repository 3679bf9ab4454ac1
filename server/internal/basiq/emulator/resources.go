package emulator

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// serverCall is the start of every SERVER_ACCESS endpoint: the method (one of methods, else
// 405 with Allow), the route's faults, the bearer token, then its scope (403 for a
// CLIENT_ACCESS token). It answers the request itself and returns false when one fails.
func (e *Emulator) serverCall(w http.ResponseWriter, r *http.Request, route string, methods ...string) (claims, bool) {
	if !slices.Contains(methods, r.Method) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeError(w, errMethodNotAllowed())
		return claims{}, false
	}
	if !e.disturb(w, r, route) {
		return claims{}, false
	}
	c, ok := e.bearer(w, r)
	if !ok {
		return claims{}, false
	}
	if c.Scope != ScopeServer {
		writeError(w, errForbidden())
		return claims{}, false
	}
	return c, true
}

// bearer is the check every non-/token endpoint runs. It answers the request
// itself and returns false when the token is missing, forged (401) or expired (403).
func (e *Emulator) bearer(w http.ResponseWriter, r *http.Request) (claims, bool) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		writeError(w, errInvalidBearer())
		return claims{}, false
	}
	c, ok := e.verify(tok)
	if !ok {
		writeError(w, errInvalidBearer())
		return claims{}, false
	}
	if e.now().Unix() >= c.ExpiresAt {
		writeError(w, errTokenExpired())
		return claims{}, false
	}
	return c, true
}

// mayActFor: SERVER_ACCESS may act for any user; CLIENT_ACCESS only for the user it is bound
// to, or, unbound, under API 2.x where Basiq's own browser sample used such tokens.
func mayActFor(c claims, userID string) bool {
	switch {
	case c.Scope == ScopeServer:
		return true
	case c.Scope != ScopeClient:
		return false
	case c.UserID != "":
		return c.UserID == userID
	}
	return strings.HasPrefix(c.Version, "2.")
}

// jsonBody checks the Content-Type (JSON or none) and reads the body into v.
func jsonBody(r *http.Request, v any, invalid string) (apiError, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return errUnsupportedContentType(), true
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	switch {
	case err != nil:
		return errInvalidContent("Request body could not be read."), true
	case len(body) > maxRequestBody:
		return errInvalidContent("Request body is too large."), true
	}
	if err := json.Unmarshal(body, v); err != nil {
		return apiError{status: http.StatusBadRequest, code: "parameter-not-valid", title: "Required parameter not valid", detail: invalid, source: "{}"}, true
	}
	return apiError{}, false
}

// userFields are the documented POST /users fields; the 201 echoes what was sent.
type userFields struct {
	Email              string          `json:"email"`
	Mobile             string          `json:"mobile"`
	FirstName          string          `json:"firstName,omitempty"`
	MiddleName         string          `json:"middleName,omitempty"`
	LastName           string          `json:"lastName,omitempty"`
	BusinessName       string          `json:"businessName,omitempty"`
	BusinessIDNo       string          `json:"businessIdNo,omitempty"`
	BusinessIDNoType   string          `json:"businessIdNoType,omitempty"`
	BusinessAddress    json.RawMessage `json:"businessAddress,omitempty"`
	VerificationStatus *bool           `json:"verificationStatus,omitempty"`
	VerificationDate   string          `json:"verificationDate,omitempty"`
}

// handleUsers is POST /users: SERVER_ACCESS only.
func (e *Emulator) handleUsers(w http.ResponseWriter, r *http.Request) {
	c, ok := e.serverCall(w, r, RouteUsers, http.MethodPost)
	if !ok {
		return
	}
	var u userFields
	if ae, bad := jsonBody(r, &u, "Posted user is not in valid format."); bad {
		writeError(w, ae)
		return
	}
	if ae, bad := validateUser(u); bad {
		writeError(w, ae)
		return
	}

	id := newUUID()
	e.mu.Lock()
	e.addUserLocked(c.ApplicationID, id)
	e.usersCreated++
	e.mu.Unlock()
	writeJSON(w, http.StatusCreated, struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		userFields
		Links struct {
			Self string `json:"self"`
		} `json:"links"`
	}{Type: "user", ID: id, userFields: u, Links: struct {
		Self string `json:"self"`
	}{e.publicURL + "/users/" + id}})
}

// validateUser applies the documented 400s of POST /users; the first body is [fixture], the
// detail texts are [doc], their codes and sources [inferred].
func validateUser(u userFields) (apiError, bool) {
	bad := func(detail string) (apiError, bool) {
		return apiError{status: http.StatusBadRequest, code: "parameter-not-valid", title: "Required parameter not valid", detail: detail, source: "{}"}, true
	}
	switch {
	case u.Email == "" && u.Mobile == "":
		return apiError{status: http.StatusBadRequest, code: "parameter-not-supplied", title: "Required parameter not supplied",
			detail: "One of 'email' or 'mobile' is required.", source: "{}"}, true
	case u.Email != "" && !validEmail(u.Email):
		return bad("Provided email is in bad format.")
	case u.Mobile != "" && !validMobile(u.Mobile):
		return bad("Provided mobile is in bad format.")
	case u.BusinessIDNo != "" && u.BusinessName == "":
		return apiError{status: http.StatusBadRequest, code: "parameter-not-supplied", title: "Required parameter not supplied",
			detail: "Business name is required when business number is provided.", source: "{}"}, true
	case u.BusinessIDNoType != "" && u.BusinessIDNoType != "ABN" && u.BusinessIDNoType != "ACN":
		return bad("Provided businessIdNoType is not valid.")
	}
	return apiError{}, false
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s && strings.Contains(s[strings.LastIndex(s, "@")+1:], ".")
}

// validMobile accepts an optional '+' and 8 to 15 digits (E.164 length).
func validMobile(s string) bool {
	d := strings.TrimPrefix(s, "+")
	if len(d) < 8 || len(d) > 15 {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CORS for the routes a browser calls directly with a CLIENT_ACCESS token. No credentials: the
// token travels in the Authorization header, never in a cookie.
func allowCORS(w http.ResponseWriter) { w.Header().Set("Access-Control-Allow-Origin", "*") }

func preflight(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// browserRoute is the common start of the routes a browser calls directly: CORS, the
// preflight, the method check, any injected fault for route, then the bearer check. It answers
// the request itself and returns false when the handler must stop there.
func (e *Emulator) browserRoute(w http.ResponseWriter, r *http.Request, method, route string) (claims, bool) {
	allowCORS(w)
	switch r.Method {
	case http.MethodOptions:
		preflight(w)
		return claims{}, false
	case method:
	default:
		w.Header().Set("Allow", method+", OPTIONS")
		writeError(w, errMethodNotAllowed())
		return claims{}, false
	}
	if !e.disturb(w, r, route) {
		return claims{}, false
	}
	return e.bearer(w, r)
}

// userConnectionsRoute is browserRoute for /users/{userID}/connections[/...], where the token
// must also be allowed to act for that user. It returns the claims and the user's id.
func (e *Emulator) userConnectionsRoute(w http.ResponseWriter, r *http.Request, method string) (claims, string, bool) {
	c, ok := e.browserRoute(w, r, method, RouteConnections)
	if !ok {
		return claims{}, "", false
	}
	userID := r.PathValue("userID")
	if !mayActFor(c, userID) {
		writeError(w, errUnauthorizedAccess())
		return claims{}, "", false
	}
	return c, userID, true
}

// connection is an accepted connection, kept for DELETE and for the job's links.
type connection struct {
	id, userID, applicationID, institutionID string
}

// handleConnections is POST /users/{userID}/connections, the API 2.x browser flow.
func (e *Emulator) handleConnections(w http.ResponseWriter, r *http.Request) {
	c, userID, ok := e.userConnectionsRoute(w, r, http.MethodPost)
	if !ok {
		return
	}
	if e.strictUserID && !e.hasUser(c.ApplicationID, userID) {
		writeError(w, errNotFound("User not found."))
		return
	}
	var body struct {
		LoginID          string `json:"loginId"`
		Password         string `json:"password"`
		SecurityCode     string `json:"securityCode"`
		SecondaryLoginID string `json:"secondaryLoginId"`
		Institution      *struct {
			ID string `json:"id"`
		} `json:"institution"`
	}
	if ae, bad := jsonBody(r, &body, "Posted connection is not in valid format."); bad {
		writeError(w, ae)
		return
	}
	switch {
	case body.LoginID == "":
		writeError(w, errNotSupplied("loginId", "body/loginId", "loginId is required."))
		return
	case body.Password == "":
		writeError(w, errNotSupplied("password", "body/password", "password is required."))
		return
	case body.Institution == nil || body.Institution.ID == "":
		writeError(w, errNotSupplied("institution.id", "body/institution/id", "institution.id is required."))
		return
	case !validInstitutionID(body.Institution.ID):
		writeError(w, errNotValid("institution.id", "body/institution/id", "Institution id is not valid."))
		return
	}
	inst, known := institutionByID(body.Institution.ID)
	switch {
	case known && inst.SecondaryLoginIDCaption != "" && body.SecondaryLoginID == "":
		writeError(w, errNotSupplied("secondaryLoginId", "body/secondaryLoginId", "secondaryLoginId is required for this institution."))
		return
	case known && inst.SecurityCodeCaption != "" && body.SecurityCode == "":
		writeError(w, errNotSupplied("securityCode", "body/securityCode", "securityCode is required for this institution."))
		return
	}

	now := e.now()
	conn := connection{id: newUUID(), userID: userID, applicationID: c.ApplicationID, institutionID: body.Institution.ID}
	j := &job{
		id: newUUID(), conn: conn, created: now, updated: now,
		// The one scripted failure: "wrong-password" fails verify-credentials, so the browser's
		// error path can be exercised.
		fails: body.Password == "wrong-password",
	}
	if known && inst.mfa != "" && !j.fails {
		j.mfa = &mfaState{prompt: inst.mfa}
	}
	e.mu.Lock()
	e.jobs[j.id] = j
	e.conns[conn.id] = conn
	e.connections = append(e.connections, ConnectionRecord{
		UserID: userID, LoginID: body.LoginID, Password: body.Password, SecurityCode: body.SecurityCode,
		SecondaryLoginID: body.SecondaryLoginID, InstitutionID: body.Institution.ID,
		ConnectionID: conn.id, JobID: j.id, Received: now,
	})
	e.mu.Unlock()
	writeJSON(w, http.StatusAccepted, jobRef{Type: "job", ID: j.id, Links: links{Self: e.publicURL + "/jobs/" + j.id}})
}

// validInstitutionID accepts Basiq's "AU" + five digits (the sandbox bank is AU00000).
func validInstitutionID(s string) bool {
	if len(s) != 7 || !strings.HasPrefix(s, "AU") {
		return false
	}
	for _, c := range s[2:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// handleConnection is DELETE /users/{userID}/connections/{connectionID}.
func (e *Emulator) handleConnection(w http.ResponseWriter, r *http.Request) {
	c, userID, ok := e.userConnectionsRoute(w, r, http.MethodDelete)
	if !ok {
		return
	}
	e.mu.Lock()
	conn, found := e.conns[r.PathValue("connectionID")]
	found = found && conn.userID == userID && conn.applicationID == c.ApplicationID
	if found {
		delete(e.conns, conn.id)
	}
	e.mu.Unlock()
	if !found {
		writeError(w, errNotFound("Connection not found."))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// job is one connection job. Its steps advance one per poll or one per second of the
// (injectable) clock, whichever is further along, so both polling browsers and clock-driven
// tests see progress.
type job struct {
	id               string
	conn             connection
	created, updated time.Time
	polls, stage     int
	fails            bool
	failure          map[string]string // the failed step's result; nil: invalid-credentials
	mfa              *mfaState         // nil: the institution asks for no MFA
}

type links struct {
	Self   string `json:"self"`
	Source string `json:"source,omitempty"`
}

type jobRef struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Links links  `json:"links"`
}

// handleJob is GET /jobs/{jobID}: SERVER_ACCESS of the job's application, or CLIENT_ACCESS for
// the job's user (unbound under 2.x: the same application).
func (e *Emulator) handleJob(w http.ResponseWriter, r *http.Request) {
	c, ok := e.browserRoute(w, r, http.MethodGet, RouteJobs)
	if !ok {
		return
	}
	now := e.now()
	e.mu.Lock()
	j, found := e.jobs[r.PathValue("jobID")]
	// Another application's job is invisible, not forbidden: applications are data boundaries.
	if !found || j.conn.applicationID != c.ApplicationID {
		e.mu.Unlock()
		writeError(w, errNotFound("Job not found."))
		return
	}
	if !mayActFor(c, j.conn.userID) {
		e.mu.Unlock()
		writeError(w, errUnauthorizedAccess())
		return
	}
	body := e.advanceLocked(j, now)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

type jobStep struct {
	Title  string `json:"title"`
	Status string `json:"status"`
	Result any    `json:"result"`
}

type jobBody struct {
	Type    string    `json:"type"`
	ID      string    `json:"id"`
	Created string    `json:"created"`
	Updated string    `json:"updated"`
	Steps   []jobStep `json:"steps"`
	Links   links     `json:"links"`
}

// advanceLocked counts a poll, moves the job on and renders it (shape of Basiq's getJob.json).
// A job for an institution with MFA holds verify-credentials in progress, its result an
// mfa-challenge, until POST /jobs/{id}/mfa answers; it then moves on from that moment.
func (e *Emulator) advanceLocked(j *job, now time.Time) jobBody {
	jobSteps := [...]string{"verify-credentials", "retrieve-accounts", "retrieve-transactions"}
	j.polls++
	start, polls := j.created, j.polls
	waiting := j.mfa != nil && !j.mfa.answered
	if j.mfa != nil && j.mfa.answered {
		start, polls = j.mfa.at, j.polls-j.mfa.polls
	}
	stage := polls - 1 // the first poll sees verify-credentials in progress
	if s := int(now.Sub(start) / time.Second); s > stage {
		stage = s
	}
	last := len(jobSteps)
	if j.fails {
		last = 1
	}
	if waiting {
		last = 0
	}
	stage = min(stage, last)
	if stage > j.stage {
		j.stage, j.updated = stage, now
	}

	conn := j.conn
	base := "/users/" + conn.userID
	filter := "?filter=institution.id.eq('" + conn.institutionID + "')"
	results := [...]any{
		map[string]string{"type": "link", "url": base + "/connections/" + conn.id},
		map[string]string{"type": "link", "url": base + "/accounts" + filter},
		map[string]string{"type": "link", "url": base + "/transactions" + filter},
	}
	failure := j.failure
	if failure == nil {
		failure = map[string]string{
			"type": "error", "code": "invalid-credentials",
			"title":  "Cannot login to target institution using supplied credentials.",
			"detail": "Cannot login to target institution, check credentials and try again.",
		}
	}
	steps := make([]jobStep, len(jobSteps))
	for i, title := range jobSteps {
		s := jobStep{Title: title, Status: "pending"}
		switch {
		case waiting && i == 0:
			s.Status, s.Result = "in-progress", j.mfa.challenge()
		case j.fails && i == 0 && j.stage >= 1:
			s.Status, s.Result = "failed", failure
		case j.fails && j.stage >= 1:
			// Steps after a failed one never start.
		case i < j.stage:
			s.Status, s.Result = "success", results[i]
		case i == j.stage:
			s.Status = "in-progress"
		}
		steps[i] = s
	}
	return jobBody{
		Type: "job", ID: j.id,
		Created: j.created.UTC().Format(time.RFC3339),
		Updated: j.updated.UTC().Format(time.RFC3339),
		Steps:   steps,
		Links:   links{Self: e.publicURL + "/jobs/" + j.id, Source: e.publicURL + base + "/connections/" + conn.id},
	}
}
