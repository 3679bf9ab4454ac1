package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSecretAccessors(t *testing.T) {
	s := NewSecret("  hunter2-token\n")
	if got := s.Reveal(); got != "hunter2-token" {
		t.Errorf("Reveal() = %q", got)
	}

	for _, tc := range []struct {
		name string
		s    Secret
		want string
	}{
		{"env", Secret{Env: "BFF_SESSION_KEY"}, "env BFF_SESSION_KEY"},
		{"file", Secret{File: "/run/secrets/x"}, "file /run/secrets/x"},
		{"value", Secret{Value: "hunter2"}, "inline value"},
		{"none", Secret{}, "invalid reference"},
		{"two", Secret{Env: "A", Value: "hunter2"}, "invalid reference"},
	} {
		t.Run("source of "+tc.name, func(t *testing.T) {
			if got := tc.s.Source(); got != tc.want {
				t.Errorf("Source() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSecretHex32(t *testing.T) {
	cases := []struct {
		name    string
		value   string
		wantErr string
	}{
		{"valid", testSessionKey, ""},
		{"upper case", strings.ToUpper(testSessionKey), ""},
		{"too short", testSessionKey[:62], "got 62 characters"},
		{"too long", testSessionKey + "00", "got 66 characters"},
		{"not hex", "zz" + testSessionKey[2:], "found a non-hex character"},
		{"base64 of 32 bytes", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "must be 64 hex characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewSecret(tc.value).Hex32()
			if tc.wantErr == "" {
				if err != nil || len(b) != 32 {
					t.Fatalf("Hex32() = %d bytes, %v", len(b), err)
				}
				if want, _ := hex.DecodeString(testSessionKey); !bytes.Equal(b, want) {
					t.Errorf("Hex32() = %x", b)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Hex32() error = %v, want %q", err, tc.wantErr)
			}
			if leaks(err.Error(), tc.value) {
				t.Errorf("error %q shows part of the value", err)
			}
		})
	}
}

// leaks reports whether out shows secret, or any 6-character piece of it, raw or hex-encoded.
func leaks(out, secret string) bool {
	for i := 0; i+6 <= len(secret); i++ {
		piece := secret[i : i+6]
		if strings.Contains(out, piece) || strings.Contains(strings.ToLower(out), hex.EncodeToString([]byte(piece))) {
			return true
		}
	}
	return false
}

// Secret material used by the redaction test; none of it may be printed.
const (
	inlineAPIKey   = "Zq9vLm4TnB8kQw"
	fileAPIKey     = "Kp7hXc2RsD5yJu"
	envAPIKey      = "Wx3gNf6PaE1zHo"
	dbPassword     = "Rv5jUq8MbC3tGi"
	redisPassword  = "Ty8dKw1VnF4sLe"
	inlineCacheKey = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
)

// redactionConfig loads a configuration holding every kind of secret.
func redactionConfig(t *testing.T) *Config {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "acme-key", fileAPIKey+"\n")
	text := configYAML(t, map[string]string{
		"database_url": "database_url: postgres://bff:" + dbPassword + "@db/bff?sslpassword=" + dbPassword + "\n",
		"redis_url":    "redis_url: redis://:" + redisPassword + "@redis:6379/0\n",
		"session":      "session: {keys: [{value: " + testSessionKey + "}, {env: BFF_SESSION_KEY}]}\n",
		"cache":        "cache: {encryption_key: {value: " + inlineCacheKey + "}}\n",
		"tenants": `tenants:
  - id: acme
    name: Acme Lending
    basiq:
      version: "3.0"
      api_keys:
        - {id: "2026-11", value: ` + inlineAPIKey + `}
        - {id: "2026-05", file: acme-key}
        - {id: "2025-11", env: ACME_KEY, revoked: true}
`,
	})
	env := testEnv()
	env["ACME_KEY"] = envAPIKey
	c, err := Load(writeFile(t, dir, "bff.yaml", text), getenvFrom(env))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRedaction(t *testing.T) {
	c := redactionConfig(t)
	secrets := []string{inlineAPIKey, fileAPIKey, envAPIKey, dbPassword, redisPassword, inlineCacheKey, testSessionKey}
	tenant := c.Tenants[0]
	key := tenant.Basiq.APIKeys[0]
	subjects := []struct {
		name    string
		v       any
		visible string // something that must still show, so the test is not vacuous
	}{
		{"Config", *c, "Acme Lending"},
		{"*Config", c, "Acme Lending"},
		{"Tenant", tenant, "Acme Lending"},
		{"*Tenant", &tenant, "Acme Lending"},
		{"[]Tenant", c.Tenants, "Acme Lending"},
		{"Basiq", tenant.Basiq, "2026-11"},
		{"APIKey", key, "2026-11"},
		{"*APIKey", &key, "2026-11"},
		{"[]APIKey", tenant.Basiq.APIKeys, "2026-05"},
		{"Session", c.Session, redacted},
		{"Cache", c.Cache, redacted},
		{"Secret", key.Secret, redacted},
		{"*Secret", &key.Secret, redacted},
		{"map of Secret", map[string]Secret{"k": key.Secret}, redacted},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v", "%-8s", "%T %p"}
	check := func(t *testing.T, out, visible string) {
		t.Helper()
		for _, s := range secrets {
			if leaks(out, s) {
				t.Errorf("output shows secret %q:\n%s", s[:4]+"...", out)
			}
		}
		if visible != "" && !strings.Contains(out, visible) && !strings.Contains(out, hex.EncodeToString([]byte(visible))) &&
			!strings.Contains(out, strings.ToUpper(hex.EncodeToString([]byte(visible)))) {
			t.Errorf("output does not show %q:\n%s", visible, out)
		}
	}
	for _, sub := range subjects {
		t.Run(sub.name, func(t *testing.T) {
			for _, verb := range verbs {
				t.Run("fmt "+verb, func(t *testing.T) {
					visible := sub.visible
					if verb == "%T %p" || verb == "%d" || verb == "%10.3v" {
						visible = "" // these do not print the content, or only 3 characters of it
					}
					check(t, fmt.Sprintf(verb, sub.v), visible)
				})
			}
			t.Run("error wrapping", func(t *testing.T) {
				check(t, fmt.Errorf("reload %v: %w", sub.v, errors.New("x")).Error(), sub.visible)
			})
			t.Run("json", func(t *testing.T) {
				b, err := json.Marshal(sub.v)
				if err != nil {
					t.Fatal(err)
				}
				check(t, string(b), sub.visible)
			})
			t.Run("yaml", func(t *testing.T) {
				b, err := yaml.Marshal(sub.v)
				if err != nil {
					t.Fatal(err)
				}
				check(t, string(b), sub.visible)
			})
			for _, h := range []struct {
				name string
				new  func(*bytes.Buffer) slog.Handler
			}{
				{"slog json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
				{"slog text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
			} {
				t.Run(h.name, func(t *testing.T) {
					var buf bytes.Buffer
					log := slog.New(h.new(&buf))
					log.Info("config", "v", sub.v, slog.Any("any", sub.v), slog.Group("g", "v", sub.v))
					check(t, buf.String(), sub.visible)
				})
			}
		})
	}
}

func TestRedactionKeepsUsefulDetail(t *testing.T) {
	c := redactionConfig(t)
	key := c.Tenants[0].Basiq.APIKeys[2]
	cases := []struct {
		name, got, want string
	}{
		{"secret %v", fmt.Sprintf("%v", key.Secret), "[redacted]"},
		{"secret %q", fmt.Sprintf("%q", key.Secret), "[redacted]"},
		{"secret %#v", fmt.Sprintf("%#v", key.Secret), "[redacted]"},
		{"secret String", key.Secret.String(), "[redacted]"},
		{"api key %v", fmt.Sprintf("%v", key), "{2025-11 true [redacted]}"},
		{"api key %+v", fmt.Sprintf("%+v", key), "{ID:2025-11 Revoked:true Secret:[redacted]}"},
		{"api key %#v", fmt.Sprintf("%#v", key), `config.APIKey{ID:"2025-11", Revoked:true, Secret:[redacted]}`},
		{"api key json", mustJSON(t, key), `{"id":"2025-11","revoked":true,"secret":"[redacted]"}`},
		{"secret json", mustJSON(t, key.Secret), `"[redacted]"`},
		{"database url", redactURL(c.DatabaseURL), "postgres://bff:xxxxx@db/bff?sslpassword=xxxxx"},
		{"redis url", redactURL(c.RedisURL), "redis://:xxxxx@redis:6379/0"},
		{"sqlite url", redactURL("sqlite:data/bff.db"), "sqlite:data/bff.db"},
		{"unknown dsn", redactURL("host=db password=x"), "[redacted]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %s, want %s", tc.got, tc.want)
			}
		})
	}
	t.Run("config still shows its secrets to code", func(t *testing.T) {
		if c.DatabaseURL != "postgres://bff:"+dbPassword+"@db/bff?sslpassword="+dbPassword {
			t.Errorf("DatabaseURL was changed: printing must redact a copy")
		}
		if key.Reveal() != envAPIKey || key.Source() != "env ACME_KEY" {
			t.Errorf("Reveal/Source = %q/%q", key.Reveal(), key.Source())
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProblemsHideSecrets puts secrets where they do not belong and checks that no
// problem shows them.
func TestProblemsHideSecrets(t *testing.T) {
	const pw = "Sup3rSecretPw"
	cases := []struct {
		name    string
		replace map[string]string
		env     map[string]string
		secret  string
	}{
		{"key written as a plain scalar", map[string]string{"cache": "cache: {encryption_key: " + testCacheKey + "}\n"}, nil, testCacheKey},
		{"key written as a mapping key", map[string]string{"session": "session: {keys: [{" + testSessionKey + "}]}\n"}, nil, testSessionKey},
		{"short key as a mapping key", map[string]string{"session": "session: {keys: [{K" + pw + "}]}\n"}, nil, pw},
		{"key in a number field", map[string]string{"login": "login: {window: " + testAPIKey + ", max_attempts_per_ip: " + testAPIKey + "}\n"}, nil, testAPIKey},
		{"key as an api key id", map[string]string{"tenants": tenantsYAML("      version: '3.0'\n      api_keys: [{id: '" + testAPIKey + "', env: ACME_KEY}]\n")}, nil, testAPIKey},
		{"bad session key from env", map[string]string{"session": "session: {keys: [{env: BAD}]}\n"}, map[string]string{"BAD": "zz" + testSessionKey[2:]}, testSessionKey[2:]},
		{"database url with password", map[string]string{"database_url": "database_url: mysql://bff:" + pw + "@db/bff\n"}, nil, pw},
		{"database url from env", nil, map[string]string{"BFF_DATABASE_URL": "mongodb://bff:" + pw + "@db"}, pw},
		{"unparseable database url", map[string]string{"database_url": "database_url: 'postgres://bff:" + pw + "@db:port/bff'\n"}, nil, pw},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := loadYAML(t, configYAML(t, tc.replace), env)
			problemsOf(t, err)
			if leaks(err.Error(), tc.secret) {
				t.Errorf("problems show the secret:\n%s", err)
			}
		})
	}
}
