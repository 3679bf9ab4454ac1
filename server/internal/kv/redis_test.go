package kv

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
)

// newTestRedis returns a Redis store under a random prefix; every key under that prefix is
// deleted at cleanup, after the store is closed.
func newTestRedis(t *testing.T) *Redis {
	t.Helper()
	rawURL := kvtest.RedisURL(t)
	r, err := NewRedis(t.Context(), rawURL, kvtest.Prefix(t, rawURL))
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRedisContract(t *testing.T) {
	kvtest.RedisURL(t)
	runContract(t, func(t *testing.T) Store { return newTestRedis(t) })
}

// TestRedisKeysArePrefixed checks the keys land in Redis under the prefix, where operators
// (and the README's "Redis keys" table) expect them.
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
	r, err := NewRedis(t.Context(), kvtest.RedisURL(t), "")
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
		{"sentinels refused", "redis+sentinel://:hunter2-secret@127.0.0.1:1,127.0.0.1:2/mymaster?sentinel_password=hunter2-s"},
		{"cluster refused", "redis+cluster://:hunter2-secret@127.0.0.1:1,127.0.0.1:2"},
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
			if _, serr := Scheme(tc.url); serr != nil {
				t.Fatalf("Scheme rejects a well-formed URL: %v", serr)
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
		{"bad password escape", "redis+cluster://:hunter2-secret%zz@127.0.0.1:7000"},
		{"scheme hides a password", "user:hunter2-secret@host://x"},
		{"unknown deployment", "redis+ring://:hunter2-secret@127.0.0.1:6379"},
		{"several hosts for one node", "redis://:hunter2-secret@a:6379,b:6379/0"},
		{"no host", "redis://:hunter2-secret@/0"},
		{"empty host in list", "redis+cluster://:hunter2-secret@a:7000,,b:7001"},
		{"port out of range", "redis+cluster://:hunter2-secret@a:70000"},
		{"port not a number", "redis+cluster://:hunter2-secret@a:x"},
		{"unescaped slash in password", "redis+sentinel://:hunter2/secret@s1:26379/mymaster"},
		{"fragment", "redis+cluster://:hunter2-secret@a:7000#frag"},
		{"sentinel without master", "redis+sentinel://:hunter2-secret@s1:26379"},
		{"sentinel with empty master", "redis+sentinel://:hunter2-secret@s1:26379/"},
		{"sentinel path too long", "redis+sentinel://:hunter2-secret@s1:26379/mymaster/0/1"},
		{"sentinel trailing slash", "redis+sentinel://:hunter2-secret@s1:26379/mymaster/"},
		{"sentinel bad database", "redis+sentinel://:hunter2-secret@s1:26379/mymaster/zero"},
		{"sentinel routing option", "redis+sentinel://:hunter2-secret@s1/mymaster?route_by_latency=true"},
		{"sentinel unknown option", "redis+sentinel://s1/mymaster?sentinel_password=hunter2-secret&bogus=1"},
		{"sentinel bad query escape", "redis+sentinel://s1/mymaster?sentinel_password=hunter2-secret%zz"},
		{"sentinel password on one node", "redis://127.0.0.1:6379/0?sentinel_password=hunter2-secret"},
		{"cluster database in path", "redis+cluster://:hunter2-secret@a:7000/1"},
		{"cluster database in query", "redis+cluster://:hunter2-secret@a:7000?db=2"},
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
			// Scheme applies the same checks without connecting.
			if d, serr := Scheme(tc.url); serr == nil || serr.Error() != err.Error() {
				t.Fatalf("Scheme = %q, %v; want NewRedis's error %v", d, serr, err)
			}
		})
	}
}

// schemeOptions is the part of the client options that a URL sets, for comparing in one go.
type schemeOptions struct {
	username, password         string
	db                         int
	tls                        bool
	serverName                 string
	master                     string
	sentinelUser, sentinelPass string
	dialTimeout                time.Duration
	cluster                    bool
	poolSize                   int
}

// viewSchemeOptions picks the fields of schemeOptions out of o.
func viewSchemeOptions(o *redis.UniversalOptions) schemeOptions {
	v := schemeOptions{username: o.Username, password: o.Password, db: o.DB, master: o.MasterName,
		sentinelUser: o.SentinelUsername, sentinelPass: o.SentinelPassword, dialTimeout: o.DialTimeout,
		cluster: o.IsClusterMode, poolSize: o.PoolSize}
	if o.TLSConfig != nil {
		v.tls, v.serverName = true, o.TLSConfig.ServerName
	}
	return v
}

// TestScheme checks the deployment each URL form selects and the client options it yields,
// without connecting.
func TestScheme(t *testing.T) {
	tests := []struct {
		name       string
		url        string
		deployment string
		addrs      []string
		want       schemeOptions
	}{
		{
			name: "single", url: "redis://u:pw@127.0.0.1:6380/3", deployment: DeploymentSingle,
			addrs: []string{"127.0.0.1:6380"},
			want:  schemeOptions{username: "u", password: "pw", db: 3, dialTimeout: redisDialTimeout, poolSize: redisPoolSize()},
		},
		{
			name: "single default port and upper-case scheme", url: "REDIS://redis", deployment: DeploymentSingle,
			addrs: []string{"redis:6379"},
			want:  schemeOptions{dialTimeout: redisDialTimeout, poolSize: redisPoolSize()},
		},
		{
			name: "single over TLS", url: "rediss://cache.example.com:6380", deployment: DeploymentSingle,
			addrs: []string{"cache.example.com:6380"},
			want:  schemeOptions{tls: true, serverName: "cache.example.com", dialTimeout: redisDialTimeout, poolSize: redisPoolSize()},
		},
		{
			name:       "sentinel",
			url:        "redis+sentinel://:pw@s1:26380,s2,[::1]:26381/my%2Dmaster/2?sentinel_username=su&sentinel_password=sp&dial_timeout=2s",
			deployment: DeploymentSentinel,
			addrs:      []string{"s1:26380", "s2:26379", "[::1]:26381"},
			want: schemeOptions{master: "my-master", db: 2, password: "pw", sentinelUser: "su", sentinelPass: "sp",
				dialTimeout: 2 * time.Second, poolSize: redisPoolSize()},
		},
		{
			// Every Sentinel and the master it names are verified under their own names.
			name: "sentinel over TLS", url: "rediss+sentinel://s1,s2/mymaster", deployment: DeploymentSentinel,
			addrs: []string{"s1:26379", "s2:26379"},
			want:  schemeOptions{master: "mymaster", tls: true, dialTimeout: redisDialTimeout, poolSize: redisPoolSize()},
		},
		{
			name: "cluster", url: "redis+cluster://u:pw@n1:7000,n2:7001?pool_size=7", deployment: DeploymentCluster,
			addrs: []string{"n1:7000", "n2:7001"},
			want:  schemeOptions{cluster: true, username: "u", password: "pw", poolSize: 7, dialTimeout: redisDialTimeout},
		},
		{
			name: "cluster with one seed", url: "rediss+cluster://n1/", deployment: DeploymentCluster,
			addrs: []string{"n1:6379"},
			want:  schemeOptions{cluster: true, tls: true, dialTimeout: redisDialTimeout, poolSize: redisPoolSize()},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Scheme(tc.url)
			if err != nil || d != tc.deployment {
				t.Fatalf("Scheme = %q, %v; want %q", d, err, tc.deployment)
			}
			target, err := parseRedisURL(tc.url)
			mustNoErr(t, err)
			o := target.options
			if !slices.Equal(o.Addrs, tc.addrs) {
				t.Fatalf("addrs = %q, want %q", o.Addrs, tc.addrs)
			}
			// Our fast defaults apply unless the URL overrides them.
			if o.ReadTimeout != redisReadTimeout || o.PoolTimeout != redisPoolTimeout || !o.ContextTimeoutEnabled {
				t.Fatalf("defaults not applied: %+v", o)
			}
			if strings.Contains(target.redacted, "pw") || strings.Contains(target.redacted, "sp") {
				t.Fatalf("redacted URL %q keeps a password", target.redacted)
			}
			if got := viewSchemeOptions(o); got != tc.want {
				t.Fatalf("options = %+v, want %+v", got, tc.want)
			}
		})
	}
}
