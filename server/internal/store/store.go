// Package store owns all SQL: the users table on PostgreSQL (pgx through database/sql) or
// SQLite (modernc.org/sqlite, pure Go, for the embedded default), and applying the embedded
// migrations. It imports apperr and migrations of ours (and otelsql, for tracing).
//
// Every failure of the database itself is apperr.StoreUnavailable (503, never 500): an
// infrastructure blip is not a bug.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/basiq-bff/bff/migrations"
	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/user"
)

// The dialects Open recognises.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// sqlitePragmas go in the DSN so the driver applies them to every pooled connection, not just
// the first: WAL lets readers run beside the single writer, busy_timeout makes a writer wait
// for the lock instead of failing with SQLITE_BUSY, and _time_format writes times in a layout
// the driver parses back into time.Time. _txlock=immediate takes the write lock at BEGIN, so a
// transaction never fails midway when it upgrades from reader to writer.
const sqlitePragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(on)" +
	"&_time_format=sqlite&_txlock=immediate"

// DB is the database handle. It is safe for concurrent use.
type DB struct {
	sql     *sql.DB
	dialect string
	q       queries
}

// Open connects to url and pings it. url is "postgres://..." or "postgresql://..." (pgx
// syntax; runtime parameters such as search_path may be given as query parameters), or
// "sqlite:PATH" where PATH is a file (its directory is created) or ":memory:". A failed ping
// is apperr.StoreUnavailable; a malformed url is a plain error. Errors never include a
// password from url.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	var (
		db  *sql.DB
		d   string
		err error
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		d = DialectPostgres
		db, err = o.open("pgx", url) // pgx redacts the password in its parse errors
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		// Bounded so N replicas stay under Postgres' max_connections (100 by default); idle
		// connections are kept so bursts of logins don't reconnect.
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(20)
		db.SetConnMaxIdleTime(5 * time.Minute)
		db.SetConnMaxLifetime(time.Hour)
	case strings.HasPrefix(url, "sqlite:"):
		d = DialectSQLite
		db, err = openSQLite(o, strings.TrimPrefix(url, "sqlite:"))
		if err != nil {
			return nil, err
		}
	default:
		return nil, errors.New(`store: unsupported database URL: want "postgres://...", "postgresql://..." or "sqlite:PATH"`)
	}

	s := &DB{sql: db, dialect: d, q: newQueries(d)}
	if err := s.Ping(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

func openSQLite(o options, path string) (*sql.DB, error) {
	path = strings.TrimPrefix(path, "//") // also accept sqlite://rel and sqlite:///abs
	if path == "" {
		return nil, errors.New("store: sqlite URL has no path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, errors.New("store: sqlite URL must not carry query parameters")
	}
	memory := path == ":memory:"
	if !memory {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, apperr.Wrap(apperr.StoreUnavailable, fmt.Errorf("store: create sqlite directory: %w", err), "")
		}
	}
	db, err := o.open("sqlite", path+"?"+sqlitePragmas)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	if memory {
		// Every connection to ":memory:" is a separate, empty database: keep exactly one.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
	} else {
		// SQLite has one writer at a time anyway; a modest pool serves concurrent readers, and
		// keeping them idle avoids re-running the pragmas on every burst.
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
	}
	return db, nil
}

// unavailable classifies a database failure during op.
func unavailable(op string, err error) error {
	return apperr.Wrap(apperr.StoreUnavailable, fmt.Errorf("store: %s: %w", op, err), "")
}

// Ping makes a round trip to the database; apperr.StoreUnavailable on failure.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close closes the connection pool.
func (db *DB) Close() error {
	if err := db.sql.Close(); err != nil {
		return unavailable("close", err)
	}
	return nil
}

// Migrate applies every pending embedded migration for the dialect. Applying them again is a
// no-op. On Postgres an advisory lock makes replicas that start together migrate one at a time.
func (db *DB) Migrate(ctx context.Context) error {
	var (
		dialect goose.Dialect
		fsys    = migrations.SQLite()
		opts    = []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	)
	switch db.dialect {
	case DialectPostgres:
		dialect, fsys = goose.DialectPostgres, migrations.Postgres()
		// Poll the lock every second (goose's default is five) for up to five minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		dialect = goose.DialectSQLite3
	}
	p, err := goose.NewProvider(dialect, db.sql, fsys, opts...)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return unavailable("migrate", err)
	}
	return nil
}

// queries holds each statement in the dialect's placeholder style.
type queries struct {
	createUser, userByEmail, userByID, disableUser, setPassword, setBasiqUserID, basiqUserID string
}

// userColumns is the column list every query that returns a user selects, in scanUser order.
const userColumns = "id, tenant_id, email, password_hash, basiq_user_id, disabled_at, created_at, oidc_issuer, oidc_subject"

// Emails are matched with lower(email) so the unique index on (tenant_id, lower(email))
// serves the lookup; the argument is already normalized.
func newQueries(dialect string) queries {
	q := queries{
		createUser:  "INSERT INTO users (tenant_id, email, password_hash) VALUES (?, ?, ?) RETURNING " + userColumns,
		userByEmail: "SELECT " + userColumns + " FROM users WHERE tenant_id = ? AND lower(email) = ?",
		userByID:    "SELECT " + userColumns + " FROM users WHERE id = ?",
		// COALESCE keeps the first disable time, so disabling twice changes nothing.
		disableUser: "UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE tenant_id = ? AND lower(email) = ? RETURNING " + userColumns,
		setPassword: "UPDATE users SET password_hash = ? WHERE tenant_id = ? AND lower(email) = ? RETURNING " + userColumns,
		// Only the first writer wins; a racing writer's UPDATE matches no row.
		setBasiqUserID: "UPDATE users SET basiq_user_id = ? WHERE id = ? AND basiq_user_id IS NULL",
		basiqUserID:    "SELECT basiq_user_id FROM users WHERE id = ?",
	}
	if dialect == DialectPostgres {
		for _, s := range []*string{&q.createUser, &q.userByEmail, &q.userByID, &q.disableUser, &q.setPassword, &q.setBasiqUserID, &q.basiqUserID} {
			*s = dollarPlaceholders(*s)
		}
	}
	return q
}

// dollarPlaceholders rewrites each ? to $1, $2, ... Our queries hold no ? in literals.
func dollarPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// scanUser reads one row of userColumns (from a *sql.Row or *sql.Rows).
func scanUser(row interface{ Scan(dest ...any) error }) (*user.User, error) {
	var (
		u                     user.User
		basiq, hash, iss, sub sql.NullString
		disabled              sql.NullTime
	)
	if err := row.Scan(&u.ID, &u.TenantID, &u.Email, &hash, &basiq, &disabled, &u.CreatedAt, &iss, &sub); err != nil {
		return nil, err
	}
	u.PasswordHash, u.OIDCIssuer, u.OIDCSubject = hash.String, iss.String, sub.String
	u.BasiqUserID = basiq.String
	u.CreatedAt = u.CreatedAt.UTC()
	if disabled.Valid {
		t := disabled.Time.UTC()
		u.DisabledAt = &t
	}
	return &u, nil
}

// queryUser runs a query that returns at most one user: apperr.NotFound when it returns none.
func (db *DB) queryUser(ctx context.Context, op, query string, args ...any) (*user.User, error) {
	u, err := scanUser(db.sql.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.NotFound, "")
	}
	if err != nil {
		return nil, unavailable(op, err)
	}
	return u, nil
}

// CreateUser adds a user with email normalized. It returns apperr.Conflict if the tenant
// already has a user with that email (compared after normalization), and apperr.Invalid if
// the tenant, email or password hash is empty.
func (db *DB) CreateUser(ctx context.Context, tenantID, email, passwordHash string) (*user.User, error) {
	email = user.NormalizeEmail(email)
	if tenantID == "" || email == "" || passwordHash == "" {
		return nil, apperr.New(apperr.Invalid, "A tenant, an email and a password are required.")
	}
	u, err := scanUser(db.sql.QueryRowContext(ctx, db.q.createUser, tenantID, email, passwordHash))
	if isUniqueViolation(err) {
		return nil, apperr.Wrap(apperr.Conflict, fmt.Errorf("store: create user: %w", err), "a user with this email already exists")
	}
	if err != nil {
		return nil, unavailable("create user", err)
	}
	return u, nil
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		return sqlErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	return false
}

// UserByEmail returns the tenant's user with that email (normalized first), or apperr.NotFound.
func (db *DB) UserByEmail(ctx context.Context, tenantID, email string) (*user.User, error) {
	return db.queryUser(ctx, "user by email", db.q.userByEmail, tenantID, user.NormalizeEmail(email))
}

// UserByID returns the user with that id, or apperr.NotFound.
func (db *DB) UserByID(ctx context.Context, id int64) (*user.User, error) {
	return db.queryUser(ctx, "user by id", db.q.userByID, id)
}

// DisableUser marks the user disabled as of at and returns it. Disabling a disabled user
// keeps the original time. apperr.NotFound if there is no such user.
func (db *DB) DisableUser(ctx context.Context, tenantID, email string, at time.Time) (*user.User, error) {
	return db.queryUser(ctx, "disable user", db.q.disableUser, at.UTC(), tenantID, user.NormalizeEmail(email))
}

// SetPassword replaces the user's password hash and returns the user, or apperr.NotFound.
func (db *DB) SetPassword(ctx context.Context, tenantID, email, passwordHash string) (*user.User, error) {
	if passwordHash == "" {
		return nil, apperr.New(apperr.Invalid, "A password is required.")
	}
	return db.queryUser(ctx, "set password", db.q.setPassword, passwordHash, tenantID, user.NormalizeEmail(email))
}

// SetBasiqUserID binds the user to basiqUserID unless it is already bound, and returns the
// Basiq user id now stored: basiqUserID if this call won, or the earlier writer's. Concurrent
// callers therefore all agree on one id. apperr.NotFound if there is no such user;
// apperr.Invalid if basiqUserID is empty.
func (db *DB) SetBasiqUserID(ctx context.Context, userID int64, basiqUserID string) (string, error) {
	if basiqUserID == "" {
		return "", apperr.New(apperr.Invalid, "A Basiq user id is required.")
	}
	if _, err := db.sql.ExecContext(ctx, db.q.setBasiqUserID, basiqUserID, userID); err != nil {
		return "", unavailable("set basiq user id", err)
	}
	var stored sql.NullString
	err := db.sql.QueryRowContext(ctx, db.q.basiqUserID, userID).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return "", apperr.New(apperr.NotFound, "")
	}
	if err != nil {
		return "", unavailable("set basiq user id", err)
	}
	if !stored.Valid {
		// Only possible if something cleared the column between our two statements.
		return "", unavailable("set basiq user id", errors.New("basiq user id was cleared concurrently"))
	}
	return stored.String, nil
}
