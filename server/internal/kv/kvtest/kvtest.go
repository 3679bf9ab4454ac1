// Package kvtest gives tests of other packages a real Redis to work in: the URL from
// BFF_TEST_REDIS_URL and a random key prefix whose keys are deleted when the test ends. It
// skips when the variable is unset, unless BFF_TEST_REQUIRE_SERVICES=1 makes that a failure.
// On Linux it also starts throwaway Sentinel and Cluster deployments on loopback
// (StartSentinel, StartCluster) for tests of failover and sharding.
package kvtest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/basiq-bff/bff/server/internal/testenv"
)

// RedisURL returns BFF_TEST_REDIS_URL, or skips the test (fails it when services are
// required).
func RedisURL(tb testing.TB) string {
	tb.Helper()
	return testenv.URL(tb, "BFF_TEST_REDIS_URL", "Redis", "redis://127.0.0.1:6379/9")
}

// Prefix returns a fresh key prefix in the Redis at rawURL and deletes every key under it
// when the test ends.
func Prefix(tb testing.TB, rawURL string) string {
	tb.Helper()
	prefix := "bfftest:" + rand.Text()[:12] + ":"
	tb.Cleanup(func() {
		if err := DeletePrefix(rawURL, prefix); err != nil {
			tb.Errorf("clean up Redis prefix %s: %v", prefix, err)
		}
	})
	return prefix
}

// DeletePrefix deletes every key under prefix.
func DeletePrefix(rawURL, prefix string) error {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := c.Del(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return c.Del(ctx, batch...).Err()
	}
	return nil
}

// Keys lists the keys under prefix (prefix included), for tests that check what was stored.
func Keys(tb testing.TB, rawURL, pattern string) []string {
	tb.Helper()
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	var out []string
	iter := c.Scan(context.Background(), 0, pattern, 1000).Iterator()
	for iter.Next(context.Background()) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}
