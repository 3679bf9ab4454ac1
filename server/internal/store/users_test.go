package store

import (
	"slices"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/user"
)

func testEnableAndList(t *testing.T, db *DB) {
	ctx := t.Context()
	mustCreate(t, db, "zeta", "zoe@example.com")
	mustCreate(t, db, "acme", "bo@example.com")
	mustCreate(t, db, "acme", "al@example.com")
	if _, err := db.DisableUser(ctx, "acme", "bo@example.com", time.Now()); err != nil {
		t.Fatal(err)
	}
	emails := func(us []user.User) (out []string) {
		for _, u := range us {
			out = append(out, u.TenantID+"/"+u.Email+map[bool]string{true: "(disabled)"}[u.Disabled()])
		}
		return out
	}
	all, err := db.ListUsers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := emails(all), []string{"acme/al@example.com", "acme/bo@example.com(disabled)", "zeta/zoe@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("ListUsers(all) = %v, want %v", got, want)
	}
	u, err := db.EnableUser(ctx, "acme", "Bo@Example.com")
	if err != nil || u.Disabled() {
		t.Fatalf("EnableUser = %+v, %v", u, err)
	}
	acme, err := db.ListUsers(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := emails(acme), []string{"acme/al@example.com", "acme/bo@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("ListUsers(acme) = %v, want %v", got, want)
	}
	_, err = db.EnableUser(ctx, "acme", "nobody@example.com")
	mustKind(t, err, apperr.NotFound)
	none, err := db.ListUsers(ctx, "nobody")
	if err != nil || len(none) != 0 {
		t.Fatalf("ListUsers(unknown tenant) = %v, %v", none, err)
	}
}
