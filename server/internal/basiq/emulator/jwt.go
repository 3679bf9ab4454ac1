package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// claims are the token's JWT claims. partnerid, applicationid, scope and sandbox_account are the
// names seen in a real Basiq token; version, userid, iat, exp and jti are [inferred].
type claims struct {
	PartnerID     string `json:"partnerid"`
	ApplicationID string `json:"applicationid"`
	Scope         string `json:"scope"`
	Sandbox       bool   `json:"sandbox_account"`
	Version       string `json:"version"`
	UserID        string `json:"userid,omitempty"`
	IssuedAt      int64  `json:"iat"`
	ExpiresAt     int64  `json:"exp"`
	ID            string `json:"jti"`
}

const jwtHeader = `{"alg":"HS256","typ":"JWT"}`

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// sign returns an HS256 JWT for c, keyed with this emulator's random secret.
func (e *Emulator) sign(c claims) string {
	payload, _ := json.Marshal(c) // a struct of strings, bools and ints always marshals
	unsigned := b64url([]byte(jwtHeader)) + "." + b64url(payload)
	return unsigned + "." + b64url(e.mac(unsigned))
}

func (e *Emulator) mac(s string) []byte {
	m := hmac.New(sha256.New, e.secret)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// verify checks the signature and decodes the claims. It does not check expiry: an expired
// token is still "known", and Basiq answers it differently (403) from a bad one (401).
func (e *Emulator) verify(tok string) (claims, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return claims{}, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, e.mac(parts[0]+"."+parts[1])) {
		return claims{}, false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &h) != nil || h.Alg != "HS256" {
		return claims{}, false
	}
	var c claims
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(pb, &c) != nil {
		return claims{}, false
	}
	return c, true
}
