package kv

import (
	"errors"
	"strconv"
	"time"
)

// defaultPrefix is used when an adapter is given an empty prefix.
const defaultPrefix = "bff:"

// errNonPositiveTTL reports a caller bug (SetNX and Incr need an expiry), not a sick store, so
// it deliberately does not wrap ErrUnavailable.
var errNonPositiveTTL = errors.New("kv: ttl must be positive")

// errNonPositiveDelta is a caller bug, like errNonPositiveTTL: not an unavailable store.
var errNonPositiveDelta = errors.New("kv: increment must be at least 1")

// checkIncr validates IncrBy's arguments, the same for every adapter.
func checkIncr(delta int64, ttl time.Duration) error {
	if ttl <= 0 {
		return errNonPositiveTTL
	}
	if delta < 1 {
		return errNonPositiveDelta
	}
	return nil
}

// errWrongType mirrors Redis's WRONGTYPE and "not an integer" replies in the memory adapter.
var errWrongType = errors.New("kv: operation against a key holding the wrong kind of value")

// errClosed is returned by the memory adapter after Close.
var errClosed = errors.New("kv: store is closed")

// unavailableError classifies a store failure. Its message names the adapter and operation
// only: keys (which may carry session ids) and values never appear in it.
type unavailableError struct {
	op  string // e.g. "redis get"
	err error
}

func (e *unavailableError) Error() string {
	return "kv " + e.op + ": store unavailable: " + e.err.Error()
}

// Unwrap exposes ErrUnavailable and the cause, so errors.Is works for both.
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

func unavailable(op string, err error) error { return &unavailableError{op: op, err: err} }

// prefixOrDefault returns p, or the default prefix when p is empty.
func prefixOrDefault(p string) string {
	if p == "" {
		return defaultPrefix
	}
	return p
}

// roundTTL rounds d to whole milliseconds, the precision both adapters keep; a positive TTL
// never rounds down to zero, which would mean "no expiry" or be rejected by Redis.
func roundTTL(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	r := d.Round(time.Millisecond)
	if r == 0 {
		r = time.Millisecond
	}
	return r
}

// ms formats a positive duration as a millisecond count for PEXPIRE-style arguments.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
