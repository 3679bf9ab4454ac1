-- +goose Up
-- Users of the BFF, per tenant. email is stored normalized (trimmed, lower-cased by the
-- application); the unique index on lower(email) also guards rows written by hand.
-- Timestamps are DATETIME so the driver returns time.Time; they hold UTC.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     TEXT     NOT NULL CHECK (tenant_id <> ''),
    email         TEXT     NOT NULL CHECK (email <> ''),
    password_hash TEXT     NOT NULL,
    basiq_user_id TEXT     NULL,
    disabled_at   DATETIME NULL,
    created_at    DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email));

-- +goose Down
DROP TABLE users;
