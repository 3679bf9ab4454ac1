// Package clienttoken hands out Basiq tokens: the CLIENT_ACCESS tokens browsers receive and the
// SERVER_ACCESS tokens the BFF itself uses. This file is the /client-token hot path, top to
// bottom: the in-process cache (ttlcache), then the encrypted entry in kv (cache.go), then one
// mint per cache key across the fleet (local single flight, then a kv.Lease), with
// refresh-ahead, stale serving and the choice of API key. Around it: the tenant's /token budget
// and budget-aware refresh (budget.go, counted with ratelimit), the per-tenant breaker and
// throttle pause (upstream.go), the one-time creation of each person's Basiq user under API
// 3.0 (user.go) and the Consent UI launch (consent.go). It imports kv, basiq, tenant, user,
// ratelimit, ttlcache, pseudonym, derive, metrics and apperr.
package clienttoken

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/basiq"
	"github.com/basiq-bff/bff/server/internal/derive"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/metrics"
	"github.com/basiq-bff/bff/server/internal/pseudonym"
	"github.com/basiq-bff/bff/server/internal/tenant"
	"github.com/basiq-bff/bff/server/internal/ttlcache"
	"github.com/basiq-bff/bff/server/internal/user"
)

// Source says where a served token came from.
type Source string

// Sources, as counted in metrics and audit events.
const (
	SourceL1       Source = "l1"
	SourceRedis    Source = "redis"
	SourceUpstream Source = "upstream"
	SourceStale    Source = "stale"
)

// Users is the part of the store the service needs.
type Users interface {
	// UserByID returns apperr.NotFound for an unknown id.
	UserByID(ctx context.Context, id int64) (*user.User, error)
	// SetBasiqUserID stores id only if the user has none yet and returns the stored value.
	SetBasiqUserID(ctx context.Context, userID int64, basiqUserID string) (string, error)
	// ClearBasiqUserID unbinds basiqUserID only if it is still the stored id.
	ClearBasiqUserID(ctx context.Context, userID int64, basiqUserID string) (bool, error)
}

// Options tune the service. Zero values take the defaults in parentheses.
type Options struct {
	RefreshAfter time.Duration // (30m) serve, but refresh in the background, once a token is this old
	MinRemaining time.Duration // (10m) never hand out a token with less life than this
	Deadline     time.Duration // (2s) the longest a request waits for a token
	L1TTL        time.Duration // (5s) how long a replica trusts its in-process copy
	LockLease    time.Duration // (5s) fleet lock lease, renewed while a mint runs
	// Skew is taken off a token's life when choosing its kv TTL, so kv forgets a token
	// before Basiq does. (30s)
	Skew          time.Duration
	EncryptionKey []byte // 32 bytes; required
	Now           func() time.Time
	Metrics       *metrics.Metrics // nil: not recorded
	// MintBudget caps the tenant's /token calls per (sliding) 5 minutes across the fleet, below
	// Basiq's 1,500; 0: no cap.
	MintBudget int
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RefreshAfter, 30*time.Minute)
	def(&o.MinRemaining, 10*time.Minute)
	def(&o.Deadline, 2*time.Second)
	def(&o.LockLease, 5*time.Second)
	def(&o.Skew, 30*time.Second)
	if o.L1TTL < 0 {
		o.L1TTL = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Service hands out tokens. It is safe for concurrent use.
type Service struct {
	kv      kv.Store
	basiq   *basiq.Client
	users   Users
	log     *slog.Logger
	o       Options
	metrics *metrics.Metrics
	seal    *sealer
	// l1 is the in-process cache in front of kv: entries live for a few seconds (L1TTL), so a
	// replica notices a token refreshed by another replica soon, while the hot path usually
	// skips the kv read.
	l1     *ttlcache.Cache[entry]
	flight singleflight.Group
	// refreshing holds the cache keys with a background refresh running on this replica.
	refreshing sync.Map
	// rejected remembers keys Basiq answered "Unable to authenticate" for, so requests stop
	// trying them first; the value is the time until which the key sorts last.
	rejected sync.Map
	// anyRejected turns true with the first rejected key and stays so.
	anyRejected atomic.Bool
	// guards holds each tenant's circuit breaker and throttle pause (*guard).
	guards sync.Map
	// budgets holds each tenant's latest reading of its mint budget use (*budgetState).
	budgets sync.Map
	// budgetBlind makes refresh ignore the budget, as it did before refresh was budget-aware;
	// the simulation compares the two.
	budgetBlind bool
	// pseudonyms are the users' names in logs (HashUser).
	pseudonyms *pseudonym.Users
	// bg bounds background refreshes: they outlive the request that started them but not the
	// service.
	bg     context.Context
	stopBG context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a service.
func New(store kv.Store, client *basiq.Client, users Users, log *slog.Logger, o Options) (*Service, error) {
	o.defaults()
	seal, err := newSealer(o.EncryptionKey)
	if err != nil {
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	s := &Service{
		kv: store, basiq: client, users: users, log: log, o: o, metrics: o.Metrics, seal: seal,
		l1: ttlcache.New[entry](o.L1TTL, 10_000), bg: bg, stopBG: stop,
		pseudonyms: pseudonym.NewUsers(derive.Key(o.EncryptionKey, "bff log pseudonyms v1")),
	}
	return s, nil
}

// Close stops background refreshes and waits for them.
func (s *Service) Close() {
	s.stopBG()
	s.wg.Wait()
}

// Principal is the person a token is for.
type Principal struct {
	UserID      int64
	BasiqUserID string // required for tenants that bind users (API 3.0)
	Email       string // for re-creating a Basiq user Basiq no longer knows
}

// Token is a token to hand to the browser.
type Token struct {
	AccessToken string
	// ExpiresIn is the true remaining life in whole seconds, never the original 3600.
	ExpiresIn int64
	Source    Source
	KeyID     string
	// BasiqUserID is the Basiq user the token is bound to: a new one when the principal's was
	// stale and had to be re-created, so the caller can remember it. "" on unbound tenants.
	BasiqUserID string
	// Correlation is Basiq's correlation id of the call that minted the token.
	Correlation string
	// JSONSafe is set when AccessToken can be written between JSON quotes as it is.
	JSONSafe bool
}

// spec is everything a mint depends on. Its cache key holds all of it, so two different mints
// never share a cache entry or a single flight.
type spec struct {
	t       *tenant.Tenant
	key     tenant.Key
	scope   string
	binding string // the Basiq user id, or "-" for unbound tokens
}

func (sp spec) cacheKey() string {
	return "tok:" + sp.t.ID + ":" + sp.key.ID + ":" + sp.key.Fingerprint + ":" + sp.scope + ":" + sp.binding
}

// ClientToken returns a CLIENT_ACCESS token for p, bound to p.BasiqUserID on tenants that bind
// users. It counts the token served; the caller logs its audit event (tenant, user, key id,
// source, correlation id: the HTTP layer puts them on the request's log line). Errors:
// apperr.UpstreamUnavailable (with a retry delay) when Basiq cannot mint within the deadline
// and nothing usable is cached; apperr.UpstreamRejected when Basiq refuses every key;
// apperr.StoreUnavailable when kv fails.
//
// When Basiq refuses the mint because it no longer knows the Basiq user, the user is
// re-created once (RecreateBasiqUser) and the mint retried; Token.BasiqUserID then says so.
func (s *Service) ClientToken(ctx context.Context, t *tenant.Tenant, p Principal) (Token, error) {
	return s.clientToken(ctx, t, p, s.o.MinRemaining)
}

// clientToken is ClientToken for a token with at least minLife left.
func (s *Service) clientToken(ctx context.Context, t *tenant.Tenant, p Principal, minLife time.Duration) (Token, error) {
	binding := "-"
	if t.BindsUser() {
		if p.BasiqUserID == "" {
			return Token{}, errors.New("clienttoken: a 3.0 token needs the Basiq user id")
		}
		binding = p.BasiqUserID
	}
	e, src, err := s.getFor(ctx, t, basiq.ScopeClient, binding, minLife)
	if err != nil && t.BindsUser() && basiq.UserRejected(err) {
		if binding, err = s.RecreateBasiqUser(ctx, t, p.UserID, p.Email, binding); err != nil {
			return Token{}, err
		}
		e, src, err = s.getFor(ctx, t, basiq.ScopeClient, binding, minLife)
	}
	if err != nil {
		return Token{}, err
	}
	now := s.o.Now()
	s.metrics.TokenServed(t.ID, e.KeyID, string(src))
	tok := Token{AccessToken: e.Token, ExpiresIn: int64(e.remaining(now) / time.Second), Source: src, KeyID: e.KeyID,
		Correlation: e.Correlation, JSONSafe: e.plain}
	if binding != "-" {
		tok.BasiqUserID = binding
	}
	return tok, nil
}

// HashUser is the form of a user id that may appear in logs (see package pseudonym).
func (s *Service) HashUser(tenantID string, userID int64) string {
	return s.pseudonyms.Of(tenantID, userID)
}

// get returns a usable token for (t, scope, binding) from L1, kv or Basiq, in that order.
func (s *Service) get(ctx context.Context, t *tenant.Tenant, scope, binding string) (entry, Source, error) {
	return s.getFor(ctx, t, scope, binding, s.o.MinRemaining)
}

// getFor is get for a token with at least minLife left. Above MinRemaining no stale token is
// served: the caller needs the life it asked for.
func (s *Service) getFor(ctx context.Context, t *tenant.Tenant, scope, binding string, minLife time.Duration) (entry, Source, error) {
	usable := func(e entry, now time.Time) bool { return e.remaining(now) >= max(minLife, s.o.MinRemaining) }
	keys := s.keyOrder(t)
	if len(keys) == 0 {
		return entry{}, "", apperr.New(apperr.UpstreamRejected, "The tenant has no usable Basiq API key.")
	}
	sp := spec{t: t, key: keys[0], scope: scope, binding: binding}
	ck := sp.cacheKey()
	now := s.o.Now()
	if e, ok := s.l1.Get(ck, now); ok && usable(e, now) {
		s.maybeRefresh(sp, keys, e, now)
		return e, SourceL1, nil
	}
	// Past L1 the request may wait on kv, other replicas or Basiq: bound it.
	ctx, cancel := context.WithTimeout(ctx, s.o.Deadline)
	defer cancel()
	cached, err := s.readKV(ctx, ck)
	switch {
	case err == nil && usable(cached, now):
		s.l1.Put(ck, cached, now)
		s.maybeRefresh(sp, keys, cached, now)
		return cached, SourceRedis, nil
	case err != nil && !errors.Is(err, kv.ErrNotFound) && !errors.Is(err, errCorrupt):
		return entry{}, "", apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	// A launch wants more life than a request: it must not share a request's flight, whose
	// result may be good enough for the request but not for the launch.
	kind := "request"
	if minLife > s.o.MinRemaining {
		kind = "launch"
	}
	e, src, err := s.obtain(ctx, sp, keys, kind, usable)
	if err != nil {
		// Stale while error: a token Basiq still honours beats an error page.
		if minLife <= s.o.MinRemaining && cached.Token != "" && cached.remaining(s.o.Now()) > 0 && isUpstreamOutage(err) {
			s.log.WarnContext(ctx, "serving a stale token while Basiq is failing", "tenant", t.ID, "key_id", cached.KeyID, "err", err)
			return cached, SourceStale, nil
		}
		return entry{}, "", err
	}
	return e, src, nil
}

// maybeRefresh starts one background refresh per cache key on this replica once e is older
// than RefreshAfter, or later when the tenant's mint budget runs low (refreshAt). The fleet
// lock makes it one per cache key across the fleet.
func (s *Service) maybeRefresh(sp spec, keys []tenant.Key, e entry, now time.Time) {
	age := e.age(now)
	if age < s.o.RefreshAfter {
		return
	}
	if used, fresh := s.budgetUse(sp.t.ID, now); fresh && age < s.refreshAt(e, used) {
		return
	}
	s.startRefresh(sp, keys, e, now, age)
}

// startRefresh is maybeRefresh's slow path, apart so that the fast path allocates nothing
// (the goroutine's captures escape to the heap).
func (s *Service) startRefresh(sp spec, keys []tenant.Key, e entry, now time.Time, age time.Duration) {
	ck := sp.cacheKey()
	if _, busy := s.refreshing.LoadOrStore(ck, struct{}{}); busy {
		return
	}
	issued := e.IssuedAt
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.refreshing.Delete(ck)
		ctx, cancel := context.WithTimeout(s.bg, s.o.LockLease+s.o.Deadline)
		defer cancel()
		// The reading above was stale: read the fleet's counters here, off the request path.
		if _, fresh := s.budgetUse(sp.t.ID, now); !fresh && age < s.refreshAt(e, s.readBudget(ctx, sp.t.ID)) {
			return
		}
		// Anything newer than the token that triggered the refresh will do: another replica
		// may have refreshed it already.
		_, _, err := s.obtain(ctx, sp, keys, "refresh", func(e entry, _ time.Time) bool { return e.IssuedAt > issued })
		if err != nil {
			s.log.Warn("background token refresh failed", "tenant", sp.t.ID, "key_id", sp.key.ID, "scope", sp.scope, "err", err)
		}
	}()
}

// obtain runs one flight per cache key on this replica; concurrent callers share its result.
// The flight runs detached from any one caller's cancellation, bounded by its own deadline, so
// a caller that gives up does not fail the others.
// kind ("request", "launch" or "refresh") labels the lock-wait metric.
func (s *Service) obtain(ctx context.Context, sp spec, keys []tenant.Key, kind string, good func(entry, time.Time) bool) (entry, Source, error) {
	type result struct {
		e   entry
		src Source
	}
	flight := sp.cacheKey()
	if kind == "launch" {
		flight = "launch|" + flight
	}
	ch := s.flight.DoChan(flight, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.Deadline)
		defer cancel()
		e, src, err := s.fleetMint(fctx, sp, keys, kind, good)
		return result{e, src}, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return entry{}, "", r.Err
		}
		res := r.Val.(result)
		return res.e, res.src, nil
	case <-ctx.Done():
		return entry{}, "", apperr.Wrap(apperr.UpstreamUnavailable, ctx.Err(), "")
	}
}

// fleetMint makes sure exactly one replica calls Basiq for the cache key: the holder of the kv
// lock mints and stores; the others wait for the stored value.
func (s *Service) fleetMint(ctx context.Context, sp spec, keys []tenant.Key, kind string, good func(entry, time.Time) bool) (entry, Source, error) {
	ck := sp.cacheKey()
	wait := 10 * time.Millisecond
	var waitStart time.Time
	for {
		// The caller has just missed in kv, so try the lock first; the holder re-reads kv
		// under it, in case a value landed in between.
		l, err := s.tryLock(ctx, "lock:"+ck)
		if err != nil {
			return entry{}, "", err
		}
		if l != nil {
			e, src, err := s.mintLocked(ctx, sp, keys, good)
			l.Release()
			return e, src, err
		}
		// Another replica holds the lock: poll kv for its value, backing off to 100 ms. If
		// the holder dies, its lease runs out and the next tryLock wins.
		if waitStart.IsZero() {
			waitStart = time.Now()
		}
		if e, err := s.readKV(ctx, ck); err == nil && good(e, s.o.Now()) {
			s.metrics.LockWait(kind, "value", time.Since(waitStart))
			s.l1.Put(ck, e, s.o.Now())
			return e, SourceRedis, nil
		}
		select {
		case <-ctx.Done():
			s.metrics.LockWait(kind, "timeout", time.Since(waitStart))
			return entry{}, "", apperr.Wrap(apperr.UpstreamUnavailable, ctx.Err(), "")
		case <-time.After(wait):
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// mintLocked runs under the fleet lock.
func (s *Service) mintLocked(ctx context.Context, sp spec, keys []tenant.Key, good func(entry, time.Time) bool) (entry, Source, error) {
	ck := sp.cacheKey()
	// The previous holder may have stored a value between our read and our lock.
	if e, err := s.readKV(ctx, ck); err == nil && good(e, s.o.Now()) {
		s.l1.Put(ck, e, s.o.Now())
		return e, SourceRedis, nil
	}
	e, used, err := s.mintUpstream(ctx, sp, keys)
	if err != nil {
		return entry{}, "", err
	}
	uk := used.cacheKey()
	now := s.o.Now()
	if err := s.writeKV(ctx, used, e, now); err != nil {
		// The token is good even if kv is not: hand it out, the next request mints again.
		s.log.WarnContext(ctx, "could not cache a minted token", "tenant", sp.t.ID, "err", err)
	}
	s.l1.Put(uk, e, now)
	return e, SourceUpstream, nil
}

// mintUpstream calls Basiq's /token with the first key that works. A key Basiq does not
// recognise ("Unable to authenticate") is moved to the back for a while and the next key is
// tried: an alert-level event, since it means a key was deleted or mistyped.
func (s *Service) mintUpstream(ctx context.Context, sp spec, keys []tenant.Key) (entry, spec, error) {
	var lastErr error
	for _, k := range keys {
		req := basiq.TokenRequest{BaseURL: sp.t.BaseURL, APIKey: k.Secret.Reveal(), Version: sp.t.Version, Scope: sp.scope}
		if sp.binding != "-" {
			req.UserID = sp.binding
		}
		issued := s.o.Now()
		tok, err := call(ctx, s, sp.t.ID, basiq.EndpointToken, k.ID, func(ctx context.Context) (basiq.Token, error) {
			return s.basiq.Token(ctx, req)
		})
		if err == nil {
			e := entry{Token: tok.AccessToken, IssuedAt: issued.UnixMilli(),
				ExpiresAt: issued.Add(time.Duration(tok.ExpiresIn) * time.Second).UnixMilli(), KeyID: k.ID, Correlation: tok.CorrelationID}.withPlain()
			s.log.InfoContext(ctx, "basiq token minted", "audit", true, "tenant", sp.t.ID, "key_id", k.ID, "scope", sp.scope,
				"bound", sp.binding != "-", "correlation_id", tok.CorrelationID)
			sp.key = k
			return e, sp, nil
		}
		lastErr = err
		if basiq.Classify(err) != basiq.ClassKeyRejected {
			return entry{}, sp, upstreamError(err)
		}
		s.rejected.Store(sp.t.ID+"/"+k.ID+"/"+k.Fingerprint, s.o.Now().Add(5*time.Minute))
		s.anyRejected.Store(true)
		s.metrics.KeyRejected(sp.t.ID, k.ID)
		s.log.ErrorContext(ctx, "ALERT basiq rejected an API key; trying the next listed key", "alert", true,
			"tenant", sp.t.ID, "key_id", k.ID, "err", err)
	}
	return entry{}, sp, apperr.Wrap(apperr.UpstreamRejected, lastErr, "Basiq rejected every API key of this tenant.")
}

// keyOrder returns the tenant's keys with recently rejected ones moved to the back.
func (s *Service) keyOrder(t *tenant.Tenant) []tenant.Key {
	if !s.anyRejected.Load() {
		return t.Keys // the usual case, without building a lookup key per request
	}
	now := s.o.Now()
	var good, bad []tenant.Key
	for _, k := range t.Keys {
		if until, ok := s.rejected.Load(t.ID + "/" + k.ID + "/" + k.Fingerprint); ok && now.Before(until.(time.Time)) {
			bad = append(bad, k)
			continue
		}
		good = append(good, k)
	}
	if len(bad) == 0 {
		return t.Keys
	}
	return append(good, bad...)
}

// upstreamError classifies a Basiq failure for the browser.
func upstreamError(err error) error {
	var classified *apperr.Error
	if errors.As(err, &classified) {
		return err
	}
	switch basiq.Classify(err) {
	case basiq.ClassUnavailable, basiq.ClassThrottled:
		d := basiq.RetryAfter(err)
		if d <= 0 {
			d = 5 * time.Second
		}
		return apperr.Retry(apperr.UpstreamUnavailable, err, "", d)
	default:
		return apperr.Wrap(apperr.UpstreamRejected, err, "")
	}
}

func isUpstreamOutage(err error) bool {
	return errors.Is(err, apperr.UpstreamUnavailable)
}

func (s *Service) readKV(ctx context.Context, ck string) (entry, error) {
	b, err := s.kv.Get(ctx, ck)
	if err != nil {
		return entry{}, err
	}
	return s.seal.open(ck, b)
}

func (s *Service) writeKV(ctx context.Context, sp spec, e entry, now time.Time) error {
	ck := sp.cacheKey()
	// The skew is capped at a tenth of the token's life, so short-lived tokens are cached too.
	life := time.Duration(e.ExpiresAt-e.IssuedAt) * time.Millisecond
	ttl := e.remaining(now) - min(s.o.Skew, life/10)
	if ttl <= 0 {
		return nil
	}
	b, err := s.seal.seal(ck, e)
	if err != nil {
		return err
	}
	if err := s.kv.Set(ctx, ck, b, ttl); err != nil {
		return err
	}
	// The per-key index lets a purge find every token minted with a key without scanning.
	return s.kv.SAdd(ctx, keyIndex(sp.t.ID, sp.key), ttl, ck)
}

// keyIndex is the kv set of the cache keys of tokens minted with key.
func keyIndex(tenantID string, key tenant.Key) string {
	return "tokidx:" + tenantID + ":" + key.ID + ":" + key.Fingerprint
}

// drop forgets a cached token everywhere this replica can reach.
func (s *Service) drop(ctx context.Context, ck string) error {
	s.l1.Drop(ck)
	return s.kv.Delete(ctx, ck)
}

// tryLock takes the fleet lock key (see kv.Lease); nil, nil when another owner holds it.
func (s *Service) tryLock(ctx context.Context, key string) (*kv.Lease, error) {
	l, err := kv.TryLease(ctx, s.kv, key, s.o.LockLease, func(key string, err error) {
		s.log.Warn("lost a token lock lease", "lock", key, "err", err)
	})
	if err != nil {
		return nil, apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	return l, nil
}

// withLock runs f under the fleet lock key, polling (backing off to 100 ms) while another owner
// holds it. Before each try, done (when not nil) may answer without the lock.
func withLock[T any](ctx context.Context, s *Service, key string, done func() (T, bool, error), f func() (T, error)) (T, error) {
	var zero T
	wait := 10 * time.Millisecond
	for {
		if done != nil {
			if v, ok, err := done(); err != nil || ok {
				return v, err
			}
		}
		l, err := s.tryLock(ctx, key)
		if err != nil {
			return zero, err
		}
		if l != nil {
			defer l.Release()
			return f()
		}
		select {
		case <-ctx.Done():
			return zero, apperr.Wrap(apperr.UpstreamUnavailable, ctx.Err(), "")
		case <-time.After(wait):
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// purgeChannel carries "tenant:keyid:fingerprint:" prefixes of purged cache keys to every
// replica, whose L1 then drops them.
const purgeChannel = "tokens:purged"

// Purge deletes every cached token minted with key, from kv and from the L1 of every replica,
// and returns how many kv entries it deleted. It is idempotent: each replica purges on its own
// reload, and a later purge of the same key finds nothing.
func (s *Service) Purge(ctx context.Context, tenantID string, key tenant.Key) (int, error) {
	idx := keyIndex(tenantID, key)
	members, err := s.kv.SMembers(ctx, idx)
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	if err := s.kv.Delete(ctx, append(members, idx)...); err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	prefix := "tok:" + tenantID + ":" + key.ID + ":" + key.Fingerprint + ":"
	s.l1.DropPrefix(prefix)
	if err := s.kv.Publish(ctx, purgeChannel, []byte(prefix)); err != nil {
		return len(members), fmt.Errorf("purge: announce: %w", err)
	}
	s.metrics.Purged(tenantID, key.ID, len(members))
	return len(members), nil
}

// WatchPurges drops from this replica's L1 what other replicas purge. It runs until ctx is
// done, resubscribing after a lost connection; after any gap it empties the L1, whose entries
// live only seconds anyway.
func (s *Service) WatchPurges(ctx context.Context) {
	kv.Watch(ctx, s.kv, purgeChannel, func(prefix []byte) { s.l1.DropPrefix(string(prefix)) }, s.l1.Clear)
}

// ProbeKey proves that Basiq accepts t's primary key by minting a SERVER_ACCESS token with it
// alone (no fallback to other keys). The token is cached for later server-side use, so when
// another replica has just probed the same key no call is made. It returns the Basiq error,
// classified as for ClientToken.
func (s *Service) ProbeKey(ctx context.Context, t *tenant.Tenant) error {
	if len(t.Keys) == 0 {
		return apperr.New(apperr.UpstreamRejected, "The tenant has no usable Basiq API key.")
	}
	only := *t
	only.Keys = t.Keys[:1]
	ctx, cancel := context.WithTimeout(ctx, s.o.Deadline+s.o.LockLease)
	defer cancel()
	_, _, err := s.get(ctx, &only, basiq.ScopeServer, "-")
	return err
}
