package kv

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"time"
)

// sweepInterval bounds how long expired entries that nobody reads keep their memory. Reads
// expire lazily, so this only matters for memory, never for correctness.
const sweepInterval = 5 * time.Second

// Memory is the in-process Store for demo mode. It holds state for one process only, so it
// must not be used with more than one replica. It is safe for concurrent use; values are
// copied in and out, so callers may reuse their slices.
type Memory struct {
	now func() time.Time

	mu     sync.Mutex
	items  map[string]*memItem
	subs   map[string]map[*memSub]struct{}
	closed bool

	stop      chan struct{}
	swept     chan struct{}
	closeOnce sync.Once
}

var _ Store = (*Memory)(nil)

// memItem is a string value or a set, as in Redis's single keyspace. exp is zero for no expiry.
type memItem struct {
	val []byte
	set map[string]struct{} // non-nil for a set
	exp time.Time
}

type memSub struct{ ch chan []byte }

// NewMemory returns an empty in-process store with a background sweeper, stopped by Close.
// now is the clock (nil: time.Now); tests may freeze or advance it.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	m := &Memory{
		now:   now,
		items: make(map[string]*memItem),
		subs:  make(map[string]map[*memSub]struct{}),
		stop:  make(chan struct{}),
		swept: make(chan struct{}),
	}
	go m.sweep()
	return m
}

func (m *Memory) sweep() {
	defer close(m.swept)
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweepExpired()
		}
	}
}

func (m *Memory) sweepExpired() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for k, it := range m.items {
		if it.expired(now) {
			delete(m.items, k)
		}
	}
}

func (it *memItem) expired(now time.Time) bool { return !it.exp.IsZero() && !now.Before(it.exp) }

// begin locks the store and checks that the call may proceed. On success the caller holds
// m.mu and must unlock it.
func (m *Memory) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return unavailable(op, err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return unavailable(op, errClosed)
	}
	return nil
}

// live returns the unexpired item at k, deleting it if it has expired. m.mu must be held.
func (m *Memory) live(k string) *memItem {
	it, ok := m.items[k]
	if !ok {
		return nil
	}
	if it.expired(m.now()) {
		delete(m.items, k)
		return nil
	}
	return it
}

// liveString returns the unexpired string item at k: ErrNotFound when there is none, and
// Redis's WRONGTYPE when k holds a set. m.mu must be held.
func (m *Memory) liveString(op, k string) (*memItem, error) {
	it := m.live(k)
	switch {
	case it == nil:
		return nil, ErrNotFound
	case it.set != nil:
		return nil, unavailable(op, errWrongType)
	}
	return it, nil
}

// liveSet returns the unexpired set item at k: nil when there is none (Redis treats a missing
// key as an empty set), and Redis's WRONGTYPE when k holds a string. m.mu must be held.
func (m *Memory) liveSet(op, k string) (*memItem, error) {
	it := m.live(k)
	if it != nil && it.set == nil {
		return nil, unavailable(op, errWrongType)
	}
	return it, nil
}

// liveEqual returns the unexpired string item at k if it holds value, and nil otherwise. m.mu
// must be held.
func (m *Memory) liveEqual(k string, value []byte) *memItem {
	it := m.live(k)
	if it == nil || it.set != nil || !bytes.Equal(it.val, value) {
		return nil
	}
	return it
}

func (m *Memory) expiry(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return m.now().Add(roundTTL(ttl))
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return bytes.Clone(b)
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := m.begin(ctx, "memory get"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	it, err := m.liveString("memory get", key)
	if err != nil {
		return nil, err
	}
	return clone(it.val), nil
}

// Set implements Store.
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.begin(ctx, "memory set"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.items[key] = &memItem{val: clone(value), exp: m.expiry(ttl)}
	return nil
}

// SetNX implements Store.
func (m *Memory) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errNonPositiveTTL
	}
	if err := m.begin(ctx, "memory setnx"); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	if m.live(key) != nil {
		return false, nil
	}
	m.items[key] = &memItem{val: clone(value), exp: m.expiry(ttl)}
	return true, nil
}

// SetXX implements Store.
func (m *Memory) SetXX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errNonPositiveTTL
	}
	if err := m.begin(ctx, "memory setxx"); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	if m.live(key) == nil {
		return false, nil
	}
	m.items[key] = &memItem{val: clone(value), exp: m.expiry(ttl)}
	return true, nil
}

// GetDel implements Store.
func (m *Memory) GetDel(ctx context.Context, key string) ([]byte, error) {
	if err := m.begin(ctx, "memory getdel"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	it, err := m.liveString("memory getdel", key)
	if err != nil {
		return nil, err
	}
	delete(m.items, key)
	return it.val, nil // no longer reachable from the store, so no copy is needed
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, keys ...string) error {
	if err := m.begin(ctx, "memory del"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.items, k)
	}
	return nil
}

// CompareAndDelete implements Store.
func (m *Memory) CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error) {
	if err := m.begin(ctx, "memory compare-and-delete"); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	if m.liveEqual(key, value) == nil {
		return false, nil
	}
	delete(m.items, key)
	return true, nil
}

// CompareAndExpire implements Store.
func (m *Memory) CompareAndExpire(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errNonPositiveTTL
	}
	if err := m.begin(ctx, "memory compare-and-expire"); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	it := m.liveEqual(key, value)
	if it == nil {
		return false, nil
	}
	it.exp = m.expiry(ttl)
	return true, nil
}

// Incr implements Store. The counter is stored as a decimal string, as Redis stores it.
func (m *Memory) Incr(ctx context.Context, key string, ttl time.Duration) (int64, time.Duration, error) {
	return m.IncrBy(ctx, key, 1, ttl)
}

// IncrBy implements Store.
func (m *Memory) IncrBy(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, time.Duration, error) {
	if err := checkIncr(delta, ttl); err != nil {
		return 0, 0, err
	}
	if err := m.begin(ctx, "memory incr"); err != nil {
		return 0, 0, err
	}
	defer m.mu.Unlock()
	it := m.live(key)
	if it == nil {
		it = &memItem{val: []byte("0")}
		m.items[key] = it
	}
	if it.set != nil {
		return 0, 0, unavailable("memory incr", errWrongType)
	}
	n, err := strconv.ParseInt(string(it.val), 10, 64)
	if err != nil {
		return 0, 0, unavailable("memory incr", errWrongType)
	}
	n += delta
	it.val = strconv.AppendInt(nil, n, 10)
	if it.exp.IsZero() {
		it.exp = m.expiry(ttl)
	}
	return n, it.exp.Sub(m.now()), nil
}

// SAdd implements Store.
func (m *Memory) SAdd(ctx context.Context, key string, ttl time.Duration, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	if err := m.begin(ctx, "memory sadd"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	it, err := m.liveSet("memory sadd", key)
	if err != nil {
		return err
	}
	if it == nil {
		it = &memItem{set: make(map[string]struct{}, len(members))}
		m.items[key] = it
	}
	for _, s := range members {
		it.set[s] = struct{}{}
	}
	it.exp = m.expiry(ttl)
	return nil
}

// SMembers implements Store.
func (m *Memory) SMembers(ctx context.Context, key string) ([]string, error) {
	if err := m.begin(ctx, "memory smembers"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	it, err := m.liveSet("memory smembers", key)
	if err != nil {
		return nil, err
	}
	if it == nil {
		return []string{}, nil
	}
	out := make([]string, 0, len(it.set))
	for s := range it.set {
		out = append(out, s)
	}
	return out, nil
}

// SRem implements Store. Like Redis, removing the last member removes the key.
func (m *Memory) SRem(ctx context.Context, key string, members ...string) error {
	if err := m.begin(ctx, "memory srem"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	it, err := m.liveSet("memory srem", key)
	if err != nil || it == nil {
		return err
	}
	for _, s := range members {
		delete(it.set, s)
	}
	if len(it.set) == 0 {
		delete(m.items, key)
	}
	return nil
}

// Publish implements Store. A subscriber whose buffer is full misses the message: a slow
// reader must never block a publisher (which holds the store's lock while it fans out).
func (m *Memory) Publish(ctx context.Context, channel string, msg []byte) error {
	if err := m.begin(ctx, "memory publish"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	for s := range m.subs[channel] {
		select {
		case s.ch <- clone(msg):
		default:
		}
	}
	return nil
}

// Subscribe implements Store. The subscription is registered before Subscribe returns.
func (m *Memory) Subscribe(ctx context.Context, channel string) (<-chan []byte, error) {
	if err := m.begin(ctx, "memory subscribe"); err != nil {
		return nil, err
	}
	s := &memSub{ch: make(chan []byte, subscriberBuffer)}
	if m.subs[channel] == nil {
		m.subs[channel] = make(map[*memSub]struct{})
	}
	m.subs[channel][s] = struct{}{}
	m.mu.Unlock()

	go func() {
		select {
		case <-ctx.Done():
		case <-m.stop:
		}
		// Unregister and close under the lock, so Publish never sends on a closed channel.
		m.mu.Lock()
		delete(m.subs[channel], s)
		if len(m.subs[channel]) == 0 {
			delete(m.subs, channel)
		}
		close(s.ch)
		m.mu.Unlock()
	}()
	return s.ch, nil
}

// Ping implements Store; it fails only after Close.
func (m *Memory) Ping(ctx context.Context) error {
	if err := m.begin(ctx, "memory ping"); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

// Close stops the sweeper and closes every subscription. Later calls fail with
// ErrUnavailable. Close is idempotent.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		close(m.stop)
		<-m.swept
	})
	return nil
}
