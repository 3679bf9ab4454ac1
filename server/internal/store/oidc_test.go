package store

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/basiq-bff/bff/migrations"
	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/store/storetest"
	"github.com/basiq-bff/bff/server/internal/user"
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
		run  func() (*user.User, error)
		kind *apperr.Kind
		want func(u *user.User) bool
	}{
		{"found by identity", func() (*user.User, error) { return db.UserByOIDC(ctx, "acme", iss, "sub-bob") }, nil,
			func(u *user.User) bool { return u.ID == bob.ID }},
		{"other tenant does not see it", func() (*user.User, error) { return db.UserByOIDC(ctx, "beta", iss, "sub-bob") }, apperr.NotFound, nil},
		{"other issuer does not see it", func() (*user.User, error) { return db.UserByOIDC(ctx, "acme", "https://other.example.com", "sub-bob") }, apperr.NotFound, nil},
		{"same identity twice is a conflict", func() (*user.User, error) { return db.CreateOIDCUser(ctx, "acme", "bob2@example.com", iss, "sub-bob") }, apperr.Conflict, nil},
		{"same email as a local user is a conflict", func() (*user.User, error) {
			return db.CreateOIDCUser(ctx, "acme", "CAROL@example.com", iss, "sub-carol")
		}, apperr.Conflict, nil},
		{"same identity in another tenant is fine", func() (*user.User, error) { return db.CreateOIDCUser(ctx, "beta", "bob@example.com", iss, "sub-bob") }, nil,
			func(u *user.User) bool { return u.TenantID == "beta" && u.ID != bob.ID }},
		{"empty subject is invalid", func() (*user.User, error) { return db.CreateOIDCUser(ctx, "acme", "x@example.com", iss, "") }, apperr.Invalid, nil},
		{"link a local user", func() (*user.User, error) { return db.LinkOIDC(ctx, "acme", "carol@example.com", iss, "sub-carol") }, nil,
			func(u *user.User) bool {
				return u.ID == local.ID && u.OIDCSubject == "sub-carol" && u.PasswordHash != ""
			}},
		{"a linked user is not linked again", func() (*user.User, error) { return db.LinkOIDC(ctx, "acme", "carol@example.com", iss, "sub-other") }, apperr.Conflict, nil},
		{"an identity already used is not linked", func() (*user.User, error) {
			mustCreate(t, db, "acme", "dave@example.com")
			return db.LinkOIDC(ctx, "acme", "dave@example.com", iss, "sub-bob")
		}, apperr.Conflict, nil},
		{"link without a user", func() (*user.User, error) { return db.LinkOIDC(ctx, "acme", "nobody@example.com", iss, "sub-x") }, apperr.NotFound, nil},
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

// TestOIDCMigrationKeepsUsers applies the provider-identity migration to a database that
// already has users (as an upgraded deployment does) and checks every row, id and column
// survives, on both dialects, and that the migration can be rolled back.
func TestOIDCMigrationKeepsUsers(t *testing.T) {
	dialects := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "bff.db") }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresURL(t) }},
	}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			db, err := Open(ctx, d.url(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			p := migrationProvider(t, db)
			if _, err := p.UpTo(ctx, 1); err != nil {
				t.Fatalf("migrate to 1: %v", err)
			}
			insert := db.placeholders("INSERT INTO users (tenant_id, email, password_hash, basiq_user_id) VALUES (?, ?, ?, ?)")
			for i, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
				if _, err := db.sql.ExecContext(ctx, insert, "acme", email, "hash-"+email, "basiq-"+strconv.Itoa(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			u, err := db.UserByEmail(ctx, "acme", "b@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if u.ID != 2 || u.PasswordHash != "hash-b@example.com" || u.BasiqUserID != "basiq-1" || u.OIDCSubject != "" {
				t.Errorf("after the migration: %+v", u)
			}
			next := mustCreate(t, db, "acme", "d@example.com")
			if next.ID != 4 {
				t.Errorf("the next id is %d, want 4: the sequence was not kept", next.ID)
			}
			if _, err := db.CreateOIDCUser(ctx, "acme", "e@example.com", "https://idp.example", "sub-e"); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Down(ctx); err != nil {
				t.Fatalf("roll back: %v", err)
			}
			var n int
			if err := db.sql.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE password_hash IS NOT NULL").Scan(&n); err != nil || n != 5 {
				t.Errorf("after rolling back: %d users with a password hash (err %v), want all 5", n, err)
			}
		})
	}
}

func migrationProvider(t *testing.T, db *DB) *goose.Provider {
	t.Helper()
	dialect, fsys := goose.DialectSQLite3, migrations.SQLite()
	if db.dialect == DialectPostgres {
		dialect, fsys = goose.DialectPostgres, migrations.Postgres()
	}
	p, err := goose.NewProvider(dialect, db.sql, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
