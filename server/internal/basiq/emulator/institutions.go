package emulator

import (
	"net/http"
	"time"
)

// Institution is a bank as GET /institutions lists it, with the captions of the login fields
// it asks for: an empty caption means the field is not asked for. Field names follow Basiq's
// institution resource (loginIdCaption, passwordCaption, securityCodeCaption,
// secondaryLoginIdCaption).
type Institution struct {
	Type                    string `json:"type"`
	ID                      string `json:"id"`
	Name                    string `json:"name"`
	ShortName               string `json:"shortName"`
	InstitutionType         string `json:"institutionType"`
	Country                 string `json:"country"`
	LoginIDCaption          string `json:"loginIdCaption"`
	PasswordCaption         string `json:"passwordCaption"`
	SecurityCodeCaption     string `json:"securityCodeCaption,omitempty"`
	SecondaryLoginIDCaption string `json:"secondaryLoginIdCaption,omitempty"`
	Status                  string `json:"status"`
	mfa                     string // the MFA prompt; "": no MFA
}

// MFACode is the one-time code the emulator's MFA bank accepts. It is published here on
// purpose: the emulator's test bank, like Basiq's Hooli, has documented test credentials.
const MFACode = "123456"

// institutions is the emulator's bank list: Basiq's sandbox bank Hooli (AU00000) and two
// emulator-only variants, one that asks for a one-time code after login and one that asks for
// a customer number and a security code as well.
var institutions = [...]Institution{
	{ID: "AU00000", Name: "Hooli", ShortName: "Hooli", InstitutionType: "Test Bank", LoginIDCaption: "Login ID", PasswordCaption: "Password"},
	{ID: "AU00001", Name: "Hooli MFA (emulator)", ShortName: "Hooli MFA", InstitutionType: "Test Bank", LoginIDCaption: "Login ID",
		PasswordCaption: "Password", mfa: "Enter the 6-digit code Hooli sent to your phone."},
	{ID: "AU00002", Name: "Hooli Business (emulator)", ShortName: "Hooli Business", InstitutionType: "Test Bank", LoginIDCaption: "User ID",
		PasswordCaption: "Password", SecondaryLoginIDCaption: "Customer number", SecurityCodeCaption: "Security token"},
}

func institutionByID(id string) (Institution, bool) {
	for _, in := range institutions {
		if in.ID == id {
			return in, true
		}
	}
	return Institution{}, false
}

// handleInstitutions is GET /institutions, open to any valid token (the fixture
// getInstitutionsUnauthorized.json shows a bearer is required).
func (e *Emulator) handleInstitutions(w http.ResponseWriter, r *http.Request) {
	if _, ok := e.browserRoute(w, r, http.MethodGet, RouteInstitutions); !ok {
		return
	}
	list := make([]Institution, len(institutions))
	for i, in := range institutions {
		in.Type, in.Country, in.Status = "institution", "Australia", "operational"
		list[i] = in
	}
	writeJSON(w, http.StatusOK, struct {
		Type string        `json:"type"`
		Size int           `json:"size"`
		Data []Institution `json:"data"`
	}{Type: "list", Size: len(list), Data: list})
}

// mfaState is a job's one-time-code challenge.
type mfaState struct {
	prompt   string
	answered bool
	at       time.Time // when the answer came
	polls    int       // the job's polls by then
}

// challenge is verify-credentials' result while the job waits for the code. [inferred] shape:
// Basiq documents that a 2.x job step waits on an mfa-challenge answered by
// POST /jobs/{id}/mfa, not the exact fields of the result.
func (m *mfaState) challenge() map[string]any {
	return map[string]any{"type": "mfa-challenge", "method": "one-time-password", "label": m.prompt, "input": []string{"text"}}
}

// handleMFA is POST /jobs/{jobID}/mfa with {"mfa-response":["<code>"]} (core.json
// JobPostRequest): 202 with the job on an answer, right or wrong; a wrong code fails
// verify-credentials with mfa-failed [inferred code]. A job not waiting for a code gets 400.
func (e *Emulator) handleMFA(w http.ResponseWriter, r *http.Request) {
	c, ok := e.browserRoute(w, r, http.MethodPost, RouteMFA)
	if !ok {
		return
	}
	var body struct {
		Response []string `json:"mfa-response"`
	}
	if ae, bad := jsonBody(r, &body, "Posted MFA response is not in valid format."); bad {
		writeError(w, ae)
		return
	}
	if len(body.Response) == 0 || body.Response[0] == "" {
		writeError(w, errNotSupplied("mfa-response", "body/mfa-response", "mfa-response is required."))
		return
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	j, found := e.jobs[r.PathValue("jobID")]
	switch {
	case !found || j.conn.applicationID != c.ApplicationID:
		writeError(w, errNotFound("Job not found."))
		return
	case !mayActFor(c, j.conn.userID):
		writeError(w, errUnauthorizedAccess())
		return
	case j.mfa == nil || j.mfa.answered:
		writeError(w, errNotValid("mfa-response", "body/mfa-response", "The job is not waiting for an MFA response."))
		return
	}
	j.mfa.answered, j.mfa.at, j.mfa.polls = true, now, j.polls
	if body.Response[0] != MFACode {
		j.fails = true
		j.failure = map[string]string{"type": "error", "code": "mfa-failed", "title": "MFA failed.",
			"detail": "The one-time code was not accepted by the institution."}
	}
	e.mfaAnswers++
	writeJSON(w, http.StatusAccepted, jobRef{Type: "job", ID: j.id, Links: links{Self: e.publicURL + "/jobs/" + j.id}})
}

// MFAAnswers counts accepted POST /jobs/{id}/mfa.
func (e *Emulator) MFAAnswers() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mfaAnswers
}
