package sso

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/kv"
)

func TestClientAssertion(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsDER, _ := x509.MarshalPKCS8PrivateKey(rs)
	cases := []struct {
		name    string
		pemText string
		public  crypto.PublicKey
		alg     string
	}{
		{"EC P-256 (SEC 1)", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})), &ec.PublicKey, "ES256"},
		{"RSA (PKCS#8)", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsDER})), &rs.PublicKey, "RS256"},
	}
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &config.OIDC{ClientID: "bff", PrivateKey: config.NewSecret(tc.pemText), PrivateKeyID: "k-2026"}
			first, err := clientAssertion(o, "https://idp.example/oauth/token", now)
			if err != nil {
				t.Fatal(err)
			}
			second, _ := clientAssertion(o, "https://idp.example/oauth/token", now)
			jws, err := jose.ParseSigned(first, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
			if err != nil {
				t.Fatal(err)
			}
			h := jws.Signatures[0].Header
			if h.Algorithm != tc.alg || h.KeyID != "k-2026" {
				t.Errorf("header alg %s kid %s", h.Algorithm, h.KeyID)
			}
			payload, err := jws.Verify(tc.public)
			if err != nil {
				t.Fatalf("verify with the public key: %v", err)
			}
			var c struct {
				Iss, Sub, Aud, Jti string
				Iat, Exp           int64
			}
			if err := json.Unmarshal(payload, &c); err != nil {
				t.Fatal(err)
			}
			if c.Iss != "bff" || c.Sub != "bff" || c.Aud != "https://idp.example/oauth/token" || c.Jti == "" ||
				c.Iat != now.Unix() || c.Exp != now.Add(time.Minute).Unix() {
				t.Errorf("claims = %+v", c)
			}
			again, _ := jose.ParseSigned(second, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
			p2, _ := again.Verify(tc.public)
			var c2 struct{ Jti string }
			_ = json.Unmarshal(p2, &c2)
			if c2.Jti == c.Jti {
				t.Error("two assertions share a jti")
			}
		})
	}
}

func TestPreLoginCookie(t *testing.T) {
	cases := []struct {
		name   string
		secure bool
		want   string
	}{
		{"secure: __Host- prefix", true, "__Host-bff-login"},
		{"plain http development", false, "bff-login"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := New(nil, kv.NewMemory(nil), Options{CookieKeys: [][]byte{make([]byte, 32)}, Secure: tc.secure})
			if err != nil {
				t.Fatal(err)
			}
			c := svc.cookie(PreLoginCookie(tc.secure), "v", int(preLoginTTL/time.Second))
			// __Host- cookies must be Secure, Path=/ and have no Domain, or browsers drop them.
			if c.Name != tc.want || c.Secure != tc.secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly ||
				c.SameSite != http.SameSiteLaxMode || c.MaxAge != 600 {
				t.Errorf("cookie = %+v", c)
			}
			if cl := svc.ClearCookie(); cl.Name != tc.want || cl.MaxAge >= 0 {
				t.Errorf("clear cookie = %+v", cl)
			}
		})
	}
	if _, err := New(nil, kv.NewMemory(nil), Options{}); err == nil {
		t.Error("New without a cookie key succeeded")
	}
}

func TestVerified(t *testing.T) {
	cases := []struct {
		name string
		v    any
		want bool
	}{
		{"bool true", true, true},
		{"bool false", false, false},
		{"string true", "true", true},
		{"string false", "false", false},
		{"missing", nil, false},
		{"number", 1.0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := verified(tc.v); got != tc.want {
				t.Errorf("verified(%v) = %v", tc.v, got)
			}
		})
	}
}
