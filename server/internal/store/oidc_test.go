package store

import (
	"testing"

	"github.com/basiq-bff/bff/server/internal/apperr"
)

// testOIDCIdentities covers users identified by their provider: created without a password,
// found by (tenant, issuer, subject), unique per tenant, and linked to an existing local user.
func testOIDCIdentities(t *testing.T, db *DB) {
	ctx := t.Context()
	const iss = "https://idp.example.com"
	bob, err := db.CreateOIDCUser(ctx, "acme", "Bob@Example.com", iss, "sub-bob")
	if err != nil {
		t.Fatalf("CreateOIDCUser: %v", err)
	}
	if bob.PasswordHash != "" || bob.OIDCIssuer != iss || bob.OIDCSubject != "sub-bob" || bob.Email != "bob@example.com" {
		t.Fatalf("created = %+v", bob)
	}
	local := mustCreate(t, db, "acme", "carol@example.com")

	steps := []struct {
		name string
		run  func() (*User, error)
		kind *apperr.Kind
		want func(u *User) bool
	}{
		{"found by identity", func() (*User, error) { return db.UserByOIDC(ctx, "acme", iss, "sub-bob") }, nil,
			func(u *User) bool { return u.ID == bob.ID }},
		{"other tenant does not see it", func() (*User, error) { return db.UserByOIDC(ctx, "beta", iss, "sub-bob") }, apperr.NotFound, nil},
		{"other issuer does not see it", func() (*User, error) { return db.UserByOIDC(ctx, "acme", "https://other.example.com", "sub-bob") }, apperr.NotFound, nil},
		{"same identity twice is a conflict", func() (*User, error) { return db.CreateOIDCUser(ctx, "acme", "bob2@example.com", iss, "sub-bob") }, apperr.Conflict, nil},
		{"same email as a local user is a conflict", func() (*User, error) {
			return db.CreateOIDCUser(ctx, "acme", "CAROL@example.com", iss, "sub-carol")
		}, apperr.Conflict, nil},
		{"same identity in another tenant is fine", func() (*User, error) { return db.CreateOIDCUser(ctx, "beta", "bob@example.com", iss, "sub-bob") }, nil,
			func(u *User) bool { return u.TenantID == "beta" && u.ID != bob.ID }},
		{"empty subject is invalid", func() (*User, error) { return db.CreateOIDCUser(ctx, "acme", "x@example.com", iss, "") }, apperr.Invalid, nil},
		{"link a local user", func() (*User, error) { return db.LinkOIDC(ctx, "acme", "carol@example.com", iss, "sub-carol") }, nil,
			func(u *User) bool { return u.ID == local.ID && u.OIDCSubject == "sub-carol" && u.PasswordHash != "" }},
		{"a linked user is not linked again", func() (*User, error) { return db.LinkOIDC(ctx, "acme", "carol@example.com", iss, "sub-other") }, apperr.Conflict, nil},
		{"an identity already used is not linked", func() (*User, error) {
			mustCreate(t, db, "acme", "dave@example.com")
			return db.LinkOIDC(ctx, "acme", "dave@example.com", iss, "sub-bob")
		}, apperr.Conflict, nil},
		{"link without a user", func() (*User, error) { return db.LinkOIDC(ctx, "acme", "nobody@example.com", iss, "sub-x") }, apperr.NotFound, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			u, err := st.run()
			if st.kind != nil {
				mustKind(t, err, st.kind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !st.want(u) {
				t.Fatalf("user = %+v", u)
			}
		})
	}
}
