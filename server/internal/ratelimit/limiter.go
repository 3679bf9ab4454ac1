package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"time"

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
	prefix string
	limit  int64
	window Window
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	window   int64 // index of the fixed window the counts belong to
	local    int64 // admitted here, not yet flushed
	flushing int64 // admitted here, being added to kv by a flush that has not answered yet
	fleet    int64 // the fleet's total at the last flush, ours included
}

// NewLimiter returns a limiter of limit requests per window, counted in kv under prefix (a key
// and the window index follow it). limit <= 0 admits everything.
func NewLimiter(store kv.Store, prefix string, limit int, window time.Duration, now func() time.Time, log *slog.Logger) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{kv: store, prefix: prefix, limit: int64(limit), window: Window{window}, now: now, log: log,
		buckets: map[string]*bucket{}}
}

// Allow counts one request for key and reports whether it is admitted; when it is not, it
// also returns the time until the window ends.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l.limit <= 0 {
		return true, 0
	}
	w, _, left := l.window.At(l.now())
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil || b.window != w {
		b = &bucket{window: w}
		l.buckets[key] = b
	}
	// Counts on their way to kv still count: the fleet total does not include them yet.
	if b.fleet+b.flushing+b.local >= l.limit {
		return false, left
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
	cur, _, _ := l.window.At(l.now())
	var work []pending
	l.mu.Lock()
	for k, b := range l.buckets {
		if b.window < cur && b.local == 0 {
			delete(l.buckets, k)
			continue
		}
		if b.local > 0 {
			work = append(work, pending{k, b.window, b.local})
			b.flushing, b.local = b.local, 0
		}
	}
	l.mu.Unlock()
	var err error
	for _, p := range work {
		var total int64
		if err == nil {
			fctx, cancel := context.WithTimeout(ctx, time.Second)
			total, _, err = l.kv.IncrBy(fctx, Key(l.prefix+p.key+":", p.window), p.n, 2*l.window.Size)
			cancel()
			if err != nil {
				l.log.Warn("could not flush rate-limit counts", "err", err)
			}
		}
		l.mu.Lock()
		if b := l.buckets[p.key]; b != nil && b.window == p.window {
			b.flushing -= p.n
			if err != nil {
				b.local += p.n // kv failed (here or for an earlier key): the next flush retries
			} else {
				b.fleet = total
			}
		}
		l.mu.Unlock()
	}
}
