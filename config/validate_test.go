package config

import (
	"slices"
	"strings"
	"testing"
)

// tenantsYAML is a one-tenant list with the given basiq block lines (indented 6 spaces).
func tenantsYAML(basiq string) string {
	return "tenants:\n  - id: acme\n    name: Acme\n    basiq:\n" + basiq
}

func TestValidateRules(t *testing.T) {
	cases := []struct {
		name    string
		replace map[string]string
		env     map[string]string // added to testEnv
		want    string            // substring of one problem
	}{
		{"listen not host:port", map[string]string{"listen": "listen: localhost\n"}, nil, `listen: "localhost" is not host:port`},
		{"listen port too big", map[string]string{"listen": "listen: 127.0.0.1:99999\n"}, nil, `listen: port "99999" is not a number`},
		{"admin_listen port not a number", map[string]string{"admin_listen": "admin_listen: 127.0.0.1:http\n"}, nil, "admin_listen: port"},
		{"admin_listen equals listen", map[string]string{"admin_listen": "admin_listen: 127.0.0.1:8080\n"}, nil, "admin_listen: must differ from listen"},

		{"public_origin missing", map[string]string{"public_origin": ""}, nil, "public_origin: is required"},
		{"public_origin with path", map[string]string{"public_origin": "public_origin: https://app.example.com/app\n"}, nil, "public_origin: \"https://app.example.com/app\" is not an origin: remove the path"},
		{"public_origin trailing slash", map[string]string{"public_origin": "public_origin: https://app.example.com/\n"}, nil, "no trailing slash"},
		{"public_origin query", map[string]string{"public_origin": "public_origin: https://app.example.com?x=1\n"}, nil, "remove the path, query or fragment"},
		{"public_origin fragment", map[string]string{"public_origin": "public_origin: 'https://app.example.com#top'\n"}, nil, "remove the path, query or fragment"},
		{"public_origin scheme", map[string]string{"public_origin": "public_origin: ftp://app.example.com\n"}, nil, "the scheme must be http or https"},
		{"public_origin no host", map[string]string{"public_origin": "public_origin: app.example.com\n"}, nil, "is not an origin such as"},
		{"public_origin user info", map[string]string{"public_origin": "public_origin: https://u:p@app.example.com\n"}, nil, "public_origin: an origin has no user name or password"},
		{"public_origin upper case", map[string]string{"public_origin": "public_origin: https://App.Example.com\n"}, nil, `must be written "https://app.example.com"`},
		{"public_origin default port", map[string]string{"public_origin": "public_origin: https://app.example.com:443\n"}, nil, `must be written "https://app.example.com"`},
		{"public_origin http with secure cookies", map[string]string{"public_origin": "public_origin: http://app.example.com\n"}, nil, "public_origin: must be https while session.secure is true"},

		{"database_url scheme", map[string]string{"database_url": "database_url: mysql://bff:pw@db/bff\n"}, nil, "database_url: must be a postgres:// or postgresql:// URL, or sqlite:PATH"},
		{"database_url sqlite without path", map[string]string{"database_url": "database_url: 'sqlite:'\n"}, nil, "database_url: sqlite: needs a file path"},
		{"database_url key=value dsn", map[string]string{"database_url": "database_url: host=db user=bff\n"}, nil, "database_url: must be"},

		{"in-process store without single_replica", map[string]string{"redis_url": "redis_url: ''\n"}, nil, "redis_url: is empty, which means the in-process store"},
		{"redis_url left out without single_replica", map[string]string{"redis_url": ""}, nil, "Set redis_url, or single_replica: true"},
		{"shutdown drain negative", map[string]string{"log": "log: {level: info}\nshutdown: {drain: -1s}\n"}, nil, "shutdown.drain: must be between 0 and 5m"},
		{"shutdown timeout too short", map[string]string{"log": "log: {level: info}\nshutdown: {timeout: 10ms}\n"}, nil, "shutdown.timeout: must be between 1s and 5m"},
		{"redis_prefix whitespace", map[string]string{"listen": "listen: 127.0.0.1:8080\nredis_prefix: 'bff: '\n"}, nil, "redis_prefix: must not contain whitespace"},

		{"log level", map[string]string{"log": "log: {level: verbose}\n"}, nil, "log.level: must be debug, info, warn or error"},
		{"log format", map[string]string{"log": "log: {format: xml}\n"}, nil, "log.format: must be json or text"},

		{"session keys missing", map[string]string{"session": "session: {idle_timeout: 10m}\n"}, nil, "session.keys: at least one key is required"},
		{"session key short", map[string]string{"session": "session: {keys: [{env: SHORT}]}\n"}, map[string]string{"SHORT": "abcd"}, "session.keys[0]: must be 64 hex characters"},
		{"session key not hex", map[string]string{"session": "session: {keys: [{env: BFF_SESSION_KEY}, {env: NOTHEX}]}\n"}, map[string]string{"NOTHEX": strings.Repeat("zz", 32)}, "session.keys[1]: must be 64 hex characters (32 random bytes, e.g. from `openssl rand -hex 32`), found a non-hex character"},
		{"session key two sources", map[string]string{"session": "session: {keys: [{env: BFF_SESSION_KEY, file: /k}]}\n"}, nil, "session.keys[0]: exactly one of env, file or value must be set"},
		{"session key no source", map[string]string{"session": "session: {keys: [{}]}\n"}, nil, "session.keys[0]: exactly one of env, file or value must be set"},
		{"session idle timeout zero", map[string]string{"session": "session: {idle_timeout: 0s, keys: [{env: BFF_SESSION_KEY}]}\n"}, nil, "session.idle_timeout: must be positive"},
		{"session absolute below idle", map[string]string{"session": "session: {idle_timeout: 2h, absolute_timeout: 1h, keys: [{env: BFF_SESSION_KEY}]}\n"}, nil, "session.absolute_timeout: must be at least session.idle_timeout (2h0m0s)"},

		{"cache key missing", map[string]string{"cache": ""}, nil, "cache.encryption_key: is required"},
		{"cache key env unset", map[string]string{"cache": "cache: {encryption_key: {env: NOPE}}\n"}, nil, "cache.encryption_key: environment variable NOPE is unset or empty"},
		{"cache key env blank", map[string]string{"cache": "cache: {encryption_key: {env: BLANK}}\n"}, map[string]string{"BLANK": " \n"}, "cache.encryption_key: environment variable BLANK is unset or empty"},
		{"cache key file missing", map[string]string{"cache": "cache: {encryption_key: {file: /nonexistent/bff-cache-key}}\n"}, nil, "cache.encryption_key: read secret file: stat /nonexistent/bff-cache-key"},
		{"cache key file is a directory", map[string]string{"cache": "cache: {encryption_key: {file: /}}\n"}, nil, "cache.encryption_key: secret file / is not a regular file"},
		{"cache key wrong length", map[string]string{"cache": "cache: {encryption_key: {value: abcdef}}\n"}, nil, "cache.encryption_key: must be 64 hex characters"},

		{"cors star", map[string]string{"cors": "cors: {allowed_origins: ['*']}\n"}, nil, `cors.allowed_origins[0]: "*": wildcards are refused: with credentials allowed, rs/cors would reflect almost any origin`},
		{"cors wildcard pattern", map[string]string{"cors": "cors: {allowed_origins: [https://app.example.com, 'https://*.example.com']}\n"}, nil, "cors.allowed_origins[1]: \"https://*.example.com\": wildcards are refused"},
		{"cors duplicate", map[string]string{"cors": "cors: {allowed_origins: [https://a.example.com, https://a.example.com]}\n"}, nil, `cors.allowed_origins[1]: "https://a.example.com" is listed twice`},
		{"cors path", map[string]string{"cors": "cors: {allowed_origins: [https://a.example.com/]}\n"}, nil, "cors.allowed_origins[0]: \"https://a.example.com/\" is not an origin"},
		{"cors null origin", map[string]string{"cors": "cors: {allowed_origins: ['null']}\n"}, nil, "cors.allowed_origins[0]: \"null\" is not an origin"},

		{"trusted proxy not an address", map[string]string{"trusted_proxies": "trusted_proxies: [10.0.0.0/8, proxy.internal]\n"}, nil, `trusted_proxies[1]: "proxy.internal" is neither a CIDR`},
		{"trusted proxy bad prefix", map[string]string{"trusted_proxies": "trusted_proxies: [10.0.0.0/33]\n"}, nil, "trusted_proxies[0]"},
		{"trusted proxy everywhere", map[string]string{"trusted_proxies": "trusted_proxies: [0.0.0.0/0]\n"}, nil, `trusted_proxies[0]: "0.0.0.0/0" is wider than a /8`},
		{"trusted proxy /7", map[string]string{"trusted_proxies": "trusted_proxies: [10.0.0.1/32, 10.0.0.0/7]\n"}, nil, `trusted_proxies[1]: "10.0.0.0/7" is wider than a /8`},
		{"trusted proxy every ipv6", map[string]string{"trusted_proxies": "trusted_proxies: ['::/0']\n"}, nil, `trusted_proxies[0]: "::/0" is wider than a /32`},
		{"trusted proxy ipv6 /31", map[string]string{"trusted_proxies": "trusted_proxies: ['2001:db8::/31']\n"}, nil, "is wider than a /32"},
		{"trusted proxy every ipv4 written in ipv6", map[string]string{"trusted_proxies": "trusted_proxies: ['::ffff:0.0.0.0/96']\n"}, nil, "is wider than a /8"},
		{"insecure cookies on a public origin", map[string]string{
			"public_origin": "public_origin: http://bff.internal:8080\n",
			"session":       "session: {secure: false, keys: [{env: BFF_SESSION_KEY}]}\n",
		}, nil, "session.secure: false is allowed only while public_origin is on localhost"},
		{"insecure cookies on an https origin", map[string]string{
			"session": "session: {secure: false, keys: [{env: BFF_SESSION_KEY}]}\n",
		}, nil, "session.secure: false is allowed only while public_origin is on localhost"},
		{"base_url http to a public host", map[string]string{"tenants": tenantsYAML("      base_url: http://au-api.basiq.io\n      version: '3.0'\n      api_keys: [{id: k, env: ACME_KEY}]\n")}, nil,
			"tenants[0].basiq.base_url: must be https: over http the API key would travel in clear"},
		{"login per device", map[string]string{"login": "login: {max_attempts_per_device: 0}\n"}, nil, "login.max_attempts_per_device: must be positive"},
		{"login global ceiling", map[string]string{"login": "login: {max_failures_global: 0}\n"}, nil, "login.max_failures_global: must be positive"},
		{"login concurrent hashes", map[string]string{"login": "login: {max_concurrent_hashes: 65}\n"}, nil, "login.max_concurrent_hashes: must be between 0"},

		{"login per account", map[string]string{"login": "login: {max_attempts_per_account: 0}\n"}, nil, "login.max_attempts_per_account: must be positive"},
		{"login per ip", map[string]string{"login": "login: {max_attempts_per_ip: -1}\n"}, nil, "login.max_attempts_per_ip: must be positive"},
		{"login window", map[string]string{"login": "login: {window: 0s}\n"}, nil, "login.window: must be positive"},

		{"refresh_after zero", map[string]string{"client_token": "client_token: {refresh_after: 0s}\n"}, nil, "client_token.refresh_after: must be positive"},
		{"min_remaining negative", map[string]string{"client_token": "client_token: {min_remaining: -1m}\n"}, nil, "client_token.min_remaining: must be positive"},
		{"refresh window exceeds token life", map[string]string{"client_token": "client_token: {refresh_after: 45m, min_remaining: 15m}\n"}, nil, "client_token: refresh_after + min_remaining must be less than 60m"},
		{"deadline too short", map[string]string{"client_token": "client_token: {deadline: 50ms}\n"}, nil, "client_token.deadline: must be between 100ms and 30s"},
		{"deadline too long", map[string]string{"client_token": "client_token: {deadline: 31s}\n"}, nil, "client_token.deadline: must be between 100ms and 30s"},
		{"l1_ttl too long", map[string]string{"client_token": "client_token: {l1_ttl: 2m}\n"}, nil, "client_token.l1_ttl: must be between 0 and 1m"},
		{"l1_ttl negative", map[string]string{"client_token": "client_token: {l1_ttl: -1s}\n"}, nil, "client_token.l1_ttl: must be between 0 and 1m"},
		{"rate_limit zero", map[string]string{"client_token": "client_token: {rate_limit: 0}\n"}, nil, "client_token.rate_limit: must be positive"},
		{"mint_budget zero", map[string]string{"client_token": "client_token: {mint_budget: 0}\n"}, nil, "client_token.mint_budget: must be between 1 and 1500"},
		{"mint_budget above Basiq's limit", map[string]string{"client_token": "client_token: {mint_budget: 1501}\n"}, nil, "client_token.mint_budget: must be between 1 and 1500"},

		{"no tenants", map[string]string{"tenants": "tenants: []\n"}, nil, "tenants: at least one tenant is required"},
		{"tenants key missing", map[string]string{"tenants": ""}, nil, "tenants: at least one tenant is required"},
		{"tenant id upper case", map[string]string{"tenants": strings.Replace(tenantsYAML("      version: '3.0'\n      api_keys: [{id: k, env: ACME_KEY}]\n"), "id: acme", "id: Acme", 1)}, nil, `tenants[0].id: "Acme" must be 1-63 characters`},
		{"tenant id with colon", map[string]string{"tenants": strings.Replace(tenantsYAML("      version: '3.0'\n      api_keys: [{id: k, env: ACME_KEY}]\n"), "id: acme", "id: 'ac:me'", 1)}, nil, `tenants[0].id: "ac:me" must be`},
		{"tenant id missing", map[string]string{"tenants": "tenants:\n  - name: Acme\n    basiq: {version: '3.0', api_keys: [{id: k, env: ACME_KEY}]}\n"}, nil, `tenants[0].id: "" must be`},
		{"tenant id duplicate", map[string]string{"tenants": "tenants:\n" +
			"  - {id: acme, name: A, basiq: {version: '3.0', api_keys: [{id: k, env: ACME_KEY}]}}\n" +
			"  - {id: acme, name: B, basiq: {version: '3.0', api_keys: [{id: k, env: ACME_KEY}]}}\n"}, nil, `tenants[1].id: "acme" is already used by tenants[0]`},
		{"tenant name missing", map[string]string{"tenants": "tenants:\n  - {id: acme, name: ' ', basiq: {version: '3.0', api_keys: [{id: k, env: ACME_KEY}]}}\n"}, nil, "tenants[0].name: is required"},
		{"base_url relative", map[string]string{"tenants": tenantsYAML("      base_url: /basiq\n      version: '3.0'\n      api_keys: [{id: k, env: ACME_KEY}]\n")}, nil, "tenants[0].basiq.base_url: must be an absolute http or https URL"},
		{"base_url query", map[string]string{"tenants": tenantsYAML("      base_url: https://au-api.basiq.io?x=1\n      version: '3.0'\n      api_keys: [{id: k, env: ACME_KEY}]\n")}, nil, "tenants[0].basiq.base_url: must be"},
		{"base_url scheme", map[string]string{"tenants": tenantsYAML("      base_url: ftp://au-api.basiq.io\n      version: '3.0'\n      api_keys: [{id: k, env: ACME_KEY}]\n")}, nil, "tenants[0].basiq.base_url: must be"},
		{"version unknown", map[string]string{"tenants": tenantsYAML("      version: '4.0'\n      api_keys: [{id: k, env: ACME_KEY}]\n")}, nil, `tenants[0].basiq.version: must be "2.0", "2.1" or "3.0"`},
		{"version as integer", map[string]string{"tenants": tenantsYAML("      version: 3\n      api_keys: [{id: k, env: ACME_KEY}]\n")}, nil, "tenants[0].basiq.version: must be"},
		{"version missing", map[string]string{"tenants": tenantsYAML("      api_keys: [{id: k, env: ACME_KEY}]\n")}, nil, "tenants[0].basiq.version: must be"},
		{"consent_url http", map[string]string{"tenants": tenantsYAML("      consent_url: http://consent.example.com/home\n      version: '3.0'\n      api_keys: [{id: k, env: ACME_KEY}]\n")}, nil, "tenants[0].basiq.consent_url: must be an absolute https URL (http only for localhost)"},
		{"consent_url relative", map[string]string{"tenants": tenantsYAML("      consent_url: /home\n      version: '3.0'\n      api_keys: [{id: k, env: ACME_KEY}]\n")}, nil, "tenants[0].basiq.consent_url: must be"},
		{"api_keys missing", map[string]string{"tenants": tenantsYAML("      version: '3.0'\n")}, nil, "tenants[0].basiq.api_keys: at least one key is required"},
		{"api key id bad", map[string]string{"tenants": tenantsYAML("      version: '3.0'\n      api_keys: [{id: 'key one', env: ACME_KEY}]\n")}, nil, "tenants[0].basiq.api_keys[0].id: must be 1-64 characters"},
		{"api key id missing", map[string]string{"tenants": tenantsYAML("      version: '3.0'\n      api_keys: [{env: ACME_KEY}]\n")}, nil, "tenants[0].basiq.api_keys[0].id: must be"},
		{"api key id duplicate", map[string]string{"tenants": tenantsYAML("      version: '3.0'\n      api_keys: [{id: k, env: ACME_KEY}, {id: k, env: ACME_KEY}]\n")}, nil, `tenants[0].basiq.api_keys[1].id: "k" is already used by api_keys[0]`},
		{"api key two sources", map[string]string{"tenants": tenantsYAML("      version: '3.0'\n      api_keys: [{id: k, env: ACME_KEY, value: x}]\n")}, nil, "tenants[0].basiq.api_keys[0]: exactly one of env, file or value must be set"},
		{"api key env unset", map[string]string{"tenants": tenantsYAML("      version: '3.0'\n      api_keys: [{id: k, env: ACME_NEW}]\n")}, nil, "tenants[0].basiq.api_keys[0]: environment variable ACME_NEW is unset or empty"},
		{"api key blank file", map[string]string{"tenants": tenantsYAML("      version: '3.0'\n      api_keys: [{id: k, file: /dev/null}]\n")}, nil, "tenants[0].basiq.api_keys[0]: secret file /dev/null is not a regular file"},
		{"every api key revoked", map[string]string{"tenants": tenantsYAML("      version: '3.0'\n      api_keys: [{id: k, env: ACME_KEY, revoked: true}]\n")}, nil, "tenants[0].basiq.api_keys: every key is revoked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := loadYAML(t, configYAML(t, tc.replace), env)
			got := problemsOf(t, err)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("no problem contains %q; got:\n%s", tc.want, strings.Join(got, "\n"))
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	cases := []struct {
		name    string
		replace map[string]string
	}{
		{"base configuration", nil},
		{"port zero everywhere", map[string]string{"listen": "listen: 127.0.0.1:0\n", "admin_listen": "admin_listen: 127.0.0.1:0\n"}},
		{"listen on all interfaces", map[string]string{"listen": "listen: :8080\n", "admin_listen": "admin_listen: '[::1]:9090'\n"}},
		{"http public origin on localhost with secure cookies", map[string]string{"public_origin": "public_origin: http://localhost:5173\n"}},
		{"http public origin on 127.0.0.1", map[string]string{"public_origin": "public_origin: http://127.0.0.1:8080\n"}},
		{"http public origin on ::1", map[string]string{"public_origin": "public_origin: 'http://[::1]:8080'\n"}},
		{"http public origin on a .localhost name without secure cookies", map[string]string{
			"public_origin": "public_origin: http://app.localhost:8080\n",
			"session":       "session: {secure: false, keys: [{env: BFF_SESSION_KEY}]}\n",
		}},
		{"postgresql scheme", map[string]string{"database_url": "database_url: postgresql://bff:pw@db:5432/bff?sslmode=require\n"}},
		{"sqlite absolute path", map[string]string{"database_url": "database_url: sqlite:/var/lib/bff/bff.db\n"}},
		{"in-process store, one replica acknowledged", map[string]string{"redis_url": "redis_url: ''\nsingle_replica: true\n"}},
		{"no cors origins", map[string]string{"cors": ""}},
		{"ipv6 proxies", map[string]string{"trusted_proxies": "trusted_proxies: ['fd00:1234::/32', '2001:db8::1']\n"}},
		{"proxies as wide as allowed", map[string]string{"trusted_proxies": "trusted_proxies: [10.0.0.0/8, '::ffff:10.0.0.0/104']\n"}},
		{"l1 cache off", map[string]string{"client_token": "client_token: {l1_ttl: 0s, deadline: 100ms, mint_budget: 1500}\n"}},
		{"three tenants on each version", map[string]string{"tenants": "tenants:\n" +
			"  - {id: acme, name: A, basiq: {version: '3.0', api_keys: [{id: k, env: ACME_KEY}]}}\n" +
			"  - {id: b_2, name: B, basiq: {version: 2.1, api_keys: [{id: old, env: ACME_KEY, revoked: true}, {id: new, env: ACME_KEY}]}}\n" +
			"  - {id: c-3, name: C, basiq: {version: 2.0, base_url: 'http://127.0.0.1:9999/', consent_url: 'http://localhost:9999/home', api_keys: [{id: A.b_c-1, env: ACME_KEY}]}}\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := loadYAML(t, configYAML(t, tc.replace), testEnv()); err != nil {
				t.Errorf("Load: %v", err)
			}
		})
	}
}

func TestAdminListenWarning(t *testing.T) {
	cases := []struct {
		name, admin string
		warn        bool
	}{
		{"loopback", "127.0.0.1:9090", false},
		{"ipv6 loopback", "'[::1]:9090'", false},
		{"localhost", "localhost:9090", false},
		{"every interface", "0.0.0.0:9090", true},
		{"no host", "':9090'", true},
		{"a private address", "10.1.2.3:9090", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadYAML(t, configYAML(t, map[string]string{"admin_listen": "admin_listen: " + tc.admin + "\n"}), testEnv())
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.HasPrefix(w, "admin_listen: ") })
			if got != tc.warn {
				t.Errorf("admin_listen warning = %v, want %v; warnings: %q", got, tc.warn, c.Warnings)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	text := configYAML(t, map[string]string{
		"listen":       "listen: nowhere\n",
		"log":          "log: {level: loud}\n",
		"cors":         "cors: {allowed_origins: ['*']}\n",
		"client_token": "client_token: {mint_budget: 0}\n",
		"tenants":      "tenants:\n  - {id: acme, basiq: {version: '3.0', api_keys: [{id: k, env: ACME_KEY}]}}\n",
	})
	_, err := loadYAML(t, text, testEnv())
	got := problemsOf(t, err)
	want := []string{"listen:", "log.level:", "cors.allowed_origins[0]:", "client_token.mint_budget:", "tenants[0].name:"}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("problem %d = %q, want prefix %q", i, got[i], w)
		}
	}
	if msg := err.Error(); strings.Count(msg, "\n") != len(want) {
		t.Errorf("Error() does not list one problem per line:\n%s", msg)
	}
}

func TestValidateUnresolvedSecret(t *testing.T) {
	c := Demo(t.TempDir(), "http://127.0.0.1:1", "k", testSessionKey, testCacheKey)
	c.Cache.EncryptionKey = Secret{Env: "BFF_CACHE_KEY"} // built by hand, never passed through Load
	want := "cache.encryption_key: env BFF_CACHE_KEY has not been resolved"
	if got := c.Validate(); !slices.Equal(got, []string{want}) {
		t.Errorf("Validate() = %q, want [%q]", got, want)
	}
}

func TestValidateNil(t *testing.T) {
	var c *Config
	if got := c.Validate(); len(got) != 1 {
		t.Errorf("Validate() on nil = %q, want one problem", got)
	}
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	c := Demo(dir, "http://127.0.0.1:41234", "ZGVtby1rZXk=", testSessionKey, testCacheKey)
	if problems := c.Validate(); len(problems) != 0 {
		t.Fatalf("Demo config does not validate:\n%s", strings.Join(problems, "\n"))
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"demo", c.Demo, true},
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"admin_listen", c.AdminListen, "127.0.0.1:9090"},
		{"database_url", c.DatabaseURL, "sqlite:" + dir + "/bff.db"},
		{"redis_url", c.RedisURL, ""},
		{"secure", c.Session.IsSecure(), false},
		{"public_origin", c.PublicOrigin, "http://127.0.0.1:8080"},
		{"log format", c.Log.Format, "text"},
		{"tenant", c.Tenants[0].ID + "/" + c.Tenants[0].Name, "demo/Demo Lending"},
		{"version", c.Tenants[0].Basiq.Version, "3.0"},
		{"base_url", c.Tenants[0].Basiq.BaseURL, "http://127.0.0.1:41234"},
		{"consent_url", c.Tenants[0].Basiq.ConsentURL, "http://127.0.0.1:41234/home"},
		{"key id", c.Tenants[0].Basiq.APIKeys[0].ID, "demo"},
		{"key", c.Tenants[0].Basiq.APIKeys[0].Reveal(), "ZGVtby1rZXk="},
		{"session key", c.Session.Keys[0].Reveal(), testSessionKey},
		{"cache key", c.Cache.EncryptionKey.Reveal(), testCacheKey},
		{"path", c.Path, ""},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}
