package emulator_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
)

// Recorded Basiq bodies (basiqio/basiq-swagger test fixtures), verbatim.
const (
	fixtureVersionMissing = `{"correlationId":"1c16f75c-36fb-421f-98a5-bf18a0b6583c","data":[{"code":"parameter-not-valid","detail":"Basiq-version must be specified in HTTP request header","title":"Required parameter not valid","type":"error","source":{"parameter":"basiq-version","pointer":"header/basiq-version"}}],"type":"list"}`
	fixtureUnknownKey     = `{"correlationId":"1c16f75c-36fb-421f-98a5-bf18a0b6583c","data":[{"code":"parameter-not-valid","detail":"Unable to authenticate. Please, check your API key","title":"We have encountered an error","type":"error"}],"type":"list"}`
	fixtureInvalidBearer  = `{"correlationId":"1c16f75c-36fb-421f-98a5-bf18a0b6583c","data":[{"code":"invalid-authorization-token","title":"Invalid authorization token.","type":"error"}],"type":"list"}`
	fixtureTokenExpired   = `{"type":"list","correlationId":"bf4ac637-4e5c-4c87-aa1c-6158beb129a3","data":[{"type":"error","code":"access-denied","title":"Access denied.","detail":"Token has expired","source":null}]}`
	fixtureUserNoContact  = `{"type":"list","correlationId":"ef351da5-12b1-4ba0-be8c-59d9b2e388e8","data":[{"type":"error","code":"parameter-not-supplied","title":"Required parameter not supplied","detail":"One of 'email' or 'mobile' is required.","source":{}}]}`
)

// Bodies the emulator fixes where Basiq documents only the text.
const (
	specAuthMissing = `{"type":"list","correlationId":"-","data":[{"type":"error","code":"parameter-not-supplied","title":"Required parameter not supplied","detail":"Authorization header parameter is required","source":{"parameter":"Authorization","pointer":"header/Authorization"}}]}`
	specAuthInvalid = `{"type":"list","correlationId":"-","data":[{"type":"error","code":"parameter-not-valid","title":"Required parameter not valid","detail":"Invalid authorization header","source":{"parameter":"Authorization","pointer":"header/Authorization"}}]}`
	specDisabled    = `{"type":"list","correlationId":"-","data":[{"type":"error","code":"forbidden-access","title":"Forbidden Access","detail":"Your account has been disabled. Please contact Basiq support."}]}`
	specTooMany     = `{"type":"list","correlationId":"-","data":[{"type":"error","code":"too-many-requests","title":"Too many requests.","detail":"Query limit reached. Reduce request frequency and try again later."}]}`
)

// assertToken checks a 200 from /token and what the emulator recorded for the token.
func assertToken(t *testing.T, f *fixture, rec *httptest.ResponseRecorder, scope, userID, version string) string {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body: %v", err)
	}
	if len(body) != 3 || body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) {
		t.Errorf("body %s, want exactly access_token, token_type Bearer, expires_in 3600", rec.Body)
	}
	tok, _ := body["access_token"].(string)
	assertClaims(t, f, tok, scope, userID, version)
	return tok
}

// assertClaims checks the token's JWT header and claims, and what Inspect says of it.
func assertClaims(t *testing.T, f *fixture, tok, scope, userID, version string) {
	t.Helper()
	hdr, cl := jwtClaims(t, tok)
	if hdr["alg"] != "HS256" || hdr["typ"] != "JWT" {
		t.Errorf("JWT header %v", hdr)
	}
	iat, _ := cl["iat"].(float64)
	exp, _ := cl["exp"].(float64)
	if cl["scope"] != scope || cl["version"] != version || cl["applicationid"] != "app-1" ||
		cl["partnerid"] != "partner-1" || cl["sandbox_account"] != true || exp-iat != 3600 ||
		int64(iat) != f.clock.Now().Unix() {
		t.Errorf("claims %v", cl)
	}
	if got, _ := cl["userid"].(string); got != userID {
		t.Errorf("userid claim %q, want %q", got, userID)
	}
	ti, ok := f.em.Inspect(tok)
	if !ok || ti.Scope != scope || ti.UserID != userID || ti.Version != version || ti.Key != f.key ||
		ti.ApplicationID != "app-1" || !ti.ExpiresAt.Equal(f.clock.Now().Add(time.Hour).Truncate(time.Second)) {
		t.Errorf("Inspect = %+v, %v", ti, ok)
	}
}

// TestMatrix is the emulator's answer for each way a /token request can be wrong.
func TestMatrix(t *testing.T) {
	doubleEncoded := func(f *fixture) string { return base64.StdEncoding.EncodeToString([]byte(f.key)) }
	tests := []struct {
		name    string
		opts    emulator.Options
		req     func(t *testing.T, f *fixture) req
		status  int
		fixture string // the whole expected body, when it is recorded or fully specified
		code    string
		detail  string
		check   func(t *testing.T, f *fixture, rec *httptest.ResponseRecorder)
	}{
		{
			name:   "01 v3 SERVER_ACCESS gives 200 and expires_in 3600",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "3.0", "scope=SERVER_ACCESS") },
			status: http.StatusOK,
			check: func(t *testing.T, f *fixture, rec *httptest.ResponseRecorder) {
				assertToken(t, f, rec, "SERVER_ACCESS", "", "3.0")
			},
		},
		{
			name:   "02a v3 CLIENT_ACCESS with userId gives 200",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "3.0", "scope=CLIENT_ACCESS&userId=u-1") },
			status: http.StatusOK,
			check: func(t *testing.T, f *fixture, rec *httptest.ResponseRecorder) {
				assertToken(t, f, rec, "CLIENT_ACCESS", "u-1", "3.0")
			},
		},
		{
			name:   "02b v3 CLIENT_ACCESS without userId gives 400",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "3.0", "scope=CLIENT_ACCESS") },
			status: http.StatusBadRequest, code: "parameter-not-supplied", detail: "userId is required for CLIENT_ACCESS scope",
		},
		{
			name:   "02c v3 CLIENT_ACCESS with empty userId gives 400",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "3.0", "scope=CLIENT_ACCESS&userId=") },
			status: http.StatusBadRequest, code: "parameter-not-supplied", detail: "userId is required for CLIENT_ACCESS scope",
		},
		{
			name:   "03 v2.0 CLIENT_ACCESS without userId gives 200",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "2.0", "scope=CLIENT_ACCESS") },
			status: http.StatusOK,
			check: func(t *testing.T, f *fixture, rec *httptest.ResponseRecorder) {
				assertToken(t, f, rec, "CLIENT_ACCESS", "", "2.0")
			},
		},
		{
			name:    "04 no Authorization header gives 400",
			req:     func(t *testing.T, f *fixture) req { return tokenReq("", "3.0", "scope=SERVER_ACCESS") },
			status:  http.StatusBadRequest,
			fixture: specAuthMissing,
		},
		{
			name:    "05 key base64-encoded twice gives 400",
			req:     func(t *testing.T, f *fixture) req { return tokenReq(doubleEncoded(f), "3.0", "scope=SERVER_ACCESS") },
			status:  http.StatusBadRequest,
			fixture: specAuthInvalid,
		},
		{
			name: "06 Bearer scheme on /token gives 400",
			req: func(t *testing.T, f *fixture) req {
				r := tokenReq("", "3.0", "scope=SERVER_ACCESS")
				r.header["Authorization"] = "Bearer " + f.key
				return r
			},
			status:  http.StatusBadRequest,
			fixture: specAuthInvalid,
		},
		{
			name:    "07 no basiq-version gives the recorded 400",
			req:     func(t *testing.T, f *fixture) req { return tokenReq(f.key, "", "scope=SERVER_ACCESS") },
			status:  http.StatusBadRequest,
			fixture: fixtureVersionMissing,
		},
		{
			name:   "08 basiq-version 0.9 gives 400",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "0.9", "scope=SERVER_ACCESS") },
			status: http.StatusBadRequest, code: "parameter-not-valid",
			detail: "Version 0.9 is no longer supported. Please upgrade to the latest version",
		},
		{
			name: "09 unknown key gives the recorded 404",
			req: func(t *testing.T, f *fixture) req {
				return tokenReq(emulator.GenerateKey(), "3.0", "scope=SERVER_ACCESS")
			},
			status:  http.StatusNotFound,
			fixture: fixtureUnknownKey,
		},
		{
			name:    "10 disabled account gives 403",
			req:     func(t *testing.T, f *fixture) req { return tokenReq(f.disabled, "3.0", "scope=SERVER_ACCESS") },
			status:  http.StatusForbidden,
			fixture: specDisabled,
		},
		{
			name: "11 the 1501st request in 5 minutes gives 429",
			req: func(t *testing.T, f *fixture) req {
				for i := range 1500 {
					if rec := f.do(t, tokenReq(f.key, "3.0", "scope=SERVER_ACCESS")); rec.Code != http.StatusOK {
						t.Fatalf("call %d: status %d", i+1, rec.Code)
					}
					f.clock.Advance(100 * time.Millisecond) // 1500 calls span 2.5 minutes
				}
				return tokenReq(f.key, "3.0", "scope=SERVER_ACCESS")
			},
			status:  http.StatusTooManyRequests,
			fixture: specTooMany,
			check: func(t *testing.T, f *fixture, rec *httptest.ResponseRecorder) {
				if ra := rec.Header().Get("Retry-After"); ra != "" {
					t.Errorf("Retry-After %q sent without being configured", ra)
				}
			},
		},
		{
			name: "12 expired token on /users gives the recorded 403",
			req: func(t *testing.T, f *fixture) req {
				tok := f.mint(t, "3.0", "scope=SERVER_ACCESS")
				f.clock.Advance(time.Hour)
				return req{path: "/users", header: bearer(tok), body: `{"email":"a@example.com"}`}
			},
			status:  http.StatusForbidden,
			fixture: fixtureTokenExpired,
		},
		{
			name: "13 garbage bearer gives the recorded 401",
			req: func(t *testing.T, f *fixture) req {
				return req{path: "/users", header: bearer("not-a-token"), body: `{"email":"a@example.com"}`}
			},
			status:  http.StatusUnauthorized,
			fixture: fixtureInvalidBearer,
		},
		{
			name: "14 CLIENT_ACCESS token on POST /users gives 403",
			req: func(t *testing.T, f *fixture) req {
				tok := f.mint(t, "3.0", "scope=CLIENT_ACCESS&userId=u-1")
				return req{path: "/users", header: bearer(tok), body: `{"email":"a@example.com"}`}
			},
			status: http.StatusForbidden, code: "forbidden-access", detail: "Access to this resource is forbidden.",
		},
		// Beyond the minimum matrix.
		{
			name:   "v2.1 CLIENT_ACCESS without userId gives 200",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "2.1", "scope=CLIENT_ACCESS") },
			status: http.StatusOK,
		},
		{
			name:   "v2.0 CLIENT_ACCESS with userId binds it",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "2.0", "scope=CLIENT_ACCESS&userId=u-9") },
			status: http.StatusOK,
			check: func(t *testing.T, f *fixture, rec *httptest.ResponseRecorder) {
				assertToken(t, f, rec, "CLIENT_ACCESS", "u-9", "2.0")
			},
		},
		{
			name:   "userId with SERVER_ACCESS is ignored",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "3.0", "scope=SERVER_ACCESS&userId=u-1") },
			status: http.StatusOK,
			check: func(t *testing.T, f *fixture, rec *httptest.ResponseRecorder) {
				assertToken(t, f, rec, "SERVER_ACCESS", "", "3.0")
			},
		},
		{
			name:   "missing scope defaults to SERVER_ACCESS",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "3.0", "") },
			status: http.StatusOK,
			check: func(t *testing.T, f *fixture, rec *httptest.ResponseRecorder) {
				assertToken(t, f, rec, "SERVER_ACCESS", "", "3.0")
			},
		},
		{
			name:   "missing scope with RequireScope gives 400",
			opts:   emulator.Options{RequireScope: true},
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "3.0", "") },
			status: http.StatusBadRequest, code: "parameter-not-supplied", detail: "Scope parameter is required",
		},
		{
			name:   "scope compared case-sensitively",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "3.0", "scope=server_access") },
			status: http.StatusBadRequest, code: "parameter-not-valid", detail: "Scope is not valid",
		},
		{
			name:   "unknown version gives 400",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "4.0", "scope=SERVER_ACCESS") },
			status: http.StatusBadRequest, code: "parameter-not-valid", detail: "Basiq-version is not valid",
		},
		{
			name:   "version below 1.0 is reported with its value",
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "0.5", "scope=SERVER_ACCESS") },
			status: http.StatusBadRequest, code: "parameter-not-valid",
			detail: "Version 0.5 is no longer supported. Please upgrade to the latest version",
		},
		{
			name: "version the key's application may not use gives 400",
			req: func(t *testing.T, f *fixture) req {
				k := emulator.GenerateKey()
				f.em.AddKey(k, emulator.KeyOptions{Versions: []string{"2.0"}})
				return tokenReq(k, "3.0", "scope=SERVER_ACCESS")
			},
			status: http.StatusBadRequest, code: "parameter-not-valid", detail: "Basiq-version is not valid",
		},
		{
			name: "removed key gives the recorded 404",
			req: func(t *testing.T, f *fixture) req {
				f.mint(t, "3.0", "scope=SERVER_ACCESS")
				f.em.RemoveKey(f.key)
				return tokenReq(f.key, "3.0", "scope=SERVER_ACCESS")
			},
			status:  http.StatusNotFound,
			fixture: fixtureUnknownKey,
		},
		{
			name: "re-enabled account mints again",
			req: func(t *testing.T, f *fixture) req {
				f.em.SetDisabled(f.disabled, false)
				return tokenReq(f.disabled, "3.0", "scope=SERVER_ACCESS")
			},
			status: http.StatusOK,
		},
		{
			name:    "key that is not base64 gives 400",
			req:     func(t *testing.T, f *fixture) req { return tokenReq("not base64!", "3.0", "scope=SERVER_ACCESS") },
			status:  http.StatusBadRequest,
			fixture: specAuthInvalid,
		},
		{
			name: "Basic scheme with no value gives 400",
			req: func(t *testing.T, f *fixture) req {
				r := tokenReq("", "3.0", "scope=SERVER_ACCESS")
				r.header["Authorization"] = "Basic"
				return r
			},
			status:  http.StatusBadRequest,
			fixture: specAuthInvalid,
		},
		{
			name: "scheme is compared case-insensitively",
			req: func(t *testing.T, f *fixture) req {
				r := tokenReq("", "3.0", "scope=SERVER_ACCESS")
				r.header["Authorization"] = "basic " + f.key
				return r
			},
			status: http.StatusOK,
		},
		{
			name: "form with a charset is accepted",
			req: func(t *testing.T, f *fixture) req {
				r := tokenReq(f.key, "3.0", "scope=SERVER_ACCESS")
				r.header["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
				return r
			},
			status: http.StatusOK,
		},
		{
			name: "JSON body is refused by default",
			req: func(t *testing.T, f *fixture) req {
				r := tokenReq(f.key, "3.0", `{"scope":"SERVER_ACCESS"}`)
				r.header["Content-Type"] = "application/json"
				return r
			},
			status: http.StatusBadRequest, code: "unsupported-content-type", detail: "Requested content type is not supported.",
		},
		{
			name: "JSON body is accepted with AcceptJSON",
			opts: emulator.Options{AcceptJSON: true},
			req: func(t *testing.T, f *fixture) req {
				r := tokenReq(f.key, "3.0", `{"scope":"CLIENT_ACCESS","userId":"u-1"}`)
				r.header["Content-Type"] = "application/json"
				return r
			},
			status: http.StatusOK,
			check: func(t *testing.T, f *fixture, rec *httptest.ResponseRecorder) {
				assertToken(t, f, rec, "CLIENT_ACCESS", "u-1", "3.0")
			},
		},
		{
			name: "form body without a Content-Type is refused",
			req: func(t *testing.T, f *fixture) req {
				r := tokenReq(f.key, "3.0", "scope=SERVER_ACCESS")
				delete(r.header, "Content-Type")
				return r
			},
			status: http.StatusBadRequest, code: "unsupported-content-type",
		},
		{
			name: "empty body with a JSON Content-Type is accepted",
			req: func(t *testing.T, f *fixture) req {
				r := tokenReq(f.key, "3.0", "")
				r.header["Content-Type"] = "application/json"
				return r
			},
			status: http.StatusOK,
		},
		{
			name: "body over 64 KiB gives 400",
			req: func(t *testing.T, f *fixture) req {
				return tokenReq(f.key, "3.0", "scope=SERVER_ACCESS&pad="+strings.Repeat("x", 65<<10))
			},
			status: http.StatusBadRequest, code: "invalid-content", detail: "Request body is too large.",
		},
		{
			name:   "unknown userId with StrictUserID gives 400",
			opts:   emulator.Options{StrictUserID: true},
			req:    func(t *testing.T, f *fixture) req { return tokenReq(f.key, "3.0", "scope=CLIENT_ACCESS&userId=nobody") },
			status: http.StatusBadRequest, code: "parameter-not-valid", detail: "User ID value is not valid",
		},
		{
			name: "known userId with StrictUserID gives 200",
			opts: emulator.Options{StrictUserID: true},
			req: func(t *testing.T, f *fixture) req {
				f.em.AddUser("app-1", "u-known")
				return tokenReq(f.key, "3.0", "scope=CLIENT_ACCESS&userId=u-known")
			},
			status: http.StatusOK,
		},
		{
			name: "user of another application with StrictUserID gives 400",
			opts: emulator.Options{StrictUserID: true},
			req: func(t *testing.T, f *fixture) req {
				f.em.AddUser("app-2", "u-other")
				return tokenReq(f.key, "3.0", "scope=CLIENT_ACCESS&userId=u-other")
			},
			status: http.StatusBadRequest, code: "parameter-not-valid", detail: "User ID value is not valid",
		},
		{
			name: "Trusted Advisor fields with documented values are accepted",
			req: func(t *testing.T, f *fixture) req {
				return tokenReq(f.key, "3.0", "scope=CLIENT_ACCESS&userId=u-1&orgName=Acme&orgRefID=123&orgRefType=ABN&orgType=Tax+Agent")
			},
			status: http.StatusOK,
		},
		{
			name: "Trusted Advisor orgRefType outside the enumeration gives 400",
			req: func(t *testing.T, f *fixture) req {
				return tokenReq(f.key, "3.0", "scope=CLIENT_ACCESS&userId=u-1&orgRefType=TFN")
			},
			status: http.StatusBadRequest, code: "parameter-not-valid", detail: "orgRefType is not valid",
		},
		{
			name: "Trusted Advisor orgType outside the enumeration gives 400",
			req: func(t *testing.T, f *fixture) req {
				return tokenReq(f.key, "3.0", "scope=CLIENT_ACCESS&userId=u-1&orgType=Plumber")
			},
			status: http.StatusBadRequest, code: "parameter-not-valid", detail: "orgType is not valid",
		},
		{
			name: "GET /token gives 405",
			req: func(t *testing.T, f *fixture) req {
				r := tokenReq(f.key, "3.0", "")
				r.method = http.MethodGet
				return r
			},
			status: http.StatusMethodNotAllowed, code: "method-not-allowed", detail: "Requested method is not allowed.",
			check: func(t *testing.T, f *fixture, rec *httptest.ResponseRecorder) {
				if got := rec.Header().Get("Allow"); got != "POST" {
					t.Errorf("Allow %q", got)
				}
				if f.em.TokenCalls() != 0 {
					t.Errorf("TokenCalls %d, want 0: only POSTs count", f.em.TokenCalls())
				}
			},
		},
		{
			name:   "unknown route gives 404 resource-not-found",
			req:    func(t *testing.T, f *fixture) req { return req{method: http.MethodGet, path: "/connectors"} },
			status: http.StatusNotFound, code: "resource-not-found",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts)
			rec := f.do(t, tc.req(t, f))
			switch {
			case tc.fixture != "":
				assertFixture(t, rec, tc.status, tc.fixture)
			case tc.code != "":
				assertErr(t, rec, tc.status, tc.code, tc.detail)
			case rec.Code != tc.status:
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if tc.check != nil {
				tc.check(t, f, rec)
			}
			if strings.Contains(rec.Body.String(), f.key) {
				t.Errorf("response body contains the API key")
			}
		})
	}
}

// TestValidationOrder: when several things are wrong, the earliest check of handleToken answers.
func TestValidationOrder(t *testing.T) {
	tests := []struct {
		name   string
		req    func(f *fixture) req
		status int
		detail string
	}{
		{
			name:   "no Authorization and no version: Authorization first",
			req:    func(f *fixture) req { return tokenReq("", "", "scope=NOPE") },
			status: http.StatusBadRequest, detail: "Authorization header parameter is required",
		},
		{
			name:   "malformed Authorization and no version: Authorization first",
			req:    func(f *fixture) req { return tokenReq("x", "", "scope=NOPE") },
			status: http.StatusBadRequest, detail: "Invalid authorization header",
		},
		{
			name:   "unknown key and no version: version first",
			req:    func(f *fixture) req { return tokenReq(emulator.GenerateKey(), "", "") },
			status: http.StatusBadRequest, detail: "Basiq-version must be specified in HTTP request header",
		},
		{
			name: "unknown key and unsupported content type: key first",
			req: func(f *fixture) req {
				r := tokenReq(emulator.GenerateKey(), "3.0", "<xml/>")
				r.header["Content-Type"] = "text/xml"
				return r
			},
			status: http.StatusNotFound, detail: "Unable to authenticate. Please, check your API key",
		},
		{
			name:   "disabled account and bad scope: account first",
			req:    func(f *fixture) req { return tokenReq(f.disabled, "3.0", "scope=NOPE") },
			status: http.StatusForbidden, detail: "Your account has been disabled. Please contact Basiq support.",
		},
		{
			name: "unsupported content type and bad scope: content type first",
			req: func(f *fixture) req {
				r := tokenReq(f.key, "3.0", "scope=NOPE")
				r.header["Content-Type"] = "text/plain"
				return r
			},
			status: http.StatusBadRequest, detail: "Requested content type is not supported.",
		},
		{
			name:   "missing userId and bad orgType: userId first",
			req:    func(f *fixture) req { return tokenReq(f.key, "3.0", "scope=CLIENT_ACCESS&orgType=Plumber") },
			status: http.StatusBadRequest, detail: "userId is required for CLIENT_ACCESS scope",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, emulator.Options{})
			rec := f.do(t, tc.req(f))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if e := decodeErr(t, rec); e.Detail != tc.detail {
				t.Errorf("detail %q, want %q", e.Detail, tc.detail)
			}
		})
	}

	t.Run("throttle precedes Authorization and counts failed requests", func(t *testing.T) {
		f := newFixture(t, emulator.Options{PerKeyLimit: 1})
		assertErr(t, f.do(t, tokenReq("", "3.0", "")), http.StatusBadRequest, "parameter-not-supplied", "")
		assertErr(t, f.do(t, tokenReq("", "3.0", "")), http.StatusTooManyRequests, "too-many-requests", "")
	})
	t.Run("method precedes throttle", func(t *testing.T) {
		f := newFixture(t, emulator.Options{PerKeyLimit: 1})
		f.do(t, tokenReq(f.key, "3.0", ""))
		r := tokenReq(f.key, "3.0", "")
		r.method = http.MethodPut
		assertErr(t, f.do(t, r), http.StatusMethodNotAllowed, "method-not-allowed", "")
	})
}

func TestVersionHeaderNameIsCaseInsensitive(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	srv := httptest.NewServer(f.em)
	defer srv.Close()
	for _, name := range []string{"basiq-version", "Basiq-Version", "BASIQ-VERSION"} {
		t.Run(name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader("scope=SERVER_ACCESS"))
			if err != nil {
				t.Fatal(err)
			}
			r.Header["Authorization"] = []string{"Basic " + f.key}
			r.Header["Content-Type"] = []string{"application/x-www-form-urlencoded"}
			r.Header[name] = []string{"3.0"} // sent with exactly this spelling
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp.Body))
			}
		})
	}
}

func TestTokensAreUnique(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	seen := map[string]bool{}
	for range 50 {
		tok := f.mint(t, "3.0", "scope=SERVER_ACCESS") // same claims, same second
		if seen[tok] {
			t.Fatal("a token was minted twice")
		}
		seen[tok] = true
	}
	if got := f.em.Minted(f.key, "SERVER_ACCESS", ""); got != 50 {
		t.Errorf("Minted = %d, want 50", got)
	}
}

func TestRateLimitPerKeySlides(t *testing.T) {
	f := newFixture(t, emulator.Options{ThrottleRetryAfter: 30 * time.Second})
	other := emulator.GenerateKey()
	f.em.AddKey(other, emulator.KeyOptions{})
	call := func(key string) *httptest.ResponseRecorder { return f.do(t, tokenReq(key, "3.0", "")) }

	// 500 calls at t=0, then 1000 at t=2m.
	for range 500 {
		if rec := call(f.key); rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	}
	f.clock.Advance(2 * time.Minute)
	for range 1000 {
		if rec := call(f.key); rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	}
	rec := call(f.key)
	assertErr(t, rec, http.StatusTooManyRequests, "too-many-requests", "")
	if got := rec.Header().Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After %q, want 30", got)
	}
	if rec := call(other); rec.Code != http.StatusOK {
		t.Errorf("another key is throttled too: %d", rec.Code)
	}

	f.clock.Advance(2*time.Minute + 59*time.Second) // t=4m59s: the first 500 are still in the window
	assertErr(t, call(f.key), http.StatusTooManyRequests, "too-many-requests", "")
	f.clock.Advance(time.Second) // t=5m: they have left it
	for i := range 500 {
		if rec := call(f.key); rec.Code != http.StatusOK {
			t.Fatalf("call %d after the window slid: status %d", i+1, rec.Code)
		}
	}
	assertErr(t, call(f.key), http.StatusTooManyRequests, "too-many-requests", "")
	if got, want := f.em.MintedByKey(f.key), 2000; got != want {
		t.Errorf("MintedByKey = %d, want %d (throttled calls mint nothing)", got, want)
	}
	if got, want := f.em.TokenCalls(), 2004; got != want {
		t.Errorf("TokenCalls = %d, want %d", got, want)
	}
}

func TestRateLimitOff(t *testing.T) {
	f := newFixture(t, emulator.Options{PerKeyLimit: -1})
	for i := range 1600 {
		if rec := f.do(t, tokenReq(f.key, "3.0", "")); rec.Code != http.StatusOK {
			t.Fatalf("call %d: status %d", i+1, rec.Code)
		}
	}
}

func TestRateLimitPerIP(t *testing.T) {
	f := newFixture(t, emulator.Options{PerIPLimit: 2})
	from := func(ip string) req { r := tokenReq(f.key, "3.0", ""); r.remote = ip + ":4000"; return r }
	for range 2 {
		if rec := f.do(t, from("203.0.113.7")); rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	}
	assertErr(t, f.do(t, from("203.0.113.7")), http.StatusForbidden, "request-not-valid", "")
	if rec := f.do(t, from("203.0.113.8")); rec.Code != http.StatusOK {
		t.Errorf("another IP: status %d", rec.Code)
	}
	f.clock.Advance(5 * time.Minute)
	if rec := f.do(t, from("203.0.113.7")); rec.Code != http.StatusOK {
		t.Errorf("after the window: status %d", rec.Code)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name       string
		fault      emulator.Fault
		path       string
		status     int
		code       string
		retryAfter string
	}{
		{name: "500 on /token", fault: emulator.Fault{Status: 500}, path: "/token", status: 500, code: "internal-server-error"},
		{name: "503 with Retry-After", fault: emulator.Fault{Status: 503, RetryAfter: 2 * time.Second}, path: "/token", status: 503, code: "service-unavailable", retryAfter: "2"},
		{name: "429", fault: emulator.Fault{Status: 429}, path: "/token", status: 429, code: "too-many-requests"},
		{name: "403 request-not-valid", fault: emulator.Fault{Status: 403}, path: "/token", status: 403, code: "request-not-valid"},
		{name: "every route with *", fault: emulator.Fault{Status: 500, Endpoint: "*"}, path: "/users", status: 500, code: "internal-server-error"},
		{name: "every route with empty Endpoint", fault: emulator.Fault{Status: 503}, path: "/users", status: 503, code: "service-unavailable"},
		{name: "fault on /users spares /token", fault: emulator.Fault{Status: 500, Endpoint: emulator.RouteUsers}, path: "/token", status: 200},
		{name: "fault on /token spares /users", fault: emulator.Fault{Status: 500, Endpoint: emulator.RouteToken}, path: "/users", status: 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, emulator.Options{})
			server := f.mint(t, "3.0", "scope=SERVER_ACCESS")
			f.em.SetFault(tc.fault)
			r := tokenReq(f.key, "3.0", "scope=SERVER_ACCESS")
			if tc.path == "/users" {
				r = req{path: "/users", header: bearer(server), body: `{"email":"a@example.com"}`}
			}
			rec := f.do(t, r)
			if tc.code != "" {
				assertErr(t, rec, tc.status, tc.code, "")
			} else if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			f.em.SetFault(emulator.Fault{})
			if rec := f.do(t, tokenReq(f.key, "3.0", "")); rec.Code != http.StatusOK {
				t.Errorf("after clearing the fault: status %d", rec.Code)
			}
		})
	}
}

func TestFaultHang(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	srv := httptest.NewServer(f.em)
	defer srv.Close()
	post := func(ctx context.Context) (*http.Response, error) {
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/token", strings.NewReader("scope=SERVER_ACCESS"))
		r.Header.Set("Authorization", "Basic "+f.key)
		r.Header.Set("basiq-version", "3.0")
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return srv.Client().Do(r)
	}
	f.em.SetFault(emulator.Fault{Hang: true, Endpoint: emulator.RouteToken})

	t.Run("until the request context is done", func(t *testing.T) {
		start := time.Now() // before the deadline is set, so the wait is measured in full
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		resp, err := post(ctx)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got status %d, want the call to hang", resp.StatusCode)
		}
		if el := time.Since(start); el < 150*time.Millisecond || el > 5*time.Second {
			t.Errorf("returned after %v", el)
		}
	})
	t.Run("the handler returns when the client gives up", func(t *testing.T) {
		// httptest.Server.Close waits for running handlers, so it only returns if the hung
		// handler noticed the client hang up while the fault is still in force.
		other := httptest.NewServer(f.em)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, other.URL+"/token", strings.NewReader("scope=SERVER_ACCESS"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err := other.Client().Do(r); err == nil {
			resp.Body.Close()
			t.Fatal("the call did not hang")
		}
		closed := make(chan struct{})
		go func() { other.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("the hung handler is still running after its client left")
		}
	})
	t.Run("until the fault is cleared", func(t *testing.T) {
		done := make(chan int, 1)
		go func() {
			resp, err := post(context.Background())
			if err != nil {
				done <- -1
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		select {
		case code := <-done:
			t.Fatalf("returned %d while hanging", code)
		case <-time.After(100 * time.Millisecond):
		}
		f.em.SetFault(emulator.Fault{})
		select {
		case code := <-done:
			if code != http.StatusOK {
				t.Errorf("status %d after release, want 200", code)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("still hanging after the fault was cleared")
		}
	})
}

func TestLatency(t *testing.T) {
	tests := []struct {
		name  string
		apply func(e *emulator.Emulator)
	}{
		{"SetLatency", func(e *emulator.Emulator) { e.SetLatency(80 * time.Millisecond) }},
		{"Fault.Latency", func(e *emulator.Emulator) { e.SetFault(emulator.Fault{Latency: 80 * time.Millisecond}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, emulator.Options{})
			tc.apply(f.em)
			start := time.Now()
			if rec := f.do(t, tokenReq(f.key, "3.0", "")); rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if el := time.Since(start); el < 80*time.Millisecond {
				t.Errorf("answered after %v, want >= 80ms", el)
			}
		})
	}
}

// TestConcurrentTokenCalls is meant for -race: 1,000 simultaneous clients over real sockets,
// every one counted and every token distinct.
func TestConcurrentTokenCalls(t *testing.T) {
	const n = 1000
	f := newFixture(t, emulator.Options{})
	srv := httptest.NewServer(f.em)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		mu     sync.Mutex
		tokens = map[string]bool{}
		errs   []string
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			form := url.Values{"scope": {"CLIENT_ACCESS"}, "userId": {"u-" + string(rune('a'+i%4))}}
			r, _ := http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader(form.Encode()))
			r.Header.Set("Authorization", "Basic "+f.key)
			r.Header.Set("basiq-version", "3.0")
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := hc.Do(r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			defer resp.Body.Close()
			var tb struct {
				AccessToken string `json:"access_token"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&tb); err != nil || resp.StatusCode != http.StatusOK {
				errs = append(errs, "bad answer")
				return
			}
			tokens[tb.AccessToken] = true
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d calls failed, first: %s", len(errs), errs[0])
	}
	if len(tokens) != n {
		t.Errorf("%d distinct tokens, want %d", len(tokens), n)
	}
	if got := f.em.TokenCalls(); got != n {
		t.Errorf("TokenCalls = %d, want %d", got, n)
	}
	if got := f.em.MintedByKey(f.key); got != n {
		t.Errorf("MintedByKey = %d, want %d", got, n)
	}
	sum := 0
	for _, u := range []string{"u-a", "u-b", "u-c", "u-d"} {
		sum += f.em.Minted(f.key, "CLIENT_ACCESS", u)
	}
	if sum != n || f.em.Minted(f.key, "CLIENT_ACCESS", "u-a") != n/4 {
		t.Errorf("Minted per user sums to %d, u-a %d", sum, f.em.Minted(f.key, "CLIENT_ACCESS", "u-a"))
	}
}

func TestResetCounters(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	tok := f.mint(t, "3.0", "")
	f.do(t, req{path: "/users", header: bearer(tok), body: `{"email":"a@example.com"}`})
	f.em.ResetCounters()
	if f.em.TokenCalls() != 0 || f.em.MintedByKey(f.key) != 0 || f.em.UsersCreated() != 0 || f.em.Minted(f.key, "SERVER_ACCESS", "") != 0 {
		t.Error("counters survived ResetCounters")
	}
	if _, ok := f.em.Inspect(tok); !ok {
		t.Error("ResetCounters forgot a minted token")
	}
}

func TestGenerateKey(t *testing.T) {
	for name, key := range map[string]string{"generated": emulator.GenerateKey(), "demo": emulator.DemoAPIKey} {
		t.Run(name, func(t *testing.T) {
			raw, err := base64.StdEncoding.DecodeString(key)
			if err != nil {
				t.Fatalf("not standard base64: %v", err)
			}
			a, b, ok := strings.Cut(string(raw), ":")
			if !ok || !isUUIDv4(a) || !isUUIDv4(b) {
				t.Errorf("decodes to %q, want <uuid>:<uuid>", raw)
			}
		})
	}
	if emulator.GenerateKey() == emulator.GenerateKey() {
		t.Error("GenerateKey repeated itself")
	}
}
