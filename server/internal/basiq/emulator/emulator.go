// Package emulator is a local Basiq: an http.Handler that answers POST /token with Basiq's
// documented validation order and recorded error bodies, checks bearer tokens the way Basiq's
// resource endpoints do, creates users, runs the API 2.x browser connection flow with jobs, and
// serves a Consent UI stub (README, "The emulator"). Tests, demo mode and `server emulator` use it; it is
// the only stand-in for Basiq in this project. It imports only the standard library.
//
// Behaviour that no Basiq source confirms is marked [inferred] and, where a test might need the
// other answer, is an Options knob.
package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DemoAPIKey is the fixed API key of the demo tenant. It is not a secret: it is published here
// on purpose and only works against this emulator, which does not know it until AddKey is
// called with it. Like a real Basiq key it is base64("<uuid>:<uuid>").
const DemoAPIKey = "NTliYzQwNTgtMDJmYS00ZjY5LTk2OTgtZmRmN2I0OTEzZDIxOmU5ZTRlNTU4LTE2YzctNDVhNS1hZWVlLThiMzM3ZTkwOGFlNg=="

// Scopes, as Basiq spells them.
const (
	ScopeServer = "SERVER_ACCESS"
	ScopeClient = "CLIENT_ACCESS"
)

// Routes, for Fault.Endpoint.
const (
	RouteToken        = "/token"
	RouteUsers        = "/users"                  // POST /users
	RouteConnections  = "/users/{id}/connections" // POST, and DELETE /users/{id}/connections/{id}
	RouteJobs         = "/jobs/{id}"
	RouteUser         = "/users/{id}"          // GET and DELETE
	RouteConsents     = "/users/{id}/consents" // GET
	RouteInstitutions = "/institutions"        // GET
	RouteMFA          = "/jobs/{id}/mfa"       // POST
)

// DefaultPublicURL is Basiq's API host, used in links.self.
const DefaultPublicURL = "https://au-api.basiq.io"

// rateWindow is Basiq's documented throttling period for /token (S-ratelimit).
const rateWindow = 5 * time.Minute

// maxRequestBody bounds what the emulator reads from a request body.
const maxRequestBody = 64 << 10

// supportedVersions are the basiq-version values Basiq currently accepts on /token.
func supportedVersion(v string) bool { return v == "2.0" || v == "2.1" || v == "3.0" }

// Options configures an Emulator. The zero value is Basiq's documented behaviour.
type Options struct {
	Now         func() time.Time // nil: time.Now. Drives iat/exp, expiry checks, rate windows, jobs.
	TokenTTL    time.Duration    // <= 0: 3600s, Basiq's documented lifetime
	PerKeyLimit int              // /token calls per key per 5-minute sliding window; 0: 1500, < 0: off
	PerIPLimit  int              // /token calls per client IP per 5 minutes; <= 0: off (403 when hit)
	// StrictUserID rejects a CLIENT_ACCESS userId, and a connection for a user, that POST /users
	// did not create (or AddUser did not register) under the key's application. [inferred]
	StrictUserID bool
	// RequireScope makes a missing scope a 400 instead of defaulting to SERVER_ACCESS. [inferred]
	RequireScope bool
	// AcceptJSON lets /token take a JSON body as well as a form (step 7 of handleToken). [inferred]
	AcceptJSON bool
	// ThrottleRetryAfter, when > 0, is sent as Retry-After on rate-limit answers. Basiq is not
	// known to send one, so the default is none.
	ThrottleRetryAfter time.Duration
	// ConsentRedirect is where the Consent UI stub sends the person back, with state and, when
	// a bank was attempted, jobIds and jobId.
	ConsentRedirect string
	PublicURL       string // base of links.self; "": DefaultPublicURL
}

// KeyOptions describe the application behind an API key.
type KeyOptions struct {
	ApplicationID string // "": a random UUID
	PartnerID     string // "": a random UUID
	Sandbox       bool
	Disabled      bool     // the account is disabled: /token answers 403
	Versions      []string // basiq-version values this key may use; nil: all supported
}

// Fault is injected into matching requests right after the method check, before the bearer or
// key is looked at. The zero value injects nothing.
type Fault struct {
	// Status: 0 none; 500 internal-server-error; 503 service-unavailable; 429 too-many-requests;
	// 403 request-not-valid. Any other status gets the 500 body with that status.
	Status int
	// Code, with Status 403, is "forbidden-access" for the answer an account without the
	// Connections feature gets, instead of request-not-valid.
	Code       string
	Latency    time.Duration // slept before answering (cut short if the client goes away)
	Hang       bool          // block until the request's context is done or the fault is changed
	RetryAfter time.Duration // > 0: sent as Retry-After with Status
	// Endpoint is one of the Route constants; "" or "*" is every API
	// route. The Consent UI stub and CORS preflights are never faulted.
	Endpoint string
}

// TokenInfo is what the emulator recorded about a token it minted.
type TokenInfo struct {
	Key           string
	Scope         string
	UserID        string // "" when not bound
	Version       string
	ApplicationID string
	PartnerID     string
	Sandbox       bool
	IssuedAt      time.Time
	ExpiresAt     time.Time
}

// ConnectionRecord is one POST /users/{id}/connections the emulator accepted, credentials
// included, so tests can prove that they went from the browser straight to Basiq.
type ConnectionRecord struct {
	UserID           string
	LoginID          string
	Password         string
	SecurityCode     string
	SecondaryLoginID string
	InstitutionID    string
	ConnectionID     string
	JobID            string
	Received         time.Time
}

type mintKey struct{ key, scope, userID string }

// Emulator is a local Basiq. It is safe for concurrent use; every setter may be called while it
// serves.
type Emulator struct {
	now                func() time.Time
	ttl                time.Duration
	perKey, perIP      int
	strictUserID       bool
	requireScope       bool
	acceptJSON         bool
	throttleRetryAfter time.Duration
	publicURL          string
	secret             []byte // HS256 key for the tokens it mints
	pages              *template.Template
	mux                *http.ServeMux

	mu              sync.Mutex
	keys            map[string]KeyOptions
	users           map[string]map[string]bool // applicationID -> Basiq user ids
	tokens          map[string]TokenInfo
	keyHits         map[string][]time.Time // /token calls per Authorization value, oldest first
	ipHits          map[string][]time.Time
	fault           Fault
	faultChanged    chan struct{} // closed and replaced by SetFault, to release hung requests
	latency         time.Duration
	consentRedirect string
	jobs            map[string]*job
	conns           map[string]connection
	connections     []ConnectionRecord
	tokenCalls      int
	minted          map[mintKey]int
	mintedByKey     map[string]int
	usersCreated    int
	deleted         map[string]map[string]bool // applicationID -> deleted Basiq user ids
	consents        map[string][]consentRecord // Basiq user id -> consents
	visits          map[string]consentVisit    // open Consent UI visits by id
	requests        map[string]int             // API requests per route, faults included
	mfaAnswers      int
}

// New returns an Emulator with no keys: add them with AddKey.
func New(o Options) *Emulator {
	e := &Emulator{
		now:                o.Now,
		ttl:                o.TokenTTL,
		perKey:             o.PerKeyLimit,
		perIP:              o.PerIPLimit,
		strictUserID:       o.StrictUserID,
		requireScope:       o.RequireScope,
		acceptJSON:         o.AcceptJSON,
		throttleRetryAfter: o.ThrottleRetryAfter,
		publicURL:          strings.TrimRight(o.PublicURL, "/"),
		secret:             make([]byte, 32),
		pages:              template.Must(template.New("consent").Parse(consentPages)),
		keys:               map[string]KeyOptions{},
		users:              map[string]map[string]bool{},
		tokens:             map[string]TokenInfo{},
		keyHits:            map[string][]time.Time{},
		ipHits:             map[string][]time.Time{},
		faultChanged:       make(chan struct{}),
		consentRedirect:    o.ConsentRedirect,
		jobs:               map[string]*job{},
		conns:              map[string]connection{},
		minted:             map[mintKey]int{},
		mintedByKey:        map[string]int{},
		deleted:            map[string]map[string]bool{},
		consents:           map[string][]consentRecord{},
		visits:             map[string]consentVisit{},
		requests:           map[string]int{},
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.ttl <= 0 {
		e.ttl = time.Hour
	}
	if e.perKey == 0 {
		e.perKey = 1500
	}
	if e.publicURL == "" {
		e.publicURL = DefaultPublicURL
	}
	rand.Read(e.secret) // crypto/rand.Read cannot fail (Go 1.24+): it aborts the program instead

	mux := http.NewServeMux()
	mux.HandleFunc("/token", e.handleToken)
	mux.HandleFunc("/users", e.handleUsers)
	mux.HandleFunc("/users/{userID}/connections", e.handleConnections)
	mux.HandleFunc("/users/{userID}/connections/{connectionID}", e.handleConnection)
	mux.HandleFunc("/jobs/{jobID}", e.handleJob)
	mux.HandleFunc("/jobs/{jobID}/mfa", e.handleMFA)
	mux.HandleFunc("/institutions", e.handleInstitutions)
	mux.HandleFunc("/users/{userID}", e.handleUser)
	mux.HandleFunc("/users/{userID}/consents", e.handleConsents)
	mux.HandleFunc("/home", e.handleConsent)
	mux.HandleFunc("/home/finish", e.handleConsentFinish)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errNotFound("Requested resource is not found."))
	})
	e.mux = mux
	return e
}

// ServeHTTP makes the Emulator an http.Handler.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

// GenerateKey returns a new API key shaped like Basiq's: base64("<uuid>:<uuid>").
func GenerateKey() string {
	return base64.StdEncoding.EncodeToString([]byte(newUUID() + ":" + newUUID()))
}

// AddKey registers (or replaces) an API key. Only keys that pass Basiq's header check, i.e.
// standard base64 of a string containing ":", can ever be used.
func (e *Emulator) AddKey(key string, o KeyOptions) {
	if o.ApplicationID == "" {
		o.ApplicationID = newUUID()
	}
	if o.PartnerID == "" {
		o.PartnerID = newUUID()
	}
	if o.Versions != nil {
		o.Versions = append([]string(nil), o.Versions...)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keys[key] = o
}

// RemoveKey deletes a key: /token then answers 404 "Unable to authenticate". Tokens already
// minted with it stay valid until they expire, as Basiq is assumed to behave [inferred].
func (e *Emulator) RemoveKey(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.keys, key)
}

// SetDisabled disables or re-enables the account behind a known key.
func (e *Emulator) SetDisabled(key string, disabled bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if o, ok := e.keys[key]; ok {
		o.Disabled = disabled
		e.keys[key] = o
	}
}

// AddUser registers a Basiq user id under an application, as if POST /users had created it.
func (e *Emulator) AddUser(applicationID, userID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addUserLocked(applicationID, userID)
}

func (e *Emulator) addUserLocked(applicationID, userID string) {
	if e.users[applicationID] == nil {
		e.users[applicationID] = map[string]bool{}
	}
	e.users[applicationID][userID] = true
}

func (e *Emulator) hasUser(applicationID, userID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.users[applicationID][userID]
}

// SetFault replaces the injected fault (Fault{} clears it) and releases requests hung by the
// previous one; they then proceed normally.
func (e *Emulator) SetFault(f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fault = f
	close(e.faultChanged)
	e.faultChanged = make(chan struct{})
}

// SetLatency adds d to every API call (/token, /users, connections, jobs); 0 removes it.
func (e *Emulator) SetLatency(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.latency = d
}

// SetConsentRedirect sets where the Consent UI stub's Finish link goes.
func (e *Emulator) SetConsentRedirect(u string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.consentRedirect = u
}

// TokenCalls counts every POST /token received, whatever its outcome.
func (e *Emulator) TokenCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tokenCalls
}

// Minted counts successful mints for (key, scope, userID). userID is "" for SERVER_ACCESS and
// for unbound CLIENT_ACCESS tokens.
func (e *Emulator) Minted(key, scope, userID string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.minted[mintKey{key, scope, userID}]
}

// MintedByKey counts successful mints with key, any scope.
func (e *Emulator) MintedByKey(key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mintedByKey[key]
}

// UsersCreated counts successful POST /users.
func (e *Emulator) UsersCreated() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.usersCreated
}

// Requests counts the API requests route received with an allowed method, whatever their
// outcome (an injected fault included): what a browser actually sent.
func (e *Emulator) Requests(route string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests[route]
}

// ConnectionsReceived returns a copy of every accepted connection request, oldest first.
func (e *Emulator) ConnectionsReceived() []ConnectionRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ConnectionRecord(nil), e.connections...)
}

// ResetCounters zeroes TokenCalls, Minted, MintedByKey, UsersCreated and Requests and forgets recorded
// connections. Keys, users, tokens, jobs and rate-limit windows are kept.
func (e *Emulator) ResetCounters() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokenCalls, e.usersCreated = 0, 0
	e.minted = map[mintKey]int{}
	e.mintedByKey = map[string]int{}
	e.connections = nil
	e.requests = map[string]int{}
}

// Inspect returns what was recorded when token was minted.
func (e *Emulator) Inspect(token string) (TokenInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ti, ok := e.tokens[token]
	return ti, ok
}

// disturb applies the configured latency and any fault matching route. It returns false when
// the request has been answered (or abandoned by the client) and must not be processed further.
func (e *Emulator) disturb(w http.ResponseWriter, r *http.Request, route string) bool {
	// Buffer the body first: net/http notices a client hanging up (and cancels the request's
	// context) only once the handler has read the body to EOF, and a hung or slow request must
	// end when its client gives up.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	e.mu.Lock()
	e.requests[route]++
	f, changed, latency := e.fault, e.faultChanged, e.latency
	e.mu.Unlock()
	ctx := r.Context()
	if !sleep(ctx, latency) {
		return false
	}
	if f.Endpoint != "" && f.Endpoint != "*" && f.Endpoint != route {
		return true
	}
	if !sleep(ctx, f.Latency) {
		return false
	}
	if f.Hang {
		select {
		case <-ctx.Done():
			return false
		case <-changed:
			return true
		}
	}
	if f.Status == 0 {
		return true
	}
	ae := faultError(f.Status)
	if f.Status == http.StatusForbidden && f.Code == "forbidden-access" {
		ae = errForbidden()
	}
	if f.RetryAfter > 0 {
		ae.retryAfter = f.RetryAfter
	}
	writeError(w, ae)
	return false
}

func faultError(status int) apiError {
	switch status {
	case http.StatusTooManyRequests:
		return errTooManyRequests()
	case http.StatusForbidden:
		return errRequestNotValid()
	case http.StatusServiceUnavailable:
		return apiError{status: status, code: "service-unavailable", title: "Service Unavailable", detail: "Service is temporarily unavailable. Try again later."}
	}
	return apiError{status: status, code: "internal-server-error", title: "Internal Server Error", detail: "Internal server error"}
}

// sleep waits d of real time (latency is about the wall clock, not the injected one). It returns
// false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
