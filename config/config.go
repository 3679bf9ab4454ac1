// Package config is the BFF's configuration: the YAML schema, Load (file plus environment
// overrides, decoded strictly), Validate (every problem at once), secret references and the
// file watch that drives hot reload. It imports no other package of this module.
package config

import (
	"time"
)

// Config is the whole configuration, after defaults, environment overrides and secret
// resolution. It is immutable once returned by Load: a reload builds a new one.
type Config struct {
	Listen       string `yaml:"listen"`
	AdminListen  string `yaml:"admin_listen"`
	PublicOrigin string `yaml:"public_origin"`
	// DatabaseURL and RedisURL are the resolved URLs of DatabaseURLSetting and
	// RedisURLSetting (database_url and redis_url), which may be secret references.
	DatabaseURL        string     `yaml:"-"`
	RedisURL           string     `yaml:"-"`
	DatabaseURLSetting URLSetting `yaml:"database_url"`
	RedisURLSetting    URLSetting `yaml:"redis_url"`
	// SingleReplica acknowledges that an empty redis_url (the in-process store) means one
	// replica only; without it such a configuration is refused.
	SingleReplica  bool        `yaml:"single_replica"`
	RedisPrefix    string      `yaml:"redis_prefix"`
	Log            Log         `yaml:"log"`
	Session        Session     `yaml:"session"`
	Cache          Cache       `yaml:"cache"`
	CORS           CORS        `yaml:"cors"`
	TrustedProxies []string    `yaml:"trusted_proxies"`
	Login          Login       `yaml:"login"`
	ClientToken    ClientToken `yaml:"client_token"`
	Shutdown       Shutdown    `yaml:"shutdown"`
	Tenants        []Tenant    `yaml:"tenants"`

	// Demo is true for the built-in demo configuration (no config file given).
	Demo bool `yaml:"-"`
	// Path is the file the configuration was read from ("" in demo mode).
	Path string `yaml:"-"`
	// Warnings are non-fatal remarks (for example a {value: ...} secret), for the log.
	Warnings []string `yaml:"-"`
}

// Log selects the log format and level.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error (default info)
	Format string `yaml:"format"` // json or text (default json; text in demo mode)
	// BufferSize bounds the bytes of log lines waiting to be written (default 1 MiB); 0 writes
	// every line as it is logged, on the logging goroutine.
	BufferSize *int `yaml:"buffer_size"`
	// FlushInterval is how often buffered lines are written at the latest (default 100ms).
	FlushInterval Duration `yaml:"flush_interval"`
}

// Buffer is BufferSize with its default applied.
func (l Log) Buffer() int {
	if l.BufferSize == nil {
		return DefaultLogBuffer
	}
	return *l.BufferSize
}

// Log buffer bounds. The buffer must hold at least one flush batch (64 KiB).
const (
	DefaultLogBuffer = 1 << 20
	minLogBuffer     = 64 << 10
	maxLogBuffer     = 64 << 20
)

// Session configures the login session and its cookie.
type Session struct {
	// Secure is nil when unset; use IsSecure.
	Secure          *bool    `yaml:"secure"`
	IdleTimeout     Duration `yaml:"idle_timeout"`
	AbsoluteTimeout Duration `yaml:"absolute_timeout"`
	// CacheTTL is how long a replica trusts its in-process copy of a session (0: always ask
	// Redis). Ended sessions are dropped from every replica at once through pub/sub.
	CacheTTL Duration `yaml:"cache_ttl"`
	// Keys sign the session cookie: the first signs, all verify. 32 bytes as 64 hex chars.
	Keys []Secret `yaml:"keys"`
}

// IsSecure reports whether cookies are Secure and named __Host-bff (the default).
func (s Session) IsSecure() bool { return s.Secure == nil || *s.Secure }

// Cache configures the shared token cache.
type Cache struct {
	// EncryptionKey encrypts cached tokens (AES-256-GCM). 32 bytes as 64 hex chars.
	EncryptionKey Secret `yaml:"encryption_key"`
}

// CORS is the exact list of origins allowed to call the BFF with credentials.
type CORS struct {
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Login limits password guessing.
type Login struct {
	MaxAttemptsPerAccount int      `yaml:"max_attempts_per_account"` // default 5, from clients without a device cookie
	MaxAttemptsPerDevice  int      `yaml:"max_attempts_per_device"`  // default 5, per device cookie
	MaxAttemptsPerIP      int      `yaml:"max_attempts_per_ip"`      // default 50, per IPv4 address or IPv6 /64
	MaxFailuresGlobal     int      `yaml:"max_failures_global"`      // default 1000, fleet-wide
	MaxConcurrentHashes   int      `yaml:"max_concurrent_hashes"`    // default 0: the number of CPUs
	Window                Duration `yaml:"window"`                   // default 15m
}

// ClientToken tunes GET /client-token.
type ClientToken struct {
	RefreshAfter Duration `yaml:"refresh_after"` // default 30m
	MinRemaining Duration `yaml:"min_remaining"` // default 10m
	Deadline     Duration `yaml:"deadline"`      // default 2s: the longest a request waits
	L1TTL        Duration `yaml:"l1_ttl"`        // default 5s
	RateLimit    int      `yaml:"rate_limit"`    // per session per minute, default 30
	MintBudget   int      `yaml:"mint_budget"`   // per tenant per 5 minutes, default 1200
}

// Shutdown tunes the graceful stop on SIGTERM: readiness fails at once, the listeners keep
// serving for Drain (so load balancers can take the replica out of rotation), then stop
// accepting and give in-flight requests up to Timeout to finish.
type Shutdown struct {
	Drain   Duration `yaml:"drain"`   // default 5s
	Timeout Duration `yaml:"timeout"` // default 10s
}

// Tenant is one customer organisation with its own Basiq application.
type Tenant struct {
	ID    string      `yaml:"id"`
	Name  string      `yaml:"name"`
	Basiq Basiq       `yaml:"basiq"`
	Login TenantLogin `yaml:"login"`
}

// Basiq is a tenant's Basiq account.
type Basiq struct {
	BaseURL    string `yaml:"base_url"`    // default https://au-api.basiq.io
	Version    string `yaml:"version"`     // "2.0", "2.1" or "3.0"
	ConsentURL string `yaml:"consent_url"` // default https://consent.basiq.io/home
	// APIKeys: the first non-revoked key is the primary; the others are fallbacks.
	APIKeys []APIKey `yaml:"api_keys"`
}

// APIKey is one Basiq API key with its operator-chosen id.
type APIKey struct {
	ID      string `yaml:"id"`
	Revoked bool   `yaml:"revoked"`
	Secret  `yaml:",inline"`
}

// Duration is a time.Duration written as "30m", "2s" in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
