package kv_test

import (
	"context"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest/each"
)

func TestLease(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		ctx, store := context.Background(), newKV(t)
		first, err := kv.TryLease(ctx, store, "lock:test", 300*time.Millisecond, nil)
		if err != nil || first == nil {
			t.Fatalf("TryLease on a free key = %v, %v; want the lock", first, err)
		}
		// Held past its lease: renewal keeps the second owner out.
		time.Sleep(500 * time.Millisecond)
		if second, err := kv.TryLease(ctx, store, "lock:test", 300*time.Millisecond, nil); second != nil || err != nil {
			t.Fatalf("TryLease on a held key = %v, %v; want nil, nil", second, err)
		}
		first.Release()
		second, err := kv.TryLease(ctx, store, "lock:test", 300*time.Millisecond, nil)
		if err != nil || second == nil {
			t.Fatalf("TryLease after Release = %v, %v; want the lock", second, err)
		}
		// A release by an owner whose lease was taken over leaves the new owner's lock alone.
		if err := store.Set(ctx, "lock:test", []byte("someone else"), time.Minute); err != nil {
			t.Fatal(err)
		}
		second.Release()
		if v, err := store.Get(ctx, "lock:test"); err != nil || string(v) != "someone else" {
			t.Fatalf("after a stale Release the lock holds %q, %v; want the new owner's", v, err)
		}
	})
}

func TestWatch(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		store := newKV(t)
		pub, sub := store, store
		ctx, cancel := context.WithCancel(context.Background())
		got, forgot := make(chan string, 10), make(chan struct{}, 10)
		done := make(chan struct{})
		go func() {
			defer close(done)
			kv.Watch(ctx, sub, "test:ended", func(msg []byte) { got <- string(msg) }, func() { forgot <- struct{}{} })
		}()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if err := pub.Publish(context.Background(), "test:ended", []byte("s1")); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-got:
				if m != "s1" {
					t.Fatalf("got %q, want s1", m)
				}
			case <-time.After(50 * time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatal("no message reached the watcher")
				}
				continue
			}
			break
		}
		cancel()
		<-done
		select {
		case <-forgot:
		default:
			t.Error("the end of a subscription did not forget the copies")
		}
	})
}
