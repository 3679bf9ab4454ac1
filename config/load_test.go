package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	testSessionKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	testCacheKey   = "f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff"
	testAPIKey     = "YWNtZS1rZXktMjAyNi0xMQ=="
)

// testEnv is the environment the test configurations reference.
func testEnv() map[string]string {
	return map[string]string{
		"BFF_SESSION_KEY": testSessionKey,
		"BFF_CACHE_KEY":   testCacheKey,
		"ACME_KEY":        testAPIKey,
	}
}

func getenvFrom(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// section is one top-level key of a test configuration.
type section struct{ key, text string }

// baseSections is a valid configuration, one top-level key per section, so a test case can
// replace one key without writing it twice (duplicate keys are errors).
func baseSections() []section {
	return []section{
		{"listen", "listen: 127.0.0.1:8080\n"},
		{"admin_listen", "admin_listen: 127.0.0.1:9090\n"},
		{"public_origin", "public_origin: https://app.example.com\n"},
		{"database_url", "database_url: postgres://bff@db/bff\n"},
		{"redis_url", "redis_url: redis://127.0.0.1:6379/0\n"},
		{"log", "log: {level: info, format: json}\n"},
		{"session", "session:\n  keys: [{env: BFF_SESSION_KEY}]\n"},
		{"cache", "cache:\n  encryption_key: {env: BFF_CACHE_KEY}\n"},
		{"cors", "cors:\n  allowed_origins: [https://app.example.com]\n"},
		{"trusted_proxies", "trusted_proxies: [10.0.0.0/8, 192.0.2.1]\n"},
		{"login", ""},
		{"client_token", ""},
		{"tenants", `tenants:
  - id: acme
    name: Acme Lending
    basiq:
      version: "3.0"
      api_keys:
        - {id: "2026-11", env: ACME_KEY}
`},
	}
}

// configYAML is the base configuration with the given top-level keys replaced ("" drops one).
func configYAML(t *testing.T, replace map[string]string) string {
	t.Helper()
	var b strings.Builder
	used := 0
	for _, s := range baseSections() {
		text, ok := replace[s.key]
		if ok {
			used++
		} else {
			text = s.text
		}
		b.WriteString(text)
	}
	if used != len(replace) {
		t.Fatalf("configYAML: unknown section in %v", replace)
	}
	return b.String()
}

// writeFile writes content to name under dir and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadYAML writes text as a config file in a fresh directory and loads it.
func loadYAML(t *testing.T, text string, env map[string]string) (*Config, error) {
	t.Helper()
	return Load(writeFile(t, t.TempDir(), "bff.yaml", text), getenvFrom(env))
}

func mustLoad(t *testing.T, text string, env map[string]string) *Config {
	t.Helper()
	c, err := loadYAML(t, text, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// problemsOf returns the problems of a failed Load, failing the test for any other error.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var p *Problems
	if !errors.As(err, &p) {
		t.Fatalf("Load error = %v (%T), want *Problems", err, err)
	}
	if len(p.List) == 0 {
		t.Fatal("Problems with an empty list")
	}
	return p.List
}

func TestLoadDefaults(t *testing.T) {
	c := mustLoad(t, configYAML(t, map[string]string{"listen": "", "admin_listen": "", "database_url": "", "log": ""}), testEnv())
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"admin_listen", c.AdminListen, "127.0.0.1:9090"},
		{"database_url", c.DatabaseURL, "sqlite:data/bff.db"},
		{"redis_prefix", c.RedisPrefix, "bff:"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
		{"session.secure", c.Session.IsSecure(), true},
		{"session.idle_timeout", c.Session.IdleTimeout.D(), 30 * time.Minute},
		{"session.absolute_timeout", c.Session.AbsoluteTimeout.D(), 12 * time.Hour},
		{"login.max_attempts_per_account", c.Login.MaxAttemptsPerAccount, 5},
		{"login.max_attempts_per_ip", c.Login.MaxAttemptsPerIP, 50},
		{"login.window", c.Login.Window.D(), 15 * time.Minute},
		{"client_token.refresh_after", c.ClientToken.RefreshAfter.D(), 30 * time.Minute},
		{"client_token.min_remaining", c.ClientToken.MinRemaining.D(), 10 * time.Minute},
		{"client_token.deadline", c.ClientToken.Deadline.D(), 2 * time.Second},
		{"client_token.l1_ttl", c.ClientToken.L1TTL.D(), 5 * time.Second},
		{"client_token.rate_limit", c.ClientToken.RateLimit, 30},
		{"client_token.mint_budget", c.ClientToken.MintBudget, 1200},
		{"basiq.base_url", c.Tenants[0].Basiq.BaseURL, "https://au-api.basiq.io"},
		{"basiq.consent_url", c.Tenants[0].Basiq.ConsentURL, "https://consent.basiq.io/home"},
		{"demo", c.Demo, false},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestLoadPartialSectionKeepsOtherDefaults(t *testing.T) {
	c := mustLoad(t, configYAML(t, map[string]string{
		"client_token":  "client_token: {refresh_after: 20m}\n",
		"session":       "session:\n  secure: false\n  keys: [{env: BFF_SESSION_KEY}]\n",
		"public_origin": "public_origin: http://localhost:8080\n",
	}), testEnv())
	if got := c.ClientToken.RefreshAfter.D(); got != 20*time.Minute {
		t.Errorf("refresh_after = %v, want 20m", got)
	}
	if got := c.ClientToken.MinRemaining.D(); got != 10*time.Minute {
		t.Errorf("min_remaining = %v, want the default 10m", got)
	}
	if got := c.Session.IdleTimeout.D(); got != 30*time.Minute {
		t.Errorf("idle_timeout = %v, want the default 30m", got)
	}
	if c.Session.IsSecure() {
		t.Error("session.secure: false was not applied")
	}
}

func TestLoadEnvironmentOverrides(t *testing.T) {
	env := testEnv()
	env["BFF_LISTEN"] = "0.0.0.0:8181"
	env["BFF_ADMIN_LISTEN"] = "0.0.0.0:9191"
	env["BFF_DATABASE_URL"] = "sqlite:/var/lib/bff/bff.db"
	env["BFF_REDIS_URL"] = "rediss://redis.internal:6380/2"
	env["BFF_PUBLIC_ORIGIN"] = "https://bank.example.org"
	c := mustLoad(t, configYAML(t, nil), env)
	for _, tc := range []struct{ name, got, want string }{
		{"listen", c.Listen, "0.0.0.0:8181"},
		{"admin_listen", c.AdminListen, "0.0.0.0:9191"},
		{"database_url", c.DatabaseURL, "sqlite:/var/lib/bff/bff.db"},
		{"redis_url", c.RedisURL, "rediss://redis.internal:6380/2"},
		{"public_origin", c.PublicOrigin, "https://bank.example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestLoadOverrideIsValidated(t *testing.T) {
	env := testEnv()
	env["BFF_LISTEN"] = "nonsense"
	_, err := loadYAML(t, configYAML(t, nil), env)
	if !slices.ContainsFunc(problemsOf(t, err), func(p string) bool { return strings.HasPrefix(p, "listen:") }) {
		t.Errorf("problems %q do not mention listen", problemsOf(t, err))
	}
}

func TestLoadResolvesSecrets(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secrets/cache-key", "  "+testCacheKey+"\n\n")
	abs := writeFile(t, t.TempDir(), "acme-key", testAPIKey+"\n")
	text := configYAML(t, map[string]string{
		"cache": "cache:\n  encryption_key: {file: secrets/cache-key}\n",
		"tenants": `tenants:
  - id: acme
    name: Acme
    basiq:
      version: "2.0"
      api_keys:
        - {id: a, file: ` + abs + `}
        - {id: b, env: ACME_KEY}
        - {id: c, value: " inline-key "}
`,
	})
	cfgPath := writeFile(t, dir, "bff.yaml", text)
	c, err := Load(cfgPath, getenvFrom(testEnv()))
	if err != nil {
		t.Fatal(err)
	}
	keys := c.Tenants[0].Basiq.APIKeys
	for _, tc := range []struct {
		name, got, want string
	}{
		{"relative file, whitespace trimmed", c.Cache.EncryptionKey.Reveal(), testCacheKey},
		{"absolute file", keys[0].Reveal(), testAPIKey},
		{"env", keys[1].Reveal(), testAPIKey},
		{"inline value", keys[2].Reveal(), "inline-key"},
		{"session key from env", c.Session.Keys[0].Reveal(), testSessionKey},
		{"source of file", keys[0].Source(), "file " + abs},
		{"source of env", keys[1].Source(), "env ACME_KEY"},
		{"source of value", keys[2].Source(), "inline value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}

	t.Run("inline value warns", func(t *testing.T) {
		want := []string{"tenant acme key c: inline secret value; use env or file outside demo/dev"}
		if !slices.Equal(c.Warnings, want) {
			t.Errorf("Warnings = %q, want %q", c.Warnings, want)
		}
	})
	t.Run("path is absolute", func(t *testing.T) {
		if c.Path != cfgPath || !filepath.IsAbs(c.Path) {
			t.Errorf("Path = %q, want %q", c.Path, cfgPath)
		}
	})
	t.Run("files", func(t *testing.T) {
		want := []string{cfgPath, filepath.Join(dir, "secrets", "cache-key"), abs}
		if got := c.Files(); !slices.Equal(got, want) {
			t.Errorf("Files() = %q, want %q", got, want)
		}
	})
}

func TestLoadRelativePath(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bff.yaml", configYAML(t, nil))
	t.Chdir(dir)
	c, err := Load("bff.yaml", getenvFrom(testEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "bff.yaml"); c.Path != want {
		t.Errorf("Path = %q, want %q", c.Path, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), getenvFrom(nil))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadVersionUnquoted(t *testing.T) {
	for _, v := range []string{"2.0", "2.1", "3.0", `"3.0"`, `'2.1'`} {
		t.Run(v, func(t *testing.T) {
			text := configYAML(t, map[string]string{"tenants": `tenants:
  - id: acme
    name: Acme
    basiq:
      version: ` + v + `
      api_keys: [{id: k, env: ACME_KEY}]
`})
			c := mustLoad(t, text, testEnv())
			if want := strings.Trim(v, `"'`); c.Tenants[0].Basiq.Version != want {
				t.Errorf("version = %q, want %q", c.Tenants[0].Basiq.Version, want)
			}
		})
	}
}

func TestLoadDecodeProblems(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // substrings, each of a different problem
	}{
		{"empty file", "", []string{"the configuration file is empty"}},
		{"only comments", "# nothing here\n\n", []string{"the configuration file is empty"}},
		{"syntax error", "listen: [\n", []string{"line"}},
		{"tab indentation", "session:\n\tkeys: []\n", []string{"line 2"}},
		{"unknown top-level key", configYAML(t, map[string]string{"listen": "lisen: 127.0.0.1:1\n"}), []string{`line 1: unknown key "lisen"`}},
		{"unknown nested key", configYAML(t, map[string]string{"log": "log:\n  levle: debug\n"}), []string{`line 7: unknown key "levle"`}},
		{"unknown key in a secret", configYAML(t, map[string]string{"cache": "cache:\n  encryption_key: {envv: X}\n"}), []string{`line 10: unknown key "envv"`, "cache.encryption_key: is required"}},
		{"wrong type", configYAML(t, map[string]string{"login": "login: {max_attempts_per_ip: many}\n"}), []string{"expected a whole number, found a string"}},
		{"secret written as a string", configYAML(t, map[string]string{"cache": "cache: {encryption_key: /run/secrets/bff-cache-key}\n"}), []string{"line 9: expected a secret reference such as {env: NAME} or {file: PATH}, found a string"}},
		{"several type errors", configYAML(t, map[string]string{
			"login":           "login: {max_attempts_per_ip: many, max_attempts_per_account: [1]}\n",
			"trusted_proxies": "trusted_proxies: 10.0.0.0/8\n",
		}), []string{"expected a whole number, found a string", "expected a whole number, found a list", "expected a list, found a string"}},
		{"bad duration", configYAML(t, map[string]string{"login": "login: {window: fortnight}\n"}), []string{"invalid duration"}},
		{"duration as mapping", configYAML(t, map[string]string{"login": "login: {window: {m: 1}}\n"}), []string{"expected a duration"}},
		{"duplicate key", configYAML(t, map[string]string{"listen": "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n"}), []string{`line 2: duplicate key "listen" (first at line 1)`}},
		{"duplicate nested key", configYAML(t, map[string]string{"log": "log: {level: info, level: debug}\n"}), []string{`duplicate key "level"`}},
		{"second document", configYAML(t, nil) + "---\nlisten: 127.0.0.1:1\n", []string{"more than one YAML document"}},
		{"empty second document", configYAML(t, nil) + "---\n", []string{"more than one YAML document"}},
		{"not a mapping", "- a\n- b\n", []string{"line 1: the file must be a mapping"}},
		{"a scalar", "listen\n", []string{"line 1: the file must be a mapping"}},
		{"null document", "---\n", []string{"the configuration file is empty"}},
		{"unknown alias", "listen: *nowhere\n", []string{"unknown anchor 'nowhere' referenced"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, tc.yaml, testEnv())
			got := problemsOf(t, err)
			for _, w := range tc.want {
				if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, w) }) {
					t.Errorf("no problem contains %q; got:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

func TestProblemsError(t *testing.T) {
	p := &Problems{List: []string{"listen: bad", "log.level: bad"}}
	want := "invalid configuration:\n  listen: bad\n  log.level: bad"
	if p.Error() != want {
		t.Errorf("Error() = %q, want %q", p.Error(), want)
	}
}

func TestPath(t *testing.T) {
	cases := []struct {
		name, flag, env, want string
	}{
		{"flag wins", "/etc/bff/a.yaml", "/etc/bff/b.yaml", "/etc/bff/a.yaml"},
		{"env", "", "/etc/bff/b.yaml", "/etc/bff/b.yaml"},
		{"neither: demo", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Path(tc.flag, getenvFrom(map[string]string{"BFF_CONFIG": tc.env})); got != tc.want {
				t.Errorf("Path = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestExampleLoads keeps example.yaml honest: with its environment variables set and its
// /run/secrets files present (moved under a temporary directory), it loads and validates.
func TestExampleLoads(t *testing.T) {
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	secrets := t.TempDir()
	text := strings.ReplaceAll(string(example), "/run/secrets/", secrets+"/")
	if text == string(example) {
		t.Fatal("example.yaml references no /run/secrets files")
	}
	writeFile(t, secrets, "bff-cache-key", testCacheKey+"\n")
	writeFile(t, secrets, "acme-basiq-key", testAPIKey+"\n")
	writeFile(t, secrets, "acme-oidc-secret", "acme-oidc-client-secret\n")
	env := map[string]string{
		"BFF_SESSION_KEY":         testSessionKey,
		"ACME_BASIQ_KEY_PREVIOUS": "cHJldmlvdXMta2V5",
		"ZENITH_BASIQ_KEY":        "emVuaXRoLWtleQ==",
		"ZENITH_BASIQ_KEY_OLD":    "b2xkLWtleQ==",
	}
	c := mustLoad(t, text, env)
	if len(c.Warnings) != 0 {
		t.Errorf("example.yaml warns: %q", c.Warnings)
	}
	if len(c.Tenants) != 2 || c.Tenants[0].Basiq.APIKeys[0].Reveal() != testAPIKey {
		t.Errorf("tenants not loaded as written: %+v", c.Tenants)
	}

	t.Run("every schema key appears", func(t *testing.T) {
		for _, k := range schemaKeys(reflect.TypeFor[Config]()) {
			if !regexp.MustCompile(`\b` + k + `:`).MatchString(string(example)) {
				t.Errorf("key %q is not in example.yaml", k)
			}
		}
	})
	t.Run("every key is commented", func(t *testing.T) {
		keyLine := regexp.MustCompile(`^\s*(?:- )?([a-z_]+):`)
		commented := map[string]bool{}
		for _, line := range strings.Split(string(example), "\n") {
			if m := keyLine.FindStringSubmatch(line); m != nil {
				commented[m[1]] = commented[m[1]] || strings.Contains(line, "#")
			}
		}
		for k, ok := range commented {
			if !ok {
				t.Errorf("key %q has no comment on any of its lines", k)
			}
		}
	})
}

// schemaKeys returns every YAML key of the schema rooted at t.
func schemaKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name != "" {
			keys = append(keys, name)
		}
		if name == "" || strings.Contains(opts, "inline") || f.Type != reflect.TypeFor[Duration]() {
			keys = append(keys, schemaKeys(f.Type)...)
		}
	}
	return keys
}

func TestFilesDemo(t *testing.T) {
	if got := Demo(t.TempDir(), "http://127.0.0.1:1", "k", testSessionKey, testCacheKey).Files(); got != nil {
		t.Errorf("Files() = %q, want nil for the demo configuration", got)
	}
}
