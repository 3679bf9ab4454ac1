package clienttoken

import (
	"context"
	"strconv"
	"sync"
	"time"
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
	w, elapsed := budgetWindowAt(now)
	key := "rl:mint:" + tenantID + ":"
	count := func(w int64) int64 {
		b, err := s.kv.Get(ctx, key+strconv.FormatInt(w, 10))
		if err != nil {
			return 0 // not found: no calls in that window; a kv failure: treated as easy
		}
		n, _ := strconv.ParseInt(string(b), 10, 64)
		return n
	}
	n, prev := count(w), count(w-1)
	used := budgetShare(n, prev, elapsed, s.o.MintBudget)
	s.noteBudget(tenantID, used, now)
	return used
}

// budgetWindowAt returns the index of the fixed 5-minute window now falls in and how much of
// it has passed (0–1).
func budgetWindowAt(now time.Time) (int64, float64) {
	w := now.UnixNano() / int64(budgetWindow)
	return w, float64(now.UnixNano()-w*int64(budgetWindow)) / float64(budgetWindow)
}

// budgetShare is the sliding-window estimate of calls in the last 5 minutes (the previous
// window weighted by how much of it still overlaps, plus the current one) as a share of budget.
func budgetShare(n, prev int64, elapsed float64, budget int) float64 {
	return (float64(prev)*(1-elapsed) + float64(n)) / float64(budget)
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
