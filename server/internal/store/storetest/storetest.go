// Package storetest gives tests a real Postgres to work in: a fresh schema inside the
// database named by BFF_TEST_DATABASE_URL, dropped when the test ends. It skips when the
// variable is unset, unless BFF_TEST_REQUIRE_SERVICES=1 makes that a failure.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/basiq-bff/bff/server/internal/testenv"
)

// PostgresURL returns a URL for a new, empty schema of its own in the test database.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	base := testenv.URL(tb, "BFF_TEST_DATABASE_URL", "Postgres", "postgres://postgres@127.0.0.1:5432/test")
	schema := "bff_test_" + strings.ToLower(rand.Text()[:12])
	db, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
