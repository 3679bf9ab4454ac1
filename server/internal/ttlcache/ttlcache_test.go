package ttlcache

import (
	"fmt"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		do   func(c *Cache[string])
		key  string
		at   time.Duration // when Get runs, after now
		want bool
	}{
		{"fresh", func(c *Cache[string]) { c.Put("a", "1", now) }, "a", time.Second, true},
		{"expired", func(c *Cache[string]) { c.Put("a", "1", now) }, "a", 2 * time.Second, false},
		{"dropped", func(c *Cache[string]) { c.Put("a", "1", now); c.Drop("a") }, "a", 0, false},
		{"put again after a drop", func(c *Cache[string]) {
			c.Put("a", "1", now)
			c.Drop("a")
			c.Put("a", "1", now)
		}, "a", time.Second, true},
		// A copy put just after the "ended" message was handled (a request that read the
		// record before the end) is ignored.
		{"forgotten copy is not reinstalled", func(c *Cache[string]) {
			c.Put("a", "1", now)
			c.Forget("a", now)
			c.Put("a", "1", now.Add(time.Second))
		}, "a", time.Second, false},
		{"forgetting one key keeps the others", func(c *Cache[string]) {
			c.Forget("a", now)
			c.Put("b", "1", now)
		}, "b", time.Second, true},
		{"forgotten for one TTL only", func(c *Cache[string]) {
			c.Forget("a", now)
			c.Put("a", "1", now.Add(2*time.Second))
		}, "a", 3 * time.Second, true},
		{"prefix drop", func(c *Cache[string]) {
			c.Put("tok:acme:k1:x", "1", now)
			c.DropPrefix("tok:acme:k1:")
		}, "tok:acme:k1:x", 0, false},
		{"prefix drop spares the others", func(c *Cache[string]) {
			c.Put("tok:acme:k2:x", "1", now)
			c.DropPrefix("tok:acme:k1:")
		}, "tok:acme:k2:x", 0, true},
		{"clear", func(c *Cache[string]) { c.Put("a", "1", now); c.Clear() }, "a", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New[string](2*time.Second, 10)
			tc.do(c)
			if _, ok := c.Get(tc.key, now.Add(tc.at)); ok != tc.want {
				t.Errorf("Get(%q) found = %v, want %v", tc.key, ok, tc.want)
			}
		})
	}
}

func TestCacheBoundedAndOff(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := New[int](time.Minute, 5)
	for i := range 50 {
		c.Put(fmt.Sprint(i), i, now)
		c.Forget(fmt.Sprint(-i), now)
	}
	if len(c.m) > 5 || len(c.forgotten) > 5 {
		t.Errorf("holds %d entries and %d forgotten keys, bound 5", len(c.m), len(c.forgotten))
	}
	if v, ok := c.Get("49", now); !ok || v != 49 {
		t.Errorf("the latest put is missing: %v %v", v, ok)
	}
	off := New[int](0, 5)
	off.Put("a", 1, now)
	if _, ok := off.Get("a", now); ok {
		t.Error("a cache with TTL 0 kept a value")
	}
}
