package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/server/internal/apperr"
)

// loginShape is the login request, the body decodeJSON sees most.
type loginShape struct {
	Tenant   string `json:"tenant"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

func decodeLogin(contentType string, body []byte) (loginShape, error) {
	req := httptest.NewRequest("POST", "/auth/login", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := echo.New().NewContext(req, httptest.NewRecorder())
	var v loginShape
	err := decodeJSON(c, &v)
	return v, err
}

// checkInvalid fails unless err is a classified 400 invalid_request whose public message does
// not repeat secret, a value taken from the request.
func checkInvalid(t *testing.T, err error, secret string) {
	t.Helper()
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want an *apperr.Error", err, err)
	}
	kind, msg, _ := apperr.Public(err)
	status, code := statusOf(kind), kind.Code
	if status != 400 || code != "invalid_request" || msg == "" {
		t.Fatalf("Public = %d %q %q, want 400 invalid_request with a message", status, code, msg)
	}
	if secret != "" && strings.Contains(msg, secret) {
		t.Errorf("the message repeats a request value: %q", msg)
	}
}

const secretPassword = "S3cret-Passw0rd-do-not-echo"

func TestDecodeJSON(t *testing.T) {
	ok := `{"tenant":"acme","email":"a@b.c","password":"` + secretPassword + `"}`
	tests := []struct {
		name        string
		contentType string
		body        string
		valid       bool
	}{
		{"a login", "application/json", ok, true},
		{"charset parameter", "application/json; charset=utf-8", ok, true},
		{"trailing white space", "application/json", ok + " \n\t", true},
		{"no content type", "", ok, false},
		{"text/plain", "text/plain", ok, false},
		{"form", "application/x-www-form-urlencoded", "tenant=acme&email=a@b.c", false},
		{"multipart", "multipart/form-data; boundary=x", "--x\r\n\r\n--x--", false},
		{"json suffix type", "application/problem+json", ok, false},
		{"broken media type", "application/json; =", ok, false},
		{"empty body", "application/json", "", false},
		{"white space only", "application/json", "  ", false},
		{"null is not an object", "application/json", "null", false},
		{"truncated", "application/json", `{"tenant":"acme","password":"` + secretPassword, false},
		{"array", "application/json", `[` + ok + `]`, false},
		{"string", "application/json", `"` + secretPassword + `"`, false},
		{"unknown field", "application/json", `{"tenant":"acme","admin":true}`, false},
		{"wrong type", "application/json", `{"tenant":"acme","email":{"$ne":null}}`, false},
		{"number overflow", "application/json", `{"tenant":1e999}`, false},
		{"duplicate key", "application/json", `{"password":"x","password":"` + secretPassword + `"}`, false},
		{"two objects", "application/json", ok + ok, false},
		{"trailing garbage", "application/json", ok + ` x`, false},
		{"raw NUL in a string", "application/json", "{\"tenant\":\"ac\x00me\"}", false},
		{"raw newline in a string", "application/json", "{\"email\":\"a@b.c\r\nX: y\"}", false},
		{"escaped NUL and CRLF are JSON", "application/json", `{"email":"a\u0000@b.c\r\n"}`, true},
		{"byte order mark", "application/json", "\ufeff" + ok, false},
		{"single quotes", "application/json", `{'tenant':'acme'}`, false},
		{"comment", "application/json", `{"tenant":"acme"/* x */}`, false},
		{"deep nesting", "application/json", strings.Repeat("[", 8000) + strings.Repeat("]", 8000), false},
		{"over the size limit", "application/json", `{"password":"` + strings.Repeat("x", maxBody) + `"}`, false},
		// encoding/json matches field names case-insensitively (and folds K/ſ), so these name
		// one field twice just like an exact duplicate: a layer that reads keys exactly sees
		// one value, this decoder another.
		{"duplicate key in another case", "application/json", `{"tenant":"acme","TENANT":"beta","email":"a@b.c","password":"x"}`, false},
		{"duplicate key by Unicode folding", "application/json", `{"password":"x","pa` + "\u017f\u017f" + `word":"y"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := decodeLogin(tc.contentType, []byte(tc.body))
			if tc.valid {
				if err != nil {
					t.Fatalf("decodeJSON = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("decodeJSON accepted it: %+v", v)
			}
			checkInvalid(t, err, secretPassword)
		})
	}
}

// FuzzDecodeJSON: whatever the content type and body, decodeJSON never panics and returns
// either nil (for one well-formed JSON object) or a 400 invalid_request.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"tenant":"acme","email":"a@b.c","password":"pw"}`},
		{"application/json", `{"email":"a\u0000@b.c\r\n"}`},
		{"application/json", `{"tenant":"acme","tenant":"beta"}`},
		{"application/json", `{"tenant":"acme","TENANT":"beta"}`},
		{"application/json", `{"a":{"b":[1,{"c":2}]}}`},
		{"application/json", `[{"tenant":"acme"}]`},
		{"application/json", `{"tenant":1e999}`},
		{"application/json", `{} {}`},
		{"application/json", "\ufeff{}"},
		{"application/json", `{"tenant":"` + strings.Repeat("x", 100) + `"}`},
		{"application/json; charset=utf-8", `{}`},
		{"application/json; =", `{}`},
		{"text/plain", `{}`},
		{"", ``},
		{"application/json", `nul`},
		{"application/json", strings.Repeat("[", 64)},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		_, err := decodeLogin(contentType, body)
		if err == nil {
			if !json.Valid(body) || len(body) > maxBody {
				t.Fatalf("accepted %q", body)
			}
			return
		}
		checkInvalid(t, err, "")
	})
}

// TestEchoedNamesAreShort: a field name the client chose comes back in the message at most
// maxEchoedName bytes long, and still valid UTF-8.
func TestEchoedNamesAreShort(t *testing.T) {
	long := strings.Repeat("x", 39) + strings.Repeat("é", 4000)
	tests := []struct {
		name, body string
	}{
		{"unknown field", `{"tenant":"acme","` + long + `":1}`},
		{"duplicate key", `{"` + long + `":1,"` + long + `":2}`},
		{"wrong type", `{"tenant":{"` + long + `":1}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeLogin("application/json", []byte(tc.body))
			checkInvalid(t, err, strings.Repeat("é", 2))
			_, msg, _ := apperr.Public(err)
			if len(msg) > 200 || !utf8.ValidString(msg) {
				t.Errorf("message of %d bytes (valid UTF-8: %v): %.300q", len(msg), utf8.ValidString(msg), msg)
			}
		})
	}
}
