package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/basiq-bff/bff/server/internal/apperr"
)

// OIDCLogin is what a session started through an OpenID Connect provider remembers of it.
type OIDCLogin struct {
	Issuer string `json:"iss"`
	// SID is the provider's session id from the ID token, if it sent one: a Back-Channel
	// Logout token may name it.
	SID string `json:"sid,omitempty"`
	// IDTokenHint is the raw ID token, sent back to the provider only as the id_token_hint of
	// RP-initiated logout. It is never logged.
	IDTokenHint string `json:"hint,omitempty"`
}

// sidKey indexes the sessions that began in one provider session. The issuer and sid are
// hashed: they are the provider's values, not ours, and may hold any character.
func sidKey(tenant, issuer, sid string) string {
	h := sha256.Sum256([]byte(issuer + "\x00" + sid))
	return "osid:" + tenant + ":" + hex.EncodeToString(h[:16])
}

func (s *Store) indexSID(ctx context.Context, id string, d Data) error {
	if d.OIDC == nil || d.OIDC.SID == "" {
		return nil
	}
	return s.kv.SAdd(ctx, sidKey(d.Tenant, d.OIDC.Issuer, d.OIDC.SID), s.opts.AbsoluteTimeout, id)
}

// EndProviderSession deletes every session that began in the provider session sid of
// issuer, on every replica, and returns how many there were. It returns
// apperr.StoreUnavailable when kv fails.
func (s *Store) EndProviderSession(ctx context.Context, tenant, issuer, sid string) (int, error) {
	key := sidKey(tenant, issuer, sid)
	ids, err := s.kv.SMembers(ctx, key)
	if err != nil {
		return 0, apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	var live []string
	for _, id := range ids {
		if id != "" {
			live = append(live, id)
		}
	}
	if err := s.endAll(ctx, key, live); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if id != "" {
			n++
			s.cache.Forget(id, s.now())
			s.announceEnded(ctx, id)
		}
	}
	return n, nil
}
