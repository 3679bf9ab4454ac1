package emulator_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
)

// TestConsentOutcomes follows each of the Consent UI stub's three ways out and checks what a
// BFF and a browser see afterwards: the job ids on the redirect, each job's final state as the
// user's own CLIENT_ACCESS token reads it, and the consents GET /users/{id}/consents lists.
func TestConsentOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		link       string
		wantJob    bool
		wantStatus string // the first step's final status
		consents   int
	}{
		{name: "finish", link: "finish", wantJob: true, wantStatus: "success", consents: 1},
		{name: "finish with a failed connection", link: "finish-failed", wantJob: true, wantStatus: "failed", consents: 0},
		{name: "close", link: "close", wantJob: false, consents: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, emulator.Options{ConsentRedirect: "https://app.example.com/connect/return"})
			user := createUser(t, f)
			client := f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId="+user)
			page := f.do(t, req{method: http.MethodGet, path: "/home?" + url.Values{"token": {client}, "state": {"st"}}.Encode()})
			m := regexp.MustCompile(`<a id="` + tc.link + `" href="([^"]*)"`).FindStringSubmatch(page.Body.String())
			if page.Code != http.StatusOK || m == nil {
				t.Fatalf("page %d without link #%s: %s", page.Code, tc.link, page.Body)
			}
			back := f.do(t, req{method: http.MethodGet, path: html.UnescapeString(m[1])})
			loc, err := url.Parse(back.Header().Get("Location"))
			if back.Code != http.StatusFound || err != nil || loc.Query().Get("state") != "st" {
				t.Fatalf("redirect %d %q", back.Code, back.Header().Get("Location"))
			}
			jobID := loc.Query().Get("jobIds")
			if (jobID != "") != tc.wantJob {
				t.Fatalf("jobIds = %q, want a job: %v", jobID, tc.wantJob)
			}
			if tc.wantJob {
				var status string
				for range 5 {
					rec := f.do(t, req{method: http.MethodGet, path: "/jobs/" + jobID, header: bearer(client)})
					var job struct {
						Steps []struct{ Status string } `json:"steps"`
					}
					if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &job) != nil || len(job.Steps) == 0 {
						t.Fatalf("GET job: %d %s", rec.Code, rec.Body)
					}
					status = job.Steps[0].Status
				}
				if status != tc.wantStatus {
					t.Errorf("first step ends %q, want %q", status, tc.wantStatus)
				}
				other := f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=someone-else")
				assertErr(t, f.do(t, req{method: http.MethodGet, path: "/jobs/" + jobID, header: bearer(other)}),
					http.StatusUnauthorized, "unauthorized-access", "")
			}
			server := f.mint(t, "3.0", "scope=SERVER_ACCESS")
			rec := f.do(t, req{method: http.MethodGet, path: "/users/" + user + "/consents", header: bearer(server)})
			var list struct {
				Data []struct{ Status string } `json:"data"`
			}
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil {
				t.Fatalf("consents: %d %s", rec.Code, rec.Body)
			}
			if len(list.Data) != tc.consents || tc.consents > 0 && list.Data[0].Status != "active" {
				t.Errorf("consents = %+v, want %d active", list.Data, tc.consents)
			}
			assertErr(t, f.do(t, req{method: http.MethodGet, path: "/users/" + user + "/consents", header: bearer(client)}),
				http.StatusForbidden, "forbidden-access", "")
		})
	}
}

// TestDeleteUser: once a user is deleted, GET /users/{id} answers 404 and /token refuses a
// CLIENT_ACCESS token for it, even without StrictUserID.
func TestDeleteUser(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	user := createUser(t, f)
	server := f.mint(t, "3.0", "scope=SERVER_ACCESS")
	if rec := f.do(t, req{method: http.MethodGet, path: "/users/" + user, header: bearer(server)}); rec.Code != http.StatusOK {
		t.Fatalf("GET user: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do(t, req{method: http.MethodDelete, path: "/users/" + user, header: bearer(server)}); rec.Code != http.StatusNoContent {
		t.Fatalf("DELETE user: %d %s", rec.Code, rec.Body)
	}
	assertErr(t, f.do(t, req{method: http.MethodGet, path: "/users/" + user, header: bearer(server)}), http.StatusNotFound, "resource-not-found", "User not found.")
	assertErr(t, f.do(t, tokenReq(f.key, "3.0", "scope=CLIENT_ACCESS&userId="+user)), http.StatusBadRequest, "parameter-not-valid", "User ID value is not valid")
	if got := f.em.Requests(emulator.RouteUser); got != 3 {
		t.Errorf("Requests(RouteUser) = %d, want 3", got)
	}
}

func createUser(t *testing.T, f *fixture) string {
	t.Helper()
	server := f.mint(t, "3.0", "scope=SERVER_ACCESS")
	rec := f.do(t, req{path: "/users", header: bearer(server), body: `{"email":"p@example.com"}`})
	var u struct {
		ID string `json:"id"`
	}
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &u) != nil {
		t.Fatalf("POST /users: %d %s", rec.Code, rec.Body)
	}
	return u.ID
}

// TestMFAJob: a connection to the MFA bank waits on an mfa-challenge until the code is posted
// to /jobs/{id}/mfa; the right code lets it finish, a wrong one fails it with mfa-failed.
func TestMFAJob(t *testing.T) {
	tests := []struct {
		name, code, want string
	}{
		{"right code", emulator.MFACode, "success"},
		{"wrong code", "000000", "failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, emulator.Options{})
			tok := f.mint(t, "2.1", "scope=CLIENT_ACCESS")
			rec := f.do(t, req{path: "/users/u-1/connections", header: bearer(tok),
				body: `{"loginId":"l","password":"p","institution":{"id":"AU00001"}}`})
			var ref struct{ ID string }
			if rec.Code != http.StatusAccepted || json.Unmarshal(rec.Body.Bytes(), &ref) != nil {
				t.Fatalf("connect: %d %s", rec.Code, rec.Body)
			}
			type step struct {
				Title, Status string
				Result        map[string]any
			}
			poll := func() []step {
				rec := f.do(t, req{method: http.MethodGet, path: "/jobs/" + ref.ID, header: bearer(tok)})
				var job struct{ Steps []step }
				if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &job) != nil {
					t.Fatalf("job: %d %s", rec.Code, rec.Body)
				}
				return job.Steps
			}
			for range 5 {
				if s := poll(); s[0].Status != "in-progress" || s[0].Result["type"] != "mfa-challenge" || s[0].Result["label"] == "" {
					t.Fatalf("waiting job: %+v", s[0])
				}
			}
			assertErr(t, f.do(t, req{path: "/jobs/" + ref.ID + "/mfa", header: bearer(tok), body: `{}`}), http.StatusBadRequest, "parameter-not-supplied", "mfa-response is required.")
			if rec := f.do(t, req{path: "/jobs/" + ref.ID + "/mfa", header: bearer(tok), body: `{"mfa-response":["` + tc.code + `"]}`}); rec.Code != http.StatusAccepted {
				t.Fatalf("mfa: %d %s", rec.Code, rec.Body)
			}
			assertErr(t, f.do(t, req{path: "/jobs/" + ref.ID + "/mfa", header: bearer(tok), body: `{"mfa-response":["1"]}`}), http.StatusBadRequest, "parameter-not-valid", "The job is not waiting for an MFA response.")
			var last []step
			for range 5 {
				last = poll()
			}
			if last[0].Status != tc.want {
				t.Errorf("verify-credentials ends %q, want %q", last[0].Status, tc.want)
			}
			if f.em.MFAAnswers() != 1 {
				t.Errorf("MFAAnswers = %d", f.em.MFAAnswers())
			}
		})
	}
}

func TestInstitutions(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	assertErr(t, f.do(t, req{method: http.MethodGet, path: "/institutions"}), http.StatusUnauthorized, "invalid-authorization-token", "")
	rec := f.do(t, req{method: http.MethodGet, path: "/institutions", header: bearer(f.mint(t, "2.1", "scope=CLIENT_ACCESS"))})
	var list struct {
		Data []map[string]string `json:"data"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Data) < 3 {
		t.Fatalf("institutions: %d %s", rec.Code, rec.Body)
	}
	if in := list.Data[2]; in["id"] != "AU00002" || in["secondaryLoginIdCaption"] == "" || in["loginIdCaption"] == "" {
		t.Errorf("the business bank: %v", in)
	}
	tok := f.mint(t, "2.1", "scope=CLIENT_ACCESS")
	assertErr(t, f.do(t, req{path: "/users/u-1/connections", header: bearer(tok), body: `{"loginId":"l","password":"p","securityCode":"1","institution":{"id":"AU00002"}}`}),
		http.StatusBadRequest, "parameter-not-supplied", "secondaryLoginId is required for this institution.")
}
