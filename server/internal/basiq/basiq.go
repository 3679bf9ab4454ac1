// Package basiq is the BFF's client for Basiq's API: it mints tokens (POST /token) and creates
// Basiq users (POST /users), and turns every failure into a typed error that tells the caller
// what to do next (Classify). It imports only the standard library and reqid.
//
// Nothing this package returns contains an API key or a token. Error strings are built only from
// Basiq's error envelope and the transport failure, and those are scrubbed of the call's secrets
// as a second line of defence, because error strings end up in logs.
package basiq

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/basiq-bff/bff/server/internal/clip"
)

// Scopes accepted by POST /token.
const (
	ScopeServer = "SERVER_ACCESS"
	ScopeClient = "CLIENT_ACCESS"
)

// Endpoints, as they appear in Error.Endpoint and TransportError.Endpoint.
const (
	EndpointToken = "POST /token"
	EndpointUsers = "POST /users"
)

// DefaultTimeout bounds one call when New is given no timeout. /token normally answers in well
// under a second; ten seconds leaves room for a slow TLS handshake without holding a browser's
// request for long.
const DefaultTimeout = 10 * time.Second

// maxBody caps how much of a response is read. Basiq's token and user bodies are well under
// 2 KiB; the cap only protects us from a misbehaving upstream or proxy.
const maxBody = 64 << 10

// Client calls Basiq. It is safe for concurrent use and holds no per-tenant state: the base URL,
// key and version arrive with each call, so one Client serves every tenant.
type Client struct {
	hc      *http.Client
	timeout time.Duration
}

// New returns a Client using hc (nil: a client with a dedicated transport that does not follow
// redirects) and a per-call timeout (<= 0: DefaultTimeout).
func New(hc *http.Client, timeout time.Duration) *Client {
	if hc == nil {
		hc = defaultHTTPClient()
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{hc: hc, timeout: timeout}
}

func defaultHTTPClient() *http.Client {
	t := &http.Transport{
		// No proxy from the environment: configuration is read only by the config package. An
		// egress proxy is set up by passing an *http.Client to New.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return &http.Client{
		Transport: t,
		// Basiq's API does not redirect. Following one would re-send the form (and, on the same
		// host, the key) somewhere nobody configured, so a 3xx is returned as an *Error instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TokenRequest is one POST /token call.
type TokenRequest struct {
	BaseURL string // e.g. https://au-api.basiq.io, with or without a trailing slash
	APIKey  string // sent verbatim after "Basic ": Basiq issues it already base64-encoded
	Version string // the basiq-version header: "2.0", "2.1" or "3.0"
	Scope   string // ScopeServer or ScopeClient
	UserID  string // the form's userId, sent only with ScopeClient (Basiq requires it on 3.0)
}

// Token is a minted Basiq token. AccessToken is a secret: never log it.
type Token struct {
	AccessToken   string
	TokenType     string
	ExpiresIn     int64  // seconds, as Basiq sent it
	CorrelationID string // from a response header when Basiq sends one; often empty
}

// Token mints a token. It returns *Error when Basiq answers with anything but 200 (Classify
// says what to do about it), *TransportError when Basiq could not be reached in time, an error
// wrapping ErrBadResponse when the 200 body is not a usable token, and one wrapping
// ErrInvalidArgument when r is incomplete (no call is made then).
func (c *Client) Token(ctx context.Context, r TokenRequest) (Token, error) {
	const endpoint = EndpointToken
	if err := r.validate(); err != nil {
		return Token{}, err
	}
	u, err := endpointURL(r.BaseURL, "/token")
	if err != nil {
		return Token{}, fmt.Errorf("basiq %s: %w", endpoint, err)
	}
	form := url.Values{"scope": {r.Scope}}
	if r.Scope == ScopeClient && r.UserID != "" {
		form.Set("userId", r.UserID)
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, fmt.Errorf("basiq %s: build request: %w", endpoint, ErrInvalidArgument)
	}
	req.Header.Set("Authorization", "Basic "+r.APIKey)
	req.Header.Set("basiq-version", r.Version)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	secrets := keySecrets(r.APIKey)
	resp, body, err := c.do(req, endpoint, secrets)
	if err != nil {
		return Token{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Token{}, newError(endpoint, resp, body, secrets)
	}
	if len(body) > maxBody {
		return Token{}, badResponse(endpoint, "body exceeds 64 KiB")
	}
	var tb struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tb); err != nil {
		// The decoder's message can quote the body, which holds the token: say only what failed.
		return Token{}, badResponse(endpoint, "body is not a token object")
	}
	switch {
	case tb.AccessToken == "":
		return Token{}, badResponse(endpoint, "access_token is empty")
	// RFC 6749 §7.1: the token type is case-insensitive.
	case !strings.EqualFold(tb.TokenType, "Bearer"):
		return Token{}, badResponse(endpoint, fmt.Sprintf("token_type is %q, want Bearer", clip.To(scrub(tb.TokenType, append(secrets, tb.AccessToken)), 40)))
	case tb.ExpiresIn <= 0:
		return Token{}, badResponse(endpoint, fmt.Sprintf("expires_in is %d, want > 0", tb.ExpiresIn))
	}
	return Token{
		AccessToken:   tb.AccessToken,
		TokenType:     tb.TokenType,
		ExpiresIn:     tb.ExpiresIn,
		CorrelationID: clip.To(scrub(headerCorrelationID(resp.Header), append(secrets, tb.AccessToken)), 128),
	}, nil
}

func (r TokenRequest) validate() error {
	bad := func(what string) error {
		return fmt.Errorf("basiq %s: %w: %s", EndpointToken, ErrInvalidArgument, what)
	}
	switch {
	case r.APIKey == "":
		return bad("API key is empty")
	case !headerSafe(r.APIKey):
		return bad("API key contains characters not allowed in a header")
	case r.Version == "":
		return bad("basiq-version is empty")
	case !headerSafe(r.Version):
		return bad("basiq-version contains characters not allowed in a header")
	case r.Scope != ScopeServer && r.Scope != ScopeClient:
		return bad(fmt.Sprintf("scope %q is neither %s nor %s", clip.To(r.Scope, 40), ScopeServer, ScopeClient))
	}
	return nil
}

// NewUser is the body of POST /users. Basiq needs Email or Mobile.
type NewUser struct {
	Email     string `json:"email,omitempty"`
	Mobile    string `json:"mobile,omitempty"`
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
}

// User is a Basiq user as POST /users returns it.
type User struct {
	ID     string
	Email  string
	Mobile string
}

// CreateUser creates a Basiq user with a SERVER_ACCESS token. Basiq does not de-duplicate users,
// so the caller must make sure this runs once per person. Errors are as for Token; a 403
// access-denied or 401 invalid-authorization-token classifies as ClassTokenExpired.
func (c *Client) CreateUser(ctx context.Context, baseURL, serverToken string, u NewUser) (User, error) {
	const endpoint = EndpointUsers
	switch {
	case serverToken == "":
		return User{}, fmt.Errorf("basiq %s: %w: token is empty", endpoint, ErrInvalidArgument)
	case !headerSafe(serverToken):
		return User{}, fmt.Errorf("basiq %s: %w: token contains characters not allowed in a header", endpoint, ErrInvalidArgument)
	case u.Email == "" && u.Mobile == "":
		return User{}, fmt.Errorf("basiq %s: %w: one of email or mobile is required", endpoint, ErrInvalidArgument)
	}
	target, err := endpointURL(baseURL, "/users")
	if err != nil {
		return User{}, fmt.Errorf("basiq %s: %w", endpoint, err)
	}
	payload, err := json.Marshal(u)
	if err != nil {
		return User{}, fmt.Errorf("basiq %s: encode user: %w", endpoint, err)
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return User{}, fmt.Errorf("basiq %s: build request: %w", endpoint, ErrInvalidArgument)
	}
	req.Header.Set("Authorization", "Bearer "+serverToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	secrets := []string{serverToken}
	resp, body, err := c.do(req, endpoint, secrets)
	if err != nil {
		return User{}, err
	}
	// Basiq documents 201. Any other 2xx that carries a user is accepted too: the body, not the
	// status, proves the user exists, and treating it as a failure would make the caller retry
	// and create a duplicate (Basiq does not de-duplicate users).
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return User{}, newError(endpoint, resp, body, secrets)
	}
	if len(body) > maxBody {
		return User{}, badResponse(endpoint, "body exceeds 64 KiB")
	}
	var ub struct {
		ID     string `json:"id"`
		Email  string `json:"email"`
		Mobile string `json:"mobile"`
	}
	if err := json.Unmarshal(body, &ub); err != nil {
		return User{}, badResponse(endpoint, "body is not a user object")
	}
	if ub.ID == "" {
		return User{}, badResponse(endpoint, "user id is empty")
	}
	return User{ID: ub.ID, Email: ub.Email, Mobile: ub.Mobile}, nil
}

// do sends req and reads at most maxBody+1 bytes of the answer, so callers can tell an oversized
// body from a complete one.
func (c *Client) do(req *http.Request, endpoint string, secrets []string) (*http.Response, []byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, newTransportError(endpoint, err, secrets)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, newTransportError(endpoint, fmt.Errorf("read response: %w", err), secrets)
	}
	return resp, body, nil
}

// endpointURL joins the configured base URL and a path, tolerating a trailing slash on the base.
func endpointURL(base, path string) (string, error) {
	base = strings.TrimRight(strings.TrimSpace(base), "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%w: base URL must be an absolute http(s) URL", ErrInvalidArgument)
	}
	return base + path, nil
}

// headerSafe reports whether s can be sent as (part of) a header value without net/http
// rejecting it. Checking first keeps the decision, and the message, ours.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == 0x7f {
			return false
		}
	}
	return true
}

// keySecrets is everything derived from an API key that must never appear in an error: the key
// itself, its decoded "<id>:<secret>" form, and each half.
func keySecrets(key string) []string {
	s := []string{key}
	if raw, err := base64.StdEncoding.DecodeString(key); err == nil {
		dec := string(raw)
		s = append(s, dec)
		if a, b, ok := strings.Cut(dec, ":"); ok {
			s = append(s, a, b)
		}
	}
	return s
}

// scrub replaces every secret in s with [redacted]. Secrets shorter than 8 bytes are skipped:
// real keys and tokens are far longer, and redacting a short string would mangle messages.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 8 && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// headerCorrelationID looks for a correlation id on a response. Basiq documents no such header;
// these are the usual names, so an id reaches the audit log if one is ever sent.
func headerCorrelationID(h http.Header) string {
	for _, name := range [...]string{"X-Correlation-Id", "Correlation-Id", "X-Request-Id"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			return v
		}
	}
	return ""
}

func badResponse(endpoint, why string) error {
	return fmt.Errorf("basiq %s: %w: %s", endpoint, ErrBadResponse, why)
}

// errors.Is targets for errors that are neither *Error nor *TransportError.
var (
	// ErrInvalidArgument: the call was not made because its arguments are incomplete or unusable.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrBadResponse: Basiq answered 2xx with a body that breaks its contract.
	ErrBadResponse = errors.New("malformed response")
)
