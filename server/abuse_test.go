package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
)

// abuseEnv is a running BFF with people logged in and cookies and consent states in every
// state the abuse table needs.
type abuseEnv struct {
	s       *stack
	r       *replica
	key     []byte // the session signing key
	alice   *client
	carol   *client           // a user of the API 2.0 tenant
	cookie  map[string]string // cookie values by kind
	state   map[string]string // consent states by kind
	secrets map[string]string // what must never be logged, by what it is
	bare    *http.Client      // no cookie jar: the table's cookies are set by hand
	// contract checks bare's answers against api/openapi.yaml (test clients check their own).
	contract *contract
}

// abuseExtra lifts the per-IP login limit: the table makes dozens of failed logins from one
// address, and the limits have their own tests.
const abuseExtra = "login:\n  max_attempts_per_ip: 1000\n"

func prepareAbuse(t *testing.T) *abuseEnv {
	t.Helper()
	s := newStack(t, stackOptions{extra: abuseExtra})
	s.addUser("acme", "alice@acme.test", testPassword)
	s.addUser("acme", "gone@acme.test", testPassword)
	s.addUser("beta", "carol@beta.test", testPassword)
	r := s.start()
	key, err := hex.DecodeString(s.env["SESSION_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	e := &abuseEnv{s: s, r: r, key: key, cookie: map[string]string{}, state: map[string]string{}, secrets: map[string]string{},
		contract: loadContract(t),
		bare:     &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(e.bare.CloseIdleConnections)

	e.alice = newClient(t, r.url)
	e.alice.mustLogin("acme", "alice@acme.test", testPassword)
	e.secrets["alice's token"] = e.alice.mustToken().AccessToken
	e.carol = newClient(t, r.url)
	e.carol.mustLogin("beta", "carol@beta.test", testPassword)
	e.secrets["carol's token"] = e.carol.mustToken().AccessToken
	aliceCookie := sessionCookie(t, e.alice)
	e.secrets["alice's cookie"] = aliceCookie
	e.secrets["carol's cookie"] = sessionCookie(t, e.carol)
	aliceID := e.sessionID(t, aliceCookie)
	e.secrets["alice's session id"] = aliceID
	e.secrets["carol's session id"] = e.sessionID(t, e.secrets["carol's cookie"])

	gone := newClient(t, r.url)
	gone.mustLogin("acme", "gone@acme.test", testPassword)
	e.cookie["deleted"] = sessionCookie(t, gone)
	e.secrets["a logged-out cookie"] = e.cookie["deleted"]
	e.secrets["a logged-out session id"] = e.sessionID(t, e.cookie["deleted"])
	if resp := gone.do("POST", "/auth/logout", "", map[string]string{"X-CSRF": "1"}); resp.status != 204 {
		t.Fatalf("logout: %d %s", resp.status, resp.body)
	}

	if got := signCookie(key, "bff", []byte(aliceID), time.Now().Unix()); e.sessionID(t, got) != aliceID {
		t.Fatal("signCookie does not produce what securecookie reads")
	}
	e.cookie["tampered"] = tamper(aliceCookie)
	e.cookie["other key"] = signCookie(randomKey(t), "bff", []byte(aliceID), time.Now().Unix())
	// Alice's live session id under a signature 13 hours old: past the absolute timeout.
	e.cookie["expired"] = signCookie(key, "bff", []byte(aliceID), time.Now().Add(-13*time.Hour).Unix())
	e.cookie["unknown id"] = signCookie(key, "bff", []byte(randomText(t)), time.Now().Unix())
	e.cookie["other name"] = signCookie(key, "csrf", []byte(aliceID), time.Now().Unix())

	state := func() string {
		t.Helper()
		resp := e.alice.do("POST", "/connect/consent", "", map[string]string{"X-CSRF": "1"})
		if resp.status != 200 {
			t.Fatalf("consent: %d %s", resp.status, resp.body)
		}
		var body struct{ URL string }
		resp.json(t, &body)
		st := mustURL(t, body.URL).Query().Get("state")
		if st == "" {
			t.Fatalf("no state in %s", body.URL)
		}
		return st
	}
	e.state["spent"] = state()
	if resp := e.alice.do("GET", "/connect/return?state="+url.QueryEscape(e.state["spent"]), "", nil); resp.status != 303 {
		t.Fatalf("first use of a state: %d %s", resp.status, resp.body)
	}
	e.state["tampered"] = tamper(state())
	e.state["fresh"] = state()
	e.secrets["a consent state"] = e.state["spent"]
	return e
}

// sessionCookie returns c's session cookie value.
func sessionCookie(t *testing.T, c *client) string {
	t.Helper()
	v, ok := cookieValue(t, c, "bff")
	if !ok {
		t.Fatal("no bff cookie")
	}
	return v
}

// sessionID opens a session cookie with the stack's key, as the server does.
func (e *abuseEnv) sessionID(t *testing.T, value string) string {
	t.Helper()
	sc := securecookie.New(e.key, nil)
	sc.SetSerializer(securecookie.NopEncoder{})
	var id []byte
	if err := sc.Decode("bff", value, &id); err != nil {
		t.Fatalf("decode session cookie: %v", err)
	}
	if len(id) < 16 {
		t.Fatalf("session id of %d bytes", len(id))
	}
	return string(id)
}

// signCookie builds a securecookie value by hand, so a test can choose its timestamp.
func signCookie(key []byte, name string, value []byte, unix int64) string {
	b64 := base64.URLEncoding
	msg := fmt.Sprintf("%s|%d|%s|", name, unix, b64.EncodeToString(value))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg[:len(msg)-1]))
	signed := append([]byte(msg), m.Sum(nil)...)[len(name)+1:]
	return b64.EncodeToString(signed)
}

// tamper changes one character in the middle of s (every bit of a middle base64 character is
// significant).
func tamper(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	b, err := hex.DecodeString(randomHex(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomText(t *testing.T) string {
	t.Helper()
	return rand.Text() + rand.Text()
}

// abuseCase is one hostile request and the refusal it must get.
type abuseCase struct {
	name   string
	admin  bool    // to the admin listener
	c      *client // nil: no cookie jar
	method string
	path   string
	body   string
	header map[string]string // set verbatim (not canonicalised)
	raw    string            // when set, the request is written to the socket as is
	status int
	code   string
	// plain marks an answer from net/http itself, before any handler of ours runs: an
	// oversized header block (431), a malformed request (400), or the admin listener,
	// which is a bare ServeMux for probes and Prometheus. Those bodies are Go's text.
	plain bool
	// location, when set, is the redirect the answer must be (a browser navigation gets a
	// redirect, never a JSON error).
	location string
}

func hdr(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func loginBody(tenant, email, password string) string {
	b, _ := json.Marshal(map[string]string{"tenant": tenant, "email": email, "password": password})
	return string(b)
}

// rawGET is a request written byte for byte: no client library cleans its target.
func rawGET(target string, headers ...string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n" + strings.Join(headers, "") + "\r\n"
}

func (e *abuseEnv) cases() []abuseCase {
	const evil = "http://evil.example"
	json := "application/json"
	csrf := hdr("X-CSRF", "1")
	spa := hdr("X-CSRF", "1", "Content-Type", json)
	withCSRF := func(kv ...string) map[string]string { return hdr(append([]string{"X-CSRF", "1"}, kv...)...) }
	login := func(kv ...string) map[string]string {
		return hdr(append([]string{"X-CSRF", "1", "Content-Type", json}, kv...)...)
	}
	cookie := func(kind string) string { return "bff=" + e.cookie[kind] }
	big := strings.Repeat("a", 64<<10)
	aliceLogin := func(email, password string) string { return loginBody("acme", email, password) }

	return []abuseCase{
		// The SPA and its assets: nothing outside the embedded files, ever.
		{name: "traversal ../../etc/passwd", raw: rawGET("/../../etc/passwd"), status: 404, code: "not_found"},
		{name: "traversal %2e%2e", raw: rawGET("/%2e%2e/%2e%2e/etc/passwd"), status: 404, code: "not_found"},
		{name: "traversal ..%2fgo.mod", raw: rawGET("/..%2fgo.mod"), status: 404, code: "not_found"},
		{name: "traversal fully encoded", raw: rawGET("/%2e%2e%2f%2e%2e%2fgo.mod"), status: 404, code: "not_found"},
		{name: "traversal with encoded backslashes", raw: rawGET("/..%5c..%5cgo.mod"), status: 404, code: "not_found"},
		{name: "traversal to server source", raw: rawGET("/web/../../server/main.go"), status: 404, code: "not_found"},
		{name: "double slash", raw: rawGET("//evil.example/index.html"), status: 404, code: "not_found"},
		{name: "NUL in the path", raw: rawGET("/index.html%00.js"), status: 404, code: "not_found"},
		{name: "web package source", method: "GET", path: "/embed.go", status: 404, code: "not_found"},
		{name: "web package readme", method: "GET", path: "/README.md", status: 404, code: "not_found"},
		{name: "web package tests", method: "GET", path: "/test/api.test.mjs", status: 404, code: "not_found"},
		{name: "a directory", method: "GET", path: "/test/", status: 404, code: "not_found"},
		{name: "dot env", method: "GET", path: "/.env", status: 404, code: "not_found"},
		{name: "git config", method: "GET", path: "/.git/config", status: 404, code: "not_found"},
		{name: "HEAD of a missing asset", method: "HEAD", path: "/nope.js", status: 404},
		{name: "asset by POST", method: "POST", path: "/app.js", header: csrf, status: 405, code: "method_not_allowed"},

		// GET /auth/tenants
		{name: "tenants without X-CSRF", method: "GET", path: "/auth/tenants", status: 403, code: "csrf_failed"},
		{name: "tenants by POST", method: "POST", path: "/auth/tenants", header: csrf, status: 405, code: "method_not_allowed"},
		{name: "tenants from a foreign origin", method: "GET", path: "/auth/tenants", header: withCSRF("Origin", evil), status: 403, code: "csrf_failed"},

		// POST /auth/login: shape
		{name: "malformed JSON", method: "POST", path: "/auth/login", body: `{"tenant":"acme",`, header: spa, status: 400, code: "invalid_request"},
		{name: "oversized JSON (20 KiB)", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", strings.Repeat("x", 20<<10)), header: spa, status: 400, code: "invalid_request"},
		{name: "oversized JSON (1 MiB)", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", strings.Repeat("x", 1<<20)), header: spa, status: 400, code: "invalid_request"},
		{name: "empty body", method: "POST", path: "/auth/login", header: spa, status: 400, code: "invalid_request"},
		{name: "JSON null", method: "POST", path: "/auth/login", body: "null", header: spa, status: 400, code: "invalid_request"},
		{name: "text/plain", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: withCSRF("Content-Type", "text/plain"), status: 400, code: "invalid_request"},
		{name: "form encoded", method: "POST", path: "/auth/login", body: "tenant=acme&email=alice%40acme.test&password=x", header: withCSRF("Content-Type", "application/x-www-form-urlencoded"), status: 400, code: "invalid_request"},
		{name: "multipart", method: "POST", path: "/auth/login", body: "--b\r\nContent-Disposition: form-data; name=\"tenant\"\r\n\r\nacme\r\n--b--\r\n", header: withCSRF("Content-Type", "multipart/form-data; boundary=b"), status: 400, code: "invalid_request"},
		{name: "no content type", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: csrf, status: 400, code: "invalid_request"},
		{name: "JSON-ish content type", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: withCSRF("Content-Type", "application/json-patch+json"), status: 400, code: "invalid_request"},
		{name: "NUL in the email", method: "POST", path: "/auth/login", body: aliceLogin("alice\x00@acme.test", testPassword), header: spa, status: 400, code: "invalid_request"},
		{name: "CR/LF in the email", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test\r\nX-Injected: 1", testPassword), header: spa, status: 400, code: "invalid_request"},
		{name: "CR/LF in the tenant", method: "POST", path: "/auth/login", body: loginBody("acme\r\nX-Injected: 1", "alice@acme.test", testPassword), header: spa, status: 400, code: "invalid_request"},
		{name: "NUL in the tenant", method: "POST", path: "/auth/login", body: loginBody("acme\x00", "alice@acme.test", testPassword), header: spa, status: 400, code: "invalid_request"},
		{name: "raw NUL byte in the body", method: "POST", path: "/auth/login", body: "{\"tenant\":\"acme\x00\",\"email\":\"a@b.c\",\"password\":\"x\"}", header: spa, status: 400, code: "invalid_request"},
		{name: "CR/LF in the password", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword+"\r\n"), header: spa, status: 401, code: "invalid_credentials"},
		{name: "email too long", method: "POST", path: "/auth/login", body: aliceLogin(strings.Repeat("a", 300)+"@acme.test", "x"), header: spa, status: 400, code: "invalid_request"},
		{name: "password too long", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", strings.Repeat("p", 2000)), header: spa, status: 400, code: "invalid_request"},
		{name: "email as an object", method: "POST", path: "/auth/login", body: `{"tenant":"acme","email":{"$ne":null},"password":"x"}`, header: spa, status: 400, code: "invalid_request"},
		{name: "duplicate key", method: "POST", path: "/auth/login", body: `{"tenant":"beta","email":"alice@acme.test","password":"x","tenant":"acme"}`, header: spa, status: 400, code: "invalid_request"},
		{name: "duplicate key in another case", method: "POST", path: "/auth/login", body: `{"tenant":"acme","email":"alice@acme.test","password":"x","TENANT":"beta"}`, header: spa, status: 400, code: "invalid_request"},
		{name: "unknown field", method: "POST", path: "/auth/login", body: `{"tenant":"acme","email":"alice@acme.test","password":"x","role":"admin"}`, header: spa, status: 400, code: "invalid_request"},

		// POST /auth/login: who
		{name: "unknown tenant", method: "POST", path: "/auth/login", body: loginBody("nope", "alice@acme.test", testPassword), header: spa, status: 400, code: "invalid_request"},
		{name: "SQL injection in the tenant", method: "POST", path: "/auth/login", body: loginBody("acme' OR '1'='1", "alice@acme.test", testPassword), header: spa, status: 400, code: "invalid_request"},
		{name: "SQL injection in the email", method: "POST", path: "/auth/login", body: aliceLogin("' OR '1'='1' --@acme.test", testPassword), header: spa, status: 401, code: "invalid_credentials"},
		{name: "SQL comment after the email", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test' --", "x"), header: spa, status: 401, code: "invalid_credentials"},
		{name: "SQL injection in the password", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", "' OR ''='"), header: spa, status: 401, code: "invalid_credentials"},
		{name: "SQL statement in the tenant", method: "POST", path: "/auth/login", body: loginBody("acme'; DROP TABLE users; --", "alice@acme.test", testPassword), header: spa, status: 400, code: "invalid_request"},
		{name: "Cyrillic look-alike of alice", method: "POST", path: "/auth/login", body: aliceLogin("\u0430lice@acme.test", testPassword), header: spa, status: 401, code: "invalid_credentials"},
		{name: "full-width look-alike of alice", method: "POST", path: "/auth/login", body: aliceLogin("\uff41lice@acme.test", testPassword), header: spa, status: 401, code: "invalid_credentials"},
		{name: "zero-width space in alice", method: "POST", path: "/auth/login", body: aliceLogin("alice\u200b@acme.test", testPassword), header: spa, status: 401, code: "invalid_credentials"},
		{name: "spoofed forwarding headers", method: "POST", path: "/auth/login", body: aliceLogin("nobody@acme.test", "x"), header: login("X-Forwarded-For", "203.0.113.7", "X-Real-IP", "203.0.113.8"), status: 401, code: "invalid_credentials"},

		// POST /auth/login: cross-site
		{name: "login without X-CSRF", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: hdr("Content-Type", json), status: 403, code: "csrf_failed"},
		{name: "X-CSRF: 0", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: hdr("X-CSRF", "0", "Content-Type", json), status: 403, code: "csrf_failed"},
		{name: "X-CSRF: true", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: hdr("X-CSRF", "true", "Content-Type", json), status: 403, code: "csrf_failed"},
		{name: "X-CSRF: no-break space 1", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: hdr("X-CSRF", "\u00a01", "Content-Type", json), status: 403, code: "csrf_failed"},
		{name: "X-CSRF: 1, 1", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: hdr("X-CSRF", "1, 1", "Content-Type", json), status: 403, code: "csrf_failed"},
		{name: "lower-case header name, wrong value", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: hdr("x-csrf", "01", "Content-Type", json), status: 403, code: "csrf_failed"},
		{name: "simple cross-origin form post", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: hdr("Origin", evil, "Content-Type", "text/plain"), status: 403, code: "csrf_failed"},
		{name: "cross-origin login without preflight", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: login("Origin", evil), status: 403, code: "csrf_failed"},
		{name: "Origin: null", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: login("Origin", "null"), status: 403, code: "csrf_failed"},
		{name: "look-alike origin", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: login("Origin", "http://spa.example.test.evil.example"), status: 403, code: "csrf_failed"},
		{name: "foreign referer", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: login("Referer", evil+"/spa.example.test"), status: 403, code: "csrf_failed"},
		{name: "Sec-Fetch-Site: cross-site", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: login("Sec-Fetch-Site", "cross-site"), status: 403, code: "csrf_failed"},
		{name: "Sec-Fetch-Site: same-site", method: "POST", path: "/auth/login", body: aliceLogin("alice@acme.test", testPassword), header: login("Sec-Fetch-Site", "same-site"), status: 403, code: "csrf_failed"},
		{name: "login by PATCH with _method", method: "PATCH", path: "/auth/login?_method=POST", body: aliceLogin("alice@acme.test", testPassword), header: spa, status: 405, code: "method_not_allowed"},
		// GET falls through to the SPA's catch-all route, which has no such file.
		{name: "login by GET", method: "GET", path: "/auth/login?tenant=acme&email=alice@acme.test&password=x", header: csrf, status: 404, code: "not_found"},

		// POST /auth/logout
		{name: "logout without a session", method: "POST", path: "/auth/logout", header: csrf, status: 401, code: "unauthenticated"},
		{name: "logout with a tampered cookie", method: "POST", path: "/auth/logout", header: withCSRF("Cookie", cookie("tampered")), status: 401, code: "unauthenticated"},
		{name: "logout with a deleted session", method: "POST", path: "/auth/logout", header: withCSRF("Cookie", cookie("deleted")), status: 401, code: "unauthenticated"},
		{name: "logout without X-CSRF", c: e.alice, method: "POST", path: "/auth/logout", status: 403, code: "csrf_failed"},
		{name: "logout by GET with a method override", c: e.alice, method: "GET", path: "/auth/logout", header: withCSRF("X-HTTP-Method-Override", "POST"), status: 404, code: "not_found"},
		{name: "logout from a foreign origin", c: e.alice, method: "POST", path: "/auth/logout", header: withCSRF("Origin", evil), status: 403, code: "csrf_failed"},

		// GET /auth/me
		{name: "me with a garbage cookie", method: "GET", path: "/auth/me", header: hdr("Cookie", "bff=garbage"), status: 401, code: "unauthenticated"},
		{name: "me with an empty cookie", method: "GET", path: "/auth/me", header: hdr("Cookie", "bff="), status: 401, code: "unauthenticated"},
		{name: "me with a tampered cookie", method: "GET", path: "/auth/me", header: hdr("Cookie", cookie("tampered")), status: 401, code: "unauthenticated"},
		{name: "me with a cookie signed by another key", method: "GET", path: "/auth/me", header: hdr("Cookie", cookie("other key")), status: 401, code: "unauthenticated"},
		{name: "me with a deleted session", method: "GET", path: "/auth/me", header: hdr("Cookie", cookie("deleted")), status: 401, code: "unauthenticated"},
		{name: "me with an expired cookie", method: "GET", path: "/auth/me", header: hdr("Cookie", cookie("expired")), status: 401, code: "unauthenticated"},
		{name: "me with a signed unknown id", method: "GET", path: "/auth/me", header: hdr("Cookie", cookie("unknown id")), status: 401, code: "unauthenticated"},
		{name: "me with a cookie signed for another name", method: "GET", path: "/auth/me", header: hdr("Cookie", cookie("other name")), status: 401, code: "unauthenticated"},
		{name: "me with the secure cookie name", method: "GET", path: "/auth/me", header: hdr("Cookie", "__Host-bff="+e.secrets["alice's cookie"]), status: 401, code: "unauthenticated"},
		{name: "me with an overlong cookie", method: "GET", path: "/auth/me", header: hdr("Cookie", "bff="+strings.Repeat("QUFB", 200)), status: 401, code: "unauthenticated"},
		{name: "me with a 64 KiB cookie", method: "GET", path: "/auth/me", header: hdr("Cookie", "bff="+big), status: 431, plain: true},
		{name: "me with a 64 KiB header", method: "GET", path: "/auth/me", header: hdr("X-Padding", big), status: 431, plain: true},
		{name: "me by POST with a method override", c: e.alice, method: "POST", path: "/auth/me", header: withCSRF("X-HTTP-Method-Override", "GET"), status: 405, code: "method_not_allowed"},
		{name: "me from a foreign origin", c: e.alice, method: "GET", path: "/auth/me", header: hdr("Origin", evil), status: 403, code: "csrf_failed"},

		// GET /client-token
		{name: "token without a session", method: "GET", path: "/client-token", header: csrf, status: 401, code: "unauthenticated"},
		{name: "token without X-CSRF", c: e.alice, method: "GET", path: "/client-token", status: 403, code: "csrf_failed"},
		{name: "token with X-CSRF: 0", c: e.alice, method: "GET", path: "/client-token", header: hdr("X-CSRF", "0"), status: 403, code: "csrf_failed"},
		{name: "token with X-CSRF: true", c: e.alice, method: "GET", path: "/client-token", header: hdr("X-CSRF", "true"), status: 403, code: "csrf_failed"},
		{name: "token with a tampered cookie", method: "GET", path: "/client-token", header: withCSRF("Cookie", cookie("tampered")), status: 401, code: "unauthenticated"},
		{name: "token with an expired cookie", method: "GET", path: "/client-token", header: withCSRF("Cookie", cookie("expired")), status: 401, code: "unauthenticated"},
		{name: "token with a deleted session", method: "GET", path: "/client-token", header: withCSRF("Cookie", cookie("deleted")), status: 401, code: "unauthenticated"},
		{name: "token from a foreign origin", c: e.alice, method: "GET", path: "/client-token", header: withCSRF("Origin", evil), status: 403, code: "csrf_failed"},
		{name: "token from Origin null", c: e.alice, method: "GET", path: "/client-token", header: withCSRF("Origin", "null"), status: 403, code: "csrf_failed"},
		{name: "token from the allowed origin with a path", c: e.alice, method: "GET", path: "/client-token", header: withCSRF("Origin", "http://spa.example.test/"), status: 403, code: "csrf_failed"},
		{name: "token by PUT", c: e.alice, method: "PUT", path: "/client-token", header: csrf, status: 405, code: "method_not_allowed"},
		{name: "token by DELETE", c: e.alice, method: "DELETE", path: "/client-token", header: csrf, status: 405, code: "method_not_allowed"},
		{name: "token by POST with a method override", c: e.alice, method: "POST", path: "/client-token", header: withCSRF("X-HTTP-Method-Override", "GET"), status: 405, code: "method_not_allowed"},
		{name: "method override DELETE does not skip X-CSRF", c: e.alice, method: "GET", path: "/client-token", header: hdr("X-HTTP-Method-Override", "DELETE"), status: 403, code: "csrf_failed"},

		// POST /connect/consent
		{name: "consent by GET", c: e.alice, method: "GET", path: "/connect/consent", header: csrf, status: 404, code: "not_found"},
		{name: "consent without a session", method: "POST", path: "/connect/consent", header: csrf, status: 401, code: "unauthenticated"},
		{name: "consent without X-CSRF", c: e.alice, method: "POST", path: "/connect/consent", status: 403, code: "csrf_failed"},
		{name: "consent from a foreign origin", c: e.alice, method: "POST", path: "/connect/consent", header: withCSRF("Origin", evil), status: 403, code: "csrf_failed"},
		{name: "consent for an API 2.0 tenant", c: e.carol, method: "POST", path: "/connect/consent", header: csrf, status: 403, code: "forbidden"},
		{name: "consent with a deleted session", method: "POST", path: "/connect/consent", header: withCSRF("Cookie", cookie("deleted")), status: 401, code: "unauthenticated"},

		// GET /connect/return
		{name: "return without a state", method: "GET", path: "/connect/return", status: 303, location: "/?connect_error=invalid_state"},
		{name: "return with a forged state", method: "GET", path: "/connect/return?state=" + strings.Repeat("A", 32) + "." + strings.Repeat("B", 24), status: 303, location: "/?connect_error=invalid_state"},
		{name: "return with a replayed state", method: "GET", path: "/connect/return?state=" + url.QueryEscape(e.state["spent"]), status: 303, location: "/?connect_error=invalid_state"},
		{name: "return with a tampered state", method: "GET", path: "/connect/return?state=" + url.QueryEscape(e.state["tampered"]), status: 303, location: "/?connect_error=invalid_state"},
		{name: "return with an 8 KiB state", method: "GET", path: "/connect/return?state=" + strings.Repeat("s", 8<<10), status: 303, location: "/?connect_error=invalid_state"},
		{name: "return with SQL in the state", method: "GET", path: "/connect/return?state=" + url.QueryEscape("' OR 1=1 --"), status: 303, location: "/?connect_error=invalid_state"},
		{name: "return with CR/LF in the state", method: "GET", path: "/connect/return?state=a%0d%0aLocation:%20http://evil.example", status: 303, location: "/?connect_error=invalid_state"},
		{name: "return with two states", method: "GET", path: "/connect/return?state=x&state=" + url.QueryEscape(e.state["spent"]), status: 303, location: "/?connect_error=invalid_state"},
		{name: "return with 11 job ids", method: "GET", path: "/connect/return?state=" + url.QueryEscape(e.state["fresh"]) + "&jobIds=a,b,c,d,e,f,g,h,i,j,k", status: 303, location: "/?connect_error=invalid_jobs"},
		{name: "return with markup as a job id", method: "GET", path: "/connect/return?state=x&jobIds=" + url.QueryEscape("<script>"), status: 303, location: "/?connect_error=invalid_state"},
		{name: "return by POST", method: "POST", path: "/connect/return", header: csrf, status: 405, code: "method_not_allowed"},
		{name: "consent with an unknown action", c: e.alice, method: "POST", path: "/connect/consent", body: `{"action":"delete"}`, header: spa, status: 400, code: "invalid_request"},
		{name: "consent with an unknown field", c: e.alice, method: "POST", path: "/connect/consent", body: `{"userId":"u-1"}`, header: spa, status: 400, code: "invalid_request"},
		{name: "consent with a bad institutionId", c: e.alice, method: "POST", path: "/connect/consent", body: `{"action":"connect","institutionId":"../x"}`, header: spa, status: 400, code: "invalid_request"},
		{name: "consent with an institutionId for manage", c: e.alice, method: "POST", path: "/connect/consent", body: `{"action":"manage","institutionId":"AU00000"}`, header: spa, status: 400, code: "invalid_request"},
		{name: "consent with a connectionId and no action", c: e.alice, method: "POST", path: "/connect/consent", body: `{"connectionId":"c-1"}`, header: spa, status: 400, code: "invalid_request"},
		{name: "consent with a connectionId for connect", c: e.alice, method: "POST", path: "/connect/consent", body: `{"action":"connect","connectionId":"c-1"}`, header: spa, status: 400, code: "invalid_request"},
		{name: "consent with a 200-byte connectionId", c: e.alice, method: "POST", path: "/connect/consent", body: `{"action":"reauthorise","connectionId":"` + strings.Repeat("c", 200) + `"}`, header: spa, status: 400, code: "invalid_request"},
		{name: "consent with a text body", c: e.alice, method: "POST", path: "/connect/consent", body: `action=connect`, header: withCSRF("Content-Type", "text/plain"), status: 400, code: "invalid_request"},

		// Unknown routes and the HTTP layer itself
		{name: "unknown API route", method: "GET", path: "/auth/admin", header: csrf, status: 404, code: "not_found"},
		{name: "metrics on the public listener", method: "GET", path: "/metrics", status: 404, code: "not_found"},
		{name: "health on the public listener", method: "GET", path: "/healthz", status: 404, code: "not_found"},
		{name: "pprof on the public listener", method: "GET", path: "/debug/pprof/", status: 404, code: "not_found"},
		{name: "unknown route by POST", method: "POST", path: "/admin/users", header: csrf, status: 405, code: "method_not_allowed"},
		{name: "a control byte in a header", raw: rawGET("/auth/me", "Cookie: bff=\x01\x7f\r\n"), status: 400, plain: true},
		{name: "negative Content-Length", raw: "POST /auth/login HTTP/1.1\r\nHost: HOST\r\nContent-Length: -1\r\nConnection: close\r\n\r\n", status: 400, plain: true},

		// The admin listener: a bare ServeMux (see plain).
		{name: "admin: unknown route", admin: true, method: "GET", path: "/admin", status: 404, plain: true},
		{name: "admin: health by POST", admin: true, method: "POST", path: "/healthz", status: 405, plain: true},
		{name: "admin: pprof", admin: true, method: "GET", path: "/debug/pprof/", status: 404, plain: true},
		{name: "admin: traversal", admin: true, raw: rawGET("/metrics/..%2f..%2fetc/passwd"), status: 404, plain: true},
		{name: "admin: 64 KiB header", admin: true, method: "GET", path: "/healthz", header: hdr("X-Padding", big), status: 431, plain: true},
	}
}

// send makes tc's request.
func (e *abuseEnv) send(t *testing.T, tc abuseCase) response {
	t.Helper()
	base := e.r.url
	if tc.admin {
		base = e.r.admin
	}
	if tc.raw != "" {
		return rawExchange(t, base, tc.raw)
	}
	var body io.Reader
	if tc.body != "" {
		body = strings.NewReader(tc.body)
	}
	req, err := http.NewRequest(tc.method, base+tc.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tc.header {
		req.Header[k] = []string{v}
	}
	hc := e.bare
	if tc.c != nil {
		hc = tc.c.http
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", tc.method, tc.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !tc.plain && tc.c == nil { // a test client checks its own answers
		if err := e.contract.check(req, resp.StatusCode, resp.Header, b); err != nil {
			t.Errorf("contract: %v", err)
		}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// rawExchange writes raw (its Host header says HOST) to a fresh connection and reads one
// response.
func rawExchange(t *testing.T, base, raw string) response {
	t.Helper()
	host := mustURL(t, base).Host
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, strings.Replace(raw, "HOST", host, 1)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// checkStillServing proves the replica survived: people log in and get tokens, the
// abused session is intact, the probes answer, and no request was answered with a 5xx or a
// panic.
func (e *abuseEnv) checkStillServing(t *testing.T) {
	t.Helper()
	fresh := newClient(t, e.r.url)
	fresh.mustLogin("acme", "alice@acme.test", testPassword)
	fresh.mustToken()
	if e.alice.me().User.Email != "alice@acme.test" {
		t.Error("alice's session changed")
	}
	e.alice.mustToken()
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp := newClient(t, e.r.admin).do("GET", p, "", nil); resp.status != 200 {
			t.Errorf("admin %s = %d %s", p, resp.status, resp.body)
		}
	}
	logs := e.r.logs.String()
	if m := regexp.MustCompile(`"status":5\d\d`).FindString(logs); m != "" {
		t.Errorf("a request was answered with %s:\n%s", m, logs)
	}
	if strings.Contains(strings.ToLower(logs), "panic") {
		t.Errorf("the logs mention a panic:\n%s", logs)
	}
}

// TestAbuseTable: hostile input on every route gets a 4xx with the JSON error body (or, for
// the exceptions marked plain, net/http's own 4xx), never a 5xx, and the replica serves
// normally afterwards.
func TestAbuseTable(t *testing.T) {
	e := prepareAbuse(t)
	cases := e.cases()
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.send(t, tc)
			if resp.status >= 500 {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			if resp.status != tc.status {
				t.Fatalf("status = %d, want %d: %.300s", resp.status, tc.status, resp.body)
			}
			if tc.plain {
				return
			}
			if tc.location != "" {
				if got := resp.header.Get("Location"); got != tc.location {
					t.Errorf("Location = %q, want %q", got, tc.location)
				}
				return
			}
			if resp.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-ID")
			}
			if tc.method == "HEAD" {
				if len(resp.body) != 0 {
					t.Errorf("HEAD answered with a body: %q", resp.body)
				}
				return
			}
			if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if got := resp.errorCode(t); got != tc.code {
				t.Errorf("code = %q, want %q", got, tc.code)
			}
		})
	}
	e.checkStillServing(t)
}

// TestAbuseCrossOriginPreflight: a preflight from a foreign origin is never granted, for any
// route, so a browser never sends the real request; with the allowed origin it is.
func TestAbuseCrossOriginPreflight(t *testing.T) {
	e := prepareAbuse(t)
	tests := []struct {
		name, origin, path, method string
		granted                    bool
	}{
		{"foreign origin, token", "http://evil.example", "/client-token", "GET", false},
		{"foreign origin, login", "http://evil.example", "/auth/login", "POST", false},
		{"foreign origin, logout", "http://evil.example", "/auth/logout", "POST", false},
		{"foreign origin, consent", "http://evil.example", "/connect/consent", "POST", false},
		{"Origin null", "null", "/client-token", "GET", false},
		{"look-alike origin", "http://spa.example.test.evil.example", "/client-token", "GET", false},
		{"the public origin's scheme swapped", "https://spa.example.test", "/client-token", "GET", false},
		{"allowed origin, method not allowed", "http://spa.example.test", "/client-token", "DELETE", false},
		{"allowed origin", "http://spa.example.test", "/client-token", "GET", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.send(t, abuseCase{c: e.alice, method: "OPTIONS", path: tc.path, header: hdr(
				"Origin", tc.origin, "Access-Control-Request-Method", tc.method, "Access-Control-Request-Headers", "content-type,x-csrf")})
			if resp.status >= 500 {
				t.Fatalf("preflight status %d", resp.status)
			}
			acao := resp.header.Get("Access-Control-Allow-Origin")
			if tc.granted != (acao == tc.origin) || !tc.granted && acao != "" {
				t.Errorf("Access-Control-Allow-Origin = %q, granted want %v", acao, tc.granted)
			}
			if !tc.granted && resp.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Error("credentials allowed for a refused preflight")
			}
		})
	}

	// Whitespace around a header value is not part of it (RFC 9110 §5.5), and browsers strip
	// it too: " 1 " is the value 1, so it passes, while look-alikes of 1 do not.
	t.Run("optional white space around X-CSRF", func(t *testing.T) {
		resp := e.send(t, abuseCase{raw: rawGET("/auth/tenants", "X-CSRF: \t 1 \t\r\n")})
		if resp.status != 200 {
			t.Errorf("X-CSRF with surrounding white space: %d %s", resp.status, resp.body)
		}
	})
	e.checkStillServing(t)
}

// TestSessionFixation: a session id planted in the browser before login is never promoted:
// the login issues a new id and the planted one stays (or becomes) worthless.
func TestSessionFixation(t *testing.T) {
	e := prepareAbuse(t)
	mallory := newClient(t, e.r.url)
	mallory.mustLogin("acme", "gone@acme.test", testPassword)
	tests := []struct {
		name  string
		value string
	}{
		{"a chosen value", "attacker-chosen-session-id"},
		{"a signed id with no session", signCookie(e.key, "bff", []byte("attacker-chosen-session-id-0001"), time.Now().Unix())},
		{"the attacker's own live session", sessionCookie(t, mallory)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			victim := newClient(t, e.r.url)
			victim.http.Jar.SetCookies(mustURL(t, e.r.url), []*http.Cookie{{Name: "bff", Value: tc.value, Path: "/"}})
			victim.mustLogin("acme", "alice@acme.test", testPassword)
			after := sessionCookie(t, victim)
			if after == tc.value {
				t.Fatal("the login kept the planted cookie")
			}
			var plantedID []byte
			sc := securecookie.New(e.key, nil)
			sc.SetSerializer(securecookie.NopEncoder{})
			if sc.Decode("bff", tc.value, &plantedID) == nil && e.sessionID(t, after) == string(plantedID) {
				t.Fatal("the login promoted the planted session id")
			}
			if victim.me().User.Email != "alice@acme.test" {
				t.Error("the new session is not alice's")
			}
			resp := e.send(t, abuseCase{method: "GET", path: "/auth/me", header: hdr("Cookie", "bff="+tc.value)})
			if resp.status != 401 || resp.errorCode(t) != "unauthenticated" {
				t.Errorf("the planted cookie: %d %s", resp.status, resp.body)
			}
		})
	}
}

// TestAbuseLeavesNoSecretsInLogs runs the abuse table, then searches every log line for API
// keys, tokens, passwords, cookie values and raw session ids (opened from the cookies with
// the session key).
func TestAbuseLeavesNoSecretsInLogs(t *testing.T) {
	e := prepareAbuse(t)
	for _, tc := range e.cases() {
		t.Run(tc.name, func(t *testing.T) { e.send(t, tc) })
	}
	e.checkStillServing(t)

	secrets := map[string]string{
		"the test password":   testPassword,
		"the session key":     e.s.env["SESSION_KEY"],
		"the cache key":       e.s.env["CACHE_KEY"],
		"the SQL password":    "' OR ''='",
		"a long password":     strings.Repeat("p", 2000),
		"the tampered cookie": e.cookie["tampered"],
		"the expired cookie":  e.cookie["expired"],
		"the foreign cookie":  e.cookie["other key"],
	}
	for k, v := range e.secrets {
		secrets[k] = v
	}
	for name, v := range e.s.keys {
		secrets["API key "+name] = v
	}
	for _, c := range []*client{e.alice, e.carol} {
		v := sessionCookie(t, c)
		secrets["live cookie "+v[:6]] = v
		secrets["live session id "+v[:6]] = e.sessionID(t, v)
	}
	logs := e.r.logs.String()
	if !strings.Contains(logs, `"route":"/auth/login"`) || !strings.Contains(logs, `"route":"/client-token","status":200`) {
		t.Fatalf("the logs do not show the requests:\n%.2000s", logs)
	}
	for what, v := range secrets {
		if len(v) < 8 {
			t.Fatalf("%s is too short to search for: %q", what, v)
		}
		if strings.Contains(logs, v) {
			t.Errorf("%s appears in the logs", what)
		}
		// Session ids are random base64; a logged prefix is a leak too.
		if strings.Contains(what, "session id") && strings.Contains(logs, v[:16]) {
			t.Errorf("the first 16 characters of %s appear in the logs", what)
		}
	}
	// The logs do tie requests to sessions, through a hash of the id.
	h := sha256.Sum256([]byte(e.secrets["alice's session id"]))
	if !strings.Contains(logs, `"session":"`+hex.EncodeToString(h[:8])+`"`) {
		t.Error("the logs do not carry the hashed session id")
	}
	// The spoofed client address was never believed, so it was never logged as the client.
	if strings.Contains(logs, "203.0.113.") {
		t.Error("a spoofed X-Forwarded-For address appears in the logs")
	}
}
