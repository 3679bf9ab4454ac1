package clienttoken

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/ratelimit"
)

// Budget-aware refresh. Under API 3.0 every person has a token of their own, so a tenant's
// /token budget (MintBudget per 5 minutes) is shared by two kinds of mint: cold requests,
// where a person is waiting for their first token, and background refreshes of tokens that
// are still good. When the budget runs low, refreshes back off: a cached token keeps being
// served, and its refresh moves from RefreshAfter toward the end of its servable life (life
// minus MinRemaining). A person who leaves before then costs no refresh at all, and the budget
// is kept for the cold requests. Past budgetTight no background refresh starts; a token that
// reaches MinRemaining is then refreshed by the next request, like a cold one.
const (
	// budgetEasy is the share of the budget used in the last 5 minutes below which refresh
	// runs at RefreshAfter.
	budgetEasy = 0.5
	// budgetTight is the share at and above which no background refresh starts.
	budgetTight = 0.9
	// budgetFresh is how long a replica trusts its reading of a tenant's budget use before
	// reading the fleet's counters again (off the request path).
	budgetFresh = time.Second
)

// budgetReading is a tenant's budget use, as a share of MintBudget, at a moment.
type budgetReading struct {
	used float64
	at   time.Time
}

// budgetUse returns the tenant's last known budget use and whether it is recent enough to act
// on without reading kv.
func (s *Service) budgetUse(tenantID string, now time.Time) (float64, bool) {
	if s.o.MintBudget <= 0 {
		return 0, true
	}
	v, ok := s.budgets.Load(tenantID)
	if !ok {
		return 0, false
	}
	r := v.(*budgetState).get()
	return r.used, now.Sub(r.at) < budgetFresh && !r.at.After(now)
}

// budgetState holds one tenant's latest reading.
type budgetState struct {
	mu sync.Mutex
	r  budgetReading
}

func (b *budgetState) get() budgetReading {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.r
}

// noteBudget records a reading of the tenant's budget use.
func (s *Service) noteBudget(tenantID string, used float64, now time.Time) {
	v, ok := s.budgets.Load(tenantID)
	if !ok {
		v, _ = s.budgets.LoadOrStore(tenantID, &budgetState{})
	}
	b := v.(*budgetState)
	b.mu.Lock()
	if !now.Before(b.r.at) {
		b.r = budgetReading{used: used, at: now}
	}
	b.mu.Unlock()
}

// readBudget reads the fleet's counters for the tenant (the same sliding estimate spendBudget
// checks against) and records the reading. If kv cannot answer, the budget counts as easy:
// refresh then behaves as without a budget.
func (s *Service) readBudget(ctx context.Context, tenantID string) float64 {
	if s.o.MintBudget <= 0 {
		return 0
	}
	now := s.o.Now()
	w, elapsed, _ := ratelimit.Window{Size: budgetWindow}.At(now)
	n := s.budgetCount(ctx, ratelimit.Key(budgetKey(tenantID), w))
	prev := s.budgetCount(ctx, ratelimit.Key(budgetKey(tenantID), w-1))
	used := ratelimit.Sliding(n, prev, elapsed, s.o.MintBudget)
	s.noteBudget(tenantID, used, now)
	return used
}

// budgetKey is the prefix of the tenant's /token budget counters.
func budgetKey(tenantID string) string { return "rl:mint:" + tenantID + ":" }

// budgetCount reads one of the budget's window counters. A kv failure counts as no calls: the
// budget is a guard, and the upstream breaker still protects Basiq.
func (s *Service) budgetCount(ctx context.Context, key string) int64 {
	n, _ := ratelimit.Count(ctx, s.kv, key)
	return n
}

// refreshAt is the age at which e is refreshed in the background, given the share of the
// tenant's budget used in the last 5 minutes: RefreshAfter while the budget is easy, moving
// linearly toward the end of e's servable life as use rises from budgetEasy to budgetTight,
// and never (the end of its servable life) from there on.
func (s *Service) refreshAt(e entry, used float64) time.Duration {
	start := s.o.RefreshAfter
	end := time.Duration(e.ExpiresAt-e.IssuedAt)*time.Millisecond - s.o.MinRemaining
	switch {
	case s.o.MintBudget <= 0 || s.budgetBlind || used <= budgetEasy || end <= start:
		return start
	case used >= budgetTight:
		return end
	}
	f := (used - budgetEasy) / (budgetTight - budgetEasy)
	return start + time.Duration(f*float64(end-start))
}

// errBudget says the tenant's /token budget is spent.
var errBudget = errors.New("the tenant's Basiq /token budget for the last 5 minutes is spent")

// budgetWindow matches Basiq's rate-limit window for /token.
const budgetWindow = 5 * time.Minute

// spendBudget counts one /token call against the tenant's budget. The count approximates a
// sliding 5-minute window, as Basiq's limit is: the previous fixed window's count, weighted by
// how much of it still overlaps, plus the current window's. Past the budget it returns
// apperr.UpstreamUnavailable with the time until the oldest calls age out; callers then serve
// what is cached. If kv cannot count, the call goes ahead: the budget is a guard, and the
// upstream breaker still protects Basiq.
func (s *Service) spendBudget(ctx context.Context, tenantID string) error {
	if s.o.MintBudget <= 0 {
		return nil
	}
	now := s.o.Now()
	w, elapsed, wait := ratelimit.Window{Size: budgetWindow}.At(now)
	cur := ratelimit.Key(budgetKey(tenantID), w)
	prev := s.budgetCount(ctx, ratelimit.Key(budgetKey(tenantID), w-1))
	refuse := func(n int64, used float64) error {
		s.noteBudget(tenantID, used, now)
		s.log.WarnContext(ctx, "refusing a /token call: the tenant's budget is spent", "tenant", tenantID,
			"budget", s.o.MintBudget, "window_calls", n, "previous_window_calls", prev)
		return apperr.Retry(apperr.UpstreamUnavailable, errBudget, "", wait)
	}
	// Check before counting: a refused call must not count, or a crowd of refused requests
	// would keep the budget spent for as long as it kept asking, and nobody would get a token.
	if n := s.budgetCount(ctx, cur); ratelimit.Sliding(n+1, prev, elapsed, s.o.MintBudget) > 1 {
		return refuse(n, ratelimit.Sliding(n, prev, elapsed, s.o.MintBudget))
	}
	n, _, err := s.kv.Incr(ctx, cur, 2*budgetWindow)
	if err != nil {
		s.log.WarnContext(ctx, "could not count a /token call against the budget", "tenant", tenantID, "err", err)
		return nil
	}
	used := ratelimit.Sliding(n, prev, elapsed, s.o.MintBudget)
	if used > 1 {
		// Other replicas' calls landed between the check and the count.
		return refuse(n, used)
	}
	s.noteBudget(tenantID, used, now)
	return nil
}
