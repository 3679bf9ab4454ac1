// Package user holds the end user of a tenant, the one domain type the login, sign-in and
// token packages share. It is a leaf: the SQL adapter (store) returns it, and auth, sso and
// clienttoken take it without knowing how it is kept.
package user

import (
	"strings"
	"time"
)

// User is one end user of a tenant. Email is normalized (see NormalizeEmail); BasiqUserID is
// empty until the user is bound to a Basiq user. Times are UTC.
type User struct {
	ID           int64
	TenantID     string
	Email        string
	PasswordHash string
	BasiqUserID  string
	DisabledAt   *time.Time
	CreatedAt    time.Time
	// OIDCIssuer and OIDCSubject identify the person at the tenant's OpenID Connect provider;
	// both are empty for a user who has only ever signed in with a password. PasswordHash is
	// empty for a user who has only ever signed in through the provider.
	OIDCIssuer  string
	OIDCSubject string
}

// Disabled reports whether the user has been disabled and may no longer log in.
func (u *User) Disabled() bool { return u.DisabledAt != nil }

// NormalizeEmail is the one rule that makes two spellings of an address the same user: it
// trims surrounding white space and lower-cases (Unicode simple folding via strings.ToLower).
// It does not fold look-alike characters: a Cyrillic "а" stays distinct from a Latin "a".
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
