package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/user"
)

// UserByOIDC returns the tenant's user with that provider identity, or apperr.NotFound.
func (db *DB) UserByOIDC(ctx context.Context, tenantID, issuer, subject string) (*user.User, error) {
	q := "SELECT " + userColumns + " FROM users WHERE tenant_id = ? AND oidc_issuer = ? AND oidc_subject = ?"
	return db.queryUser(ctx, "user by oidc identity", db.placeholders(q), tenantID, issuer, subject)
}

// CreateOIDCUser adds a user who signs in through the tenant's provider and has no password.
// It returns apperr.Conflict if the tenant already has a user with that email or that
// identity, and apperr.Invalid if a field is empty.
func (db *DB) CreateOIDCUser(ctx context.Context, tenantID, email, issuer, subject string) (*user.User, error) {
	email = user.NormalizeEmail(email)
	if tenantID == "" || email == "" || issuer == "" || subject == "" {
		return nil, apperr.New(apperr.Invalid, "A tenant, an email, an issuer and a subject are required.")
	}
	q := "INSERT INTO users (tenant_id, email, oidc_issuer, oidc_subject) VALUES (?, ?, ?, ?) RETURNING " + userColumns
	u, err := scanUser(db.sql.QueryRowContext(ctx, db.placeholders(q), tenantID, email, issuer, subject))
	if isUniqueViolation(err) {
		return nil, apperr.Wrap(apperr.Conflict, fmt.Errorf("store: create oidc user: %w", err), "a user with this email or identity already exists")
	}
	if err != nil {
		return nil, unavailable("create oidc user", err)
	}
	return u, nil
}

// LinkOIDC gives the existing user with that email (normalized) the provider identity, if
// the user has none yet, and returns the user. apperr.NotFound if there is no such user;
// apperr.Conflict if the user is already linked to an identity (this one or another), or the
// identity belongs to another user.
func (db *DB) LinkOIDC(ctx context.Context, tenantID, email, issuer, subject string) (*user.User, error) {
	if issuer == "" || subject == "" {
		return nil, apperr.New(apperr.Invalid, "An issuer and a subject are required.")
	}
	q := "UPDATE users SET oidc_issuer = ?, oidc_subject = ? WHERE tenant_id = ? AND lower(email) = ? AND oidc_subject IS NULL RETURNING " + userColumns
	u, err := db.queryUser(ctx, "link oidc identity", db.placeholders(q), issuer, subject, tenantID, user.NormalizeEmail(email))
	switch {
	case isUniqueViolation(err):
		return nil, apperr.Wrap(apperr.Conflict, err, "this identity belongs to another user")
	case errors.Is(err, apperr.NotFound):
		if _, lookErr := db.UserByEmail(ctx, tenantID, email); lookErr == nil {
			return nil, apperr.New(apperr.Conflict, "the user is linked to another identity")
		}
		return nil, err
	}
	return u, err
}

// placeholders adapts a query written with ? to the dialect.
func (db *DB) placeholders(q string) string {
	if db.dialect == DialectPostgres && strings.Contains(q, "?") {
		return dollarPlaceholders(q)
	}
	return q
}
