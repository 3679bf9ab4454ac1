-- +goose Up
-- People who sign in through their tenant's OpenID Connect provider are identified by the
-- provider's issuer and subject, unique per tenant. Such a user may have no password.
ALTER TABLE users
    ADD COLUMN oidc_issuer  text NULL,
    ADD COLUMN oidc_subject text NULL,
    ALTER COLUMN password_hash DROP NOT NULL,
    ADD CONSTRAINT users_oidc_pair CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL)),
    ADD CONSTRAINT users_can_sign_in CHECK (password_hash IS NOT NULL OR oidc_subject IS NOT NULL);

CREATE UNIQUE INDEX users_tenant_oidc_key ON users (tenant_id, oidc_issuer, oidc_subject);

-- +goose Down
-- A user without a password keeps an empty hash, which no password matches.
DROP INDEX users_tenant_oidc_key;
UPDATE users SET password_hash = '' WHERE password_hash IS NULL;
ALTER TABLE users
    DROP CONSTRAINT users_can_sign_in,
    DROP CONSTRAINT users_oidc_pair,
    ALTER COLUMN password_hash SET NOT NULL,
    DROP COLUMN oidc_subject,
    DROP COLUMN oidc_issuer;
