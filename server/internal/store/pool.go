package store

import "database/sql"

// Pool returns the connection pool, for its statistics (metrics) only: every query goes
// through DB's methods.
func (db *DB) Pool() *sql.DB { return db.sql }
