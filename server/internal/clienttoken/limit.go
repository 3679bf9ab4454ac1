package clienttoken

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/kv"
)

// Limiter bounds requests per key (a hashed session id) per fixed window across the fleet,
// without a kv round trip on the request path: each replica counts locally and flushes its
// counts to kv in batches (Run), learning the fleet's total in return. A request is refused
// once the fleet total it knows plus its own unflushed count reaches the limit. Between two
// flushes replicas cannot see each other's counts, so a burst spread over N replicas can
// exceed the limit by what N replicas admit in one flush interval; a steady abuser is held
// to the limit.
type Limiter struct {
	kv     kv.Store
	limit  int64
	window time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	window int64 // index of the fixed window the counts belong to
	local  int64 // admitted here, not yet flushed
	fleet  int64 // the fleet's total at the last flush, ours included
}

// NewLimiter returns a limiter of limit requests per window. limit <= 0 admits everything.
func NewLimiter(store kv.Store, limit int, window time.Duration, now func() time.Time, log *slog.Logger) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{kv: store, limit: int64(limit), window: window, now: now, log: log, buckets: map[string]*bucket{}}
}

// Allow counts one request for key and reports whether it is admitted; when it is not, it
// also returns the time until the window ends.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l.limit <= 0 {
		return true, 0
	}
	now := l.now()
	w := now.UnixNano() / int64(l.window)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil || b.window != w {
		b = &bucket{window: w}
		l.buckets[key] = b
	}
	if b.fleet+b.local >= l.limit {
		return false, time.Duration((w+1)*int64(l.window) - now.UnixNano())
	}
	b.local++
	return true, 0
}

// Run flushes local counts every interval until ctx is done.
func (l *Limiter) Run(ctx context.Context, every time.Duration) {
	if l.limit <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.flush(ctx)
		}
	}
}

type pending struct {
	key    string
	window int64
	n      int64
}

func (l *Limiter) flush(ctx context.Context) {
	cur := l.now().UnixNano() / int64(l.window)
	var work []pending
	l.mu.Lock()
	for k, b := range l.buckets {
		if b.window < cur && b.local == 0 {
			delete(l.buckets, k)
			continue
		}
		if b.local > 0 {
			work = append(work, pending{k, b.window, b.local})
			b.local = 0
		}
	}
	l.mu.Unlock()
	for _, p := range work {
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		total, _, err := l.kv.IncrBy(fctx, "rl:tok:"+p.key+":"+strconv.FormatInt(p.window, 10), p.n, 2*l.window)
		cancel()
		l.mu.Lock()
		if b := l.buckets[p.key]; b != nil && b.window == p.window {
			if err != nil {
				b.local += p.n // keep counting them locally; the next flush retries
			} else {
				b.fleet = total
			}
		}
		l.mu.Unlock()
		if err != nil {
			l.log.Warn("could not flush rate-limit counts", "err", err)
			return
		}
	}
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
	w, elapsed := budgetWindowAt(now)
	key := "rl:mint:" + tenantID + ":"
	cur := key + strconv.FormatInt(w, 10)
	count := func(k string) int64 {
		b, err := s.kv.Get(ctx, k)
		if err != nil {
			return 0
		}
		n, _ := strconv.ParseInt(string(b), 10, 64)
		return n
	}
	prev := count(key + strconv.FormatInt(w-1, 10))
	refuse := func(n int64, used float64) error {
		s.noteBudget(tenantID, used, now)
		wait := time.Duration((w+1)*int64(budgetWindow) - now.UnixNano()) // until this window ends
		s.log.WarnContext(ctx, "refusing a /token call: the tenant's budget is spent", "tenant", tenantID,
			"budget", s.o.MintBudget, "window_calls", n, "previous_window_calls", prev)
		return apperr.Retry(apperr.UpstreamUnavailable, errBudget, "", wait)
	}
	// Check before counting: a refused call must not count, or a crowd of refused requests
	// would keep the budget spent for as long as it kept asking, and nobody would get a token.
	if n := count(cur); budgetShare(n+1, prev, elapsed, s.o.MintBudget) > 1 {
		return refuse(n, budgetShare(n, prev, elapsed, s.o.MintBudget))
	}
	n, _, err := s.kv.Incr(ctx, cur, 2*budgetWindow)
	if err != nil {
		s.log.WarnContext(ctx, "could not count a /token call against the budget", "tenant", tenantID, "err", err)
		return nil
	}
	used := budgetShare(n, prev, elapsed, s.o.MintBudget)
	if used > 1 {
		// Other replicas' calls landed between the check and the count.
		return refuse(n, used)
	}
	s.noteBudget(tenantID, used, now)
	return nil
}
