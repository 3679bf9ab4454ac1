package emulator_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
)

func TestCreateUser(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		header  func(tok string) map[string]string
		status  int
		fixture string
		code    string
		detail  string
	}{
		{name: "neither email nor mobile gives the recorded 400", body: `{"firstName":"Gavin"}`, status: 400, fixture: fixtureUserNoContact},
		{name: "empty strings count as missing", body: `{"email":"","mobile":""}`, status: 400, fixture: fixtureUserNoContact},
		{name: "bad email", body: `{"email":"gavin-at-hooli"}`, status: 400, code: "parameter-not-valid", detail: "Provided email is in bad format."},
		{name: "email with a display name", body: `{"email":"Gavin <gavin@hooli.com>"}`, status: 400, code: "parameter-not-valid", detail: "Provided email is in bad format."},
		{name: "bad mobile", body: `{"mobile":"call me"}`, status: 400, code: "parameter-not-valid", detail: "Provided mobile is in bad format."},
		{name: "business number without a name", body: `{"email":"g@hooli.com","businessIdNo":"123"}`, status: 400, code: "parameter-not-supplied", detail: "Business name is required when business number is provided."},
		{name: "not JSON", body: `email=g@hooli.com`, status: 400, code: "parameter-not-valid", detail: "Posted user is not in valid format."},
		{
			name: "not JSON content type", body: `{"email":"g@hooli.com"}`, status: 400, code: "unsupported-content-type",
			header: func(tok string) map[string]string {
				return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "text/plain"}
			},
		},
		{
			name: "no Authorization gives the recorded 401", body: `{"email":"g@hooli.com"}`, status: 401, fixture: fixtureInvalidBearer,
			header: func(string) map[string]string { return map[string]string{"Content-Type": "application/json"} },
		},
		{
			name: "Basic instead of Bearer gives the recorded 401", body: `{"email":"g@hooli.com"}`, status: 401, fixture: fixtureInvalidBearer,
			header: func(string) map[string]string {
				return map[string]string{"Authorization": "Basic " + emulator.DemoAPIKey, "Content-Type": "application/json"}
			},
		},
		{
			name: "token with a forged signature gives the recorded 401", body: `{"email":"g@hooli.com"}`, status: 401, fixture: fixtureInvalidBearer,
			header: func(tok string) map[string]string { return bearer(tok[:len(tok)-4] + "AAAA") },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, emulator.Options{})
			tok := f.mint(t, "3.0", "scope=SERVER_ACCESS")
			h := bearer(tok)
			if tc.header != nil {
				h = tc.header(tok)
			}
			rec := f.do(t, req{path: "/users", header: h, body: tc.body})
			if tc.fixture != "" {
				assertFixture(t, rec, tc.status, tc.fixture)
			} else {
				assertErr(t, rec, tc.status, tc.code, tc.detail)
			}
			if f.em.UsersCreated() != 0 {
				t.Error("a user was created")
			}
		})
	}

	t.Run("success gives 201 echoing the fields", func(t *testing.T) {
		f := newFixture(t, emulator.Options{PublicURL: "http://127.0.0.1:9999/", StrictUserID: true})
		tok := f.mint(t, "3.0", "scope=SERVER_ACCESS")
		rec := f.do(t, req{path: "/users", header: bearer(tok), body: `{"email":"gavin1224@hooli.com","mobile":"+61410888999","firstName":"Gavin","unknownField":1}`})
		if rec.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Error("POST /users must not allow CORS")
		}
		var u map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &u); err != nil {
			t.Fatal(err)
		}
		id, _ := u["id"].(string)
		want := map[string]any{
			"type": "user", "id": id, "email": "gavin1224@hooli.com", "mobile": "+61410888999", "firstName": "Gavin",
			"links": map[string]any{"self": "http://127.0.0.1:9999/users/" + id},
		}
		if !isUUIDv4(id) || !equalJSON(u, want) {
			t.Errorf("body %s", rec.Body)
		}
		if f.em.UsersCreated() != 1 {
			t.Errorf("UsersCreated = %d", f.em.UsersCreated())
		}
		// The new user now exists for StrictUserID.
		f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId="+id)
	})
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// connect posts a connection and returns the job id.
func connect(t *testing.T, f *fixture, tok, userID, body string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	rec := f.do(t, req{path: "/users/" + userID + "/connections", header: bearer(tok), body: body})
	var j struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Links struct {
			Self string `json:"self"`
		} `json:"links"`
	}
	if rec.Code == http.StatusAccepted {
		if err := json.Unmarshal(rec.Body.Bytes(), &j); err != nil || j.Type != "job" || !isUUIDv4(j.ID) ||
			j.Links.Self != emulator.DefaultPublicURL+"/jobs/"+j.ID {
			t.Fatalf("202 body %s", rec.Body)
		}
	}
	return rec, j.ID
}

const hooli = `{"loginId":"gavinBelson","password":"hooli2016","institution":{"id":"AU00000"}}`

type jobView struct {
	Steps []struct {
		Title  string          `json:"title"`
		Status string          `json:"status"`
		Result json.RawMessage `json:"result"`
	} `json:"steps"`
	Links struct{ Self, Source string } `json:"links"`
}

func pollJob(t *testing.T, f *fixture, tok, jobID string) (jobView, []string) {
	t.Helper()
	rec := f.do(t, req{method: http.MethodGet, path: "/jobs/" + jobID, header: bearer(tok)})
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /jobs: status %d: %s", rec.Code, rec.Body)
	}
	var j jobView
	if err := json.Unmarshal(rec.Body.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	var st []string
	for _, s := range j.Steps {
		st = append(st, s.Status)
	}
	return j, st
}

func TestConnectionsAndJobs(t *testing.T) {
	t.Run("steps advance one per poll and end in success", func(t *testing.T) {
		f := newFixture(t, emulator.Options{})
		tok := f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")
		rec, jobID := connect(t, f, tok, "u-1", hooli)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		want := [][]string{
			{"in-progress", "pending", "pending"},
			{"success", "in-progress", "pending"},
			{"success", "success", "in-progress"},
			{"success", "success", "success"},
			{"success", "success", "success"},
		}
		for i, w := range want {
			j, got := pollJob(t, f, tok, jobID)
			if strings.Join(got, ",") != strings.Join(w, ",") {
				t.Fatalf("poll %d: %v, want %v", i+1, got, w)
			}
			if i == len(want)-1 {
				checkFinishedJob(t, j)
			}
		}
	})
	t.Run("steps advance with the clock", func(t *testing.T) {
		f := newFixture(t, emulator.Options{})
		tok := f.mint(t, "3.0", "scope=SERVER_ACCESS")
		_, jobID := connect(t, f, tok, "u-1", hooli)
		f.clock.Advance(2 * time.Second)
		if _, got := pollJob(t, f, tok, jobID); strings.Join(got, ",") != "success,success,in-progress" {
			t.Errorf("after 2s: %v", got)
		}
		f.clock.Advance(time.Minute)
		if _, got := pollJob(t, f, tok, jobID); strings.Join(got, ",") != "success,success,success" {
			t.Errorf("after 62s: %v", got)
		}
	})
	t.Run("wrong-password fails verify-credentials", func(t *testing.T) {
		f := newFixture(t, emulator.Options{})
		tok := f.mint(t, "2.0", "scope=CLIENT_ACCESS")
		_, jobID := connect(t, f, tok, "u-7", `{"loginId":"gavin","password":"wrong-password","institution":{"id":"AU00000"}}`)
		if _, got := pollJob(t, f, tok, jobID); strings.Join(got, ",") != "in-progress,pending,pending" {
			t.Errorf("poll 1: %v", got)
		}
		for range 3 {
			j, got := pollJob(t, f, tok, jobID)
			if strings.Join(got, ",") != "failed,pending,pending" {
				t.Fatalf("after failing: %v", got)
			}
			if !strings.Contains(string(j.Steps[0].Result), `"code":"invalid-credentials"`) {
				t.Errorf("result %s", j.Steps[0].Result)
			}
		}
	})
	t.Run("credentials are recorded", func(t *testing.T) {
		f := newFixture(t, emulator.Options{})
		tok := f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")
		_, jobID := connect(t, f, tok, "u-1", `{"loginId":"gavin","password":"p4ss","securityCode":"1234","secondaryLoginId":"x","institution":{"id":"AU04301"}}`)
		got := f.em.ConnectionsReceived()
		if len(got) != 1 {
			t.Fatalf("%d records", len(got))
		}
		c := got[0]
		want := c
		want.UserID, want.LoginID, want.Password, want.SecurityCode = "u-1", "gavin", "p4ss", "1234"
		want.SecondaryLoginID, want.InstitutionID, want.JobID = "x", "AU04301", jobID
		if c != want || c.ConnectionID == "" {
			t.Errorf("record %+v", c)
		}
		// DELETE the connection once; a second time it is gone.
		del := req{method: http.MethodDelete, path: "/users/u-1/connections/" + c.ConnectionID, header: bearer(tok)}
		if rec := f.do(t, del); rec.Code != http.StatusNoContent {
			t.Errorf("DELETE: status %d: %s", rec.Code, rec.Body)
		}
		assertErr(t, f.do(t, del), http.StatusNotFound, "resource-not-found", "")
	})
}

// checkFinishedJob checks a job of u-1 at Hooli that has succeeded: its step titles, the
// links its results carry and its source.
func checkFinishedJob(t *testing.T, j jobView) {
	t.Helper()
	titles := j.Steps[0].Title + "," + j.Steps[1].Title + "," + j.Steps[2].Title
	if titles != "verify-credentials,retrieve-accounts,retrieve-transactions" {
		t.Errorf("titles %s", titles)
	}
	if !strings.Contains(string(j.Steps[0].Result), `"/users/u-1/connections/`) ||
		!strings.Contains(string(j.Steps[1].Result), `accounts?filter=institution.id.eq('AU00000')`) {
		t.Errorf("results %s %s", j.Steps[0].Result, j.Steps[1].Result)
	}
	if !strings.HasPrefix(j.Links.Source, emulator.DefaultPublicURL+"/users/u-1/connections/") {
		t.Errorf("links.source %q", j.Links.Source)
	}
}

func TestConnectionRules(t *testing.T) {
	tests := []struct {
		name   string
		opts   emulator.Options
		token  string // form for /token, version 3.0 unless the form starts with "2.0:"
		user   string
		body   string
		status int
		code   string
		detail string
	}{
		{name: "bound CLIENT_ACCESS for its own user", token: "scope=CLIENT_ACCESS&userId=u-1", user: "u-1", body: hooli, status: 202},
		{name: "bound CLIENT_ACCESS for another user", token: "scope=CLIENT_ACCESS&userId=u-1", user: "u-2", body: hooli, status: 401, code: "unauthorized-access"},
		{name: "unbound 2.0 CLIENT_ACCESS", token: "2.0:scope=CLIENT_ACCESS", user: "u-2", body: hooli, status: 202},
		{name: "SERVER_ACCESS", token: "scope=SERVER_ACCESS", user: "u-3", body: hooli, status: 202},
		{name: "unknown user with StrictUserID", opts: emulator.Options{StrictUserID: true}, token: "scope=SERVER_ACCESS", user: "u-3", body: hooli, status: 404, code: "resource-not-found"},
		{name: "no loginId", token: "scope=SERVER_ACCESS", user: "u-1", body: `{"password":"p","institution":{"id":"AU00000"}}`, status: 400, code: "parameter-not-supplied", detail: "loginId is required."},
		{name: "no password", token: "scope=SERVER_ACCESS", user: "u-1", body: `{"loginId":"l","institution":{"id":"AU00000"}}`, status: 400, code: "parameter-not-supplied", detail: "password is required."},
		{name: "no institution", token: "scope=SERVER_ACCESS", user: "u-1", body: `{"loginId":"l","password":"p"}`, status: 400, code: "parameter-not-supplied", detail: "institution.id is required."},
		{name: "bad institution id", token: "scope=SERVER_ACCESS", user: "u-1", body: `{"loginId":"l","password":"p","institution":{"id":"hooli"}}`, status: 400, code: "parameter-not-valid", detail: "Institution id is not valid."},
		{name: "not JSON", token: "scope=SERVER_ACCESS", user: "u-1", body: `loginId=l`, status: 400, code: "parameter-not-valid", detail: "Posted connection is not in valid format."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts)
			version, form := "3.0", tc.token
			if v, rest, ok := strings.Cut(form, ":"); ok {
				version, form = v, rest
			}
			tok := f.mint(t, version, form)
			rec, _ := connect(t, f, tok, tc.user, tc.body)
			if tc.code != "" {
				assertErr(t, rec, tc.status, tc.code, tc.detail)
			} else if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header on a browser-facing answer")
			}
			if want := map[bool]int{true: 1, false: 0}[tc.status == 202]; len(f.em.ConnectionsReceived()) != want {
				t.Errorf("%d connections recorded, want %d", len(f.em.ConnectionsReceived()), want)
			}
		})
	}
}

func TestJobAccess(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	otherApp := emulator.GenerateKey()
	f.em.AddKey(otherApp, emulator.KeyOptions{ApplicationID: "app-other"})
	_, jobID := connect(t, f, f.mint(t, "3.0", "scope=SERVER_ACCESS"), "u-1", hooli)
	mintWith := func(key, form string) string {
		rec := f.do(t, tokenReq(key, "3.0", form))
		var tb struct {
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal(rec.Body.Bytes(), &tb)
		return tb.AccessToken
	}
	expired := f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")
	f.clock.Advance(time.Hour)
	server := f.mint(t, "3.0", "scope=SERVER_ACCESS")

	tests := []struct {
		name   string
		token  string
		status int
		code   string
	}{
		{"SERVER_ACCESS of the job's application", server, 200, ""},
		{"CLIENT_ACCESS of the job's user", f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1"), 200, ""},
		{"unbound 2.0 CLIENT_ACCESS of the application", f.mint(t, "2.0", "scope=CLIENT_ACCESS"), 200, ""},
		{"CLIENT_ACCESS of another user", f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-2"), 401, "unauthorized-access"},
		{"SERVER_ACCESS of another application", mintWith(otherApp, "scope=SERVER_ACCESS"), 404, "resource-not-found"},
		{"expired token", expired, 403, "access-denied"},
		{"garbage token", "garbage", 401, "invalid-authorization-token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(t, req{method: http.MethodGet, path: "/jobs/" + jobID, header: bearer(tc.token)})
			if tc.code != "" {
				assertErr(t, rec, tc.status, tc.code, "")
			} else if rec.Code != tc.status {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header")
			}
		})
	}
	t.Run("unknown job", func(t *testing.T) {
		assertErr(t, f.do(t, req{method: http.MethodGet, path: "/jobs/nope", header: bearer(server)}), 404, "resource-not-found", "Job not found.")
	})
}

func TestCORS(t *testing.T) {
	tests := []struct {
		name string
		path string
		cors bool
	}{
		{"connections preflight", "/users/u-1/connections", true},
		{"connection preflight", "/users/u-1/connections/c-1", true},
		{"jobs preflight", "/jobs/j-1", true},
		{"token has no CORS", "/token", false},
		{"users has no CORS", "/users", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, emulator.Options{})
			rec := f.do(t, req{method: http.MethodOptions, path: tc.path, header: map[string]string{
				"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
				"Access-Control-Request-Headers": "authorization,content-type",
			}})
			h := rec.Header()
			if !tc.cors {
				if rec.Code != http.StatusMethodNotAllowed || h.Get("Access-Control-Allow-Origin") != "" {
					t.Errorf("status %d, ACAO %q: want 405 and no CORS", rec.Code, h.Get("Access-Control-Allow-Origin"))
				}
				return
			}
			if rec.Code != http.StatusNoContent {
				t.Errorf("status %d, want 204", rec.Code)
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":  "*",
				"Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
				"Access-Control-Allow-Headers": "Authorization, Content-Type, Accept",
			}
			for k, v := range want {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
			if h.Get("Access-Control-Allow-Credentials") != "" {
				t.Error("credentials must not be allowed")
			}
		})
	}
}

// TestBrowserRouteWrongMethod checks each route a browser calls answers a method it does not
// serve with 405, an Allow header naming its one method and OPTIONS, and CORS still set, so the
// browser can read the error.
func TestBrowserRouteWrongMethod(t *testing.T) {
	tests := []struct {
		name, method, path, allow string
	}{
		{"connections", http.MethodGet, "/users/u-1/connections", "POST, OPTIONS"},
		{"connection", http.MethodPost, "/users/u-1/connections/c-1", "DELETE, OPTIONS"},
		{"job", http.MethodDelete, "/jobs/j-1", "GET, OPTIONS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, emulator.Options{})
			rec := f.do(t, req{method: tc.method, path: tc.path})
			assertErr(t, rec, http.StatusMethodNotAllowed, "method-not-allowed", "")
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
		})
	}
}

func TestConsentStub(t *testing.T) {
	finishHref := regexp.MustCompile(`<a id="finish" href="([^"]*)">Finish</a>`)
	// finish is where the Finish link leads: the redirect with state and the job ids.
	tests := []struct {
		name     string
		redirect string
		query    func(t *testing.T, f *fixture) url.Values
		status   int
		contains string
		finish   string // the redirect the Finish link leads to, jobIds aside; "" when there must be no link
	}{
		{
			name: "bound CLIENT_ACCESS token shows the page", redirect: "https://app.example.com/connect/return",
			query: func(t *testing.T, f *fixture) url.Values {
				return url.Values{"token": {f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")}, "state": {"s-123"}, "action": {"connect"}}
			},
			status: 200, contains: "Basiq Consent UI (emulator)", finish: "https://app.example.com/connect/return?state=s-123",
		},
		{
			name: "extend without an active consent", redirect: "https://app.example.com/cb",
			query: func(t *testing.T, f *fixture) url.Values {
				return url.Values{"token": {f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")}, "action": {"extend"}}
			},
			status: 400, contains: "needs an active consent",
		},
		{
			name: "extend with an active consent", redirect: "https://app.example.com/cb",
			query: func(t *testing.T, f *fixture) url.Values {
				f.em.AddConsent("u-1")
				return url.Values{"token": {f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")}, "action": {"extend"}}
			},
			status: 200, contains: "extend", finish: "https://app.example.com/cb",
		},
		{
			name: "connect to a named institution", redirect: "https://app.example.com/cb",
			query: func(t *testing.T, f *fixture) url.Values {
				return url.Values{"token": {f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")}, "action": {"connect"}, "institutionId": {"AU00000"}}
			},
			status: 200, contains: `<code id="institution">AU00000</code>`, finish: "https://app.example.com/cb",
		},
		{
			name: "bad institution id", redirect: "https://app.example.com/cb",
			query: func(t *testing.T, f *fixture) url.Values {
				return url.Values{"token": {f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")}, "institutionId": {"<x>"}}
			},
			status: 400, contains: "The institution is not valid.",
		},
		{
			name: "unknown connection", redirect: "https://app.example.com/cb",
			query: func(t *testing.T, f *fixture) url.Values {
				return url.Values{"token": {f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")}, "action": {"reauthorise"}, "connectionId": {"c-1"}}
			},
			status: 400, contains: "The connection is not valid for this user.",
		},
		{
			name: "state joins an existing query", redirect: "https://app.example.com/cb?x=1",
			query: func(t *testing.T, f *fixture) url.Values {
				return url.Values{"token": {f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")}, "state": {"a b&c"}}
			},
			status: 200, contains: "u-1", finish: "https://app.example.com/cb?state=a+b%26c&x=1",
		},
		{
			name: "no redirect configured says so",
			query: func(t *testing.T, f *fixture) url.Values {
				return url.Values{"token": {f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")}}
			},
			status: 200, contains: "No consent redirect is configured",
		},
		{
			name: "missing token", redirect: "https://app.example.com/cb",
			query:  func(t *testing.T, f *fixture) url.Values { return url.Values{} },
			status: 400, contains: "The token parameter is required.",
		},
		{
			name: "SERVER_ACCESS token", redirect: "https://app.example.com/cb",
			query: func(t *testing.T, f *fixture) url.Values {
				return url.Values{"token": {f.mint(t, "3.0", "scope=SERVER_ACCESS")}}
			},
			status: 400, contains: "needs a CLIENT_ACCESS token",
		},
		{
			name: "unbound CLIENT_ACCESS token", redirect: "https://app.example.com/cb",
			query: func(t *testing.T, f *fixture) url.Values {
				return url.Values{"token": {f.mint(t, "2.0", "scope=CLIENT_ACCESS")}}
			},
			status: 400, contains: "not bound to a user",
		},
		{
			name: "expired token", redirect: "https://app.example.com/cb",
			query: func(t *testing.T, f *fixture) url.Values {
				tok := f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")
				f.clock.Advance(2 * time.Hour)
				return url.Values{"token": {tok}}
			},
			status: 400, contains: "The token has expired.",
		},
		{
			name: "forged token", redirect: "https://app.example.com/cb",
			query:  func(t *testing.T, f *fixture) url.Values { return url.Values{"token": {"a.b.c"}} },
			status: 400, contains: "The token is not valid.",
		},
		{
			name: "unsupported action", redirect: "https://app.example.com/cb",
			query: func(t *testing.T, f *fixture) url.Values {
				return url.Values{"token": {f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")}, "action": {"delete"}}
			},
			status: 400, contains: "The action is not supported.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, emulator.Options{ConsentRedirect: "https://ignored.example.com"})
			f.em.SetConsentRedirect(tc.redirect)
			q := tc.query(t, f)
			rec := f.do(t, req{method: http.MethodGet, path: "/home?" + q.Encode()})
			body := rec.Body.String()
			if rec.Code != tc.status || !strings.Contains(body, tc.contains) {
				t.Fatalf("status %d, want %d containing %q: %s", rec.Code, tc.status, tc.contains, body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q", ct)
			}
			if rec.Header().Get("Referrer-Policy") != "no-referrer" {
				t.Error("the page URL holds a token: Referrer-Policy must be no-referrer")
			}
			m := finishHref.FindStringSubmatch(body)
			switch {
			case tc.finish == "" && m != nil:
				t.Errorf("unexpected Finish link %q", m[1])
			case tc.finish != "" && m == nil:
				t.Errorf("no Finish link, want one leading to %q", tc.finish)
			case tc.finish != "":
				back := f.do(t, req{method: http.MethodGet, path: html.UnescapeString(m[1])})
				loc, err := url.Parse(back.Header().Get("Location"))
				if back.Code != http.StatusFound || err != nil {
					t.Fatalf("following Finish: %d %q", back.Code, back.Header().Get("Location"))
				}
				got := loc.Query()
				jobIDs := got.Get("jobIds")
				if jobIDs == "" || got.Get("jobId") != jobIDs {
					t.Errorf("Finish returned jobIds=%q jobId=%q, want one job in both", jobIDs, got.Get("jobId"))
				}
				got.Del("jobIds")
				got.Del("jobId")
				loc.RawQuery = got.Encode()
				if loc.String() != tc.finish {
					t.Errorf("Finish leads to %q (jobs aside), want %q", loc, tc.finish)
				}
				if again := f.do(t, req{method: http.MethodGet, path: html.UnescapeString(m[1])}); again.Code != http.StatusBadRequest {
					t.Errorf("a visit can be finished twice: %d", again.Code)
				}
			}
			if tok := q.Get("token"); tok != "" && strings.Contains(body, tok) {
				t.Error("the page repeats the token")
			}
		})
	}
}
