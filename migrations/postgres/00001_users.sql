-- +goose Up
-- Users of the BFF, per tenant. email is stored normalized (trimmed, lower-cased by the
-- application); the unique index on lower(email) also guards rows written by hand.
CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     text        NOT NULL CHECK (tenant_id <> ''),
    email         text        NOT NULL CHECK (email <> ''),
    password_hash text        NOT NULL,
    basiq_user_id text        NULL,
    disabled_at   timestamptz NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email));

-- +goose Down
DROP TABLE users;
