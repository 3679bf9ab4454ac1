package sso

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/basiq-bff/bff/config"
)

// clientAssertion signs the private_key_jwt client assertion (RFC 7523, OIDC Core 9): the
// client is both issuer and subject, the audience is the token endpoint, and it lives one
// minute.
func clientAssertion(o *config.OIDC, tokenURL string, now time.Time) (string, error) {
	key, err := config.ParsePrivateKey(o.PrivateKey.Reveal())
	if err != nil {
		return "", fmt.Errorf("client assertion key: %w", err)
	}
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *rsa.PrivateKey:
		alg = jose.RS256
	case *ecdsa.PrivateKey:
		switch k.Curve.Params().BitSize {
		case 256:
			alg = jose.ES256
		case 384:
			alg = jose.ES384
		case 521:
			alg = jose.ES512
		default:
			return "", fmt.Errorf("client assertion key: unsupported curve")
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: o.PrivateKeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("client assertion signer: %w", err)
	}
	payload, err := json.Marshal(map[string]any{
		"iss": o.ClientID, "sub": o.ClientID, "aud": tokenURL, "jti": randomString(),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	})
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	return jws.CompactSerialize()
}
