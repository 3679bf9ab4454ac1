// Package ttlcache is the one in-process cache with a short life that replicas keep in front
// of kv: session records and verified cookies (package session) and tokens (package
// clienttoken). Entries are trusted for one TTL; other replicas' changes reach it through kv
// publish/subscribe (kv.Watch), and the TTL bounds the damage of a lost message. It is a leaf.
package ttlcache

import (
	"strings"
	"sync"
	"time"
)

// Cache maps string keys to values for one TTL each. It is bounded: when full, arbitrary
// entries are evicted (map iteration order is random), which is enough for a cache this
// short-lived. A TTL <= 0 turns it off: nothing is kept. It is safe for concurrent use.
type Cache[V any] struct {
	mu sync.RWMutex
	m  map[string]entry[V]
	// forgotten remembers keys Forget dropped, with when, for one TTL.
	forgotten map[string]time.Time
	ttl       time.Duration
	max       int
}

type entry[V any] struct {
	v  V
	at time.Time
}

// New returns a cache of at most max entries, each trusted for ttl.
func New[V any](ttl time.Duration, max int) *Cache[V] {
	return &Cache[V]{m: make(map[string]entry[V]), forgotten: make(map[string]time.Time), ttl: ttl, max: max}
}

// Get returns k's value if it was put less than one TTL before now.
func (c *Cache[V]) Get(k string, now time.Time) (V, bool) {
	var zero V
	if c.ttl <= 0 {
		return zero, false
	}
	c.mu.RLock()
	r, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || now.Sub(r.at) >= c.ttl {
		return zero, false
	}
	return r.v, true
}

// Put stores v under k as of now, unless Forget dropped k less than one TTL ago.
func (c *Cache[V]) Put(k string, v V, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.forgotten[k]; ok {
		if now.Sub(at) < c.ttl {
			return
		}
		delete(c.forgotten, k)
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			if len(c.m) < c.max {
				break
			}
		}
	}
	c.m[k] = entry[V]{v: v, at: now}
}

// Drop removes k.
func (c *Cache[V]) Drop(k string) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// Forget removes k and ignores puts of it for one TTL: a request that read the value just
// before it ended elsewhere must not install a copy after the "ended" message was handled.
func (c *Cache[V]) Forget(k string, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
	if len(c.forgotten) >= c.max {
		for old, at := range c.forgotten {
			if now.Sub(at) >= c.ttl {
				delete(c.forgotten, old)
			}
		}
		if len(c.forgotten) >= c.max {
			clear(c.forgotten) // a flood of ends; the copies themselves were dropped
		}
	}
	c.forgotten[k] = now
}

// DropPrefix removes every key that starts with prefix.
func (c *Cache[V]) DropPrefix(prefix string) {
	c.mu.Lock()
	for k := range c.m {
		if strings.HasPrefix(k, prefix) {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

// Clear removes every entry (not the forgotten keys).
func (c *Cache[V]) Clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
