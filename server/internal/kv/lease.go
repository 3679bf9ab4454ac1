package kv

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"
)

// Lease is a fleet-wide lock in a Store with a random owner token. Its lease is renewed while
// held, so work slower than the lease does not let a second owner in; if the holder dies the
// lease runs out and another replica takes over. Only the owner can renew or release it
// (CompareAndExpire, CompareAndDelete).
type Lease struct {
	store Store
	key   string
	owner []byte
	stop  chan struct{}
	done  chan struct{}
}

// TryLease takes the lock at key for lease and renews it every lease/3 until Release. It
// returns nil, nil when another owner holds the lock. lost, when not nil, is called once if a
// renewal fails or finds the lock no longer ours (err is nil then); the work under the lock
// carries on, and the store's conditional writes are what keep it safe.
func TryLease(ctx context.Context, store Store, key string, lease time.Duration, lost func(key string, err error)) (*Lease, error) {
	owner := make([]byte, 16)
	if _, err := rand.Read(owner); err != nil {
		return nil, fmt.Errorf("kv: lock owner: %w", err)
	}
	won, err := store.SetNX(ctx, key, owner, lease)
	if err != nil || !won {
		return nil, err
	}
	l := &Lease{store: store, key: key, owner: owner, stop: make(chan struct{}), done: make(chan struct{})}
	go l.renew(lease, lost)
	return l, nil
}

func (l *Lease) renew(lease time.Duration, lost func(string, error)) {
	defer close(l.done)
	t := time.NewTicker(lease / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), lease/3)
			ok, err := l.store.CompareAndExpire(ctx, l.key, l.owner, lease)
			cancel()
			if err != nil || !ok {
				if lost != nil {
					lost(l.key, err)
				}
				return
			}
		}
	}
}

// Release stops renewal and deletes the lock if it is still ours.
func (l *Lease) Release() {
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = l.store.CompareAndDelete(ctx, l.key, l.owner)
}

// Watch calls drop for every message published on channel, on any replica, until ctx is done.
// It resubscribes a second after a lost connection; after any gap it calls forget, since
// messages may have been missed. Replicas use it to drop in-process copies that another
// replica has ended.
func Watch(ctx context.Context, store Store, channel string, drop func(msg []byte), forget func()) {
	for ctx.Err() == nil {
		ch, err := store.Subscribe(ctx, channel)
		if err == nil {
			for msg := range ch {
				drop(msg)
			}
		}
		forget()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
