// Package sso signs people in through their tenant's OpenID Connect provider: the
// authorization code flow with PKCE, a signed pre-login cookie holding state, nonce and
// verifier, ID token verification (coreos/go-oidc, with discovery and rotating signing keys
// cached per provider), finding or creating the local user, and Back-Channel Logout tokens.
// It imports config, tenant, kv, store and apperr; it knows nothing of HTTP routing.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/derive"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/tenant"
	"github.com/basiq-bff/bff/server/internal/user"
)

// CallbackPath is where providers send people back; the redirect URI registered at a
// provider is the public origin followed by this path.
const CallbackPath = "/auth/oidc/callback"

// preLoginTTL bounds how long a person may spend at the provider's login page. Ten minutes
// is what the common providers allow for an authorization code flow too.
const preLoginTTL = 10 * time.Minute

// discoveryTTL is how long a provider's discovery document is trusted before it is fetched
// again. Signing keys are refetched by go-oidc whenever a token names an unknown key id, so
// key rotation needs no wait.
const discoveryTTL = time.Hour

// Refusal codes: each is the login_error the browser lands with, and each refusal is logged
// as a security event.
const (
	CodeIdPUnavailable   = "idp_unavailable"
	CodeNotConfigured    = "oidc_not_configured"
	CodeLoginExpired     = "login_expired"
	CodeStateMismatch    = "state_mismatch"
	CodeReplayed         = "callback_replayed"
	CodeIdPDenied        = "idp_denied"
	CodeExchangeFailed   = "code_exchange_failed"
	CodeInvalidIDToken   = "invalid_id_token"
	CodeIssuerMismatch   = "issuer_mismatch"
	CodeWrongAudience    = "wrong_audience"
	CodeTokenExpired     = "token_expired"
	CodeNonceMismatch    = "nonce_mismatch"
	CodeEmailMissing     = "email_missing"
	CodeEmailNotAllowed  = "email_not_allowed"
	CodeAccountConflict  = "account_conflict"
	CodeAccountDisabled  = "account_disabled"
	CodeStoreUnavailable = "store_unavailable"
)

// Refusal is a login the BFF turned down: Code goes to the browser, Err to the log.
type Refusal struct {
	Code   string
	Tenant string
	Err    error
}

func (r *Refusal) Error() string {
	if r.Err == nil {
		return "oidc login refused: " + r.Code
	}
	return "oidc login refused: " + r.Code + ": " + r.Err.Error()
}

func (r *Refusal) Unwrap() error { return r.Err }

func refuse(code, tenantID string, err error) *Refusal {
	return &Refusal{Code: code, Tenant: tenantID, Err: err}
}

// Users is the part of the store that sign-in needs.
type Users interface {
	UserByOIDC(ctx context.Context, tenantID, issuer, subject string) (*user.User, error)
	CreateOIDCUser(ctx context.Context, tenantID, email, issuer, subject string) (*user.User, error)
	LinkOIDC(ctx context.Context, tenantID, email, issuer, subject string) (*user.User, error)
}

// Options configure the service.
type Options struct {
	// CookieKeys sign the pre-login cookie: the first signs, all verify.
	CookieKeys [][]byte
	// Secure selects the __Host- prefixed, Secure cookie (false only for http://localhost).
	Secure bool
	// HTTPClient reaches the providers (discovery, keys, token endpoint). nil: a client with
	// a 10 s timeout.
	HTTPClient *http.Client
	Log        *slog.Logger
	Now        func() time.Time // nil: time.Now
}

// Service runs OpenID Connect sign-in for every tenant that configures a provider.
type Service struct {
	users  Users
	kv     kv.Store
	opts   Options
	codecs []securecookie.Codec
	log    *slog.Logger
	now    func() time.Time

	mu        sync.Mutex
	providers map[string]*provider // by providerKey
	discovery singleflight.Group
}

// New returns the service. It fails without a cookie key.
func New(users Users, store kv.Store, o Options) (*Service, error) {
	if len(o.CookieKeys) == 0 {
		return nil, errors.New("sso: at least one cookie key is required")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{users: users, kv: store, opts: o, log: o.Log, now: o.Now, providers: map[string]*provider{}}
	for _, k := range o.CookieKeys {
		// Encrypted as well as signed: the PKCE verifier and the nonce stay unreadable even in
		// a copy of the cookie.
		c := securecookie.New(derive.Key(k, "pre-login mac"), derive.Key(k, "pre-login aes"))
		c.SetSerializer(securecookie.JSONEncoder{})
		c.MaxAge(int(preLoginTTL / time.Second))
		c.MaxLength(2048)
		s.codecs = append(s.codecs, c)
	}
	return s, nil
}

// PreLoginCookie is the name of the cookie that carries a login from start to callback:
// __Host-bff-login, or bff-login for plain-http development.
func PreLoginCookie(secure bool) string {
	if secure {
		return "__Host-bff-login"
	}
	return "bff-login"
}

// provider is one discovered provider with the client registration of one tenant.
type provider struct {
	op         *oidc.Provider
	fetched    time.Time
	endSession string
	authStyle  oauth2.AuthStyle
}

func providerKey(o *config.OIDC) string {
	return o.Issuer + "\x00" + o.ClientID
}

// provider returns the tenant's discovered provider, fetching discovery when it is not
// cached or stale. A failure is an idp_unavailable refusal; a stale entry is kept in use
// while its provider is unreachable, so a short outage does not stop sign-in.
func (s *Service) provider(ctx context.Context, t *tenant.Tenant) (*provider, error) {
	key := providerKey(t.OIDC)
	s.mu.Lock()
	p := s.providers[key]
	s.mu.Unlock()
	if p != nil && s.now().Sub(p.fetched) < discoveryTTL {
		return p, nil
	}
	// One discovery per provider at a time, however many people start signing in at once.
	v, err, _ := s.discovery.Do(key, func() (any, error) { return s.discover(ctx, t) })
	if err != nil {
		if p != nil {
			return p, nil
		}
		return nil, refuse(CodeIdPUnavailable, t.ID, err)
	}
	return v.(*provider), nil
}

// discover fetches the provider's discovery document and caches the result.
func (s *Service) discover(ctx context.Context, t *tenant.Tenant) (*provider, error) {
	// Not the request's context itself: go-oidc keeps this one (without its deadline or
	// cancellation) for fetching signing keys for as long as the provider is cached. Five
	// seconds, because a person is waiting on the redirect and the write timeout is 15.
	dctx, cancel := context.WithTimeout(oidc.ClientContext(context.Background(), s.opts.HTTPClient), 5*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	op, err := oidc.NewProvider(dctx, t.OIDC.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", t.OIDC.Issuer, err)
	}
	var meta struct {
		EndSession  string   `json:"end_session_endpoint"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", t.OIDC.Issuer, err)
	}
	p := &provider{op: op, fetched: s.now(), endSession: meta.EndSession, authStyle: oauth2.AuthStyleInHeader}
	// client_secret_basic is the default the specification gives; a provider that lists only
	// client_secret_post gets the secret in the form.
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") && slices.Contains(meta.AuthMethods, "client_secret_post") {
		p.authStyle = oauth2.AuthStyleInParams
	}
	s.mu.Lock()
	s.providers[providerKey(t.OIDC)] = p
	s.mu.Unlock()
	return p, nil
}

// oauthConfig is the tenant's client at the provider.
func (s *Service) oauthConfig(t *tenant.Tenant, p *provider, redirectURL string) *oauth2.Config {
	ep := p.op.Endpoint()
	c := &oauth2.Config{ClientID: t.OIDC.ClientID, RedirectURL: redirectURL, Scopes: t.OIDC.RequestedScopes()}
	if t.OIDC.PrivateKey.Reveal() != "" {
		// private_key_jwt: the client id goes in the form next to the signed assertion.
		ep.AuthStyle = oauth2.AuthStyleInParams
	} else {
		ep.AuthStyle = p.authStyle
		c.ClientSecret = t.OIDC.ClientSecret.Reveal()
	}
	c.Endpoint = ep
	return c
}

// preLogin is what the pre-login cookie holds, encrypted and signed.
type preLogin struct {
	Tenant   string `json:"t"`
	Issuer   string `json:"i"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
}

// Start begins a login for tenant t: it returns the provider's authorization URL and the
// pre-login cookie to set. redirectURL is the BFF's callback URL. A tenant without a
// provider is an oidc_not_configured refusal; an unreachable provider idp_unavailable.
func (s *Service) Start(ctx context.Context, t *tenant.Tenant, redirectURL, returnTo string) (string, *http.Cookie, error) {
	if t.OIDC == nil {
		return "", nil, refuse(CodeNotConfigured, t.ID, nil)
	}
	p, err := s.provider(ctx, t)
	if err != nil {
		return "", nil, err
	}
	pl := preLogin{Tenant: t.ID, Issuer: t.OIDC.Issuer, State: randomString(), Nonce: randomString(),
		Verifier: oauth2.GenerateVerifier(), ReturnTo: returnTo}
	name := PreLoginCookie(s.opts.Secure)
	enc, err := securecookie.EncodeMulti(name, pl, s.codecs...)
	if err != nil {
		return "", nil, fmt.Errorf("sso: encode pre-login cookie: %w", err)
	}
	u := s.oauthConfig(t, p, redirectURL).AuthCodeURL(pl.State, oidc.Nonce(pl.Nonce), oauth2.S256ChallengeOption(pl.Verifier))
	return u, s.cookie(name, enc, int(preLoginTTL/time.Second)), nil
}

// ClearCookie returns the cookie that removes the pre-login cookie.
func (s *Service) ClearCookie() *http.Cookie {
	return s.cookie(PreLoginCookie(s.opts.Secure), "", -1)
}

// cookie is Lax, not Strict like the session cookie: the provider sends the person back with
// a cross-site top-level navigation, on which a Strict cookie would not be sent.
func (s *Service) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, Secure: s.opts.Secure,
		HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// Identity is a verified sign-in at a tenant's provider.
type Identity struct {
	Tenant        string
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	// SID is the provider's session id, when the ID token carries one: Back-Channel Logout
	// may name it.
	SID string
	// IDToken is the raw ID token, kept only as the id_token_hint of RP-initiated logout.
	IDToken  string
	ReturnTo string
}

// Callback completes a login from the provider's redirect. tenants resolves the tenant the
// pre-login cookie names. Every failure is a *Refusal.
func (s *Service) Callback(ctx context.Context, r *http.Request, tenants *tenant.Snapshot, redirectURL string) (*Identity, error) {
	q := r.URL.Query()
	pl, err := s.spendState(ctx, r, q.Get("state"))
	if err != nil {
		return nil, err
	}
	t, ok := tenants.Get(pl.Tenant)
	if !ok || t.OIDC == nil || t.OIDC.Issuer != pl.Issuer {
		return nil, refuse(CodeNotConfigured, pl.Tenant, errors.New("the tenant's provider changed during the login"))
	}
	// RFC 9207: a provider that names itself in the response must be the one the login went
	// to (a mix-up attack swaps them).
	if iss := q.Get("iss"); iss != "" && iss != pl.Issuer {
		return nil, refuse(CodeIssuerMismatch, t.ID, fmt.Errorf("the response names issuer %q", clip(iss)))
	}
	if e := q.Get("error"); e != "" {
		return nil, refuse(CodeIdPDenied, t.ID, fmt.Errorf("provider answered error %q", clip(e)))
	}
	code := q.Get("code")
	if code == "" {
		return nil, refuse(CodeExchangeFailed, t.ID, errors.New("no code in the callback"))
	}
	p, err := s.provider(ctx, t)
	if err != nil {
		return nil, err
	}
	xctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, s.opts.HTTPClient), 10*time.Second)
	defer cancel()
	tok, err := s.exchange(xctx, t, p, pl, code, redirectURL)
	if err != nil {
		return nil, err
	}
	return s.identity(ctx, xctx, t, p, pl, tok)
}

// spendState checks the callback's state against the pre-login cookie and spends it, so that
// two racing uses cannot both pass.
func (s *Service) spendState(ctx context.Context, r *http.Request, state string) (preLogin, error) {
	var pl preLogin
	c, err := r.Cookie(PreLoginCookie(s.opts.Secure))
	if err == nil {
		err = securecookie.DecodeMulti(c.Name, c.Value, &pl, s.codecs...)
	}
	if err != nil {
		// Without its cookie a callback is either stale or a second use of one already spent.
		if state != "" {
			if _, gerr := s.kv.Get(ctx, stateKey(state)); gerr == nil {
				return pl, refuse(CodeReplayed, "", errors.New("state already used"))
			}
		}
		return pl, refuse(CodeLoginExpired, "", fmt.Errorf("no valid pre-login cookie: %w", err))
	}
	if state == "" || !equal(state, pl.State) {
		return pl, refuse(CodeStateMismatch, pl.Tenant, errors.New("state does not match the pre-login cookie"))
	}
	// Spend the state before anything else.
	fresh, err := s.kv.SetNX(ctx, stateKey(state), []byte{1}, preLoginTTL+time.Minute)
	if err != nil {
		return pl, refuse(CodeStoreUnavailable, pl.Tenant, err)
	}
	if !fresh {
		return pl, refuse(CodeReplayed, pl.Tenant, errors.New("state already used"))
	}
	return pl, nil
}

// exchange trades the code for tokens at the provider's token endpoint (PKCE verifier, and a
// signed client assertion for private_key_jwt).
func (s *Service) exchange(xctx context.Context, t *tenant.Tenant, p *provider, pl preLogin, code, redirectURL string) (*oauth2.Token, error) {
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(pl.Verifier)}
	if t.OIDC.PrivateKey.Reveal() != "" {
		assertion, err := clientAssertion(t.OIDC, p.op.Endpoint().TokenURL, s.now())
		if err != nil {
			return nil, refuse(CodeExchangeFailed, t.ID, err)
		}
		opts = append(opts, oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
			oauth2.SetAuthURLParam("client_assertion", assertion))
	}
	tok, err := s.oauthConfig(t, p, redirectURL).Exchange(xctx, code, opts...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			// The status and the OAuth error code only: the provider's body (up to a
			// megabyte) must not reach a log line.
			cause := fmt.Errorf("token endpoint: %s %s", re.Response.Status, clip(re.ErrorCode))
			if re.Response.StatusCode < 500 {
				return nil, refuse(CodeExchangeFailed, t.ID, cause)
			}
			return nil, refuse(CodeIdPUnavailable, t.ID, cause)
		}
		return nil, refuse(CodeIdPUnavailable, t.ID, fmt.Errorf("token endpoint: %w", err))
	}
	return tok, nil
}

// identity verifies the ID token in tok and reads who signed in, asking UserInfo for the
// email when the ID token has none.
func (s *Service) identity(ctx, xctx context.Context, t *tenant.Tenant, p *provider, pl preLogin, tok *oauth2.Token) (*Identity, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, refuse(CodeInvalidIDToken, t.ID, errors.New("the token response has no id_token"))
	}
	idt, err := s.verify(ctx, t, p, raw)
	if err != nil {
		return nil, err
	}
	if !equal(idt.Nonce, pl.Nonce) {
		return nil, refuse(CodeNonceMismatch, t.ID, errors.New("the ID token's nonce is not the one sent"))
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		PreferredName string `json:"preferred_username"`
		SID           string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, refuse(CodeInvalidIDToken, t.ID, err)
	}
	id := &Identity{Tenant: t.ID, Issuer: idt.Issuer, Subject: idt.Subject, Email: claims.Email,
		EmailVerified: verified(claims.EmailVerified), SID: claims.SID, IDToken: raw, ReturnTo: pl.ReturnTo}
	if id.Email == "" {
		// Many providers put email in the ID token only when no access token is issued; the
		// UserInfo endpoint has it then, for the same subject.
		ui, err := p.op.UserInfo(xctx, oauth2.StaticTokenSource(tok))
		switch {
		case err != nil:
			s.log.DebugContext(ctx, "oidc userinfo unavailable", "tenant", t.ID, "err", err)
		case ui.Subject != idt.Subject:
			return nil, refuse(CodeInvalidIDToken, t.ID, errors.New("userinfo is for another subject"))
		default:
			id.Email, id.EmailVerified = ui.Email, ui.EmailVerified
		}
	}
	if id.Email == "" && strings.Contains(claims.PreferredName, "@") {
		// Entra ID sends the sign-in name, not email, unless the optional claim is added. The
		// token's email_verified speaks of an email it did not send, not of this name: such an
		// address is never verified, so it links to no local user and passes no domain filter.
		id.Email, id.EmailVerified = claims.PreferredName, false
	}
	return id, nil
}

// verify checks an ID token's signature (alg none is never accepted: go-oidc only takes the
// algorithms the provider lists), issuer, expiry and audience, each failure with its own code.
func (s *Service) verify(ctx context.Context, t *tenant.Tenant, p *provider, raw string) (*oidc.IDToken, error) {
	v := p.op.Verifier(&oidc.Config{ClientID: t.OIDC.ClientID, SkipClientIDCheck: true, Now: s.now})
	idt, err := v.Verify(oidc.ClientContext(ctx, s.opts.HTTPClient), raw)
	var expired *oidc.TokenExpiredError
	switch {
	case errors.As(err, &expired):
		return nil, refuse(CodeTokenExpired, t.ID, err)
	case err != nil && strings.Contains(err.Error(), "fetching keys"):
		// go-oidc formats the key-fetch failure with %v, so only its text tells it apart.
		return nil, refuse(CodeIdPUnavailable, t.ID, err)
	case err != nil:
		return nil, refuse(CodeInvalidIDToken, t.ID, err)
	}
	if !slices.Contains(idt.Audience, t.OIDC.ClientID) {
		return nil, refuse(CodeWrongAudience, t.ID, fmt.Errorf("the ID token is for %q, not this client", idt.Audience))
	}
	// With several audiences the authorized party must be this client (OIDC Core 3.1.3.7).
	var azp struct {
		AZP string `json:"azp"`
	}
	_ = idt.Claims(&azp)
	if (len(idt.Audience) > 1 || azp.AZP != "") && azp.AZP != t.OIDC.ClientID {
		return nil, refuse(CodeWrongAudience, t.ID, fmt.Errorf("the ID token's authorized party is %q, not this client", azp.AZP))
	}
	return idt, nil
}

// verified reads email_verified, which some providers send as the string "true".
func verified(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// EndSessionURL returns the provider's logout URL for a person signed in through it (RP-
// Initiated Logout 1.0), or "" when the provider has none or cannot be reached: local logout
// never waits on the provider.
func (s *Service) EndSessionURL(ctx context.Context, t *tenant.Tenant, idTokenHint, postLogoutURL string) string {
	if t.OIDC == nil {
		return ""
	}
	p, err := s.provider(ctx, t)
	if err != nil || p.endSession == "" {
		return ""
	}
	u, err := urlWithQuery(p.endSession, map[string]string{
		"client_id": t.OIDC.ClientID, "id_token_hint": idTokenHint, "post_logout_redirect_uri": postLogoutURL,
	})
	if err != nil {
		return ""
	}
	return u
}

func stateKey(state string) string { return "oidc:state:" + hashHex(state) }

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:16])
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// equal compares secrets in constant time.
func equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return ha == hb
}

// clip keeps provider-supplied text short in logs.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// Is reports whether err is a refusal with that code.
func Is(err error, code string) bool {
	var r *Refusal
	return errors.As(err, &r) && r.Code == code
}

// classify turns a store failure into a refusal: the browser always gets a login_error.
func classify(err error, tenantID string) error {
	if errors.Is(err, apperr.StoreUnavailable) || errors.Is(err, kv.ErrUnavailable) {
		return refuse(CodeStoreUnavailable, tenantID, err)
	}
	return err
}
