package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// handleToken is POST /token. The checks run in the numbered order below, which follows the
// order of Basiq's error table because Basiq documents none [inferred]; the first failure
// answers.
func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	// 1. Method.
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, errMethodNotAllowed())
		return
	}
	e.mu.Lock()
	e.tokenCalls++
	e.mu.Unlock()
	if !e.disturb(w, r, RouteToken) {
		return
	}

	// 2. Throttle: every request that gets this far counts, valid or not.
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	if ae, limited := e.throttle(clientIP(r), auth, e.now()); limited {
		writeError(w, ae)
		return
	}

	// 3-6.
	key, ko, version, ae, bad := e.tokenKey(r, auth)
	if bad {
		writeError(w, ae)
		return
	}

	// 7. Body.
	params, ae, bad := e.tokenParams(r)
	if bad {
		writeError(w, ae)
		return
	}

	// 8-10.
	scope, userID, ae, bad := e.tokenScope(params, ko, version)
	if bad {
		writeError(w, ae)
		return
	}

	// 11. Mint.
	tok, ttl := e.mint(key, ko, scope, userID, version)
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}{tok, "Bearer", ttl})
}

// tokenKey checks the request's credentials: 3-4, the Authorization header present, then
// well-formed; 5, basiq-version (Go canonicalises header names, so any case matches); 6, the
// key known, then the key's own version list (an emulator knob, checked only once the key is
// known because it is a property of the application).
func (e *Emulator) tokenKey(r *http.Request, auth string) (key string, ko KeyOptions, version string, ae apiError, bad bool) {
	if auth == "" {
		return "", ko, "", errAuthMissing(), true
	}
	key, ok := parseBasic(auth)
	if !ok {
		return "", ko, "", errAuthInvalid(), true
	}
	version = strings.TrimSpace(r.Header.Get("basiq-version"))
	if ae, bad := checkVersion(version); bad {
		return "", ko, "", ae, true
	}
	e.mu.Lock()
	ko, known := e.keys[key]
	e.mu.Unlock()
	switch {
	case !known:
		return "", ko, "", errUnknownKey(), true
	case ko.Disabled:
		return "", ko, "", errAccountDisabled(), true
	case ko.Versions != nil && !slices.Contains(ko.Versions, version):
		return "", ko, "", errVersionInvalid(), true
	}
	return key, ko, version, apiError{}, false
}

// tokenScope reads 8, the scope; 9-10, userId and the Trusted Advisor fields, CLIENT_ACCESS
// only (a SERVER_ACCESS token ignores them [inferred]).
func (e *Emulator) tokenScope(params url.Values, ko KeyOptions, version string) (scope, userID string, ae apiError, bad bool) {
	scope = ScopeServer
	switch {
	case params.Has("scope"):
		scope = params.Get("scope")
		if scope != ScopeServer && scope != ScopeClient {
			return "", "", errNotValid("scope", "body/scope", "Scope is not valid"), true
		}
	case e.requireScope:
		return "", "", errNotSupplied("scope", "body/scope", "Scope parameter is required"), true
	}
	if scope != ScopeClient {
		return scope, "", apiError{}, false
	}
	userID = params.Get("userId")
	switch {
	case userID == "" && version == "3.0":
		return "", "", errNotSupplied("userId", "body/userId", "userId is required for CLIENT_ACCESS scope"), true
	case userID != "" && (e.strictUserID && !e.hasUser(ko.ApplicationID, userID) || e.wasDeleted(ko.ApplicationID, userID)):
		return "", "", errNotValid("userId", "body/userId", "User ID value is not valid"), true
	}
	if ae, bad := checkTrustedAdvisor(params); bad {
		return "", "", ae, true
	}
	return scope, userID, apiError{}, false
}

// throttle applies the per-IP then the per-key sliding window. A request it refuses is not
// counted, so a client that backs off recovers as the window slides.
func (e *Emulator) throttle(ip, bucket string, now time.Time) (apiError, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ipHits, keyHits []time.Time
	if e.perIP > 0 {
		ipHits = prune(e.ipHits[ip], now)
		e.ipHits[ip] = ipHits
		if len(ipHits) >= e.perIP {
			return e.withRetryAfter(errRequestNotValid()), true
		}
	}
	if e.perKey > 0 {
		keyHits = prune(e.keyHits[bucket], now)
		e.keyHits[bucket] = keyHits
		if len(keyHits) >= e.perKey {
			return e.withRetryAfter(errTooManyRequests()), true
		}
	}
	if e.perIP > 0 {
		e.ipHits[ip] = append(ipHits, now)
	}
	if e.perKey > 0 {
		e.keyHits[bucket] = append(keyHits, now)
	}
	return apiError{}, false
}

func (e *Emulator) withRetryAfter(ae apiError) apiError {
	ae.retryAfter = e.throttleRetryAfter
	return ae
}

// prune drops the hits that have left the window. Hits are appended in arrival order, but an
// injected clock may go backwards, so every hit is checked rather than stopping at the first.
func prune(hits []time.Time, now time.Time) []time.Time {
	kept := hits[:0]
	for _, t := range hits {
		if now.Sub(t) < rateWindow {
			kept = append(kept, t)
		}
	}
	return kept
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// parseBasic returns the key from "Basic <key>". The key must be standard base64 of a string
// containing ':', which is how Basiq issues keys; a key encoded a second time decodes to base64
// text, which has no ':', and is refused like Basiq refuses it (S-posttoken).
func parseBasic(auth string) (string, bool) {
	scheme, value, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", false
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(value)
	if err != nil || !bytes.Contains(raw, []byte(":")) {
		return "", false
	}
	return value, true
}

func checkVersion(v string) (apiError, bool) {
	switch {
	case v == "":
		return errVersionMissing(), true
	case supportedVersion(v):
		return apiError{}, false
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f < 1.0 && len(v) <= 16 {
		return errVersionRetired(v), true
	}
	return errVersionInvalid(), true
}

// tokenParams reads the form (or, with AcceptJSON, a JSON object of strings). A missing or empty
// body is accepted whatever its Content-Type: Basiq's old Go SDK sent exactly that.
func (e *Emulator) tokenParams(r *http.Request) (url.Values, apiError, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	switch {
	case err != nil:
		return nil, errInvalidContent("Request body could not be read."), true
	case len(body) > maxRequestBody:
		return nil, errInvalidContent("Request body is too large."), true
	case len(bytes.TrimSpace(body)) == 0:
		return url.Values{}, apiError{}, false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err == nil && mt == "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errInvalidContent("Request body is not a valid form."), true
		}
		return v, apiError{}, false
	case err == nil && mt == "application/json" && e.acceptJSON:
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, errInvalidContent("Request body is not valid JSON."), true
		}
		v := url.Values{}
		for k, x := range m {
			s, ok := x.(string)
			if !ok {
				return nil, errNotValid(k, "body/"+k, k+" must be a string"), true
			}
			v.Set(k, s)
		}
		return v, apiError{}, false
	}
	return nil, errUnsupportedContentType(), true
}

// checkTrustedAdvisor validates the optional fields of the Aug 2023 Trusted Advisor extension
// (S-ta) against their documented enumerations.
func checkTrustedAdvisor(p url.Values) (apiError, bool) {
	if p.Has("orgRefType") && !slices.Contains([]string{"ABN", "AFSL", "ACN"}, p.Get("orgRefType")) {
		return errNotValid("orgRefType", "body/orgRefType", "orgRefType is not valid"), true
	}
	orgTypes := []string{"Accountant", "Financial Broker", "Financial Advisor", "Legal Professional", "Tax Agent", "Financial Counselling Agency"}
	if p.Has("orgType") && !slices.Contains(orgTypes, p.Get("orgType")) {
		return errNotValid("orgType", "body/orgType", "orgType is not valid"), true
	}
	return apiError{}, false
}

// mint signs a new token, records it and counts it. It returns the token and expires_in.
func (e *Emulator) mint(key string, ko KeyOptions, scope, userID, version string) (string, int64) {
	ttl := int64(e.ttl / time.Second)
	if ttl < 1 {
		ttl = 1
	}
	now := e.now()
	c := claims{
		PartnerID:     ko.PartnerID,
		ApplicationID: ko.ApplicationID,
		Scope:         scope,
		Sandbox:       ko.Sandbox,
		Version:       version,
		UserID:        userID,
		IssuedAt:      now.Unix(),
		ExpiresAt:     now.Unix() + ttl,
		// A random id makes every token unique, even two minted in the same second with the
		// same claims: Basiq never hands out the same token twice.
		ID: newUUID(),
	}
	tok := e.sign(c)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens[tok] = TokenInfo{
		Key: key, Scope: scope, UserID: userID, Version: version,
		ApplicationID: ko.ApplicationID, PartnerID: ko.PartnerID, Sandbox: ko.Sandbox,
		IssuedAt: time.Unix(c.IssuedAt, 0), ExpiresAt: time.Unix(c.ExpiresAt, 0),
	}
	e.minted[mintKey{key, scope, userID}]++
	e.mintedByKey[key]++
	return tok, ttl
}
