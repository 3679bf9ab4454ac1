package sso

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/tenant"
	"github.com/basiq-bff/bff/server/internal/user"
)

// SignIn finds the local user for a verified identity, or creates one, and returns it;
// linked reports that the identity was just linked to an existing local user.
//
// The user is found by (tenant, issuer, subject). A first sign-in creates a user without a
// password, named by the identity's email. When the tenant already has a local user with
// that email, the identity is linked to it only if the provider says the email is verified;
// otherwise, or when that user is linked to another identity, it is an account_conflict
// refusal. A disabled user is refused with account_disabled, and an email outside the
// tenant's allowed_email_domains (or not verified while that list is set) with
// email_not_allowed. Every failure is a *Refusal.
func (s *Service) SignIn(ctx context.Context, t *tenant.Tenant, id *Identity) (u *user.User, linked bool, err error) {
	email := user.NormalizeEmail(id.Email)
	if doms := t.OIDC.AllowedEmailDomains; len(doms) > 0 {
		_, domain, _ := strings.Cut(email, "@")
		if !id.EmailVerified || !slices.Contains(doms, domain) {
			return nil, false, refuse(CodeEmailNotAllowed, t.ID, fmt.Errorf("email domain %q (verified %v) is not allowed", clip(domain), id.EmailVerified))
		}
	}
	u, err = s.users.UserByOIDC(ctx, t.ID, id.Issuer, id.Subject)
	switch {
	case err == nil:
	case !errors.Is(err, apperr.NotFound):
		return nil, false, classify(err, t.ID)
	case email == "" || !strings.Contains(email, "@") || len(email) > 254:
		return nil, false, refuse(CodeEmailMissing, t.ID, errors.New("the ID token has no usable email claim"))
	default:
		u, err = s.users.CreateOIDCUser(ctx, t.ID, email, id.Issuer, id.Subject)
		if errors.Is(err, apperr.Conflict) {
			if !id.EmailVerified {
				return nil, false, refuse(CodeAccountConflict, t.ID, errors.New("a local user has this email and the provider does not say it is verified"))
			}
			u, err = s.users.LinkOIDC(ctx, t.ID, email, id.Issuer, id.Subject)
			if errors.Is(err, apperr.Conflict) || errors.Is(err, apperr.NotFound) {
				return nil, false, refuse(CodeAccountConflict, t.ID, err)
			}
			linked = err == nil
		}
		if err != nil {
			return nil, false, classify(err, t.ID)
		}
	}
	if u.Disabled() {
		return nil, false, refuse(CodeAccountDisabled, t.ID, errors.New("the user is disabled"))
	}
	return u, linked, nil
}

// urlWithQuery adds the non-empty params to base's query.
func urlWithQuery(base string, params map[string]string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, v := range params {
		if v != "" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
