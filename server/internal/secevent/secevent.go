// Package secevent names the security events the BFF logs, for SIEM rules: each is one log
// line with "security": true, a stable "event" name and a "reason" code. The README's table
// lists them; names and reasons only ever get added. It imports only the standard library.
package secevent

import (
	"context"
	"log/slog"
)

// Event names. They are part of the operator contract.
const (
	LoginSucceeded = "login.succeeded"
	LoginFailed    = "login.failed"
	LoginLockedOut = "login.locked_out"
	// LogoutTokenRefused is a back-channel logout token that failed verification (forged,
	// replayed, for another client).
	LogoutTokenRefused = "oidc.logout_token_refused"
	Logout             = "logout"
	CSRFRefused        = "csrf.refused"
	SessionRevoked     = "session.revoked"
	UserCreated        = "user.created"
	UserDisabled       = "user.disabled"
	UserEnabled        = "user.enabled"
	PasswordChanged    = "user.password_changed"
)

// Reason codes.
const (
	ReasonPassword       = "password"        // login.succeeded: password checked
	ReasonUnknownUser    = "unknown_user"    // login.failed: no such user in the tenant (or no such tenant)
	ReasonBadPassword    = "bad_password"    // login.failed
	ReasonDisabled       = "disabled"        // login.failed: the account is disabled
	ReasonAccountLimit   = "account_limit"   // login.locked_out: too many attempts on the account
	ReasonIPLimit        = "ip_limit"        // login.locked_out: too many failures from the address
	ReasonGlobalLimit    = "global_limit"    // login.locked_out: too many failures across the fleet
	ReasonUser           = "user_request"    // logout by the user
	ReasonMissingHeader  = "missing_header"  // csrf.refused: no X-CSRF: 1
	ReasonForeignOrigin  = "foreign_origin"  // csrf.refused: Origin/Referer not allowed
	ReasonCrossSite      = "cross_site"      // csrf.refused: Fetch Metadata says cross-site
	ReasonUserDisabled   = "user_disabled"   // session.revoked
	ReasonPasswordChange = "password_change" // session.revoked
	ReasonTenantRemoved  = "tenant_removed"  // session.revoked
	ReasonCLI            = "cli"             // user.*: an operator command
	ReasonOIDC           = "oidc"            // login.succeeded: through the tenant's identity provider
	ReasonProviderLogout = "provider_logout" // session.revoked: the provider's back-channel logout
	ReasonInvalidToken   = "invalid"         // oidc.logout_token_refused
)

// Log writes one security event at info level (warn for refusals and lockouts). attrs add
// context such as tenant and the hashed user; never a password, token or session id.
func Log(ctx context.Context, log *slog.Logger, event, reason string, attrs ...any) {
	level := slog.LevelInfo
	switch event {
	case LoginFailed, LoginLockedOut, CSRFRefused, LogoutTokenRefused:
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "security event", append([]any{"security", true, "event", event, "reason", reason}, attrs...)...)
}
