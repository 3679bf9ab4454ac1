package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults. The top-level ones are set before the file is decoded, so that a value written in
// the file, even an invalid one, wins and is then validated; a tenant's empty base_url and
// consent_url get theirs after decoding.
const (
	defaultListen      = "127.0.0.1:8080"
	defaultAdminListen = "127.0.0.1:9090"
	defaultDatabaseURL = "sqlite:data/bff.db"
	defaultRedisPrefix = "bff:"
	defaultBasiqURL    = "https://au-api.basiq.io"
	defaultConsentURL  = "https://consent.basiq.io/home"
)

// Problems is every reason a configuration was rejected, in file order where possible.
type Problems struct {
	List []string
}

// Error lists the problems, one per line.
func (p *Problems) Error() string {
	return "invalid configuration:\n  " + strings.Join(p.List, "\n  ")
}

// Path returns the config file to use: the --config flag value, else $BFF_CONFIG, else ""
// (no file: the caller runs demo mode).
func Path(flagValue string, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	return getenv("BFF_CONFIG")
}

// Load reads the YAML file at path strictly (unknown keys, duplicate keys, wrong types and
// extra documents are errors), applies defaults and the BFF_* overrides from getenv (one per
// scalar setting, see EnvOverrides), resolves the secrets and validates the result.
//
// It returns a *Problems listing every problem found, or a wrapped fs error if the file
// cannot be read. The returned Config's Path is absolute.
func Load(path string, getenv func(string) string, checks ...Check) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	return parse(data, abs, getenv, checks...)
}

// Check is a further rule Load applies after Validate, returning problems in the same form
// ("redis_url: sentence"). The server passes the check of redis_url by the parser it connects
// with (package kv), which this package cannot import: one parser, one set of messages, for
// config check, start and reload alike.
type Check func(*Config) []string

// parse is Load after the file has been read; path is absolute.
func parse(data []byte, path string, getenv func(string) string, checks ...Check) (*Config, error) {
	c := defaults()
	problems, ok := decode(data, &c)
	if !ok {
		return nil, &Problems{List: problems}
	}
	c.Path = path
	for i := range c.Tenants {
		b := &c.Tenants[i].Basiq
		if b.BaseURL == "" {
			b.BaseURL = defaultBasiqURL
		}
		if b.ConsentURL == "" {
			b.ConsentURL = defaultConsentURL
		}
	}
	problems = append(problems, c.applyOverrides(getenv)...)
	dir := filepath.Dir(path)
	resolveURL(&problems, "database_url", &c.DatabaseURLSetting, dir, getenv, &c.DatabaseURL)
	resolveURL(&problems, "redis_url", &c.RedisURLSetting, dir, getenv, &c.RedisURL)
	for _, r := range c.secretRefs() {
		r.s.resolve(dir, getenv)
		if r.s.sources() == 1 && r.s.Value != "" {
			c.Warnings = append(c.Warnings, r.label+": inline secret value; use env or file outside demo/dev")
		}
	}
	problems = append(problems, c.Validate()...)
	for _, check := range checks {
		problems = append(problems, check(&c)...)
	}
	if len(problems) > 0 {
		return nil, &Problems{List: problems}
	}
	c.Warnings = append(c.Warnings, c.warnings()...)
	return &c, nil
}

// defaults returns a Config holding every default value.
func defaults() Config {
	secure := true
	return Config{
		Listen:             defaultListen,
		AdminListen:        defaultAdminListen,
		DatabaseURL:        defaultDatabaseURL,
		DatabaseURLSetting: PlainURL(defaultDatabaseURL),
		RedisURLSetting:    PlainURL(""),
		RedisPrefix:        defaultRedisPrefix,
		Log:                Log{Level: "info", Format: "json", FlushInterval: Duration(100 * time.Millisecond)},
		Session: Session{
			Secure:          &secure,
			IdleTimeout:     Duration(30 * time.Minute),
			AbsoluteTimeout: Duration(12 * time.Hour),
			CacheTTL:        Duration(2 * time.Second),
		},
		Login: Login{
			MaxAttemptsPerAccount: 5,
			MaxAttemptsPerDevice:  5,
			MaxAttemptsPerIP:      50,
			MaxFailuresGlobal:     1000,
			Window:                Duration(15 * time.Minute),
		},
		ClientToken: ClientToken{
			RefreshAfter: Duration(30 * time.Minute),
			MinRemaining: Duration(10 * time.Minute),
			Deadline:     Duration(2 * time.Second),
			L1TTL:        Duration(5 * time.Second),
			RateLimit:    30,
			MintBudget:   1200,
		},
		Shutdown: Shutdown{Drain: Duration(5 * time.Second), Timeout: Duration(10 * time.Second)},
	}
}

// decode decodes data strictly into c. Type errors (yaml collects all of them) leave the rest
// of c decoded, so ok is true and validation still runs. After a syntax error, an empty
// file, a root that is not a mapping or a second document, ok is false and the problem is
// reported alone: validating the defaults would only add noise.
func decode(data []byte, c *Config) (problems []string, ok bool) {
	// A first pass into a Node checks the shape of the file. It cannot do the strict decode
	// itself: Node.Decode has no KnownFields.
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&root)
	switch {
	case errors.Is(err, io.EOF):
		return []string{"the configuration file is empty"}, false
	case err != nil:
		return []string{decodeProblem(err.Error())}, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return []string{"the file holds more than one YAML document; put the configuration in one"}, false
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.ScalarNode && doc.ShortTag() == "!!null" {
		return []string{"the configuration file is empty"}, false
	}
	if doc.Kind != yaml.MappingNode {
		return []string{fmt.Sprintf("line %d: the file must be a mapping of keys such as listen: and tenants:", doc.Line)}, false
	}

	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	err = strict.Decode(c)
	var te *yaml.TypeError
	switch {
	case errors.As(err, &te):
		for _, e := range te.Errors {
			problems = append(problems, decodeProblem(e))
		}
	case err != nil:
		return []string{decodeProblem(err.Error())}, false
	}
	return problems, true
}

var (
	reCannot   = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `[^`]*`)? into (.+)$")
	reNotFound = regexp.MustCompile(`^line (\d+): field (.*) not found in type \S+$`)
	reAlready  = regexp.MustCompile(`^line (\d+): field (.*) already set in type \S+$`)
	reDupKey   = regexp.MustCompile(`^line (\d+): mapping key (".*") already defined at line (\d+)$`)
	reQuoted   = regexp.MustCompile("`[^`]*`")
	reKeyName  = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,31}$`) // the shape of every schema key
)

// decodeProblem rewrites a yaml error for an operator. yaml quotes fragments of the offending
// values and keys; those may be secrets written in the wrong place, so values are dropped and
// keys are shown only when they look like key names (lower case snake_case, as all are).
func decodeProblem(msg string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := reCannot.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("line %s: expected %s, found %s", m[1], goTypeName(m[3]), tagName(m[2]))
	}
	if m := reNotFound.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("line %s: unknown key %s", m[1], keyName(m[2]))
	}
	if m := reAlready.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("line %s: key %s is set twice", m[1], keyName(m[2]))
	}
	if m := reDupKey.FindStringSubmatch(msg); m != nil {
		k, err := strconv.Unquote(m[2])
		if err != nil {
			k = ""
		}
		return fmt.Sprintf("line %s: duplicate key %s (first at line %s)", m[1], keyName(k), m[3])
	}
	return reQuoted.ReplaceAllString(msg, "")
}

func keyName(k string) string {
	if reKeyName.MatchString(k) {
		return strconv.Quote(k)
	}
	return "(not shown)"
}

func tagName(tag string) string {
	switch tag {
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!null":
		return "nothing"
	case "!!timestamp":
		return "a timestamp"
	case "!!binary":
		return "binary data"
	}
	return "a value tagged " + tag
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case t == "string":
		return "a string"
	case t == "bool" || t == "*bool":
		return "true or false"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case t == "config.Duration":
		return "a duration such as 30m or 2s"
	case t == "config.Secret":
		return "a secret reference such as {env: NAME} or {file: PATH}"
	case strings.HasPrefix(t, "config.") || strings.HasPrefix(t, "map["):
		return "a mapping"
	}
	return "another type"
}

// UnmarshalYAML reads a duration written like "30m" or "2s". A bad value is reported as a
// yaml type error so that decoding goes on and every problem is listed.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: expected a duration such as 30m or 2s", n.Line)}}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		// The value is left out: it is not a secret, but a misplaced one could be.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid duration (write a number with a unit, such as 30m, 2s or 500ms)", n.Line)}}
	}
	*d = Duration(v)
	return nil
}

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as "30m0s", so JSON and YAML show it readably.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// secretRef is one secret of a Config with the key path validation reports it under and the
// label warnings use.
type secretRef struct {
	path, label string
	s           *Secret
	hex32       bool // a 32-byte key written in hex
}

// secretRefs lists every secret in c, pointing into c.
func (c *Config) secretRefs() []secretRef {
	var refs []secretRef
	for i := range c.Session.Keys {
		p := fmt.Sprintf("session.keys[%d]", i)
		refs = append(refs, secretRef{p, p, &c.Session.Keys[i], true})
	}
	refs = append(refs, secretRef{"cache.encryption_key", "cache.encryption_key", &c.Cache.EncryptionKey, true})
	for i := range c.Tenants {
		t := &c.Tenants[i]
		for j := range t.Basiq.APIKeys {
			k := &t.Basiq.APIKeys[j]
			refs = append(refs, secretRef{
				path:  fmt.Sprintf("tenants[%d].basiq.api_keys[%d]", i, j),
				label: fmt.Sprintf("tenant %s key %s", t.ID, k.ID),
				s:     &k.Secret,
			})
		}
		refs = append(refs, t.Login.secretRefs(i, t.ID)...)
	}
	return refs
}

// Files returns the absolute paths of the config file and of every secret file it
// references: the set to watch for hot reload. It is nil for the demo configuration.
func (c *Config) Files() []string {
	if c.Path == "" {
		return nil
	}
	files := []string{c.Path}
	seen := map[string]bool{c.Path: true}
	dir := filepath.Dir(c.Path)
	refs := c.secretRefs()
	for _, u := range []*URLSetting{&c.DatabaseURLSetting, &c.RedisURLSetting} {
		refs = append(refs, secretRef{s: &u.Secret})
	}
	for _, r := range refs {
		if r.s.File == "" {
			continue
		}
		p := secretPath(dir, r.s.File)
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	return files
}
