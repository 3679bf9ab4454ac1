// Package clocktest is a settable clock for tests: code under test takes its Now as its time
// source, and the test moves it forward by hand, so timeouts, expiries and refresh boundaries
// can be crossed without waiting for them.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a time that only moves when Advance is called. It is safe for concurrent use, since
// the code reading it usually runs on other goroutines than the test moving it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock standing at t.
func New(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's current time; pass the method value where a func() time.Time is
// wanted.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
