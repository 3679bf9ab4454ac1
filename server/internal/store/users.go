package store

import (
	"context"

	"github.com/basiq-bff/bff/server/internal/user"
)

// The statements of the operator commands (users enable, users list), kept apart from the
// request path's prepared set.
const (
	enableUserSQL = "UPDATE users SET disabled_at = NULL WHERE tenant_id = ? AND lower(email) = ? RETURNING " + userColumns
	listUsersSQL  = "SELECT " + userColumns + " FROM users WHERE (? = '' OR tenant_id = ?) ORDER BY tenant_id, email"
)

func (db *DB) rebind(q string) string {
	if db.dialect == DialectPostgres {
		return dollarPlaceholders(q)
	}
	return q
}

// EnableUser lets a disabled user log in again and returns the user, or apperr.NotFound.
// Enabling a user who is not disabled changes nothing.
func (db *DB) EnableUser(ctx context.Context, tenantID, email string) (*user.User, error) {
	return db.queryUser(ctx, "enable user", db.rebind(enableUserSQL), tenantID, user.NormalizeEmail(email))
}

// ListUsers returns the users of tenantID ("" for every tenant), by tenant then email.
func (db *DB) ListUsers(ctx context.Context, tenantID string) ([]user.User, error) {
	rows, err := db.sql.QueryContext(ctx, db.rebind(listUsersSQL), tenantID, tenantID)
	if err != nil {
		return nil, unavailable("list users", err)
	}
	defer rows.Close()
	var out []user.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, unavailable("list users", err)
		}
		out = append(out, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("list users", err)
	}
	return out, nil
}
