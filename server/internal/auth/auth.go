// Package auth owns end-user login: argon2id password hashes, the rules for checking them and
// the attempt limits that slow down guessing. It imports kv, store and apperr.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/ratelimit"
	"github.com/basiq-bff/bff/server/internal/user"
)

// The causes under Login's errors, for security event reason codes. The client sees only
// invalid_credentials or too_many_attempts, never which of these it was.
var (
	ErrUnknownUser  = errors.New("no such user in the tenant")
	ErrBadPassword  = errors.New("wrong password")
	ErrDisabled     = errors.New("the account is disabled")
	ErrAccountLimit = errors.New("too many attempts on the account")
	ErrIPLimit      = errors.New("too many failed attempts from the address")
	ErrGlobalLimit  = errors.New("too many failed logins across the fleet")
)

// Users is the part of the store that login needs.
type Users interface {
	// UserByEmail returns apperr.NotFound when the tenant has no such user.
	UserByEmail(ctx context.Context, tenantID, email string) (*user.User, error)
}

// Limits bound login attempts within a fixed window, and the argon2 work done at once.
type Limits struct {
	// PerAccount bounds attempts on one account from clients without a device cookie for it.
	PerAccount int
	// PerDevice bounds attempts from one device cookie (a browser where the account logged in
	// before); it is counted apart from PerAccount, so strangers cannot lock that browser out.
	PerDevice int
	// PerIP bounds failed attempts per client address (per /64 for IPv6).
	PerIP int
	// GlobalFailures bounds failed logins across the fleet; past it, only clients with a
	// device cookie for the account may try.
	GlobalFailures int
	Window         time.Duration
	// Concurrent bounds the password hashes computed at once (each takes 19 MiB and a CPU
	// for tens of milliseconds); <= 0: runtime.GOMAXPROCS(0). Past it a few logins wait up
	// to a second, and the rest are refused with apperr.Busy at once.
	Concurrent int
}

// Keys are the secrets login keeps apart from everything else.
type Keys struct {
	// Hash keys the hashes of emails and addresses in kv keys, so a dump of the keys cannot be
	// reversed by guessing.
	Hash []byte
	// Device sign device cookies: the first signs, all verify (rotate by prepending).
	Device [][]byte
}

// Service checks credentials.
type Service struct {
	users Users
	kv    kv.Store
	lim   Limits
	keys  Keys
	// slots holds one token per password hash that may run now; waiting counts the logins
	// queued for one.
	slots   chan struct{}
	waiting atomic.Int64
	// dummy is verified against for unknown users, so a login for a missing account costs the
	// same argon2 work as one for a real account and timing does not reveal who exists.
	dummy string
	now   func() time.Time
}

// New returns a login service. It fails without a hash key or a device key.
func New(users Users, store kv.Store, lim Limits, keys Keys) (*Service, error) {
	if len(keys.Hash) == 0 || len(keys.Device) == 0 {
		return nil, errors.New("auth: a hash key and at least one device key are required")
	}
	dummy, err := HashPassword("dummy password for timing equalisation")
	if err != nil {
		return nil, err
	}
	if lim.Concurrent <= 0 {
		lim.Concurrent = runtime.GOMAXPROCS(0)
	}
	return &Service{users: users, kv: store, lim: lim, keys: keys, dummy: dummy, now: time.Now,
		slots: make(chan struct{}, lim.Concurrent)}, nil
}

// Attempt is one login try.
type Attempt struct {
	Tenant, Email, Password string
	IP                      netip.Addr
	// Device is the device cookie the client sent ("" for none).
	Device string
}

// Login returns the user whose tenant, email and password match, and a fresh device cookie
// value for the client. It returns apperr.InvalidCredentials for an unknown user, a wrong
// password and a disabled account alike (wrapping ErrUnknownUser, ErrBadPassword or
// ErrDisabled, for the logs only); apperr.TooManyAttempts (with a retry delay, wrapping
// ErrAccountLimit, ErrIPLimit or ErrGlobalLimit) once the account, the device, the client
// address or the fleet has used up its attempts; apperr.Busy when the password hashes that may
// run at once are all running; apperr.StoreUnavailable when the database or kv store fails.
//
// Every attempt is counted before the password is checked, so parallel guesses cannot slip
// past a limit. An attempt is counted against the device when it carries a valid device
// cookie for the account (OWASP's "device cookies"), and against the account otherwise: a
// person's own browser keeps working while strangers guess. A success forgives the count it
// was charged to. Per address, successes are counted apart and subtracted, so many people
// behind one address (an office NAT) can all log in, while failures from it are capped; a
// success does not forgive earlier failures, so one valid account cannot launder guesses
// against others.
func (s *Service) Login(ctx context.Context, a Attempt) (*user.User, string, error) {
	email := user.NormalizeEmail(a.Email)
	now := s.now()
	w, _, left := ratelimit.Window{Size: s.lim.Window}.At(now)
	windowLeft := max(left, time.Second)
	account := s.keyed("acct", a.Tenant, email)
	client := s.keyed("ip", clientPrefix(a.IP).String())
	ipKey, ipOKKey := ratelimit.Key("rl:login:ip:"+client+":", w), ratelimit.Key("rl:login:ipok:"+client+":", w)
	failKey := ratelimit.Key("rl:login:fail:", w)

	started, _, err := s.kv.Incr(ctx, ipKey, 2*s.lim.Window)
	if err != nil {
		return nil, "", apperr.Wrap(apperr.StoreUnavailable, fmt.Errorf("count login attempt: %w", err), "")
	}
	succeeded, err := s.count(ctx, ipOKKey)
	if err != nil {
		return nil, "", err
	}
	if started-succeeded > int64(s.lim.PerIP) {
		return nil, "", apperr.Retry(apperr.TooManyAttempts, ErrIPLimit, "", windowLeft)
	}

	chargeKey, err := s.charge(ctx, a.Tenant, account, a.Device, failKey, windowLeft, now)
	if err != nil {
		return nil, "", err
	}

	u, err := s.users.UserByEmail(ctx, a.Tenant, email)
	hash := s.dummy
	switch {
	case err == nil && u.PasswordHash != "":
		hash = u.PasswordHash
	case err != nil && !errors.Is(err, apperr.NotFound):
		return nil, "", err
	}
	ok, verr := s.verify(ctx, hash, a.Password)
	if errors.Is(verr, errBusy) {
		return nil, "", apperr.Wrap(apperr.Busy, verr, "")
	}
	// A user who signs in only through the tenant's identity provider has no password: the
	// dummy verify keeps the timing the same, and the answer is the same as a wrong password.
	var cause error
	switch {
	case err != nil:
		cause = ErrUnknownUser
	case verr != nil || !ok || u.PasswordHash == "":
		cause = ErrBadPassword
	case u.Disabled():
		cause = ErrDisabled
	}
	if cause != nil {
		if _, _, err := s.kv.Incr(ctx, failKey, 2*s.lim.Window); err != nil {
			return nil, "", apperr.Wrap(apperr.StoreUnavailable, fmt.Errorf("count login failure: %w", err), "")
		}
		return nil, "", apperr.Wrap(apperr.InvalidCredentials, cause, "")
	}
	if _, _, err := s.kv.Incr(ctx, ipOKKey, 2*s.lim.Window); err != nil {
		return nil, "", apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	if err := s.kv.Delete(ctx, chargeKey); err != nil {
		return nil, "", apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	device, err := s.issueDevice(account, now)
	if err != nil {
		return nil, "", err
	}
	return u, device, nil
}

// errBusy says every password-hash slot was taken.
var errBusy = errors.New("every password-hash slot is in use")

// A login that finds every slot taken may wait for one, but only queuePerSlot logins per slot
// wait, and for at most queueWait: a burst of real people is smoothed, a flood is refused at
// once. Waiting costs a goroutine, not a hash's memory.
const (
	queuePerSlot = 4
	queueWait    = time.Second
)

// verify checks pw against hash in one of the bounded slots, or returns errBusy.
func (s *Service) verify(ctx context.Context, hash, pw string) (bool, error) {
	select {
	case s.slots <- struct{}{}:
	default:
		if s.waiting.Add(1) > int64(queuePerSlot*cap(s.slots)) {
			s.waiting.Add(-1)
			return false, errBusy
		}
		t := time.NewTimer(queueWait)
		select {
		case s.slots <- struct{}{}:
			s.waiting.Add(-1)
			t.Stop()
		case <-t.C:
			s.waiting.Add(-1)
			return false, errBusy
		case <-ctx.Done():
			s.waiting.Add(-1)
			t.Stop()
			return false, errBusy
		}
	}
	defer func() { <-s.slots }()
	return VerifyPassword(hash, pw)
}

// charge counts the attempt against the browser's device allowance (a device cookie issued
// for this account) or else against the account, after the fleet-wide failure ceiling; it
// returns the key charged, which a success clears.
func (s *Service) charge(ctx context.Context, tenantID, account, device, failKey string, windowLeft time.Duration, now time.Time) (string, error) {
	var chargeKey string
	limit := s.lim.PerAccount
	if nonce, ok := s.verifyDevice(device, account, now); ok {
		chargeKey, limit = "rl:login:dev:"+nonce, s.lim.PerDevice
	} else {
		failures, err := s.count(ctx, failKey)
		if err != nil {
			return "", err
		}
		if failures >= int64(s.lim.GlobalFailures) {
			return "", apperr.Retry(apperr.TooManyAttempts, ErrGlobalLimit, "", windowLeft)
		}
		chargeKey = "rl:login:acct:" + tenantID + ":" + account
	}
	n, ttl, err := s.kv.Incr(ctx, chargeKey, s.lim.Window)
	if err != nil {
		return "", apperr.Wrap(apperr.StoreUnavailable, fmt.Errorf("count login attempt: %w", err), "")
	}
	if n > int64(limit) {
		return "", apperr.Retry(apperr.TooManyAttempts, ErrAccountLimit, "", max(ttl, time.Second))
	}
	return chargeKey, nil
}

// count reads a counter that may not exist yet.
func (s *Service) count(ctx context.Context, key string) (int64, error) {
	n, err := ratelimit.Count(ctx, s.kv, key)
	if err != nil {
		return 0, apperr.Wrap(apperr.StoreUnavailable, fmt.Errorf("login: %w", err), "")
	}
	return n, nil
}

// clientPrefix is the unit an address is counted in: the address for IPv4, its /64 for
// IPv6, since one IPv6 subscriber is usually given a whole /64 (or more).
func clientPrefix(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p
	}
	return netip.PrefixFrom(ip, ip.BitLen())
}

// keyed is a keyed hash of personal data (emails, addresses) for use in kv keys: without the
// key, a dump of the keys cannot be reversed by hashing guesses.
func (s *Service) keyed(kind string, parts ...string) string {
	m := hmac.New(sha256.New, s.keys.Hash)
	m.Write([]byte(kind))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// StillValid re-reads u and returns apperr.InvalidCredentials when the user has since been
// disabled, removed or given a new password; apperr.StoreUnavailable when the database fails.
// A login calls it once its session is stored and indexed: a `users disable` or `users passwd`
// that ran meanwhile is then either seen here or ends the new session itself.
func (s *Service) StillValid(ctx context.Context, u *user.User) error {
	now, err := s.users.UserByEmail(ctx, u.TenantID, u.Email)
	switch {
	case errors.Is(err, apperr.NotFound):
		return apperr.New(apperr.InvalidCredentials, "")
	case err != nil:
		return err
	case now.ID != u.ID || now.Disabled() || now.PasswordHash != u.PasswordHash:
		return apperr.New(apperr.InvalidCredentials, "")
	}
	return nil
}
