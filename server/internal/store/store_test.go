package store

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/store/storetest"
	"github.com/basiq-bff/bff/server/internal/user"
)

// runStoreSuite checks DB against one database. open must return a freshly migrated, empty
// database for each call; it is closed at cleanup.
func runStoreSuite(t *testing.T, open func(t *testing.T) *DB) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, db *DB)
	}{
		{"MigrateTwiceIsNoOp", testMigrateTwice},
		{"CreateAndFind", testCreateAndFind},
		{"EmailIsNormalized", testEmailNormalized},
		{"CaseInsensitiveUniqueness", testCaseInsensitiveUnique},
		{"SameEmailInTwoTenants", testSameEmailTwoTenants},
		{"InvalidInput", testInvalidInput},
		{"NotFound", testNotFound},
		{"Disable", testDisable},
		{"EnableAndList", testEnableAndList},
		{"SetPassword", testSetPassword},
		{"SetBasiqUserID", testSetBasiqUserID},
		{"SetBasiqUserIDRace", testSetBasiqUserIDRace},
		{"ClearBasiqUserID", testClearBasiqUserID},
		{"UnicodeLookAlikesAreDistinct", testUnicodeLookAlikes},
		{"ClosedIsStoreUnavailable", testClosed},
		{"OIDCIdentities", testOIDCIdentities},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

func mustCreate(t *testing.T, db *DB, tenant, email string) *user.User {
	t.Helper()
	u, err := db.CreateUser(t.Context(), tenant, email, "hash-of-"+email)
	if err != nil {
		t.Fatalf("CreateUser(%q, %q): %v", tenant, email, err)
	}
	return u
}

func mustKind(t *testing.T, err error, kind *apperr.Kind) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want kind %s", err, kind.Code)
	}
}

func testMigrateTwice(t *testing.T, db *DB) {
	mustCreate(t, db, "acme", "keep@example.com")
	for i := range 2 {
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate #%d: %v", i+2, err)
		}
	}
	if _, err := db.UserByEmail(t.Context(), "acme", "keep@example.com"); err != nil {
		t.Fatalf("data lost after migrating again: %v", err)
	}
}

func testCreateAndFind(t *testing.T, db *DB) {
	ctx := t.Context()
	before := time.Now().Add(-time.Minute)
	u := mustCreate(t, db, "acme", "alice@example.com")
	if u.ID == 0 || u.TenantID != "acme" || u.Email != "alice@example.com" || u.PasswordHash != "hash-of-alice@example.com" {
		t.Fatalf("created user = %+v", u)
	}
	if u.BasiqUserID != "" || u.DisabledAt != nil || u.Disabled() {
		t.Fatalf("new user has a binding or is disabled: %+v", u)
	}
	if u.CreatedAt.Location() != time.UTC || u.CreatedAt.Before(before) || u.CreatedAt.After(time.Now().Add(time.Minute)) {
		t.Fatalf("CreatedAt = %v, want about now, in UTC", u.CreatedAt)
	}

	byEmail, err := db.UserByEmail(ctx, "acme", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	byID, err := db.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []*user.User{byEmail, byID} {
		if got.ID != u.ID || got.Email != u.Email || got.PasswordHash != u.PasswordHash || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Fatalf("found %+v, want %+v", got, u)
		}
		if got.CreatedAt.Location() != time.UTC {
			t.Fatalf("CreatedAt read back in %v, want UTC", got.CreatedAt.Location())
		}
	}
	other := mustCreate(t, db, "acme", "bob@example.com")
	if other.ID == u.ID {
		t.Fatal("two users share an id")
	}
}

func testEmailNormalized(t *testing.T, db *DB) {
	u := mustCreate(t, db, "acme", "  Carol.Smith@Example.COM \n")
	if u.Email != "carol.smith@example.com" {
		t.Fatalf("stored email = %q, want it trimmed and lower-cased", u.Email)
	}
	for _, spelling := range []string{"carol.smith@example.com", "CAROL.SMITH@EXAMPLE.COM", " Carol.Smith@example.com\t"} {
		got, err := db.UserByEmail(t.Context(), "acme", spelling)
		if err != nil {
			t.Fatalf("UserByEmail(%q): %v", spelling, err)
		}
		if got.ID != u.ID {
			t.Fatalf("UserByEmail(%q) found user %d, want %d", spelling, got.ID, u.ID)
		}
	}
}

func testCaseInsensitiveUnique(t *testing.T, db *DB) {
	mustCreate(t, db, "acme", "A@x.com")
	for _, dup := range []string{"a@x.com", "A@X.COM", " a@x.com "} {
		_, err := db.CreateUser(t.Context(), "acme", dup, "h")
		mustKind(t, err, apperr.Conflict)
		if _, msg, _ := apperr.Public(err); msg != "a user with this email already exists" {
			t.Fatalf("public message = %q", msg)
		}
	}
}

func testSameEmailTwoTenants(t *testing.T, db *DB) {
	a := mustCreate(t, db, "acme", "dan@example.com")
	b := mustCreate(t, db, "globex", "dan@example.com")
	if a.ID == b.ID {
		t.Fatal("the two tenants' users share an id")
	}
	got, err := db.UserByEmail(t.Context(), "globex", "dan@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != b.ID || got.TenantID != "globex" {
		t.Fatalf("found %+v, want globex's user", got)
	}
}

func testInvalidInput(t *testing.T, db *DB) {
	ctx := t.Context()
	u := mustCreate(t, db, "acme", "erin@example.com")
	tests := []struct {
		name string
		call func() error
	}{
		{"empty tenant", func() error { _, err := db.CreateUser(ctx, "", "x@example.com", "h"); return err }},
		{"blank email", func() error { _, err := db.CreateUser(ctx, "acme", "   ", "h"); return err }},
		{"empty hash", func() error { _, err := db.CreateUser(ctx, "acme", "x@example.com", ""); return err }},
		{"empty new hash", func() error { _, err := db.SetPassword(ctx, "acme", "erin@example.com", ""); return err }},
		{"empty basiq id", func() error { _, err := db.SetBasiqUserID(ctx, u.ID, ""); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { mustKind(t, tc.call(), apperr.Invalid) })
	}
}

func testNotFound(t *testing.T, db *DB) {
	ctx := t.Context()
	u := mustCreate(t, db, "acme", "frank@example.com")
	tests := []struct {
		name string
		call func() error
	}{
		{"UserByEmail unknown email", func() error { _, err := db.UserByEmail(ctx, "acme", "nobody@example.com"); return err }},
		{"UserByEmail other tenant", func() error { _, err := db.UserByEmail(ctx, "globex", "frank@example.com"); return err }},
		{"UserByID", func() error { _, err := db.UserByID(ctx, u.ID+1000); return err }},
		{"DisableUser", func() error { _, err := db.DisableUser(ctx, "acme", "nobody@example.com", time.Now()); return err }},
		{"SetPassword", func() error { _, err := db.SetPassword(ctx, "globex", "frank@example.com", "h"); return err }},
		{"SetBasiqUserID", func() error { _, err := db.SetBasiqUserID(ctx, u.ID+1000, "basiq-1"); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { mustKind(t, tc.call(), apperr.NotFound) })
	}
}

func testDisable(t *testing.T, db *DB) {
	ctx := t.Context()
	mustCreate(t, db, "acme", "grace@example.com")
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("AEST", 10*3600))
	u, err := db.DisableUser(ctx, "acme", "Grace@Example.com", at)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Disabled() || !u.DisabledAt.Equal(at) || u.DisabledAt.Location() != time.UTC {
		t.Fatalf("DisabledAt = %v, want %v in UTC", u.DisabledAt, at)
	}
	again, err := db.DisableUser(ctx, "acme", "grace@example.com", at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !again.DisabledAt.Equal(at) {
		t.Fatalf("disabling again moved DisabledAt to %v, want %v kept", again.DisabledAt, at)
	}
	found, err := db.UserByEmail(ctx, "acme", "grace@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !found.Disabled() || !found.DisabledAt.Equal(at) {
		t.Fatalf("read back DisabledAt = %v, want %v", found.DisabledAt, at)
	}
}

func testSetPassword(t *testing.T, db *DB) {
	ctx := t.Context()
	mustCreate(t, db, "acme", "heidi@example.com")
	other := mustCreate(t, db, "globex", "heidi@example.com")
	u, err := db.SetPassword(ctx, "acme", "HEIDI@example.com", "new-hash")
	if err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash != "new-hash" {
		t.Fatalf("PasswordHash = %q", u.PasswordHash)
	}
	got, err := db.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordHash != "new-hash" {
		t.Fatalf("read back PasswordHash = %q", got.PasswordHash)
	}
	untouched, err := db.UserByID(ctx, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	if untouched.PasswordHash != other.PasswordHash {
		t.Fatal("SetPassword changed another tenant's user")
	}
}

func testSetBasiqUserID(t *testing.T, db *DB) {
	ctx := t.Context()
	u := mustCreate(t, db, "acme", "ivan@example.com")
	got, err := db.SetBasiqUserID(ctx, u.ID, "basiq-first")
	if err != nil || got != "basiq-first" {
		t.Fatalf("first SetBasiqUserID = %q, %v", got, err)
	}
	got, err = db.SetBasiqUserID(ctx, u.ID, "basiq-second")
	if err != nil || got != "basiq-first" {
		t.Fatalf("second SetBasiqUserID = %q, %v; want the first binding kept", got, err)
	}
	found, err := db.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if found.BasiqUserID != "basiq-first" {
		t.Fatalf("stored BasiqUserID = %q", found.BasiqUserID)
	}
}

func testSetBasiqUserIDRace(t *testing.T, db *DB) {
	u := mustCreate(t, db, "acme", "judy@example.com")
	const n = 20
	results := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = db.SetBasiqUserID(t.Context(), u.ID, "basiq-"+strconv.Itoa(i))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	winner := results[0]
	if !strings.HasPrefix(winner, "basiq-") {
		t.Fatalf("winner = %q", winner)
	}
	for i, r := range results {
		if r != winner {
			t.Fatalf("writer %d saw %q, writer 0 saw %q: no single winner", i, r, winner)
		}
	}
	found, err := db.UserByID(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if found.BasiqUserID != winner {
		t.Fatalf("stored %q, callers were told %q", found.BasiqUserID, winner)
	}
}

func testUnicodeLookAlikes(t *testing.T, db *DB) {
	ctx := t.Context()
	emails := []string{
		"alice@example.com",
		"\u0430lice@example.com",  // Cyrillic small a
		"\uff41lice@example.com",  // fullwidth small a
		"alice@ex\u0430mple.com",  // Cyrillic a in the domain
		"\u00e9lise@example.com",  // precomposed é
		"e\u0301lise@example.com", // e + combining acute: not normalized to é
	}
	ids := map[int64]string{}
	for _, e := range emails {
		u := mustCreate(t, db, "acme", e)
		ids[u.ID] = e
	}
	if len(ids) != len(emails) {
		t.Fatalf("%d distinct rows for %d distinct addresses", len(ids), len(emails))
	}
	for id, e := range ids {
		got, err := db.UserByEmail(ctx, "acme", e)
		if err != nil {
			t.Fatalf("UserByEmail(%q): %v", e, err)
		}
		if got.ID != id {
			t.Fatalf("UserByEmail(%q) found %q", e, got.Email)
		}
	}
	// Non-ASCII upper case still folds to the same user.
	mustCreate(t, db, "acme", "\u00c9MILE@example.com")
	_, err := db.CreateUser(ctx, "acme", "\u00e9mile@example.com", "h")
	mustKind(t, err, apperr.Conflict)
}

func testClosed(t *testing.T, db *DB) {
	ctx := t.Context()
	u := mustCreate(t, db, "acme", "ken@example.com")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return db.Ping(ctx) }},
		{"CreateUser", func() error { _, err := db.CreateUser(ctx, "acme", "new@example.com", "h"); return err }},
		{"UserByEmail", func() error { _, err := db.UserByEmail(ctx, "acme", "ken@example.com"); return err }},
		{"UserByID", func() error { _, err := db.UserByID(ctx, u.ID); return err }},
		{"DisableUser", func() error { _, err := db.DisableUser(ctx, "acme", "ken@example.com", time.Now()); return err }},
		{"SetPassword", func() error { _, err := db.SetPassword(ctx, "acme", "ken@example.com", "h"); return err }},
		{"SetBasiqUserID", func() error { _, err := db.SetBasiqUserID(ctx, u.ID, "b"); return err }},
		{"Migrate", func() error { return db.Migrate(ctx) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			mustKind(t, err, apperr.StoreUnavailable)
			if kind, _, _ := apperr.Public(err); kind != apperr.StoreUnavailable {
				t.Fatalf("Public kind = %s, want store_unavailable", kind.Code)
			}
		})
	}
}

// openSQLiteForTest opens and migrates a new SQLite file in a temporary directory.
func openSQLiteForTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "nested", "bff.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func TestSQLite(t *testing.T) {
	runStoreSuite(t, openSQLiteForTest)
}

// TestSQLitePragmas checks the pragmas reach every pooled connection, not only the first.
func TestSQLitePragmas(t *testing.T) {
	db := openSQLiteForTest(t)
	ctx := t.Context()
	conns := make([]*sql.Conn, 3)
	for i := range conns {
		c, err := db.sql.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		var mode string
		var busy, fk int
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || busy != 5000 || fk != 1 {
			t.Fatalf("connection %d: journal_mode=%s busy_timeout=%d foreign_keys=%d", i, mode, busy, fk)
		}
	}
}

func TestSQLiteMemory(t *testing.T) {
	db, err := Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	u := mustCreate(t, db, "acme", "mem@example.com")
	if _, err := db.UserByID(t.Context(), u.ID); err != nil {
		t.Fatalf("in-memory database lost its data between calls: %v", err)
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name        string
		url         string
		dialect     string // "" when Open must fail
		unavailable bool   // the failure is StoreUnavailable (a configuration error otherwise)
	}{
		{"sqlite file", "sqlite:" + filepath.Join(t.TempDir(), "a", "b", "c.db"), DialectSQLite, false},
		{"sqlite triple slash", "sqlite://" + filepath.Join(t.TempDir(), "d.db"), DialectSQLite, false},
		{"sqlite without path", "sqlite:", "", false},
		{"sqlite with query", "sqlite:x.db?_pragma=foo", "", false},
		{"mysql", "mysql://root@localhost/db", "", false},
		{"bare path", "data/bff.db", "", false},
		{"postgres unreachable", "postgres://bff:hunter2-secret@127.0.0.1:1/bff?connect_timeout=1", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(t.Context(), tc.url)
			if tc.dialect != "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer db.Close()
				if db.dialect != tc.dialect {
					t.Fatalf("dialect = %q, want %q", db.dialect, tc.dialect)
				}
				return
			}
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if got := errors.Is(err, apperr.StoreUnavailable); got != tc.unavailable {
				t.Fatalf("err = %v; StoreUnavailable = %v, want %v", err, got, tc.unavailable)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %q", err)
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"already normal", "a@x.com", "a@x.com"},
		{"upper case", "A@X.COM", "a@x.com"},
		{"surrounding space", " \t a@x.com\r\n", "a@x.com"},
		{"non-ASCII upper case", "\u00c9MILE@x.com", "\u00e9mile@x.com"},
		{"look-alike kept", "\u0430@x.com", "\u0430@x.com"},
		{"empty", "  ", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := user.NormalizeEmail(tc.in); got != tc.want {
				t.Fatalf("user.NormalizeEmail(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// openPostgresForTest opens a schema of its own in the test database (dropped at cleanup) and
// migrates it.
func openPostgresForTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), storetest.PostgresURL(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if db.dialect != DialectPostgres {
		t.Fatalf("dialect = %q", db.dialect)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func TestPostgres(t *testing.T) {
	storetest.PostgresURL(t) // skip (or fail) once here rather than in every subtest
	runStoreSuite(t, openPostgresForTest)
}
