// Package migrations holds the SQL schema as goose migrations, one directory per dialect,
// embedded in the binary. The files are append-only: a merged migration is never edited; a
// change is a new file. It imports only the standard library.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Postgres returns the PostgreSQL migrations, rooted at their directory as goose expects.
func Postgres() fs.FS { return sub("postgres") }

// SQLite returns the SQLite migrations, rooted at their directory as goose expects.
func SQLite() fs.FS { return sub("sqlite") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, and dir is a constant embedded above.
		panic("migrations: " + err.Error())
	}
	return f
}
