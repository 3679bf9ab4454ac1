// Package testenv holds what tests of several packages share about the machine they run on:
// whether a missing service skips a test or fails it (BFF_TEST_REQUIRE_SERVICES=1, as in CI),
// and a writer for logs that a test reads while the code under test still writes.
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"testing"
)

// RequireServices is the variable that turns a missing service from a skip into a failure.
const RequireServices = "BFF_TEST_REQUIRE_SERVICES"

// Required reports whether a missing service fails the test rather than skipping it.
func Required() bool { return os.Getenv(RequireServices) == "1" }

// Missing ends the test because something it needs is not there: it skips with the reason,
// or fails with it when services are required.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	reason := fmt.Sprintf(format, args...)
	if Required() {
		tb.Fatalf("%s, and %s=1", reason, RequireServices)
		return
	}
	tb.Skip(reason)
}

// URL returns the environment variable name, which names a service the test needs. When it is
// unset the test ends through Missing; what and example say what the service is and what a
// value looks like.
func URL(tb testing.TB, name, what, example string) string {
	tb.Helper()
	u := os.Getenv(name)
	if u == "" {
		Missing(tb, "%s not set: skipping a test that needs a real %s (e.g. %s)", name, what, example)
	}
	return u
}

// Buffer collects log lines: safe to write from many goroutines while a test reads it.
type Buffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

// Write appends p in one piece.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Writes counts the calls to Write so far.
func (b *Buffer) Writes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.writes
}

// Repeat calls f over and over on a goroutine of its own until the returned stop is called.
// stop waits for the call under way to return; calling it again does nothing.
func Repeat(f func()) (stop func()) {
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-quit:
				return
			default:
			}
			f()
		}
	}()
	return sync.OnceFunc(func() { close(quit); <-stopped })
}
