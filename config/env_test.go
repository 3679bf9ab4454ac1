package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestURLSecretRefs: database_url and redis_url may be secret references; the resolved URL
// is used, and no printed form of the configuration shows the password.
func TestURLSecretRefs(t *testing.T) {
	const pw = "Db-Pa55word-in-a-file"
	dir := t.TempDir()
	writeFile(t, dir, "secrets/db-url", "postgres://bff:"+pw+"@db:5432/bff\n")
	tests := []struct {
		name       string
		replace    map[string]string
		env        map[string]string
		wantDB     string
		wantRedis  string
		wantErrSub string
	}{
		{"database_url from a file", map[string]string{"database_url": "database_url: {file: secrets/db-url}\n"}, nil,
			"postgres://bff:" + pw + "@db:5432/bff", "redis://127.0.0.1:6379/0", ""},
		{"redis_url from the environment", map[string]string{"redis_url": "redis_url: {env: REDIS_URL}\n"}, map[string]string{"REDIS_URL": "redis://:" + pw + "@redis:6379/1"},
			"postgres://bff@db/bff", "redis://:" + pw + "@redis:6379/1", ""},
		{"plain strings as before", nil, nil, "postgres://bff@db/bff", "redis://127.0.0.1:6379/0", ""},
		{"a missing file", map[string]string{"database_url": "database_url: {file: secrets/none}\n"}, nil, "", "", "database_url: read secret file"},
		{"an unset variable", map[string]string{"redis_url": "redis_url: {env: NOPE}\n"}, nil, "", "", "redis_url: environment variable NOPE is unset or empty"},
		{"two sources", map[string]string{"redis_url": "redis_url: {env: A, file: b}\n"}, nil, "", "", "redis_url: a secret reference needs exactly one of env, file or value"},
		{"an unknown key", map[string]string{"redis_url": "redis_url: {path: x}\n"}, nil, "", "", `unknown key "path" in a secret reference`},
		{"a list", map[string]string{"redis_url": "redis_url: [a]\n"}, nil, "", "", "expected a URL or a secret reference"},
		{"the override wins over a reference", map[string]string{"database_url": "database_url: {file: secrets/none}\n"}, map[string]string{"BFF_DATABASE_URL": "sqlite:x.db"},
			"sqlite:x.db", "redis://127.0.0.1:6379/0", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			path := writeFile(t, dir, "bff.yaml", configYAML(t, tc.replace))
			c, err := Load(path, getenvFrom(env))
			if tc.wantErrSub != "" {
				got := problemsOf(t, err)
				if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tc.wantErrSub) }) {
					t.Fatalf("no problem contains %q:\n%s", tc.wantErrSub, strings.Join(got, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.DatabaseURL != tc.wantDB || c.RedisURL != tc.wantRedis {
				t.Errorf("urls = %q, %q; want %q, %q", c.DatabaseURL, c.RedisURL, tc.wantDB, tc.wantRedis)
			}
			for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
				if out := fmt.Sprintf(f, c); strings.Contains(out, pw) {
					t.Errorf("%s of the config shows the password", f)
				}
			}
			if strings.Contains(tc.replace["database_url"], "file:") && tc.env["BFF_DATABASE_URL"] == "" && !slices.Contains(c.Files(), dir+"/secrets/db-url") {
				t.Errorf("the URL's secret file is not watched: %v", c.Files())
			}
		})
	}
}

// TestEnvOverrides: every scalar setting has a BFF_* variable that replaces the file's value
// and is validated like it.
func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(c *Config) bool
		wantErr string
	}{
		{"top level", map[string]string{"BFF_REDIS_PREFIX": "x:", "BFF_SINGLE_REPLICA": "true"}, func(c *Config) bool { return c.RedisPrefix == "x:" && c.SingleReplica }, ""},
		{"nested duration", map[string]string{"BFF_SESSION_IDLE_TIMEOUT": "5m"}, func(c *Config) bool { return c.Session.IdleTimeout.D() == 5*time.Minute }, ""},
		{"pointer bool", map[string]string{"BFF_SESSION_SECURE": "false", "BFF_PUBLIC_ORIGIN": "http://localhost:8080"}, func(c *Config) bool { return !c.Session.IsSecure() && c.PublicOrigin == "http://localhost:8080" }, ""},
		{"int", map[string]string{"BFF_LOGIN_MAX_ATTEMPTS_PER_IP": "7"}, func(c *Config) bool { return c.Login.MaxAttemptsPerIP == 7 }, ""},
		{"shutdown", map[string]string{"BFF_SHUTDOWN_DRAIN": "0s", "BFF_SHUTDOWN_TIMEOUT": "30s"}, func(c *Config) bool { return c.Shutdown.Drain == 0 && c.Shutdown.Timeout.D() == 30*time.Second }, ""},
		{"empty is ignored", map[string]string{"BFF_LOG_LEVEL": ""}, func(c *Config) bool { return c.Log.Level == "info" }, ""},
		{"bad duration", map[string]string{"BFF_CLIENT_TOKEN_DEADLINE": "soon"}, nil, "BFF_CLIENT_TOKEN_DEADLINE (overrides client_token.deadline): must be a duration"},
		{"bad int", map[string]string{"BFF_CLIENT_TOKEN_RATE_LIMIT": "many"}, nil, "BFF_CLIENT_TOKEN_RATE_LIMIT (overrides client_token.rate_limit): must be a whole number"},
		{"bad bool", map[string]string{"BFF_SINGLE_REPLICA": "perhaps"}, nil, "BFF_SINGLE_REPLICA (overrides single_replica): must be true or false"},
		{"validated like the file", map[string]string{"BFF_LOG_FORMAT": "xml"}, nil, "log.format: must be json or text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			c, err := loadYAML(t, configYAML(t, nil), env)
			if tc.wantErr != "" {
				got := problemsOf(t, err)
				if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tc.wantErr) }) {
					t.Fatalf("no problem contains %q:\n%s", tc.wantErr, strings.Join(got, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !tc.check(c) {
				t.Errorf("override not applied: %+v", c)
			}
		})
	}
}

// TestEnvOverridesInReadme: the README lists every BFF_* override, and nothing else under
// that heading's table.
func TestEnvOverridesInReadme(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	overrides := EnvOverrides()
	if len(overrides) < 20 {
		t.Fatalf("only %d overrides: %v", len(overrides), overrides)
	}
	for env, key := range overrides {
		if !strings.Contains(readme, "| `"+env+"` | `"+key+"` |") {
			t.Errorf("README lacks the row | `%s` | `%s` |", env, key)
		}
	}
}
