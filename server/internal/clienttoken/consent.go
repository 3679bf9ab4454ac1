package clienttoken

import (
	"context"
	"strconv"
	"time"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/basiq"
	"github.com/basiq-bff/bff/server/internal/tenant"
)

// LaunchMinLife is the least life a token handed to the Consent UI has left: the person may
// spend a while there, and the Consent UI session must not outlive its token.
const LaunchMinLife = 50 * time.Minute

// consentTTL is how long a person's "has an active consent" answer is cached: long enough to
// spare Basiq a read per click, short enough that a consent given a minute ago counts.
const consentTTL = time.Minute

// recreateWindow bounds re-creating a person's Basiq user to once per window: if Basiq keeps
// forgetting the new user too, something else is wrong, and looping would fill Basiq with
// users (it does not de-duplicate them).
const recreateWindow = time.Hour

// Launch is what the Consent UI needs: a token with at least LaunchMinLife left, and whether
// the person already has an active consent (then the flow to open is "connect").
type Launch struct {
	Token         Token
	ActiveConsent bool
}

// ConsentLaunch prepares a Consent UI launch for p on a tenant that binds users. It reads the
// person's consents with the SERVER_ACCESS token (cached for a minute) only when needConsents
// is set. A Basiq user Basiq no longer knows (404 on the consents read, or a refused mint) is
// re-created once, as in ClientToken. The launch token comes from the cache if it has at least
// LaunchMinLife left, else it is minted (and counted against the mint budget like any mint).
// Errors are those of ClientToken.
func (s *Service) ConsentLaunch(ctx context.Context, t *tenant.Tenant, p Principal, needConsents bool) (Launch, error) {
	var l Launch
	if needConsents {
		active, err := s.activeConsent(ctx, t, p.BasiqUserID)
		switch {
		case err != nil && basiq.NotFound(err):
			id, rerr := s.RecreateBasiqUser(ctx, t, p.UserID, p.Email, p.BasiqUserID)
			if rerr != nil {
				return Launch{}, rerr
			}
			p.BasiqUserID = id // a new user has no consent yet
		case err != nil:
			// The consents read is a convenience: without it the person gets Basiq's default
			// flow, which works for everyone.
			s.log.WarnContext(ctx, "could not read the user's Basiq consents; opening the default flow", "tenant", t.ID,
				"user", s.HashUser(t.ID, p.UserID), "err", err)
		default:
			l.ActiveConsent = active
		}
	}
	tok, err := s.clientToken(ctx, t, p, LaunchMinLife)
	if err != nil {
		return Launch{}, err
	}
	l.Token = tok
	return l, nil
}

// ForgetConsents drops the cached consent answer for a Basiq user: after a Consent UI visit
// the person may have given or withdrawn one.
func (s *Service) ForgetConsents(ctx context.Context, tenantID, basiqUserID string) error {
	return s.kv.Delete(ctx, consentsKey(tenantID, basiqUserID))
}

func consentsKey(tenantID, basiqUserID string) string {
	return "consents:" + tenantID + ":" + basiqUserID
}

// activeConsent reports whether the Basiq user has an active consent, from kv or from Basiq.
func (s *Service) activeConsent(ctx context.Context, t *tenant.Tenant, basiqUserID string) (bool, error) {
	ck := consentsKey(t.ID, basiqUserID)
	// The value carries its own time as well as a kv TTL: the service's clock decides.
	if b, err := s.kv.Get(ctx, ck); err == nil && len(b) > 2 && b[1] == ':' {
		at, perr := strconv.ParseInt(string(b[2:]), 10, 64)
		if perr == nil && s.o.Now().Sub(time.UnixMilli(at)) < consentTTL {
			return b[0] == '1', nil
		}
	}
	var consents []basiq.Consent
	err := s.withServerToken(ctx, t, basiq.EndpointConsents, func(ctx context.Context, token string) error {
		var err error
		consents, err = s.basiq.Consents(ctx, t.BaseURL, token, basiqUserID)
		return err
	})
	if err != nil {
		return false, err
	}
	now := s.o.Now()
	active := false
	for _, c := range consents {
		active = active || c.Active(now)
	}
	v := []byte("0:")
	if active {
		v[0] = '1'
	}
	v = strconv.AppendInt(v, now.UnixMilli(), 10)
	if err := s.kv.Set(ctx, ck, v, consentTTL); err != nil {
		s.log.WarnContext(ctx, "could not cache a consent lookup", "tenant", t.ID, "err", err)
	}
	return active, nil
}

// withServerToken runs f with the tenant's SERVER_ACCESS token under the tenant's upstream
// policy; a token Basiq calls expired is dropped and f runs once more with a fresh one.
func (s *Service) withServerToken(ctx context.Context, t *tenant.Tenant, endpoint string, f func(ctx context.Context, token string) error) error {
	for attempt := 0; ; attempt++ {
		srv, _, err := s.get(ctx, t, basiq.ScopeServer, "-")
		if err != nil {
			return err
		}
		_, err = call(ctx, s, t.ID, endpoint, srv.KeyID, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, f(ctx, srv.Token)
		})
		if err == nil {
			return nil
		}
		if basiq.Classify(err) == basiq.ClassTokenExpired && attempt == 0 {
			sp := spec{t: t, key: keyByID(t, srv.KeyID), scope: basiq.ScopeServer, binding: "-"}
			if derr := s.drop(ctx, sp.cacheKey()); derr != nil {
				return apperr.Wrap(apperr.StoreUnavailable, derr, "")
			}
			continue
		}
		return err
	}
}

// RecreateBasiqUser replaces the person's Basiq user stale, which Basiq no longer knows, with a
// new one, and returns the id now stored. It runs under the same fleet-wide per-user lock as
// BasiqUser: GET /users/{id} must answer 404 (else nothing is created), then the stored id is
// cleared with a conditional update (only if it is still stale) and a new user is created once. If another request already replaced it, that id is returned
// and nothing is created. At most one re-creation per person per hour: a second one within
// the hour is refused with apperr.UpstreamRejected. Each outcome is an audit event and counted
// in bff_basiq_users_recreated_total.
func (s *Service) RecreateBasiqUser(ctx context.Context, t *tenant.Tenant, userID int64, email, stale string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Deadline)
	defer cancel()
	user := s.HashUser(t.ID, userID)
	return withLock(ctx, s, userLock(t.ID, userID), nil, func() (string, error) {
		return s.recreateLocked(ctx, t, userID, email, stale, user)
	})
}

func (s *Service) recreateLocked(ctx context.Context, t *tenant.Tenant, userID int64, email, stale, user string) (string, error) {
	u, err := s.users.UserByID(ctx, userID)
	if err != nil {
		return "", err
	}
	if u.BasiqUserID != "" && u.BasiqUserID != stale {
		return u.BasiqUserID, nil // replaced meanwhile
	}
	if u.BasiqUserID == stale {
		// Confirm with Basiq before creating anything: only a 404 from GET /users/{id} proves
		// the user is gone (Basiq does not de-duplicate users, so a wrong guess is costly).
		err := s.withServerToken(ctx, t, basiq.EndpointUser, func(ctx context.Context, token string) error {
			return s.basiq.UserExists(ctx, t.BaseURL, token, stale)
		})
		switch {
		case err == nil:
			s.log.WarnContext(ctx, "basiq refused a user's token but still knows the user; not re-creating it", "tenant", t.ID, "user", user)
			return "", apperr.New(apperr.UpstreamRejected, "Basiq refused a token for your account.")
		case !basiq.NotFound(err):
			return "", upstreamError(err)
		}
		won, err := s.kv.SetNX(ctx, "recreated:"+t.ID+":"+strconv.FormatInt(userID, 10), []byte{1}, recreateWindow)
		if err != nil {
			return "", apperr.Wrap(apperr.StoreUnavailable, err, "")
		}
		if !won {
			s.metrics.BasiqUserRecreated(t.ID, "refused")
			s.log.WarnContext(ctx, "basiq no longer knows a user re-created within the hour; not re-creating again",
				"audit", true, "tenant", t.ID, "user", user)
			return "", apperr.New(apperr.UpstreamRejected, "Basiq no longer knows your account. Please contact support.")
		}
		if _, err := s.users.ClearBasiqUserID(ctx, userID, stale); err != nil {
			return "", err
		}
	}
	// The stale user's cached tokens are useless now: forget them.
	for _, k := range t.Keys {
		if err := s.drop(ctx, spec{t: t, key: k, scope: basiq.ScopeClient, binding: stale}.cacheKey()); err != nil {
			return "", apperr.Wrap(apperr.StoreUnavailable, err, "")
		}
	}
	id, err := s.createBasiqUser(ctx, t, userID, email)
	if err != nil {
		return "", err
	}
	s.metrics.BasiqUserRecreated(t.ID, "recreated")
	s.log.InfoContext(ctx, "basiq user re-created: basiq no longer knew the stored one", "audit", true, "tenant", t.ID, "user", user)
	return id, nil
}
