// Package kv is the small key-value port the BFF keeps its shared state in: sessions, the
// encrypted token cache, locks and rate-limit counters. Two adapters implement it: Redis
// (go-redis v9, the only importer of go-redis) and an in-process store for demo mode. One
// contract test suite runs against both.
//
// Keys are given without the deployment prefix; each adapter prepends its prefix (default
// "bff:") to every key and channel.
package kv

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Get and GetDel when the key does not exist or has expired.
var ErrNotFound = errors.New("kv: not found")

// ErrUnavailable wraps every failure of the store itself (connection refused, timeout, a
// Redis error reply). Callers answer 503 store_unavailable for it, never 401.
var ErrUnavailable = errors.New("kv: store unavailable")

// Store is the port. Every method takes a context and returns quickly: the Redis adapter has
// timeouts of a few hundred milliseconds so a sick Redis never holds a request for long.
// Errors other than ErrNotFound wrap ErrUnavailable. TTLs are rounded to milliseconds; a TTL
// <= 0 means "no expiry" for Set and is invalid for SetNX, SetXX and Incr.
type Store interface {
	// Get returns the value of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key with the given TTL, replacing any old value.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value only if key does not exist, and reports whether it did.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// SetXX replaces the value of key only if key exists, with the given TTL (> 0), and
	// reports whether it did. A write-back never recreates a key another caller deleted.
	SetXX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// GetDel returns the value of key and deletes it atomically, or ErrNotFound.
	GetDel(ctx context.Context, key string) ([]byte, error)
	// Delete removes the keys; missing keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// CompareAndDelete deletes key only if its value equals value, atomically, and reports
	// whether it did. It releases a lock only for its owner.
	CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error)
	// CompareAndExpire resets key's TTL only if its value equals value, atomically, and
	// reports whether it did. It renews a lock's lease only for its owner.
	CompareAndExpire(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Incr adds one to the counter at key, creating it with the TTL when it does not exist
	// (the TTL is not extended by later increments: fixed windows). It returns the new count
	// and the time left before the counter expires.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, time.Duration, error)
	// IncrBy is Incr adding delta (>= 1): replicas that count locally flush in batches.
	IncrBy(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, time.Duration, error)
	// SAdd adds members to the set at key and sets the set's TTL to ttl (extending it).
	SAdd(ctx context.Context, key string, ttl time.Duration, members ...string) error
	// SMembers returns the members of the set at key (empty when it does not exist).
	SMembers(ctx context.Context, key string) ([]string, error)
	// SRem removes members from the set at key.
	SRem(ctx context.Context, key string, members ...string) error
	// Publish sends msg to every current subscriber of channel, on any replica.
	Publish(ctx context.Context, channel string, msg []byte) error
	// Subscribe delivers the messages published on channel until ctx is done; then the
	// returned channel is closed. Delivery is best effort (a reconnect may drop messages),
	// so subscribers must also tolerate missing a message.
	Subscribe(ctx context.Context, channel string) (<-chan []byte, error)
	// Ping makes a real round trip to the store.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}
