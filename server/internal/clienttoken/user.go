package clienttoken

import (
	"context"
	"strconv"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/basiq"
	"github.com/basiq-bff/bff/server/internal/tenant"
)

// BasiqUser returns the person's Basiq user id on a tenant that binds users, creating the
// Basiq user the first time. Basiq does not de-duplicate users, so creation runs under a
// fleet-wide per-user lock and the id is stored with a conditional update: however many
// first requests race on however many replicas, exactly one Basiq user is created.
// Errors are those of ClientToken, plus apperr.NotFound for an unknown user.
func (s *Service) BasiqUser(ctx context.Context, t *tenant.Tenant, userID int64, email string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Deadline)
	defer cancel()
	return withLock(ctx, s, userLock(t.ID, userID), func() (string, bool, error) {
		u, err := s.users.UserByID(ctx, userID)
		if err != nil {
			return "", false, err
		}
		return u.BasiqUserID, u.BasiqUserID != "", nil
	}, func() (string, error) { return s.createBasiqUser(ctx, t, userID, email) })
}

func (s *Service) createBasiqUser(ctx context.Context, t *tenant.Tenant, userID int64, email string) (string, error) {
	// Re-read under the lock: the previous holder may have finished in between.
	u, err := s.users.UserByID(ctx, userID)
	if err != nil {
		return "", err
	}
	if u.BasiqUserID != "" {
		return u.BasiqUserID, nil
	}
	var created basiq.User
	for attempt := 0; ; attempt++ {
		srv, _, err := s.get(ctx, t, basiq.ScopeServer, "-")
		if err != nil {
			return "", err
		}
		created, err = call(ctx, s, t.ID, basiq.EndpointUsers, srv.KeyID, func(ctx context.Context) (basiq.User, error) {
			return s.basiq.CreateUser(ctx, t.BaseURL, srv.Token, basiq.NewUser{Email: email})
		})
		if err == nil {
			break
		}
		// A server token Basiq calls expired: drop it, mint a fresh one, retry once.
		if basiq.Classify(err) == basiq.ClassTokenExpired && attempt == 0 {
			sp := spec{t: t, key: keyByID(t, srv.KeyID), scope: basiq.ScopeServer, binding: "-"}
			if derr := s.drop(ctx, sp.cacheKey()); derr != nil {
				return "", apperr.Wrap(apperr.StoreUnavailable, derr, "")
			}
			continue
		}
		return "", upstreamError(err)
	}
	stored, err := s.users.SetBasiqUserID(ctx, userID, created.ID)
	if err != nil {
		return "", err
	}
	if stored != created.ID {
		// Only possible if a lock lease was lost mid-flight; the stored id wins.
		s.log.WarnContext(ctx, "a duplicate Basiq user was created and is unused", "tenant", t.ID,
			"user", s.HashUser(t.ID, userID))
	}
	s.log.InfoContext(ctx, "basiq user created", "audit", true, "tenant", t.ID, "user", s.HashUser(t.ID, userID))
	return stored, nil
}

func keyByID(t *tenant.Tenant, id string) tenant.Key {
	for _, k := range t.Keys {
		if k.ID == id {
			return k
		}
	}
	return t.Keys[0]
}

// userLock is the fleet lock under which a person's Basiq user is created or replaced.
func userLock(tenantID string, userID int64) string {
	return "lock:buser:" + tenantID + ":" + strconv.FormatInt(userID, 10)
}
