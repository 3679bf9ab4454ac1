// Package auth owns end-user login: argon2id password hashes, the rules for checking them and
// the attempt limits that slow down guessing. It imports kv, store and apperr.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/store"
)

// The causes under Login's errors, for security event reason codes. The client sees only
// invalid_credentials or too_many_attempts, never which of these it was.
var (
	ErrUnknownUser  = errors.New("no such user in the tenant")
	ErrBadPassword  = errors.New("wrong password")
	ErrDisabled     = errors.New("the account is disabled")
	ErrAccountLimit = errors.New("too many attempts on the account")
	ErrIPLimit      = errors.New("too many failed attempts from the address")
)

// Users is the part of the store that login needs.
type Users interface {
	// UserByEmail returns apperr.NotFound when the tenant has no such user.
	UserByEmail(ctx context.Context, tenantID, email string) (*store.User, error)
}

// Limits bound failed guesses per account and per client IP within a fixed window.
type Limits struct {
	PerAccount int
	PerIP      int
	Window     time.Duration
}

// Service checks credentials.
type Service struct {
	users Users
	kv    kv.Store
	lim   Limits
	// dummy is verified against for unknown users, so a login for a missing account costs the
	// same argon2 work as one for a real account and timing does not reveal who exists.
	dummy string
}

// New returns a login service.
func New(users Users, store kv.Store, lim Limits) (*Service, error) {
	dummy, err := HashPassword("dummy password for timing equalisation")
	if err != nil {
		return nil, err
	}
	return &Service{users: users, kv: store, lim: lim, dummy: dummy}, nil
}

// Login returns the user whose tenant, email and password match. It returns
// apperr.InvalidCredentials for an unknown user, a wrong password and a disabled account alike
// (wrapping ErrUnknownUser, ErrBadPassword or ErrDisabled, for the logs only);
// apperr.TooManyAttempts (with a retry delay, wrapping ErrIPLimit or ErrAccountLimit) once the
// account or the client IP has used up its attempts; apperr.StoreUnavailable when the
// database or kv store fails.
//
// Every attempt is counted before the password is checked, so parallel guesses cannot slip
// past a limit. Per account, a success forgives the account's count. Per address, successes are
// counted apart and subtracted, so many people behind one address (an office NAT) can all log
// in, while failures from it are capped; a success does not forgive earlier failures, so one
// valid account cannot launder guesses against others.
func (s *Service) Login(ctx context.Context, tenantID, email, password string, ip netip.Addr) (*store.User, error) {
	email = store.NormalizeEmail(email)
	now := time.Now()
	w := now.UnixNano() / int64(s.lim.Window)
	windowLeft := time.Duration((w+1)*int64(s.lim.Window) - now.UnixNano())
	suffix := ":" + strconv.FormatInt(w, 10)
	acctKey := "rl:login:acct:" + tenantID + ":" + hashHex(email)
	ipKey := "rl:login:ip:" + ip.Unmap().String() + suffix
	ipOKKey := "rl:login:ipok:" + ip.Unmap().String() + suffix

	started, _, err := s.kv.Incr(ctx, ipKey, 2*s.lim.Window)
	if err != nil {
		return nil, apperr.Wrap(apperr.StoreUnavailable, fmt.Errorf("count login attempt: %w", err), "")
	}
	var succeeded int64
	if b, err := s.kv.Get(ctx, ipOKKey); err == nil {
		succeeded, _ = strconv.ParseInt(string(b), 10, 64)
	} else if !errors.Is(err, kv.ErrNotFound) {
		return nil, apperr.Wrap(apperr.StoreUnavailable, fmt.Errorf("read login successes: %w", err), "")
	}
	if started-succeeded > int64(s.lim.PerIP) {
		return nil, apperr.Retry(apperr.TooManyAttempts, ErrIPLimit, "", max(windowLeft, time.Second))
	}
	n, ttl, err := s.kv.Incr(ctx, acctKey, s.lim.Window)
	if err != nil {
		return nil, apperr.Wrap(apperr.StoreUnavailable, fmt.Errorf("count login attempt: %w", err), "")
	}
	if n > int64(s.lim.PerAccount) {
		return nil, apperr.Retry(apperr.TooManyAttempts, ErrAccountLimit, "", max(ttl, time.Second))
	}

	u, err := s.users.UserByEmail(ctx, tenantID, email)
	hash := s.dummy
	switch {
	case err == nil:
		hash = u.PasswordHash
	case !errors.Is(err, apperr.NotFound):
		return nil, err
	}
	ok, verr := VerifyPassword(hash, password)
	switch {
	case err != nil:
		return nil, apperr.Wrap(apperr.InvalidCredentials, ErrUnknownUser, "")
	case verr != nil || !ok:
		return nil, apperr.Wrap(apperr.InvalidCredentials, ErrBadPassword, "")
	case u.Disabled():
		return nil, apperr.Wrap(apperr.InvalidCredentials, ErrDisabled, "")
	}
	if _, _, err := s.kv.Incr(ctx, ipOKKey, 2*s.lim.Window); err != nil {
		return nil, apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	if err := s.kv.Delete(ctx, acctKey); err != nil {
		return nil, apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	return u, nil
}

// hashHex keeps raw emails out of kv keys (and so out of Redis MONITOR output and key dumps).
func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:12])
}
