package migrations

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// TestDialectsInStep checks both dialects carry the same migrations, each with goose Up and
// Down sections, so a schema change cannot land for one database only.
func TestDialectsInStep(t *testing.T) {
	dialects := []struct {
		name string
		fsys fs.FS
	}{
		{"postgres", Postgres()},
		{"sqlite", SQLite()},
	}
	var want []string
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			names, err := fs.Glob(d.fsys, "*.sql")
			if err != nil {
				t.Fatal(err)
			}
			if len(names) == 0 || names[0] != "00001_users.sql" {
				t.Fatalf("migrations = %v, want them to start with 00001_users.sql", names)
			}
			if want == nil {
				want = names
			} else if !slices.Equal(names, want) {
				t.Fatalf("migrations = %v, want the same files as the first dialect: %v", names, want)
			}
			for _, n := range names {
				b, err := fs.ReadFile(d.fsys, n)
				if err != nil {
					t.Fatal(err)
				}
				s := string(b)
				up, down := strings.Index(s, "-- +goose Up"), strings.Index(s, "-- +goose Down")
				if up < 0 || down < up {
					t.Fatalf("%s: want a goose Up section followed by a Down section", n)
				}
			}
		})
	}
}
