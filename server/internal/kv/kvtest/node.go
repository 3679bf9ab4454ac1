package kvtest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// NodeClient is a direct client of the one Redis node at addr (host:port), for checking a
// deployment behind the back of the client under test. It never retries, so a check sees
// the node as it is; it is closed at cleanup.
func NodeClient(tb testing.TB, addr string) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// WaitFor polls check every 100ms, giving each call one second, until it returns nil, and
// fails tb after timeout with the last error. It must be called from the test's goroutine.
func WaitFor(tb testing.TB, timeout time.Duration, what string, check func(ctx context.Context) error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(tb.Context(), time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waiting for %s: gave up after %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
