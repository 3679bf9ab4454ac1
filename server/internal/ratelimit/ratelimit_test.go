package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest/each"
)

func TestWindowAt(t *testing.T) {
	base := time.Unix(0, 0).Add(1000 * time.Minute)
	tests := []struct {
		name    string
		size    time.Duration
		now     time.Time
		idx     int64
		elapsed float64
		left    time.Duration
	}{
		{"start of a window", time.Minute, base, 1000, 0, time.Minute},
		{"a quarter in", time.Minute, base.Add(15 * time.Second), 1000, 0.25, 45 * time.Second},
		{"last nanosecond", time.Minute, base.Add(time.Minute - 1), 1000, float64(time.Minute-1) / float64(time.Minute), 1},
		{"five-minute windows", 5 * time.Minute, base.Add(150 * time.Second), 200, 0.5, 150 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx, elapsed, left := Window{tc.size}.At(tc.now)
			if idx != tc.idx || elapsed != tc.elapsed || left != tc.left {
				t.Errorf("At = %d %v %v, want %d %v %v", idx, elapsed, left, tc.idx, tc.elapsed, tc.left)
			}
		})
	}
}

func TestSliding(t *testing.T) {
	tests := []struct {
		name        string
		n, prev     int64
		elapsed     float64
		limit       int
		wantPercent int
	}{
		{"empty", 0, 0, 0.5, 10, 0},
		{"current only", 5, 0, 0.9, 10, 50},
		{"previous fully overlapping", 0, 10, 0, 10, 100},
		{"previous half aged out", 2, 10, 0.5, 10, 70},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := int(Sliding(tc.n, tc.prev, tc.elapsed, tc.limit)*100 + 0.5); got != tc.wantPercent {
				t.Errorf("Sliding = %d%%, want %d%%", got, tc.wantPercent)
			}
		})
	}
}

func TestCount(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		ctx, store := context.Background(), newKV(t)
		if n, err := Count(ctx, store, "rl:test:absent"); n != 0 || err != nil {
			t.Fatalf("absent counter = %d, %v; want 0, nil", n, err)
		}
		if _, _, err := store.IncrBy(ctx, "rl:test:7", 3, time.Minute); err != nil {
			t.Fatal(err)
		}
		if n, err := Count(ctx, store, Key("rl:test:", 7)); n != 3 || err != nil {
			t.Fatalf("counter = %d, %v; want 3, nil", n, err)
		}
	})
}

// TestLimiterFleet checks the limiter's promise: two replicas sharing kv hold a steady client
// to the limit once their counts have been flushed (a burst may pass it by what the replicas
// admit between flushes), and the window's end frees it.
func TestLimiterFleet(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		var mu sync.Mutex
		now := time.Unix(0, 0).Add(time.Hour)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		log := slog.New(slog.DiscardHandler)
		store := newKV(t)
		a := NewLimiter(store, "rl:tok:", 4, time.Minute, clock, log)
		b := NewLimiter(store, "rl:tok:", 4, time.Minute, clock, log)
		for i := range 2 {
			if ok, _ := a.Allow("s"); !ok {
				t.Fatalf("replica a refused request %d of 4", i+1)
			}
			if ok, _ := b.Allow("s"); !ok {
				t.Fatalf("replica b refused request %d of 4", i+1)
			}
		}
		a.flush(context.Background())
		b.flush(context.Background())
		// a has not seen b's count yet: it admits once more, and learns the total when it
		// flushes that request.
		if ok, _ := a.Allow("s"); !ok {
			t.Fatal("replica a refused before it could know the fleet's count")
		}
		a.flush(context.Background())
		ok, wait := a.Allow("s")
		if ok || wait != time.Minute {
			t.Fatalf("fifth request: admitted %v, wait %v; want refused for a minute", ok, wait)
		}
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
		if ok, _ := a.Allow("s"); !ok {
			t.Fatal("a new window still refuses")
		}
		off := NewLimiter(newKV(t), "rl:tok:", 0, time.Minute, clock, log)
		for range 10 {
			if ok, _ := off.Allow("s"); !ok {
				t.Fatal("a limit of 0 must admit everything")
			}
		}
	})
}

// gatedKV holds every IncrBy until its gate is opened, so a test can act while a flush is
// on its way to kv; failing makes the IncrBy calls fail instead.
type gatedKV struct {
	kv.Store
	entered chan struct{}
	gate    chan struct{}
	failing bool
}

func (g *gatedKV) IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, time.Duration, error) {
	g.entered <- struct{}{}
	<-g.gate
	if g.failing {
		return 0, 0, errors.New("kv unreachable")
	}
	return g.Store.IncrBy(ctx, key, n, ttl)
}

// TestLimiterCountsWhileFlushing: requests admitted before a flush still count while the
// flush waits on kv (a request in that gap used to be admitted past the limit), and counts
// a failed flush could not deliver, for any key, are kept for the next one.
func TestLimiterCountsWhileFlushing(t *testing.T) {
	now := time.Unix(0, 0).Add(time.Hour)
	clock := func() time.Time { return now }
	log := slog.New(slog.DiscardHandler)
	for _, failing := range []bool{false, true} {
		name := map[bool]string{false: "kv answers", true: "kv fails"}[failing]
		t.Run(name, func(t *testing.T) {
			g := &gatedKV{Store: kv.NewMemory(clock), entered: make(chan struct{}), gate: make(chan struct{}), failing: failing}
			l := NewLimiter(g, "rl:tok:", 3, time.Minute, clock, log)
			for range 3 {
				if ok, _ := l.Allow("a"); !ok {
					t.Fatal("refused within the limit")
				}
			}
			l.Allow("b")
			done := make(chan struct{})
			go func() { l.flush(context.Background()); close(done) }()
			<-g.entered // the flush has taken the counts and waits on kv
			if ok, _ := l.Allow("a"); ok {
				t.Error("a fourth request was admitted while the first three were being flushed")
			}
			close(g.gate)
			if !failing {
				<-g.entered // the second key's IncrBy
			}
			<-done
			if ok, _ := l.Allow("a"); ok {
				t.Error("a fourth request was admitted after the flush")
			}
			l.mu.Lock()
			a, b := *l.buckets["a"], *l.buckets["b"]
			l.mu.Unlock()
			if a.flushing != 0 || b.flushing != 0 {
				t.Errorf("counts left in flight: a %d, b %d", a.flushing, b.flushing)
			}
			if failing && (a.local != 3 || b.local != 1) {
				t.Errorf("after a failed flush: a.local %d, b.local %d; want 3 and 1 kept for the next flush", a.local, b.local)
			}
			if !failing && (a.fleet != 3 || b.fleet != 1) {
				t.Errorf("after a flush: a.fleet %d, b.fleet %d; want 3 and 1", a.fleet, b.fleet)
			}
		})
	}
}
