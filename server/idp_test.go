package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// The people the test provider knows. Their passwords are the provider's, not the BFF's.
const (
	idpClientID     = "bff"
	idpClientSecret = "bff-client-secret-for-tests"
	idpPassword     = "provider-password"
)

// testIdP is an OpenID Connect provider on loopback: zitadel/oidc's certified op package with
// its example storage and login page. tamper, when set, rewrites every ID token the token
// endpoint issues (re-signed with the provider's own key), so each check of the BFF can be
// met by a token that fails only that check.
type testIdP struct {
	t       testing.TB
	issuer  string
	storage *storage.Storage
	down    atomic.Bool
	mu      sync.Mutex
	tamper  func(claims map[string]any) (alg string)
	idToken []string // every ID token issued, after tampering
	// assertionKey, when set, is the public key of client "bff" for private_key_jwt; the
	// example storage cannot register one, so the wrapper checks the assertion.
	assertionKey any
	assertions   atomic.Int32 // assertions accepted
}

// newTestIdP starts a provider whose client "bff" accepts the given redirect URIs.
func newTestIdP(t testing.TB, redirectURIs ...string) *testIdP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idp := &testIdP{t: t, issuer: "http://" + ln.Addr().String()}
	users := map[string]map[string]any{}
	for _, u := range []struct{ id, name, email string }{
		{"sub-alice", "alice", "alice@acme.test"},
		{"sub-bob", "bob", "bob@acme.test"},
		{"sub-carol", "carol", "carol@acme.test"},
		{"sub-dave", "dave", "dave@acme.test"},
	} {
		users[u.id] = map[string]any{"ID": u.id, "Username": u.name, "Password": idpPassword, "FirstName": u.name,
			"LastName": "Test", "Email": u.email, "EmailVerified": true, "PreferredLanguage": "en"}
	}
	b, _ := json.Marshal(users)
	path := filepath.Join(t.TempDir(), "idp-users.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	us, err := storage.StoreFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	idp.storage = storage.NewStorageWithClients(us, map[string]*storage.Client{
		idpClientID:    storage.WebClient(idpClientID, idpClientSecret, redirectURIs...),
		"other-client": storage.WebClient("other-client", "other-secret", redirectURIs...),
	})
	router := exampleop.SetupServer(idp.issuer, idp.storage, nil, false)
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: idp.wrap(router)}}
	srv.Start()
	t.Cleanup(srv.Close)
	return idp
}

// wrap answers 503 while the provider is down and applies tamper to issued ID tokens.
func (idp *testIdP) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if idp.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/oauth/token" {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodPost && idp.assertionKey != nil {
			if !idp.checkAssertion(w, r) {
				return
			}
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var resp map[string]any
		if rec.Code == http.StatusOK && json.Unmarshal(body, &resp) == nil {
			if raw, ok := resp["id_token"].(string); ok {
				raw = idp.rewrite(raw)
				resp["id_token"] = raw
				body, _ = json.Marshal(resp)
				idp.mu.Lock()
				idp.idToken = append(idp.idToken, raw)
				idp.mu.Unlock()
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// checkAssertion authenticates a private_key_jwt token request (RFC 7523) and hands it on to
// the provider as the client's basic authentication. It answers 401 invalid_client and
// returns false for a bad assertion.
func (idp *testIdP) checkAssertion(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	refuse := func(why string) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":"invalid_client","error_description":%q}`, why)
		return false
	}
	if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return refuse("no client assertion")
	}
	jws, err := jose.ParseSigned(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return refuse("malformed assertion")
	}
	payload, err := jws.Verify(idp.assertionKey)
	if err != nil {
		return refuse("bad signature")
	}
	var c struct {
		Iss, Sub, Aud, Jti string
		Exp                int64
	}
	if json.Unmarshal(payload, &c) != nil || c.Iss != idpClientID || c.Sub != idpClientID || c.Aud != idp.issuer+"/oauth/token" ||
		c.Jti == "" || c.Exp < time.Now().Unix() || r.PostForm.Get("client_id") != idpClientID {
		return refuse("bad claims")
	}
	idp.assertions.Add(1)
	form := r.PostForm
	form.Del("client_assertion")
	form.Del("client_assertion_type")
	form.Del("client_id")
	body := form.Encode()
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
	r.PostForm, r.Form = nil, nil
	r.SetBasicAuth(idpClientID, idpClientSecret)
	return true
}

func (idp *testIdP) setTamper(f func(claims map[string]any) string) {
	idp.mu.Lock()
	idp.tamper = f
	idp.mu.Unlock()
}

func (idp *testIdP) rewrite(raw string) string {
	idp.mu.Lock()
	f := idp.tamper
	idp.mu.Unlock()
	if f == nil {
		return raw
	}
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		idp.t.Errorf("test provider: decode ID token: %v", err)
		return raw
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		idp.t.Errorf("test provider: ID token claims: %v", err)
		return raw
	}
	if alg := f(claims); alg == "none" {
		b, _ := json.Marshal(claims)
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
	}
	return idp.sign(claims, "JWT")
}

// sign signs claims with the provider's own signing key, as the provider itself would.
func (idp *testIdP) sign(claims map[string]any, typ string) string {
	idp.t.Helper()
	key, err := idp.storage.SigningKey(context.Background())
	if err != nil {
		idp.t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.SignatureAlgorithm(), Key: jose.JSONWebKey{Key: key.Key(), KeyID: key.ID()}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		idp.t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := signer.Sign(b)
	if err != nil {
		idp.t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		idp.t.Fatal(err)
	}
	return s
}

// logoutToken is a Back-Channel Logout token from this provider for client "bff"; change
// edits the claims before signing.
func (idp *testIdP) logoutToken(sub, sid string, change func(map[string]any)) string {
	now := time.Now()
	c := map[string]any{
		"iss": idp.issuer, "aud": idpClientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti":    rand.Text(),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	if change != nil {
		change(c)
	}
	return idp.sign(c, "logout+jwt")
}

// authorize plays the person at the provider: it follows authURL to the login page, signs in
// as username and returns the URL the provider redirects back to (the BFF's callback, with
// code and state), without following it.
func (idp *testIdP) authorize(t testing.TB, authURL, username string) *url.URL {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	issuer := mustURL(t, idp.issuer)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host != issuer.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatalf("provider authorize: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	reqID := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != http.StatusOK || reqID == "" {
		t.Fatalf("provider authorize: %d at %s, want its login page", resp.StatusCode, resp.Request.URL)
	}
	resp, err = hc.PostForm(idp.issuer+"/login/username", url.Values{"id": {reqID}, "username": {username}, "password": {idpPassword}})
	if err != nil {
		t.Fatalf("provider login: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		t.Fatalf("provider login: %d %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return mustURL(t, loc)
}

// oidcLoginYAML is a tenant login block using this provider.
func (idp *testIdP) loginYAML(password bool) string {
	return fmt.Sprintf(`    login:
      password: %v
      oidc:
        issuer: %s
        client_id: %s
        client_secret: {env: OIDC_SECRET}
        display_name: Test SSO
`, password, idp.issuer, idpClientID)
}
