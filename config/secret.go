package config

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// redacted is what every printed form of a secret shows.
const redacted = "[redacted]"

// maxSecretFile bounds a secret file read: keys are at most a few hundred bytes, and a
// mistyped path such as /dev/zero must not exhaust memory.
const maxSecretFile = 64 << 10

// Secret is a reference to secret material: exactly one of Env (an environment variable),
// File (a file, relative paths are relative to the config file) or Value (inline, for demo and
// development only) is set. Load resolves it; the content is available only through Reveal,
// Bytes and Hex32. Every printed form (fmt verbs, slog, JSON, YAML) is "[redacted]".
type Secret struct {
	Env   string `yaml:"env,omitempty"`
	File  string `yaml:"file,omitempty"`
	Value string `yaml:"value,omitempty"`

	// Strings, not []byte, so that Secret (and so Config) stays comparable and a caller of
	// Bytes cannot change the content others see.
	content  string
	resolved bool
	problem  string // why resolution failed; never contains content
}

// NewSecret returns an inline secret that is already resolved, for tests and demo mode.
func NewSecret(v string) Secret {
	return Secret{Value: v, content: strings.TrimSpace(v), resolved: true}
}

// Reveal returns the resolved content, surrounding whitespace trimmed ("" if unresolved).
func (s Secret) Reveal() string { return s.content }

// Source says where the secret comes from, without its content: "env BFF_SESSION_KEY",
// "file /run/secrets/x" or "inline value".
func (s Secret) Source() string {
	switch {
	case s.sources() != 1:
		return "invalid reference"
	case s.Env != "":
		return "env " + s.Env
	case s.File != "":
		return "file " + s.File
	default:
		return "inline value"
	}
}

// Hex32 decodes the content as 64 hex characters into 32 bytes, the form of session keys and
// the cache encryption key. The error never contains the content.
func (s Secret) Hex32() ([]byte, error) {
	if len(s.content) != 64 {
		return nil, fmt.Errorf("must be 64 hex characters (32 random bytes, e.g. from `openssl rand -hex 32`), got %d characters", len(s.content))
	}
	b, err := hex.DecodeString(s.content)
	if err != nil {
		// hex's error quotes the offending byte, which is part of the secret.
		return nil, fmt.Errorf("must be 64 hex characters (32 random bytes, e.g. from `openssl rand -hex 32`), found a non-hex character")
	}
	return b, nil
}

// The printing methods below all show "[redacted]". Format covers every fmt verb and
// flag, including %#v and %x, which would otherwise print the Value field.

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (s Secret) GoString() string { return redacted }

// Format writes "[redacted]" whatever the verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue logs "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalYAML encodes "[redacted]".
func (s Secret) MarshalYAML() (any, error) { return redacted, nil }

// MarshalText encodes "[redacted]", for encoders that use encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

func (s Secret) isZero() bool { return s.sources() == 0 }

// sources counts the references set; exactly one is valid.
func (s Secret) sources() (n int) {
	for _, v := range []string{s.Env, s.File, s.Value} {
		if v != "" {
			n++
		}
	}
	return n
}

// resolve reads the content. A failure is kept in s.problem for Validate to report under
// the key's path, so Load and Validate do not report it twice.
func (s *Secret) resolve(dir string, getenv func(string) string) {
	s.content, s.resolved, s.problem = "", false, ""
	if s.sources() != 1 {
		return // Validate reports the malformed reference
	}
	var v string
	switch {
	case s.Env != "":
		v = getenv(s.Env)
		if strings.TrimSpace(v) == "" {
			s.problem = fmt.Sprintf("environment variable %s is unset or empty", s.Env)
			return
		}
	case s.File != "":
		b, err := readSecretFile(secretPath(dir, s.File))
		if err != nil {
			s.problem = err.Error()
			return
		}
		v = string(b)
		if strings.TrimSpace(v) == "" {
			s.problem = fmt.Sprintf("file %s is empty", s.File)
			return
		}
	default:
		v = s.Value
		if strings.TrimSpace(v) == "" {
			s.problem = "inline value is blank"
			return
		}
	}
	s.content, s.resolved = strings.TrimSpace(v), true
}

// secretPath makes a secret file path absolute: relative paths are relative to the
// directory of the config file, so a config and its secrets can move together.
func secretPath(dir, p string) string {
	if !filepath.IsAbs(p) && dir != "" {
		p = filepath.Join(dir, p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

// readSecretFile reads at most maxSecretFile bytes of a regular file. Opening a FIFO or a
// device would block or never end, so those are refused before opening.
func readSecretFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret file %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("read secret file %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("secret file %s is larger than %d bytes", path, maxSecretFile)
	}
	return b, nil
}

// APIKey defines its own printing methods: those promoted from the embedded Secret would
// print the whole key as "[redacted]", id included. These show the id and hide the secret.

// String returns "{ID:<id> Revoked:<bool> Secret:[redacted]}".
func (k APIKey) String() string {
	return fmt.Sprintf("{ID:%s Revoked:%t Secret:%s}", k.ID, k.Revoked, redacted)
}

// GoString returns the key as a Go literal with the secret redacted.
func (k APIKey) GoString() string {
	return fmt.Sprintf("config.APIKey{ID:%q, Revoked:%t, Secret:%s}", k.ID, k.Revoked, redacted)
}

// Format prints the key like a struct whose Secret is "[redacted]".
func (k APIKey) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, k.GoString())
	case verb == 'v' && f.Flag('+'):
		_, _ = io.WriteString(f, k.String())
	default:
		fmt.Fprintf(f, fmt.FormatString(f, verb), apiKeyView{k.ID, k.Revoked, k.Secret})
	}
}

// LogValue logs the id and the revoked flag; the secret shows as "[redacted]".
func (k APIKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.Bool("revoked", k.Revoked), slog.String("secret", redacted))
}

// MarshalJSON encodes {"id":..,"revoked":..,"secret":"[redacted]"}.
func (k APIKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.view()) }

// MarshalYAML encodes the id, the revoked flag and "[redacted]".
func (k APIKey) MarshalYAML() (any, error) { return k.view(), nil }

// MarshalText encodes String's form.
func (k APIKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

func (k APIKey) view() apiKeyView { return apiKeyView{k.ID, k.Revoked, k.Secret} }

type apiKeyView struct {
	ID      string `json:"id" yaml:"id"`
	Revoked bool   `json:"revoked" yaml:"revoked"`
	Secret  Secret `json:"secret" yaml:"secret"`
}

// redactedConfig has Config's fields but none of its methods, so Config's printing methods
// can print a copy without recursing.
type redactedConfig Config

// redact returns a copy whose database and Redis URLs carry no password; secrets redact
// themselves.
func (c Config) redact() redactedConfig {
	c.DatabaseURL = redactURL(c.DatabaseURL)
	c.RedisURL = redactURL(c.RedisURL)
	return redactedConfig(c)
}

// Format prints the configuration with passwords and secrets redacted.
func (c Config) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), c.redact())
}

// LogValue logs the configuration with passwords and secrets redacted.
func (c Config) LogValue() slog.Value         { return slog.AnyValue(c.redact()) }
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.redact()) }
func (c Config) MarshalYAML() (any, error)    { return c.redact(), nil }

// redactURL hides the password of a database or Redis URL, in the user info or in a
// password query parameter (pgx accepts both). A string that does not parse as one of the
// known URL forms is hidden whole: it may be a key=value DSN with a password.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return redacted
	}
	switch u.Scheme {
	case "sqlite":
		return s
	case "postgres", "postgresql", "redis", "rediss":
	default:
		return redacted
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
