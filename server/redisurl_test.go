package main

import (
	"strings"
	"testing"

	"github.com/basiq-bff/bff/config"
)

// TestCheckRedisURL runs redis_url through the check config check, start and reload apply:
// the kv parser's verdict, in config's "redis_url: sentence" form.
func TestCheckRedisURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want string // substring of the one problem; "" when the URL is valid
	}{
		{"in-process store", "", ""},
		{"rediss without db", "rediss://:pw@redis.internal:6380", ""},
		{"single without port", "redis://redis/3", ""},
		{"single on ipv6", "redis://[::1]:6379/0", ""},
		{"single with user, password and options", "redis://bff:p%40ss@redis:6379/0?dial_timeout=1s&pool_size=10", ""},
		{"scheme in upper case", "REDIS://redis:6379/0", ""},
		{"sentinel", "redis+sentinel://:pw@sentinel-1:26379,sentinel-2:26379,sentinel-3/mymaster", ""},
		{"sentinel with db and sentinel password", "rediss+sentinel://sentinel-1,[fd00::1]:26379/mymaster/2?sentinel_password=spw", ""},
		{"sentinel with one sentinel", "redis+sentinel://127.0.0.1:26379/mymaster", ""},
		{"cluster", "redis+cluster://:pw@node-1:7000,node-2:7001,node-3:7002", ""},
		{"cluster tls with trailing slash and options", "rediss+cluster://node-1:7000/?read_timeout=500ms", ""},
		{"cluster with one seed", "redis+cluster://node-1", ""},

		{"unknown scheme", "http://redis:6379", "unsupported URL scheme"},
		{"no scheme", "redis:6379", "has no scheme"},
		{"unknown deployment", "redis+replica://a:6379", "unsupported URL scheme"},
		{"no host", "redis:///0", "names no host"},
		{"bad port", "redis://redis:http/0", "host 1 of the redis URL is not host[:port]"},
		{"port zero", "redis://redis:0", "host 1 of the redis URL is not host[:port]"},
		{"bad escape in password", "redis://:p%zz@redis:6379/0", "cannot be parsed"},
		{"fragment", "redis://redis:6379/0#x", "must not have a #fragment"},
		{"db not a number", "redis://redis:6379/cache", "invalid redis URL"},
		{"single with two hosts", "redis://a:6379,b:6379/0", "names one host"},
		{"sentinel without master", "redis+sentinel://a:26379,b:26379", "names the master set in its path"},
		{"sentinel empty master", "rediss+sentinel://a:26379/", "names the master set in its path"},
		{"sentinel path too deep", "redis+sentinel://a:26379/mymaster/0/1", "path is /<master-name>[/<db>]"},
		{"sentinel empty host", "redis+sentinel://a:26379,,b:26379/mymaster", "host 2 of the redis URL is not host[:port]"},
		{"cluster with db", "redis+cluster://a:7000,b:7001/1", "has no path"},
		{"cluster bad host", "redis+cluster://a:7000,b c:7001", "host 2 of the redis URL is not host[:port]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := checkRedisURL(&config.Config{RedisURL: tc.url})
			switch {
			case tc.want == "" && len(got) != 0:
				t.Fatalf("valid URL refused: %q", got)
			case tc.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], "redis_url: ") || !strings.Contains(got[0], tc.want)):
				t.Fatalf("problems = %q, want one redis_url problem containing %q", got, tc.want)
			}
		})
	}
}

func TestCheckRedisURLNeverQuotesPassword(t *testing.T) {
	const password = "Sup3rSecretPw"
	tests := []struct{ name, url string }{
		{"unknown scheme", "http://:" + password + "@redis:6379"},
		{"no scheme", "redis:" + password + "@redis:6379"},
		{"password with unescaped slash", "redis://:" + password + "/x@redis:6379/0"},
		{"password with bad escape", "redis://:" + password + "%zz@redis:6379/0"},
		{"password with unescaped hash", "redis://:" + password + "#x@redis:6379/0"},
		{"password in a host list", "redis+cluster://a:7000," + password + ":x"},
		{"sentinel without master", "redis+sentinel://:" + password + "@a:26379"},
		{"cluster with db", "redis+cluster://:" + password + "@a:7000/1"},
		{"db not a number", "redis://:" + password + "@redis:6379/cache"},
		{"db not a number, no port", "redis://:" + password + "@redis/x"},
		{"another product's scheme", "valkey://:" + password + "@redis"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := checkRedisURL(&config.Config{RedisURL: tc.url})
			if len(got) != 1 || !strings.HasPrefix(got[0], "redis_url: ") {
				t.Fatalf("problems = %q, want one redis_url problem", got)
			}
			if strings.Contains(got[0], password) {
				t.Errorf("the problem quotes the password: %s", got[0])
			}
		})
	}
}
