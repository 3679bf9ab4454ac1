// Package ratelimit is the one counter design behind every limit of the BFF: fixed windows
// counted in kv under "rl:" keys (README, "Redis keys"). A counter key is a prefix plus the
// index of its window, so each window starts from zero and kv forgets old ones by their TTL.
//
// Three limits use it: the per-session limit on /client-token and /connect/consent (Limiter:
// counted locally, flushed to kv in batches, off the request path), the login limits (package
// auth: one kv increment per attempt) and each tenant's Basiq /token budget (package
// clienttoken: the current and previous windows, weighted into a sliding estimate).
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/basiq-bff/bff/server/internal/kv"
)

// Window is a fixed counting window: time is cut into windows of Size from the Unix epoch.
type Window struct{ Size time.Duration }

// At returns the index of the window now falls in, how much of it has passed (0–1) and the
// time left until it ends.
func (w Window) At(now time.Time) (idx int64, elapsed float64, left time.Duration) {
	size := int64(w.Size)
	idx = now.UnixNano() / size
	into := now.UnixNano() - idx*size
	return idx, float64(into) / float64(size), time.Duration(size - into)
}

// Key is the kv key of the counter of window idx under prefix.
func Key(prefix string, idx int64) string { return prefix + strconv.FormatInt(idx, 10) }

// Count reads a counter: 0 when it does not exist (no calls in that window yet); an error,
// wrapping the kv error, when kv cannot answer.
func Count(ctx context.Context, store kv.Store, key string) (int64, error) {
	b, err := store.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ratelimit: read counter: %w", err)
	}
	n, _ := strconv.ParseInt(string(b), 10, 64)
	return n, nil
}

// Sliding estimates the calls in the last Size from two fixed windows, as Basiq counts its
// own limits: the previous window's count prev weighted by how much of it still overlaps, plus the
// current window's count, as a share of limit.
func Sliding(n, prev int64, elapsed float64, limit int) float64 {
	return (float64(prev)*(1-elapsed) + float64(n)) / float64(limit)
}
