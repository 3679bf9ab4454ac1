package emulator_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/clocktest"
)

// fixture is a test's emulator with one enabled key, one disabled key and a clock.
type fixture struct {
	em       *emulator.Emulator
	clock    *clocktest.Clock
	key      string // enabled, application "app-1"
	disabled string // disabled account
}

func newFixture(t *testing.T, o emulator.Options) *fixture {
	t.Helper()
	f := &fixture{clock: clocktest.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)), key: emulator.GenerateKey(), disabled: emulator.GenerateKey()}
	if o.Now == nil {
		o.Now = f.clock.Now
	}
	f.em = emulator.New(o)
	f.em.AddKey(f.key, emulator.KeyOptions{ApplicationID: "app-1", PartnerID: "partner-1", Sandbox: true})
	f.em.AddKey(f.disabled, emulator.KeyOptions{ApplicationID: "app-2", Disabled: true})
	return f
}

// req describes one request; a nil header value means the header is not sent.
type req struct {
	method string
	path   string
	header map[string]string
	body   string
	remote string
}

func (f *fixture) do(t *testing.T, r req) *httptest.ResponseRecorder {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	rec := httptest.NewRecorder()
	f.em.ServeHTTP(rec, hr)
	return rec
}

// tokenReq is a well-formed POST /token; tests change what they need.
func tokenReq(key, version, form string) req {
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
	if key != "" {
		h["Authorization"] = "Basic " + key
	}
	if version != "" {
		h["basiq-version"] = version
	}
	return req{path: "/token", header: h, body: form}
}

// mint returns a token or fails the test.
func (f *fixture) mint(t *testing.T, version, form string) string {
	t.Helper()
	rec := f.do(t, tokenReq(f.key, version, form))
	if rec.Code != http.StatusOK {
		t.Fatalf("mint %q: status %d, body %s", form, rec.Code, rec.Body)
	}
	var tb struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tb); err != nil || tb.AccessToken == "" {
		t.Fatalf("mint: body %s: %v", rec.Body, err)
	}
	return tb.AccessToken
}

func bearer(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json", "Accept": "application/json"}
}

func isUUIDv4(s string) bool {
	return regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(s)
}

// assertFixture checks status, Content-Type and that the body equals want field by field (key
// order ignored), with correlationId a fresh UUIDv4 instead of the fixture's.
func assertFixture(t *testing.T, rec *httptest.ResponseRecorder, status int, want string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var got, exp map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, rec.Body)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("bad fixture: %v", err)
	}
	cid, _ := got["correlationId"].(string)
	if !isUUIDv4(cid) {
		t.Errorf("correlationId %q is not a UUIDv4", cid)
	}
	got["correlationId"] = exp["correlationId"]
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("body\n got %s\nwant %s", rec.Body, want)
	}
}

// apiErr is the first error of an envelope.
type apiErr struct {
	Code, Title, Detail string
	Source              json.RawMessage
}

func decodeErr(t *testing.T, rec *httptest.ResponseRecorder) apiErr {
	t.Helper()
	var env struct {
		Type          string   `json:"type"`
		CorrelationID string   `json:"correlationId"`
		Data          []apiErr `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, rec.Body)
	}
	if env.Type != "list" || len(env.Data) != 1 || !isUUIDv4(env.CorrelationID) {
		t.Fatalf("not a one-error envelope: %s", rec.Body)
	}
	return env.Data[0]
}

// assertErr checks status, code and (when non-empty) detail.
func assertErr(t *testing.T, rec *httptest.ResponseRecorder, status int, code, detail string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	e := decodeErr(t, rec)
	if e.Code != code || (detail != "" && e.Detail != detail) {
		t.Errorf("got %s %q, want %s %q", e.Code, e.Detail, code, detail)
	}
}

// jwtClaims decodes a token's claims without checking the signature.
func jwtClaims(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("decode token part: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("token part is not JSON: %v", err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}
