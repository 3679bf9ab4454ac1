// Package each runs a test against every kv adapter: the in-process store always, and real
// Redis when BFF_TEST_REDIS_URL is set (see kvtest for the skip rules). It lives apart from
// kvtest because it imports kv, whose own tests import kvtest.
package each

import (
	"context"
	"testing"

	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
)

// Store runs f once per adapter as a subtest ("memory", "redis"). newKV returns a fresh store
// for that adapter; within one subtest, stores made by newKV share one Redis key prefix, so
// they stand for replicas sharing one Redis.
func Store(t *testing.T, f func(t *testing.T, newKV func(t *testing.T) kv.Store)) {
	t.Run("memory", func(t *testing.T) {
		f(t, func(t *testing.T) kv.Store {
			m := kv.NewMemory(nil)
			t.Cleanup(func() { m.Close() })
			return m
		})
	})
	t.Run("redis", func(t *testing.T) {
		url := kvtest.RedisURL(t)
		prefix := kvtest.Prefix(t, url)
		f(t, func(t *testing.T) kv.Store {
			r, err := kv.NewRedis(context.Background(), url, prefix)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			return r
		})
	})
}
