package basiq

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/clocktest"
)

// recorded is one request as the upstream saw it.
type recorded struct {
	method, path string
	header       http.Header
	body         string
}

// upstream is an httptest server that answers every request with status and body and records
// what it received. It stands in for wire-level checks and for Basiq answers the emulator does
// not produce (legacy OAuth codes, hostile bodies).
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newUpstream(t *testing.T, status int, header map[string]string, body string) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, recorded{r.Method, r.URL.Path, r.Header.Clone(), string(b)})
		u.mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

// emu is an emulator served over HTTP with one key for application "app-1".
type emu struct {
	em  *emulator.Emulator
	url string
	key string
	clk *clocktest.Clock
}

func newEmu(t *testing.T) *emu {
	t.Helper()
	e := &emu{key: emulator.GenerateKey(), clk: clocktest.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))}
	e.em = emulator.New(emulator.Options{Now: e.clk.Now})
	e.em.AddKey(e.key, emulator.KeyOptions{ApplicationID: "app-1"})
	srv := httptest.NewServer(e.em)
	t.Cleanup(srv.Close)
	// Runs before Close: release any request a test left hanging.
	t.Cleanup(func() { e.em.SetFault(emulator.Fault{}) })
	e.url = srv.URL
	return e
}

func (e *emu) serverToken(t *testing.T, c *Client) string {
	t.Helper()
	tok, err := c.Token(context.Background(), TokenRequest{BaseURL: e.url, APIKey: e.key, Version: "3.0", Scope: ScopeServer})
	if err != nil {
		t.Fatalf("server token: %v", err)
	}
	return tok.AccessToken
}

const okToken = `{"access_token":"eyJhbGciOiJIUzI1NiJ9.e30.sig-abcdefgh","token_type":"Bearer","expires_in":3600}`

func TestTokenRequestOnTheWire(t *testing.T) {
	key := emulator.GenerateKey()
	tests := []struct {
		name     string
		base     string // appended to the server URL
		req      TokenRequest
		wantBody string
	}{
		{"server scope", "", TokenRequest{Version: "3.0", Scope: ScopeServer}, "scope=SERVER_ACCESS"},
		{"server scope never sends userId", "", TokenRequest{Version: "3.0", Scope: ScopeServer, UserID: "u-1"}, "scope=SERVER_ACCESS"},
		{"client scope with userId", "", TokenRequest{Version: "3.0", Scope: ScopeClient, UserID: "u-1"}, "scope=CLIENT_ACCESS&userId=u-1"},
		{"client scope without userId", "", TokenRequest{Version: "2.0", Scope: ScopeClient}, "scope=CLIENT_ACCESS"},
		{"userId is form-encoded", "", TokenRequest{Version: "3.0", Scope: ScopeClient, UserID: "a&b=c"}, "scope=CLIENT_ACCESS&userId=a%26b%3Dc"},
		{"base URL with a trailing slash", "/", TokenRequest{Version: "2.1", Scope: ScopeServer}, "scope=SERVER_ACCESS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, 200, map[string]string{"X-Correlation-Id": "corr-9"}, okToken)
			tc.req.BaseURL, tc.req.APIKey = up.URL+tc.base, key
			tok, err := New(up.Client(), time.Second).Token(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "eyJhbGciOiJIUzI1NiJ9.e30.sig-abcdefgh" || tok.TokenType != "Bearer" || tok.ExpiresIn != 3600 || tok.CorrelationID != "corr-9" {
				t.Errorf("token %+v", tok)
			}
			reqs := up.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.method != http.MethodPost || r.path != "/token" || r.body != tc.wantBody {
				t.Errorf("got %s %s %q, want POST /token %q", r.method, r.path, r.body, tc.wantBody)
			}
			want := map[string]string{
				"Authorization": "Basic " + key, // verbatim, never re-encoded
				"Basiq-Version": tc.req.Version,
				"Content-Type":  "application/x-www-form-urlencoded",
				"Accept":        "application/json",
			}
			for k, v := range want {
				if got := r.header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestTokenAgainstEmulator(t *testing.T) {
	e := newEmu(t)
	c := New(nil, 5*time.Second)
	tests := []struct {
		name string
		req  TokenRequest
	}{
		{"3.0 server", TokenRequest{Version: "3.0", Scope: ScopeServer}},
		{"3.0 client bound to a user", TokenRequest{Version: "3.0", Scope: ScopeClient, UserID: "u-1"}},
		{"2.0 client unbound", TokenRequest{Version: "2.0", Scope: ScopeClient}},
		{"2.1 server", TokenRequest{Version: "2.1", Scope: ScopeServer}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.BaseURL, tc.req.APIKey = e.url+"/", e.key
			tok, err := c.Token(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if tok.ExpiresIn != 3600 || tok.TokenType != "Bearer" {
				t.Errorf("token %+v", tok)
			}
			ti, ok := e.em.Inspect(tok.AccessToken)
			wantUser := tc.req.UserID
			if tc.req.Scope == ScopeServer {
				wantUser = ""
			}
			if !ok || ti.Scope != tc.req.Scope || ti.UserID != wantUser || ti.Version != tc.req.Version || ti.Key != e.key {
				t.Errorf("emulator recorded %+v, %v", ti, ok)
			}
		})
	}
	if got := e.em.TokenCalls(); got != len(tests) {
		t.Errorf("TokenCalls = %d, want %d", got, len(tests))
	}
}

func TestTokenRejectsBadSuccessBodies(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"not JSON", "<html>ok</html>", "body is not a token object"},
		{"empty access_token", `{"access_token":"","token_type":"Bearer","expires_in":3600}`, "access_token is empty"},
		{"no access_token", `{"token_type":"Bearer","expires_in":3600}`, "access_token is empty"},
		{"wrong token_type", `{"access_token":"secret-token-value","token_type":"mac","expires_in":3600}`, `token_type is "mac"`},
		{"zero expires_in", `{"access_token":"secret-token-value","token_type":"Bearer","expires_in":0}`, "expires_in is 0"},
		{"negative expires_in", `{"access_token":"secret-token-value","token_type":"Bearer","expires_in":-5}`, "expires_in is -5"},
		{"expires_in as a string", `{"access_token":"secret-token-value","token_type":"Bearer","expires_in":"3600"}`, "body is not a token object"},
		{"oversized body", `{"access_token":"` + strings.Repeat("a", 70<<10) + `","token_type":"Bearer","expires_in":3600}`, "exceeds 64 KiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, 200, nil, tc.body)
			_, err := New(up.Client(), time.Second).Token(context.Background(), TokenRequest{BaseURL: up.URL, APIKey: emulator.GenerateKey(), Version: "3.0", Scope: ScopeServer})
			if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadResponse containing %q", err, tc.want)
			}
			if Classify(err) != ClassUnavailable {
				t.Errorf("class %v, want unavailable", Classify(err))
			}
			if strings.Contains(err.Error(), "secret-token-value") {
				t.Error("error contains the token")
			}
		})
	}
	t.Run("token_type is case-insensitive", func(t *testing.T) {
		up := newUpstream(t, 200, nil, `{"access_token":"t0123456789","token_type":"bearer","expires_in":60}`)
		tok, err := New(up.Client(), time.Second).Token(context.Background(), TokenRequest{BaseURL: up.URL, APIKey: "a2V5OnZhbHVl", Version: "3.0", Scope: ScopeServer})
		if err != nil || tok.ExpiresIn != 60 {
			t.Fatalf("token %+v, err %v", tok, err)
		}
	})
}

func TestInvalidArguments(t *testing.T) {
	up := newUpstream(t, 200, nil, okToken)
	key := emulator.GenerateKey()
	tests := []struct {
		name string
		req  TokenRequest
	}{
		{"empty key", TokenRequest{BaseURL: up.URL, Version: "3.0", Scope: ScopeServer}},
		{"key with a newline", TokenRequest{BaseURL: up.URL, APIKey: key + "\r\nX-Injected: 1", Version: "3.0", Scope: ScopeServer}},
		{"no version", TokenRequest{BaseURL: up.URL, APIKey: key, Scope: ScopeServer}},
		{"unknown scope", TokenRequest{BaseURL: up.URL, APIKey: key, Version: "3.0", Scope: "ALL_ACCESS"}},
		{"relative base URL", TokenRequest{BaseURL: "au-api.basiq.io", APIKey: key, Version: "3.0", Scope: ScopeServer}},
		{"no base URL", TokenRequest{APIKey: key, Version: "3.0", Scope: ScopeServer}},
	}
	c := New(up.Client(), time.Second)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Token(context.Background(), tc.req)
			if !errors.Is(err, ErrInvalidArgument) || Classify(err) != ClassRejected {
				t.Fatalf("err = %v (class %v), want ErrInvalidArgument, rejected", err, Classify(err))
			}
			if strings.Contains(err.Error(), key) {
				t.Error("error contains the key")
			}
		})
	}
	userTests := []struct {
		name, base, token string
		user              NewUser
	}{
		{"no token", up.URL, "", NewUser{Email: "a@example.com"}},
		{"no email or mobile", up.URL, "tok-0123456789", NewUser{FirstName: "A"}},
		{"bad base URL", "ftp://x", "tok-0123456789", NewUser{Email: "a@example.com"}},
	}
	for _, tc := range userTests {
		t.Run("CreateUser "+tc.name, func(t *testing.T) {
			_, err := c.CreateUser(context.Background(), tc.base, tc.token, tc.user)
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("%d requests sent for invalid arguments", n)
	}
}

func TestCreateUser(t *testing.T) {
	t.Run("on the wire", func(t *testing.T) {
		up := newUpstream(t, 201, nil, `{"type":"user","id":"86c79d8c-5033-46b3-b16e-d6cee4200fb3","email":"gavin1224@hooli.com","mobile":"+61410888999","links":{"self":"x"}}`)
		u, err := New(up.Client(), time.Second).CreateUser(context.Background(), up.URL+"/", "server-token-1234", NewUser{Email: "gavin1224@hooli.com", FirstName: "Gavin"})
		if err != nil {
			t.Fatal(err)
		}
		if u != (User{ID: "86c79d8c-5033-46b3-b16e-d6cee4200fb3", Email: "gavin1224@hooli.com", Mobile: "+61410888999"}) {
			t.Errorf("user %+v", u)
		}
		r := up.requests()[0]
		if r.method != http.MethodPost || r.path != "/users" || r.body != `{"email":"gavin1224@hooli.com","firstName":"Gavin"}` {
			t.Errorf("got %s %s %s", r.method, r.path, r.body)
		}
		for k, v := range map[string]string{"Authorization": "Bearer server-token-1234", "Content-Type": "application/json", "Accept": "application/json"} {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if r.header.Get("Basiq-Version") != "" {
			t.Error("basiq-version belongs on /token only")
		}
	})

	e := newEmu(t)
	c := New(nil, 5*time.Second)
	t.Run("against the emulator", func(t *testing.T) {
		u, err := c.CreateUser(context.Background(), e.url, e.serverToken(t, c), NewUser{Email: "a@example.com", Mobile: "+61410888999"})
		if err != nil {
			t.Fatal(err)
		}
		if u.ID == "" || u.Email != "a@example.com" || u.Mobile != "+61410888999" || e.em.UsersCreated() != 1 {
			t.Errorf("user %+v, created %d", u, e.em.UsersCreated())
		}
	})

	tests := []struct {
		name   string
		token  func(t *testing.T) string
		user   NewUser
		status int
		code   string
		class  Class
	}{
		{
			name: "CLIENT_ACCESS token is rejected", status: 403, code: "forbidden-access", class: ClassRejected,
			token: func(t *testing.T) string {
				tok, err := c.Token(context.Background(), TokenRequest{BaseURL: e.url, APIKey: e.key, Version: "3.0", Scope: ScopeClient, UserID: "u-1"})
				if err != nil {
					t.Fatal(err)
				}
				return tok.AccessToken
			},
			user: NewUser{Email: "a@example.com"},
		},
		{
			name: "expired token asks for a refresh", status: 403, code: "access-denied", class: ClassTokenExpired,
			token: func(t *testing.T) string { tok := e.serverToken(t, c); e.clk.Advance(time.Hour); return tok },
			user:  NewUser{Email: "a@example.com"},
		},
		{
			name: "unknown token asks for a refresh", status: 401, code: "invalid-authorization-token", class: ClassTokenExpired,
			token: func(t *testing.T) string { return "garbage-token-value" },
			user:  NewUser{Email: "a@example.com"},
		},
		{
			name: "bad email is rejected", status: 400, code: "parameter-not-valid", class: ClassRejected,
			token: func(t *testing.T) string { return e.serverToken(t, c) },
			user:  NewUser{Email: "not-an-email"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t)
			_, err := c.CreateUser(context.Background(), e.url, tok, tc.user)
			checkUsersError(t, err, tc.status, tc.code, tc.class, tok)
		})
	}
}

// checkUsersError wants a Basiq error from /users with that status, code and class, and no
// token in its text.
func checkUsersError(t *testing.T, err error, status int, code string, class Class, tok string) {
	t.Helper()
	var be *Error
	if !errors.As(err, &be) || be.Status != status || be.Code != code || be.Endpoint != EndpointUsers {
		t.Fatalf("err = %#v, want %d %s", err, status, code)
	}
	if Classify(err) != class {
		t.Errorf("class %v, want %v", Classify(err), class)
	}
	if strings.Contains(err.Error(), tok) {
		t.Error("error contains the token")
	}
}

// envelope is a Basiq error body with one item.
func envelope(code, title, detail string) string {
	return fmt.Sprintf(`{"type":"list","correlationId":"c0ffee00-1111-4222-8333-444455556666","data":[{"type":"error","code":%q,"title":%q,"detail":%q}]}`, code, title, detail)
}

// TestClassify covers every Basiq error code the service acts on (docs/architecture.md,
// "Failures") plus throttling and transport failures.
func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		endpoint   string // EndpointToken or EndpointUsers
		status     int
		header     map[string]string
		body       string
		class      Class
		retryAfter time.Duration
	}{
		{"invalid-request", EndpointToken, 400, nil, envelope("invalid-request", "Invalid request", "Bad request"), ClassRejected, 0},
		{"parameter-not-valid 400", EndpointToken, 400, nil, envelope("parameter-not-valid", "Required parameter not valid", "Basiq-version must be specified in HTTP request header"), ClassRejected, 0},
		{"parameter-not-valid 404 on /token", EndpointToken, 404, nil, envelope("parameter-not-valid", "We have encountered an error", "Unable to authenticate. Please, check your API key"), ClassKeyRejected, 0},
		{"parameter-not-supplied", EndpointToken, 400, nil, envelope("parameter-not-supplied", "Required parameter not supplied", "userId is required"), ClassRejected, 0},
		{"unsupported-grant-type", EndpointToken, 400, nil, envelope("unsupported-grant-type", "Unsupported grant type", ""), ClassRejected, 0},
		{"access-denied on a resource", EndpointUsers, 403, nil, envelope("access-denied", "Access denied.", "Token has expired"), ClassTokenExpired, 0},
		{"access-denied on /token", EndpointToken, 403, nil, envelope("access-denied", "Access denied.", ""), ClassRejected, 0},
		{"internal-server-error", EndpointToken, 500, nil, envelope("internal-server-error", "Internal Server Error", "Internal server error"), ClassUnavailable, 0},
		{"invalid-grant", EndpointToken, 400, nil, envelope("invalid-grant", "Invalid grant", ""), ClassRejected, 0},
		{"unauthorized-client", EndpointToken, 401, nil, envelope("unauthorized-client", "Unauthorized client", ""), ClassKeyRejected, 0},
		{"invalid-client", EndpointToken, 401, nil, envelope("invalid-client", "Invalid client", ""), ClassKeyRejected, 0},
		{"429 too-many-requests with Retry-After", EndpointToken, 429, map[string]string{"Retry-After": "7"}, envelope("too-many-requests", "Too many requests.", ""), ClassThrottled, 7 * time.Second},
		{"429 without a body", EndpointToken, 429, nil, "", ClassThrottled, 0},
		{"403 request-not-valid", EndpointToken, 403, nil, envelope("request-not-valid", "Invalid request", ""), ClassThrottled, 0},
		{"400 request-not-valid", EndpointToken, 400, nil, envelope("request-not-valid", "Request too long", ""), ClassRejected, 0},
		{"403 forbidden-access on /token (account disabled)", EndpointToken, 403, nil, envelope("forbidden-access", "Forbidden Access", "Your account has been disabled. Please contact Basiq support."), ClassKeyRejected, 0},
		{"403 forbidden-access on a resource", EndpointUsers, 403, nil, envelope("forbidden-access", "Forbidden Access", ""), ClassRejected, 0},
		{"401 invalid-authorization-token on a resource", EndpointUsers, 401, nil, envelope("invalid-authorization-token", "Invalid authorization token.", ""), ClassTokenExpired, 0},
		{"401 invalid-authorization-token on /token", EndpointToken, 401, nil, envelope("invalid-authorization-token", "Invalid authorization token.", ""), ClassRejected, 0},
		{"503 service-unavailable with an HTTP date", EndpointToken, 503, map[string]string{"Retry-After": time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}, envelope("service-unavailable", "Service Unavailable", ""), ClassUnavailable, 90 * time.Second},
		{"502 from a proxy, not JSON", EndpointToken, 502, nil, "<html>Bad Gateway</html>", ClassUnavailable, 0},
		{"404 HTML on /token", EndpointToken, 404, nil, "<html>Not Found</html>", ClassKeyRejected, 0},
		{"redirect is not followed", EndpointToken, 302, map[string]string{"Location": "http://127.0.0.1:1/elsewhere"}, "", ClassRejected, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, tc.status, tc.header, tc.body)
			c := New(nil, 2*time.Second)
			var err error
			if tc.endpoint == EndpointToken {
				_, err = c.Token(context.Background(), TokenRequest{BaseURL: up.URL, APIKey: emulator.GenerateKey(), Version: "3.0", Scope: ScopeServer})
			} else {
				_, err = c.CreateUser(context.Background(), up.URL, "server-token-0123", NewUser{Email: "a@example.com"})
			}
			var be *Error
			if !errors.As(err, &be) || be.Status != tc.status {
				t.Fatalf("err = %v, want *Error with status %d", err, tc.status)
			}
			if got := Classify(err); got != tc.class {
				t.Errorf("Classify = %v, want %v", got, tc.class)
			}
			// Wrapping must not change the answer.
			if got := Classify(fmt.Errorf("mint: %w", err)); got != tc.class {
				t.Errorf("Classify(wrapped) = %v, want %v", got, tc.class)
			}
			if got := RetryAfter(err); got < tc.retryAfter-2*time.Second || got > tc.retryAfter {
				t.Errorf("RetryAfter = %v, want about %v", got, tc.retryAfter)
			}
			if n := len(up.requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		_, err := New(nil, time.Second).Token(context.Background(), TokenRequest{BaseURL: refusedURL(t), APIKey: emulator.GenerateKey(), Version: "3.0", Scope: ScopeServer})
		var te *TransportError
		if !errors.As(err, &te) || te.Endpoint != EndpointToken || Classify(err) != ClassUnavailable {
			t.Fatalf("err = %v (class %v), want a TransportError, unavailable", err, Classify(err))
		}
		if !strings.Contains(err.Error(), "refused") {
			t.Errorf("message %q does not say refused", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		e := newEmu(t)
		e.em.SetFault(emulator.Fault{Hang: true})
		_, err := New(nil, 100*time.Millisecond).Token(context.Background(), TokenRequest{BaseURL: e.url, APIKey: e.key, Version: "3.0", Scope: ScopeServer})
		if Classify(err) != ClassUnavailable {
			t.Fatalf("err = %v, class %v, want unavailable", err, Classify(err))
		}
	})
	t.Run("fault 503 from the emulator", func(t *testing.T) {
		e := newEmu(t)
		e.em.SetFault(emulator.Fault{Status: 503, RetryAfter: 3 * time.Second})
		_, err := New(nil, time.Second).Token(context.Background(), TokenRequest{BaseURL: e.url, APIKey: e.key, Version: "3.0", Scope: ScopeServer})
		if Classify(err) != ClassUnavailable || RetryAfter(err) != 3*time.Second {
			t.Fatalf("err = %v, class %v, retry %v", err, Classify(err), RetryAfter(err))
		}
	})
	t.Run("others", func(t *testing.T) {
		if Classify(nil) != ClassNone {
			t.Error("nil is not ClassNone")
		}
		if Classify(context.DeadlineExceeded) != ClassUnavailable {
			t.Error("a bare context error is not unavailable")
		}
		if RetryAfter(errors.New("x")) != 0 {
			t.Error("RetryAfter of a foreign error")
		}
	})
}

// refusedURL is an address nobody listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestTimeout(t *testing.T) {
	e := newEmu(t)
	e.em.SetFault(emulator.Fault{Hang: true})
	tests := []struct {
		name    string
		timeout time.Duration
		ctx     func() (context.Context, context.CancelFunc)
	}{
		{"client timeout", 100 * time.Millisecond, func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{"caller deadline shorter than the client timeout", 10 * time.Second, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := New(nil, tc.timeout).Token(ctx, TokenRequest{BaseURL: e.url, APIKey: e.key, Version: "3.0", Scope: ScopeServer})
			el := time.Since(start)
			var te *TransportError
			if !errors.As(err, &te) || !te.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want a timed-out TransportError", err)
			}
			if el < 100*time.Millisecond || el > 2*time.Second {
				t.Errorf("returned after %v", el)
			}
		})
	}
	t.Run("CreateUser has the timeout too", func(t *testing.T) {
		e.em.SetFault(emulator.Fault{})
		tok := e.serverToken(t, New(nil, time.Second))
		e.em.SetFault(emulator.Fault{Hang: true, Endpoint: emulator.RouteUsers})
		start := time.Now()
		_, err := New(nil, 100*time.Millisecond).CreateUser(context.Background(), e.url, tok, NewUser{Email: "a@example.com"})
		var te *TransportError
		if !errors.As(err, &te) || !te.Timeout() || time.Since(start) > 2*time.Second {
			t.Fatalf("err = %v after %v", err, time.Since(start))
		}
	})
}

func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Error
	}{
		{
			name: "recorded 404 fixture",
			body: `{"correlationId":"1c16f75c-36fb-421f-98a5-bf18a0b6583c","data":[{"code":"parameter-not-valid","detail":"Unable to authenticate. Please, check your API key","title":"We have encountered an error","type":"error"}],"type":"list"}`,
			want: Error{Code: "parameter-not-valid", Title: "We have encountered an error", Detail: "Unable to authenticate. Please, check your API key", CorrelationID: "1c16f75c-36fb-421f-98a5-bf18a0b6583c"},
		},
		{
			name: "source with parameter and pointer",
			body: `{"type":"list","correlationId":"c1","data":[{"type":"error","code":"parameter-not-valid","title":"T","detail":"D","source":{"parameter":"basiq-version","pointer":"header/basiq-version"}}]}`,
			want: Error{Code: "parameter-not-valid", Title: "T", Detail: "D", CorrelationID: "c1"},
		},
		{
			name: "source {}",
			body: `{"type":"list","correlationId":"c2","data":[{"type":"error","code":"parameter-not-supplied","title":"T","detail":"D","source":{}}]}`,
			want: Error{Code: "parameter-not-supplied", Title: "T", Detail: "D", CorrelationID: "c2"},
		},
		{
			name: "source null",
			body: `{"type":"list","correlationId":"c3","data":[{"type":"error","code":"access-denied","title":"Access denied.","detail":"Token has expired","source":null}]}`,
			want: Error{Code: "access-denied", Title: "Access denied.", Detail: "Token has expired", CorrelationID: "c3"},
		},
		{
			name: "unknown fields and several errors: the first wins",
			body: `{"type":"list","extra":{"a":1},"correlationId":"c4","data":[{"type":"error","code":"first","meta":[1,2],"title":"T1"},{"type":"error","code":"second"}]}`,
			want: Error{Code: "first", Title: "T1", CorrelationID: "c4"},
		},
		{
			name: "empty data",
			body: `{"type":"list","correlationId":"c5","data":[]}`,
			want: Error{CorrelationID: "c5"},
		},
		{name: "not JSON", body: `Service Unavailable`, want: Error{}},
		{name: "empty body", body: ``, want: Error{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, 400, nil, tc.body)
			_, err := New(up.Client(), time.Second).Token(context.Background(), TokenRequest{BaseURL: up.URL, APIKey: emulator.GenerateKey(), Version: "3.0", Scope: ScopeServer})
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("err = %v, want *Error", err)
			}
			tc.want.Endpoint, tc.want.Status = EndpointToken, 400
			if *be != tc.want {
				t.Errorf("got %+v\nwant %+v", *be, tc.want)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	e := newEmu(t)
	unknown := emulator.GenerateKey()
	_, err := New(nil, time.Second).Token(context.Background(), TokenRequest{BaseURL: e.url, APIKey: unknown, Version: "3.0", Scope: ScopeServer})
	var be *Error
	if !errors.As(err, &be) || be.CorrelationID == "" {
		t.Fatalf("err = %v", err)
	}
	want := "basiq POST /token: 404 parameter-not-valid: Unable to authenticate. Please, check your API key (correlationId " + be.CorrelationID + ")"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err.Error(), want)
	}
	if Classify(err) != ClassKeyRejected {
		t.Errorf("class %v", Classify(err))
	}
	if got := (&Error{Endpoint: EndpointToken, Status: 502}).Error(); got != "basiq POST /token: 502 Bad Gateway" {
		t.Errorf("bodiless error reads %q", got)
	}
}

// TestNoSecretsInErrors runs every way a call can fail and checks that no rendering of the error
// holds the API key (raw or decoded) or a token.
func TestNoSecretsInErrors(t *testing.T) {
	e := newEmu(t)
	disabled := emulator.GenerateKey()
	e.em.AddKey(disabled, emulator.KeyOptions{Disabled: true})
	serverTok := e.serverToken(t, New(nil, time.Second))

	type failure struct {
		name string
		run  func(t *testing.T) (error, []string) // the error and the secrets it must not contain
	}
	token := func(base, key, version string, timeout time.Duration) (error, []string) {
		_, err := New(nil, timeout).Token(context.Background(), TokenRequest{BaseURL: base, APIKey: key, Version: version, Scope: ScopeClient, UserID: "u-1"})
		return err, keySecrets(key)
	}
	echo := func(t *testing.T, status int, header map[string]string, body func(key string) string) (error, []string) {
		key := emulator.GenerateKey()
		h := map[string]string{}
		for k, v := range header {
			h[k] = strings.ReplaceAll(v, "KEY", key)
		}
		up := newUpstream(t, status, h, body(key))
		return token(up.URL, key, "3.0", time.Second)
	}
	failures := []failure{
		{"unknown key", func(t *testing.T) (error, []string) { return token(e.url, emulator.GenerateKey(), "3.0", time.Second) }},
		{"key encoded twice", func(t *testing.T) (error, []string) {
			err, s := token(e.url, base64.StdEncoding.EncodeToString([]byte(e.key)), "3.0", time.Second)
			return err, append(s, keySecrets(e.key)...)
		}},
		{"disabled account", func(t *testing.T) (error, []string) { return token(e.url, disabled, "3.0", time.Second) }},
		{"retired version", func(t *testing.T) (error, []string) { return token(e.url, e.key, "0.9", time.Second) }},
		{"key with a header-breaking byte", func(t *testing.T) (error, []string) { return token(e.url, e.key+"\n", "3.0", time.Second) }},
		{"connection refused", func(t *testing.T) (error, []string) { return token(refusedURL(t), e.key, "3.0", time.Second) }},
		{"timeout", func(t *testing.T) (error, []string) {
			e.em.SetFault(emulator.Fault{Hang: true})
			defer e.em.SetFault(emulator.Fault{})
			return token(e.url, e.key, "3.0", 50*time.Millisecond)
		}},
		{"500", func(t *testing.T) (error, []string) {
			e.em.SetFault(emulator.Fault{Status: 500})
			defer e.em.SetFault(emulator.Fault{})
			return token(e.url, e.key, "3.0", time.Second)
		}},
		{"429", func(t *testing.T) (error, []string) {
			e.em.SetFault(emulator.Fault{Status: 429})
			defer e.em.SetFault(emulator.Fault{})
			return token(e.url, e.key, "3.0", time.Second)
		}},
		{"upstream echoes the key in its error", func(t *testing.T) (error, []string) {
			return echo(t, 400, map[string]string{"X-Correlation-Id": "KEY"}, func(key string) string {
				raw, _ := base64.StdEncoding.DecodeString(key)
				return envelope("parameter-not-valid", "Bad key "+key, "Decoded "+string(raw))
			})
		}},
		{"upstream echoes the key's secret half", func(t *testing.T) (error, []string) {
			return echo(t, 400, nil, func(key string) string {
				raw, _ := base64.StdEncoding.DecodeString(key)
				_, sec, _ := strings.Cut(string(raw), ":")
				return envelope("invalid-client", "T", "secret "+sec)
			})
		}},
		{"bad success body", func(t *testing.T) (error, []string) {
			err, s := echo(t, 200, nil, func(string) string {
				return `{"access_token":"leaked-token-0123456789","token_type":"leaked-token-0123456789","expires_in":3600}`
			})
			return err, append(s, "leaked-token-0123456789")
		}},
		{"CreateUser with an expired token", func(t *testing.T) (error, []string) {
			tok := e.serverToken(t, New(nil, time.Second))
			e.clk.Advance(2 * time.Hour)
			_, err := New(nil, time.Second).CreateUser(context.Background(), e.url, tok, NewUser{Email: "a@example.com"})
			return err, []string{tok}
		}},
		{"CreateUser with a garbage token", func(t *testing.T) (error, []string) {
			_, err := New(nil, time.Second).CreateUser(context.Background(), e.url, serverTok+"x", NewUser{Email: "a@example.com"})
			return err, []string{serverTok}
		}},
		{"CreateUser refused", func(t *testing.T) (error, []string) {
			_, err := New(nil, time.Second).CreateUser(context.Background(), refusedURL(t), serverTok, NewUser{Email: "a@example.com"})
			return err, []string{serverTok}
		}},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			err, secrets := f.run(t)
			if err == nil {
				t.Fatal("the call succeeded")
			}
			renderings := []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Errorf("wrapped: %w", err).Error()}
			var be *Error
			if errors.As(err, &be) {
				renderings = append(renderings, fmt.Sprintf("%#v", *be))
			}
			for _, r := range renderings {
				for _, s := range secrets {
					if len(s) >= 8 && strings.Contains(r, s) {
						t.Errorf("error rendering %q contains a secret", r)
					}
				}
				if strings.Contains(r, "Basic ") || strings.Contains(r, "Bearer ") {
					t.Errorf("error rendering %q contains an Authorization header", r)
				}
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{"120", 2 * time.Minute},
		{"99999999999", 24 * time.Hour},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := parseRetryAfter(tc.in, now); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c := New(nil, 0)
	if c.timeout != DefaultTimeout || c.hc == nil || c.hc.CheckRedirect == nil {
		t.Errorf("New(nil, 0) = timeout %v, client %v", c.timeout, c.hc)
	}
	hc := &http.Client{}
	if c := New(hc, time.Second); c.hc != hc || c.timeout != time.Second {
		t.Error("New ignored its arguments")
	}
	for _, cl := range []Class{ClassNone, ClassUnavailable, ClassThrottled, ClassKeyRejected, ClassTokenExpired, ClassRejected, Class(42)} {
		if cl.String() == "" {
			t.Errorf("class %d has no name", cl)
		}
	}
}
