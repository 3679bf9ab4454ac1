-- +goose Up
-- People who sign in through their tenant's OpenID Connect provider are identified by the
-- provider's issuer and subject, unique per tenant. Such a user may have no password.
-- SQLite cannot relax a NOT NULL column in place, so the table is rebuilt with every row and
-- id kept.
CREATE TABLE users_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     TEXT     NOT NULL CHECK (tenant_id <> ''),
    email         TEXT     NOT NULL CHECK (email <> ''),
    password_hash TEXT     NULL,
    basiq_user_id TEXT     NULL,
    disabled_at   DATETIME NULL,
    created_at    DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    oidc_issuer   TEXT     NULL,
    oidc_subject  TEXT     NULL,
    CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL)),
    CHECK (password_hash IS NOT NULL OR oidc_subject IS NOT NULL)
);
INSERT INTO users_new (id, tenant_id, email, password_hash, basiq_user_id, disabled_at, created_at)
    SELECT id, tenant_id, email, password_hash, basiq_user_id, disabled_at, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email));
CREATE UNIQUE INDEX users_tenant_oidc_key ON users (tenant_id, oidc_issuer, oidc_subject);

-- +goose Down
CREATE TABLE users_old (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     TEXT     NOT NULL CHECK (tenant_id <> ''),
    email         TEXT     NOT NULL CHECK (email <> ''),
    password_hash TEXT     NOT NULL,
    basiq_user_id TEXT     NULL,
    disabled_at   DATETIME NULL,
    created_at    DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
INSERT INTO users_old (id, tenant_id, email, password_hash, basiq_user_id, disabled_at, created_at)
    SELECT id, tenant_id, email, COALESCE(password_hash, ''), basiq_user_id, disabled_at, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_old RENAME TO users;
CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email));
