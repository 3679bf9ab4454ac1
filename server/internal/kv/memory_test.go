package kv

import (
	"errors"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/clocktest"
)

func TestMemoryContract(t *testing.T) {
	runContract(t, func(t *testing.T) Store {
		t.Helper()
		m := NewMemory(nil)
		t.Cleanup(func() { _ = m.Close() })
		return m
	})
}

// newMemoryAt is a memory adapter on a settable clock.
func newMemoryAt(t *testing.T) (*Memory, *clocktest.Clock) {
	t.Helper()
	clock := clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	m := NewMemory(clock.Now)
	t.Cleanup(func() { _ = m.Close() })
	return m, clock
}

func TestMemoryInjectedClock(t *testing.T) {
	t.Run("ExpiryFollowsTheClock", func(t *testing.T) {
		m, clock := newMemoryAt(t)
		ctx := t.Context()
		mustNoErr(t, m.Set(ctx, "k", []byte("v"), time.Hour))
		clock.Advance(time.Hour - time.Millisecond)
		mustGet(t, m, "k", []byte("v"))
		clock.Advance(time.Millisecond)
		mustMissing(t, m, "k")
	})
	t.Run("IncrReportsTheExactRemainingWindow", func(t *testing.T) {
		m, clock := newMemoryAt(t)
		ctx := t.Context()
		_, ttl, err := m.Incr(ctx, "rl", time.Minute)
		mustNoErr(t, err)
		if ttl != time.Minute {
			t.Fatalf("ttl = %v, want 1m", ttl)
		}
		clock.Advance(20 * time.Second)
		n, ttl, err := m.Incr(ctx, "rl", time.Minute)
		mustNoErr(t, err)
		if n != 2 || ttl != 40*time.Second {
			t.Fatalf("Incr = %d, %v; want 2, 40s", n, ttl)
		}
	})
	t.Run("TTLRoundedToMilliseconds", func(t *testing.T) {
		m, clock := newMemoryAt(t)
		ctx := t.Context()
		mustNoErr(t, m.Set(ctx, "k", []byte("v"), time.Microsecond)) // rounds up, not to "no expiry"
		mustGet(t, m, "k", []byte("v"))
		clock.Advance(time.Millisecond)
		mustMissing(t, m, "k")
	})
	t.Run("SweeperDropsExpiredEntries", func(t *testing.T) {
		m, clock := newMemoryAt(t)
		ctx := t.Context()
		mustNoErr(t, m.Set(ctx, "old", []byte("v"), time.Second))
		mustNoErr(t, m.SAdd(ctx, "oldset", time.Second, "a"))
		mustNoErr(t, m.Set(ctx, "new", []byte("v"), time.Hour))
		clock.Advance(2 * time.Second)
		m.sweepExpired()
		m.mu.Lock()
		n := len(m.items)
		_, kept := m.items["new"]
		m.mu.Unlock()
		if n != 1 || !kept {
			t.Fatalf("after sweep %d items remain (new kept: %v), want only the unexpired one", n, kept)
		}
	})
}

func TestMemoryPublishNeverBlocks(t *testing.T) {
	m := NewMemory(nil)
	t.Cleanup(func() { _ = m.Close() })
	ctx := t.Context()
	sub, err := m.Subscribe(ctx, "ch")
	mustNoErr(t, err)

	done := make(chan error, 1)
	go func() {
		for range subscriberBuffer * 3 {
			if err := m.Publish(ctx, "ch", []byte("x")); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		mustNoErr(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	if got := len(sub); got != subscriberBuffer {
		t.Fatalf("subscriber holds %d messages, want its buffer of %d (the rest dropped)", got, subscriberBuffer)
	}
}

func TestMemoryPublishCopies(t *testing.T) {
	m := NewMemory(nil)
	t.Cleanup(func() { _ = m.Close() })
	ctx := t.Context()
	a, err := m.Subscribe(ctx, "ch")
	mustNoErr(t, err)
	b, err := m.Subscribe(ctx, "ch")
	mustNoErr(t, err)
	msg := []byte("hello")
	mustNoErr(t, m.Publish(ctx, "ch", msg))
	copy(msg, "XXXXX")
	got := recv(t, a)
	copy(got, "YYYYY")
	if got := recv(t, b); string(got) != "hello" {
		t.Fatalf("second subscriber saw %q: messages share memory", got)
	}
}

func TestMemoryCloseStopsSweeper(t *testing.T) {
	m := NewMemory(nil)
	mustNoErr(t, m.Close())
	select {
	case <-m.swept:
	default:
		t.Fatal("sweeper still running after Close")
	}
	if err := m.Ping(t.Context()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping after Close: %v", err)
	}
}
