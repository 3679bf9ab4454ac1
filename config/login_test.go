package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

// loginTenant is the base tenant with a login block (lines indented 4 spaces).
func loginTenant(login string) map[string]string {
	return map[string]string{"tenants": `tenants:
  - id: acme
    name: Acme Lending
    basiq:
      version: "3.0"
      api_keys:
        - {id: "2026-11", env: ACME_KEY}
` + login}
}

func TestTenantLogin(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	env := map[string]string{"OIDC_SECRET": "s3cret-value", "OIDC_KEY": keyPEM, "BAD_KEY": "not a key"}
	oidc := func(lines string) string {
		return "    login:\n      oidc:\n        issuer: https://idp.example.com\n        client_id: bff\n" + lines
	}
	cases := []struct {
		name  string
		login string
		want  string // substring of a problem; "" means valid
		check func(t *testing.T, c *Config)
	}{
		{"no login block: password only", "", "", func(t *testing.T, c *Config) {
			if l := c.Tenants[0].Login; !l.PasswordAllowed() || l.OIDC != nil {
				t.Errorf("login = %+v", l)
			}
		}},
		{"client secret", oidc("        client_secret: {env: OIDC_SECRET}\n"), "", func(t *testing.T, c *Config) {
			o := c.Tenants[0].Login.OIDC
			if o.ClientSecret.Reveal() != "s3cret-value" || strings.Join(o.RequestedScopes(), " ") != "openid email profile" || o.Label() != "idp.example.com" {
				t.Errorf("oidc = %+v scopes %v label %q", o, o.RequestedScopes(), o.Label())
			}
		}},
		{"private key jwt", oidc("        private_key: {env: OIDC_KEY}\n        private_key_id: k1\n        scopes: [email]\n        display_name: Example SSO\n"), "", func(t *testing.T, c *Config) {
			o := c.Tenants[0].Login.OIDC
			if strings.Join(o.RequestedScopes(), " ") != "openid email" || o.Label() != "Example SSO" {
				t.Errorf("scopes %v label %q", o.RequestedScopes(), o.Label())
			}
		}},
		{"password false with oidc", "    login:\n      password: false\n      oidc: {issuer: 'https://idp.example.com', client_id: bff, client_secret: {env: OIDC_SECRET}}\n", "", func(t *testing.T, c *Config) {
			if c.Tenants[0].Login.PasswordAllowed() {
				t.Error("password login allowed")
			}
		}},
		{"loopback http issuer", "    login:\n      oidc: {issuer: 'http://127.0.0.1:9999', client_id: bff, client_secret: {env: OIDC_SECRET}}\n", "", nil},
		{"password false alone", "    login:\n      password: false\n", "tenants[0].login.password: false needs login.oidc", nil},
		{"http issuer", "    login:\n      oidc: {issuer: 'http://idp.example.com', client_id: bff, client_secret: {env: OIDC_SECRET}}\n", "tenants[0].login.oidc.issuer: must be", nil},
		{"issuer with query", "    login:\n      oidc: {issuer: 'https://idp.example.com?x=1', client_id: bff, client_secret: {env: OIDC_SECRET}}\n", "tenants[0].login.oidc.issuer", nil},
		{"no client id", "    login:\n      oidc: {issuer: 'https://idp.example.com', client_secret: {env: OIDC_SECRET}}\n", "tenants[0].login.oidc.client_id: is required", nil},
		{"no client authentication", oidc(""), "client_secret (client_secret_basic) or private_key (private_key_jwt) is required", nil},
		{"both secret and key", oidc("        client_secret: {env: OIDC_SECRET}\n        private_key: {env: OIDC_KEY}\n        private_key_id: k1\n"), "either client_secret or private_key, not both", nil},
		{"key without id", oidc("        private_key: {env: OIDC_KEY}\n"), "private_key_id: is required", nil},
		{"key not PEM", oidc("        private_key: {env: BAD_KEY}\n        private_key_id: k1\n"), "private_key: is not a PEM private key", nil},
		{"secret unset", oidc("        client_secret: {env: MISSING}\n"), "client_secret: environment variable MISSING is unset", nil},
		{"bad scope", oidc("        client_secret: {env: OIDC_SECRET}\n        scopes: ['a b']\n"), "scopes[0]", nil},
		{"bad domain", oidc("        client_secret: {env: OIDC_SECRET}\n        allowed_email_domains: ['@Example.com']\n"), "allowed_email_domains[0]", nil},
		{"unknown key", oidc("        client_secret: {env: OIDC_SECRET}\n        audience: x\n"), `unknown key "audience"`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := testEnv()
			for k, v := range env {
				e[k] = v
			}
			c, err := loadYAML(t, configYAML(t, loginTenant(tc.login)), e)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			checkLoginProblems(t, problemsOf(t, err), tc.want)
		})
	}
}

// checkLoginProblems wants one problem containing want, and none quoting a secret of the tests.
func checkLoginProblems(t *testing.T, ps []string, want string) {
	t.Helper()
	found := false
	for _, p := range ps {
		found = found || strings.Contains(p, want)
		for _, secret := range []string{"s3cret-value", "PRIVATE KEY", "not a key"} {
			if strings.Contains(p, secret) {
				t.Errorf("problem quotes a secret: %q", p)
			}
		}
	}
	if !found {
		t.Errorf("problems = %q, want one containing %q", ps, want)
	}
}
