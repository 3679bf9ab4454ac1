package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/tenant"
)

// backchannelEvent is the event a logout token must carry (Back-Channel Logout 1.0, 2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// signingAlgs are the algorithms a logout token may be parsed with; which of them a provider
// may use is then decided by its discovery document, as for ID tokens.
func signingAlgs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}
}

// Logout is a verified Back-Channel Logout request: end the sessions of SID at Issuer if it
// is set, else every session of Subject.
type Logout struct {
	Tenants []string
	Issuer  string
	Subject string
	SID     string
	jtiKey  string
}

// ForgetLogout forgets that lo's token was used, so that the provider's retry of a logout
// that failed to end its sessions is accepted. Best effort.
func (s *Service) ForgetLogout(ctx context.Context, lo *Logout) {
	if err := s.kv.Delete(ctx, lo.jtiKey); err != nil {
		s.log.WarnContext(ctx, "oidc logout token id not forgotten", "err", err)
	}
}

// VerifyLogout checks a logout token like an ID token (signature, issuer, audience, expiry),
// plus the rules of Back-Channel Logout 1.0: the backchannel-logout event, no nonce, a sub
// or sid, and a jti not seen before on any replica. The tenants are those whose provider
// issued it to their client. It returns apperr.Invalid for a token that fails any check,
// apperr.UpstreamUnavailable when the provider's keys cannot be fetched and
// apperr.StoreUnavailable when kv fails.
func (s *Service) VerifyLogout(ctx context.Context, tenants *tenant.Snapshot, raw string) (*Logout, error) {
	matched, err := logoutTenants(tenants, raw)
	if err != nil {
		return nil, err
	}
	t := matched[0]
	p, err := s.provider(ctx, t)
	if err != nil {
		return nil, apperr.Retry(apperr.UpstreamUnavailable, err, "The identity provider cannot be reached.", 5*time.Second)
	}
	tok, err := p.op.Verifier(&oidc.Config{ClientID: t.OIDC.ClientID, Now: s.now}).Verify(oidc.ClientContext(ctx, s.opts.HTTPClient), raw)
	if err != nil {
		if strings.Contains(err.Error(), "fetching keys") {
			return nil, apperr.Retry(apperr.UpstreamUnavailable, err, "The identity provider cannot be reached.", 5*time.Second)
		}
		return nil, badLogout("verification failed", err)
	}
	var c logoutClaims
	if err := tok.Claims(&c); err != nil {
		return nil, badLogout("unreadable claims", err)
	}
	if problem := c.problem(tok.Subject); problem != "" {
		return nil, badLogout(problem, nil)
	}
	// A jti is remembered until the token expires (at least five minutes, at most a day), on
	// every replica, so a captured token cannot be played again.
	ttl := min(max(tok.Expiry.Sub(s.now())+time.Minute, 5*time.Minute), 24*time.Hour)
	lo := &Logout{Issuer: tok.Issuer, Subject: tok.Subject, SID: c.SID, jtiKey: "oidc:jti:" + hashHex(tok.Issuer+"\x00"+c.JTI)}
	fresh, err := s.kv.SetNX(ctx, lo.jtiKey, []byte{1}, ttl)
	if err != nil {
		return nil, apperr.Wrap(apperr.StoreUnavailable, fmt.Errorf("remember logout token id: %w", err), "")
	}
	if !fresh {
		return nil, badLogout("already used", errors.New("jti replayed"))
	}
	for _, m := range matched {
		lo.Tenants = append(lo.Tenants, m.ID)
	}
	return lo, nil
}

// badLogout is the answer to a logout token that is not valid.
func badLogout(msg string, err error) error {
	return apperr.Wrap(apperr.Invalid, err, "The logout token is not valid: "+msg+".")
}

// logoutTenants reads the issuer and audience of a logout token, not yet verified, and
// returns the tenants that use that provider and client (at least one).
func logoutTenants(tenants *tenant.Snapshot, raw string) ([]*tenant.Tenant, error) {
	if raw == "" || len(raw) > 16<<10 {
		return nil, badLogout("missing or too long", nil)
	}
	jws, err := jose.ParseSigned(raw, signingAlgs())
	if err != nil {
		return nil, badLogout("not a signed JWT", err)
	}
	var unverified struct {
		Issuer   string          `json:"iss"`
		Audience json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return nil, badLogout("unreadable claims", err)
	}
	var auds []string
	if err := json.Unmarshal(unverified.Audience, &auds); err != nil {
		var one string
		if json.Unmarshal(unverified.Audience, &one) == nil {
			auds = []string{one}
		}
	}
	var matched []*tenant.Tenant
	for _, t := range tenants.List() {
		if t.OIDC != nil && t.OIDC.Issuer == unverified.Issuer && slices.Contains(auds, t.OIDC.ClientID) {
			matched = append(matched, t)
		}
	}
	if len(matched) == 0 {
		return nil, badLogout("no tenant uses this issuer and client", nil)
	}
	return matched, nil
}

// logoutClaims are the claims of a logout token beyond the standard ones.
type logoutClaims struct {
	Events map[string]json.RawMessage `json:"events"`
	Nonce  *string                    `json:"nonce"`
	SID    string                     `json:"sid"`
	JTI    string                     `json:"jti"`
	IAT    *int64                     `json:"iat"`
}

// problem says what makes the claims no logout token (Back-Channel Logout 1.0, 2.6), or "".
func (c *logoutClaims) problem(subject string) string {
	ev, ok := c.Events[backchannelEvent]
	switch {
	case !ok || !strings.HasPrefix(strings.TrimSpace(string(ev)), "{"):
		return "no back-channel logout event"
	case c.Nonce != nil:
		return "a logout token must not carry a nonce"
	case subject == "" && c.SID == "":
		return "neither sub nor sid"
	case c.JTI == "" || len(c.JTI) > 256:
		return "no jti"
	case c.IAT == nil:
		return "no iat"
	}
	return ""
}

// UserOf returns the local user id of subject at issuer in the tenant; ok is false when the
// tenant has no such user.
func (s *Service) UserOf(ctx context.Context, tenantID, issuer, subject string) (id int64, ok bool, err error) {
	u, err := s.users.UserByOIDC(ctx, tenantID, issuer, subject)
	if errors.Is(err, apperr.NotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return u.ID, true, nil
}
