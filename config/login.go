package config

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// TenantLogin is how a tenant's people sign in: with a local password, through the tenant's
// OpenID Connect provider, or both.
type TenantLogin struct {
	// Password is nil when unset; use PasswordAllowed.
	Password *bool `yaml:"password"`
	OIDC     *OIDC `yaml:"oidc"`
}

// PasswordAllowed reports whether password login is offered and accepted (the default).
func (l TenantLogin) PasswordAllowed() bool { return l.Password == nil || *l.Password }

// OIDC is a tenant's OpenID Connect provider and the BFF's client registration there.
// Discovery (/.well-known/openid-configuration) and the signing keys come from Issuer.
type OIDC struct {
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// ClientSecret authenticates the BFF at the token endpoint (client_secret_basic). Exactly
	// one of ClientSecret and PrivateKey is set.
	ClientSecret Secret `yaml:"client_secret"`
	// PrivateKey is a PEM RSA or EC private key for private_key_jwt client authentication;
	// PrivateKeyID is the key id ("kid") the provider knows its public half by.
	PrivateKey   Secret `yaml:"private_key"`
	PrivateKeyID string `yaml:"private_key_id"`
	// Scopes requested; default openid, email, profile. openid is always included.
	Scopes              []string `yaml:"scopes"`
	DisplayName         string   `yaml:"display_name"`
	AllowedEmailDomains []string `yaml:"allowed_email_domains"`
}

// RequestedScopes returns the scopes to request: the configured ones, openid first.
func (o *OIDC) RequestedScopes() []string {
	if len(o.Scopes) == 0 {
		return []string{"openid", "email", "profile"}
	}
	out := []string{"openid"}
	for _, s := range o.Scopes {
		if s != "openid" {
			out = append(out, s)
		}
	}
	return out
}

// Label is the name the login page shows on the provider's button.
func (o *OIDC) Label() string {
	if o.DisplayName != "" {
		return o.DisplayName
	}
	if u, err := url.Parse(o.Issuer); err == nil && u.Host != "" {
		return u.Host
	}
	return "single sign-on"
}

var (
	reScope  = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,128}$`) // RFC 6749 scope-token
	reDomain = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
)

func (l TenantLogin) secretRefs(i int, tenantID string) []secretRef {
	if l.OIDC == nil {
		return nil
	}
	var refs []secretRef
	o := l.OIDC
	if !o.ClientSecret.isZero() {
		p := fmt.Sprintf("tenants[%d].login.oidc.client_secret", i)
		refs = append(refs, secretRef{path: p, label: "tenant " + tenantID + " oidc client_secret", s: &o.ClientSecret})
	}
	if !o.PrivateKey.isZero() {
		p := fmt.Sprintf("tenants[%d].login.oidc.private_key", i)
		refs = append(refs, secretRef{path: p, label: "tenant " + tenantID + " oidc private_key", s: &o.PrivateKey})
	}
	return refs
}

func (l TenantLogin) check(p *problems, path string) {
	if l.OIDC == nil {
		if !l.PasswordAllowed() {
			p.add(path+".password", "false needs login.oidc: otherwise nobody could sign in")
		}
		return
	}
	o, op := l.OIDC, path+".oidc"
	o.checkClient(p, op)
	o.checkCredentials(p, op)
	o.checkPresentation(p, op)
}

// checkClient checks who the provider is and who we are to it.
func (o *OIDC) checkClient(p *problems, op string) {
	if u, err := url.Parse(o.Issuer); err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery ||
		u.Fragment != "" || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())) {
		p.add(op+".issuer", "must be the provider's issuer URL: https, no query or fragment (http only for localhost)")
	}
	if o.ClientID == "" || len(o.ClientID) > 256 || strings.ContainsFunc(o.ClientID, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		p.add(op+".client_id", "is required: the client id the provider issued, printable ASCII without spaces")
	}
}

// checkCredentials checks how we authenticate to the provider: a client secret or a private key.
func (o *OIDC) checkCredentials(p *problems, op string) {
	switch hasSecret, hasKey := !o.ClientSecret.isZero(), !o.PrivateKey.isZero(); {
	case hasSecret && hasKey:
		p.add(op, "set either client_secret or private_key, not both")
	case hasSecret:
		checkSecret(p, op+".client_secret", o.ClientSecret, false)
		if o.PrivateKeyID != "" {
			p.add(op+".private_key_id", "goes with private_key, not client_secret")
		}
	case hasKey:
		checkSecret(p, op+".private_key", o.PrivateKey, false)
		if o.PrivateKey.resolved {
			if _, err := ParsePrivateKey(o.PrivateKey.Reveal()); err != nil {
				p.add(op+".private_key", "%s", err)
			}
		}
		if !reKeyID.MatchString(o.PrivateKeyID) {
			p.add(op+".private_key_id", "is required with private_key: the key id the provider knows it by (1-64 of A-Z a-z 0-9 . _ -)")
		}
	default:
		p.add(op, "client_secret (client_secret_basic) or private_key (private_key_jwt) is required")
	}
}

// checkPresentation checks the scopes asked for, the button's name and the allowed domains.
func (o *OIDC) checkPresentation(p *problems, op string) {
	for i, s := range o.Scopes {
		if !reScope.MatchString(s) {
			p.add(fmt.Sprintf("%s.scopes[%d]", op, i), "%q is not a scope", s)
		}
	}
	if len(o.DisplayName) > 64 || strings.ContainsFunc(o.DisplayName, func(r rune) bool { return r < 0x20 }) {
		p.add(op+".display_name", "must be at most 64 printable characters")
	}
	for i, d := range o.AllowedEmailDomains {
		if !reDomain.MatchString(d) {
			p.add(fmt.Sprintf("%s.allowed_email_domains[%d]", op, i), "%q must be a lower-case domain such as example.com", d)
		}
	}
}

// ParsePrivateKey reads a PEM RSA (PKCS#1 or PKCS#8) or EC (SEC 1 or PKCS#8) private key.
// The error never quotes the key.
func ParsePrivateKey(pemText string) (any, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, fmt.Errorf("is not a PEM private key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return checkKeySize(k)
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("is not an RSA or EC private key in PKCS#1, SEC 1 or PKCS#8 form")
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return checkKeySize(k)
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("must be an RSA or EC private key")
}

func checkKeySize(k *rsa.PrivateKey) (any, error) {
	if k.N.BitLen() < 2048 {
		return nil, fmt.Errorf("an RSA key must have at least 2048 bits")
	}
	return k, nil
}
