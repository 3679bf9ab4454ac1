package kv

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisURL returns the Redis the tests may use, or skips (fails when services are required).
func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("BFF_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("BFF_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("BFF_TEST_REDIS_URL not set and BFF_TEST_REQUIRE_SERVICES=1")
		}
		t.Skip("BFF_TEST_REDIS_URL not set: skipping tests against a real Redis (e.g. BFF_TEST_REDIS_URL=redis://127.0.0.1:6379/9)")
	}
	return u
}

// newTestRedis returns a Redis store under a random prefix, and deletes every key under that
// prefix at cleanup through a separate client.
func newTestRedis(t *testing.T) *Redis {
	t.Helper()
	rawURL := redisURL(t)
	prefix := "bfftest:" + rand.Text() + ":"
	r, err := NewRedis(t.Context(), rawURL, prefix)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() {
		_ = r.Close()
		opt, err := redis.ParseURL(rawURL)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		c := redis.NewClient(opt)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				t.Errorf("cleanup: del: %v", err)
				return
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup: scan: %v", err)
		}
	})
	return r
}

func TestRedisContract(t *testing.T) {
	redisURL(t)
	runContract(t, func(t *testing.T) Store { return newTestRedis(t) })
}

// TestRedisKeysArePrefixed checks the keys land in Redis under the prefix, where operators
// (and DESIGN §4's key list) expect them.
func TestRedisKeysArePrefixed(t *testing.T) {
	r := newTestRedis(t)
	ctx := t.Context()
	mustNoErr(t, r.Set(ctx, "sess:abc", []byte("v"), time.Minute))
	mustNoErr(t, r.SAdd(ctx, "usess:t:1", time.Minute, "abc"))
	for _, k := range []string{"sess:abc", "usess:t:1"} {
		n, err := r.client.Exists(ctx, r.prefix+k).Result()
		mustNoErr(t, err)
		if n != 1 {
			t.Fatalf("key %q not found under prefix %q", k, r.prefix)
		}
	}
	ttl, err := r.client.PTTL(ctx, r.prefix+"usess:t:1").Result()
	mustNoErr(t, err)
	if ttl <= 0 || ttl > time.Minute {
		t.Fatalf("set TTL = %v, want it set by SAdd", ttl)
	}
}

func TestRedisDefaultPrefix(t *testing.T) {
	r, err := NewRedis(t.Context(), redisURL(t), "")
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if r.prefix != "bff:" {
		t.Fatalf("prefix = %q, want bff:", r.prefix)
	}
}

// TestRedisIncrRepairsMissingTTL covers a counter left without an expiry: it must not count
// forever.
func TestRedisIncrRepairsMissingTTL(t *testing.T) {
	r := newTestRedis(t)
	ctx := t.Context()
	mustNoErr(t, r.Set(ctx, "rl", []byte("5"), 0))
	n, ttl, err := r.Incr(ctx, "rl", time.Minute)
	mustNoErr(t, err)
	if n != 6 || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("Incr = %d, %v; want 6 with a TTL", n, ttl)
	}
}

// TestRedisScriptCacheFlushed checks the Lua scripts still run after SCRIPT FLUSH (a Redis
// restart or failover empties the script cache).
func TestRedisScriptCacheFlushed(t *testing.T) {
	r := newTestRedis(t)
	ctx := t.Context()
	mustNoErr(t, r.Set(ctx, "lock", []byte("me"), time.Minute))
	mustNoErr(t, r.client.ScriptFlush(ctx).Err())
	ok, err := r.CompareAndDelete(ctx, "lock", []byte("me"))
	mustNoErr(t, err)
	if !ok {
		t.Fatal("CompareAndDelete failed after SCRIPT FLUSH")
	}
}

func TestNewRedisUnreachable(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{"refused", "redis://127.0.0.1:1/0"},
		{"refused with password", "redis://user:hunter2-secret@127.0.0.1:1/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r, err := NewRedis(t.Context(), tc.url, "")
			elapsed := time.Since(start)
			if err == nil {
				_ = r.Close()
				t.Fatal("NewRedis succeeded against a closed port")
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if elapsed > 2*time.Second {
				t.Fatalf("NewRedis took %v to fail, want < 2s", elapsed)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %q", err)
			}
		})
	}
}

func TestNewRedisBadURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{"http scheme", "http://127.0.0.1:6379/0"},
		{"unix scheme", "unix:///tmp/redis.sock"},
		{"no scheme", "127.0.0.1:6379"},
		{"bad database", "redis://:hunter2-secret@127.0.0.1:6379/zero"},
		{"unknown option", "redis://:hunter2-secret@127.0.0.1:6379/0?bogus=1"},
		{"unparseable", "redis://:hunter2-secret@127.0.0.1:6379/0\x7f%zz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRedis(t.Context(), tc.url, "")
			if err == nil {
				_ = r.Close()
				t.Fatal("NewRedis accepted a bad URL")
			}
			if errors.Is(err, ErrUnavailable) {
				t.Fatalf("a bad URL is a configuration error, not ErrUnavailable: %v", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %q", err)
			}
		})
	}
}
