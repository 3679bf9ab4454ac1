package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/user"
)

// usersShow prints how a user signs in: with a password, through the tenant's identity
// provider (issuer and subject), or both; whether the account is disabled; its Basiq user.
func usersShow(ctx context.Context, env cliEnv, tenantID, email string) error {
	a, _, err := userCommand(ctx, env, "users show", tenantID, email)
	if err != nil {
		return err
	}
	defer a.close()
	u, err := a.db.UserByEmail(ctx, tenantID, email)
	if errors.Is(err, apperr.NotFound) {
		return fmt.Errorf("no user %s in tenant %s", user.NormalizeEmail(email), tenantID)
	}
	if err != nil {
		return fmt.Errorf("show user: %w", err)
	}
	var ways []string
	if u.PasswordHash != "" {
		ways = append(ways, "password")
	}
	if u.OIDCSubject != "" {
		ways = append(ways, fmt.Sprintf("identity provider (issuer %s, subject %s)", u.OIDCIssuer, u.OIDCSubject))
	}
	tenantPassword := true
	for _, t := range a.cfg.Tenants {
		if t.ID == tenantID {
			tenantPassword = t.Login.PasswordAllowed()
		}
	}
	status := "active"
	if u.Disabled() {
		status = "disabled since " + u.DisabledAt.Format(time.RFC3339)
	}
	basiq := u.BasiqUserID
	if basiq == "" {
		basiq = "(none yet)"
	}
	fmt.Fprintf(env.stdout, "user %d (%s) in tenant %s\n", u.ID, u.Email, u.TenantID)
	fmt.Fprintf(env.stdout, "  signs in with: %s\n", strings.Join(ways, "; "))
	if u.PasswordHash != "" && !tenantPassword {
		fmt.Fprintf(env.stdout, "  note: tenant %s has login.password: false, so the password is refused\n", tenantID)
	}
	fmt.Fprintf(env.stdout, "  status: %s\n  basiq user: %s\n  created: %s\n", status, basiq, u.CreatedAt.Format(time.RFC3339))
	return nil
}
