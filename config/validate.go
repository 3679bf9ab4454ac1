package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// tokenLifetime is how long Basiq's tokens live: refresh_after plus min_remaining must fit
// inside it, or a token would be refreshed and refused at the same time.
const tokenLifetime = 60 * time.Minute

var (
	// Tenant ids go into Redis keys, where ':' separates parts.
	reTenantID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	reKeyID    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// problems collects validation sentences, each starting with the key path.
type problems []string

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

// Validate checks c and returns every problem found, each one sentence naming the key path
// ("tenants[1].basiq.api_keys[0]: exactly one of env, file or value must be set"). Values
// that may hold credentials (URLs of the database and Redis, secrets) are never quoted.
// Secrets must have been resolved by Load (or made with NewSecret).
func (c *Config) Validate() []string {
	if c == nil {
		return []string{"no configuration"}
	}
	var p problems
	checkHostPort(&p, "listen", c.Listen)
	checkHostPort(&p, "admin_listen", c.AdminListen)
	if c.Listen == c.AdminListen && !strings.HasSuffix(c.Listen, ":0") {
		p.add("admin_listen", "must differ from listen")
	}
	c.checkPublicOrigin(&p)
	checkDatabaseURL(&p, c.DatabaseURL)
	if c.RedisURL == "" && !c.Demo && !c.SingleReplica {
		p.add("redis_url", "is empty, which means the in-process store: replicas would not share sessions, "+
			"limits or the token cache. Set redis_url, or single_replica: true to run exactly one replica")
	}
	if strings.ContainsAny(c.RedisPrefix, " \t\r\n") {
		p.add("redis_prefix", "must not contain whitespace")
	}
	c.checkLog(&p)
	c.checkSession(&p)
	if c.Cache.EncryptionKey.isZero() {
		p.add("cache.encryption_key", "is required: 32 random bytes as 64 hex characters (openssl rand -hex 32), e.g. {file: /run/secrets/bff-cache-key}")
	} else {
		checkSecret(&p, "cache.encryption_key", c.Cache.EncryptionKey, true)
	}
	c.checkCORS(&p)
	c.checkTrustedProxies(&p)
	c.checkLogin(&p)
	c.checkClientToken(&p)
	if d := c.Shutdown.Drain.D(); d < 0 || d > 5*time.Minute {
		p.add("shutdown.drain", "must be between 0 and 5m")
	}
	if d := c.Shutdown.Timeout.D(); d < time.Second || d > 5*time.Minute {
		p.add("shutdown.timeout", "must be between 1s and 5m")
	}
	c.checkTenants(&p)
	return p
}

func (c *Config) checkLog(p *problems) {
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		p.add("log.level", "must be debug, info, warn or error")
	}
	if !oneOf(c.Log.Format, "json", "text") {
		p.add("log.format", "must be json or text")
	}
	if n := c.Log.Buffer(); n != 0 && (n < minLogBuffer || n > maxLogBuffer) {
		p.add("log.buffer_size", "must be 0 (unbuffered) or between %d (64 KiB) and %d (64 MiB) bytes", minLogBuffer, maxLogBuffer)
	}
	if d := c.Log.FlushInterval.D(); d < 10*time.Millisecond || d > 10*time.Second {
		p.add("log.flush_interval", "must be between 10ms and 10s")
	}
}

func (c *Config) checkTrustedProxies(p *problems) {
	for i, tp := range c.TrustedProxies {
		path := fmt.Sprintf("trusted_proxies[%d]", i)
		if pfx, err := netip.ParsePrefix(tp); err == nil {
			checkProxyWidth(p, path, pfx)
			continue
		}
		if _, err := netip.ParseAddr(tp); err != nil {
			p.add(path, "%q is neither a CIDR (10.0.0.0/8) nor an IP address", tp)
		}
	}
}

// checkProxyWidth refuses proxy ranges wider than a /8 (IPv4) or a /32 (IPv6): believing
// X-Forwarded-For from that much of the Internet lets any client choose the address its
// login attempts are counted against.
func checkProxyWidth(p *problems, path string, pfx netip.Prefix) {
	bits, min, family := pfx.Bits(), 32, "IPv6"
	if pfx.Addr().Is4() {
		min, family = 8, "IPv4"
	} else if pfx.Addr().Is4In6() && bits >= 96 {
		bits, min, family = bits-96, 8, "IPv4"
	}
	if bits < min {
		p.add(path, "%q is wider than a /%d: X-Forwarded-For would be believed from so much of the %s Internet that any client could choose its address; list your proxies' own ranges", pfx, min, family)
	}
}

// warnings returns remarks about settings that are allowed but usually a mistake in
// production. Validate's problems are errors; these are only logged and printed.
func (c *Config) warnings() []string {
	var w []string
	if host, _, err := net.SplitHostPort(c.AdminListen); err == nil && !isLoopback(host) {
		w = append(w, fmt.Sprintf("admin_listen: %q is not a loopback address: /metrics and /readyz answer anyone who can reach it; bind 127.0.0.1 or keep the port behind a firewall", c.AdminListen))
	}
	return w
}

func checkHostPort(p *problems, path, v string) {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		p.add(path, "%q is not host:port (e.g. 127.0.0.1:8080)", v)
		return
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.FormatUint(n, 10) {
		p.add(path, "port %q is not a number between 0 and 65535", port)
	}
}

func (c *Config) checkPublicOrigin(p *problems) {
	if c.PublicOrigin == "" {
		p.add("public_origin", "is required: the origin browsers load the SPA from, e.g. https://app.example.com")
		return
	}
	u, msg := parseOrigin(c.PublicOrigin)
	if msg != "" {
		p.add("public_origin", "%s", msg)
		return
	}
	if c.Session.IsSecure() && u.Scheme != "https" && !isLoopback(u.Hostname()) {
		p.add("public_origin", "must be https while session.secure is true (browsers accept Secure cookies over http only on localhost)")
	}
	if !c.Session.IsSecure() && !isLoopback(u.Hostname()) {
		p.add("session.secure", "false is allowed only while public_origin is on localhost or a loopback address: elsewhere the session cookie would travel in clear")
	}
}

// parseOrigin checks that s is an origin exactly as a browser sends it in the Origin header
// (scheme://host[:port], lower case, no default port): Origin checks compare strings.
// The message is "" when s is valid.
func parseOrigin(s string) (*url.URL, string) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return nil, fmt.Sprintf("%q is not an origin such as https://app.example.com", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Sprintf("%q is not an origin: the scheme must be http or https", s)
	}
	if u.User != nil {
		return nil, "an origin has no user name or password"
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.HasSuffix(s, "#") {
		return nil, fmt.Sprintf("%q is not an origin: remove the path, query or fragment (no trailing slash)", s)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, fmt.Sprintf("%q is not an origin: bad port", s)
		}
	}
	canon := strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
	canon = strings.TrimSuffix(canon, map[string]string{"http": ":80", "https": ":443"}[u.Scheme])
	if canon != s {
		return nil, fmt.Sprintf("%q must be written %q, the form browsers send", s, canon)
	}
	return u, ""
}

// isLoopback reports whether host is one that browsers treat as a secure context over http.
func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func checkDatabaseURL(p *problems, v string) {
	const want = "must be a postgres:// or postgresql:// URL, or sqlite:PATH"
	if path, ok := strings.CutPrefix(v, "sqlite:"); ok {
		if path == "" {
			p.add("database_url", "sqlite: needs a file path, e.g. sqlite:data/bff.db")
		}
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Opaque != "" {
		p.add("database_url", want) // the value is not quoted: it may hold a password
	}
}

func (c *Config) checkSession(p *problems) {
	if len(c.Session.Keys) == 0 {
		p.add("session.keys", "at least one key is required: 32 random bytes as 64 hex characters (openssl rand -hex 32)")
	}
	for i, k := range c.Session.Keys {
		checkSecret(p, fmt.Sprintf("session.keys[%d]", i), k, true)
	}
	idle, abs := c.Session.IdleTimeout.D(), c.Session.AbsoluteTimeout.D()
	if idle <= 0 {
		p.add("session.idle_timeout", "must be positive")
	}
	if abs < idle {
		p.add("session.absolute_timeout", "must be at least session.idle_timeout (%s)", idle)
	}
	if d := c.Session.CacheTTL.D(); d < 0 || d > 10*time.Second {
		p.add("session.cache_ttl", "must be between 0 and 10s")
	}
}

// checkSecret reports a malformed reference, a failed resolution or, for hex32 keys, content
// of the wrong form. It never shows the content.
func checkSecret(p *problems, path string, s Secret, hex32 bool) {
	switch {
	case s.sources() != 1:
		p.add(path, "exactly one of env, file or value must be set")
	case s.problem != "":
		p.add(path, "%s", s.problem)
	case !s.resolved:
		p.add(path, "%s has not been resolved", s.Source())
	case hex32:
		if _, err := s.Hex32(); err != nil {
			p.add(path, "%s", err)
		}
	}
}

func (c *Config) checkCORS(p *problems) {
	seen := map[string]bool{}
	for i, o := range c.CORS.AllowedOrigins {
		path := fmt.Sprintf("cors.allowed_origins[%d]", i)
		if strings.Contains(o, "*") {
			p.add(path, "%q: wildcards are refused: with credentials allowed, rs/cors would reflect almost any origin and let any site read tokens; list each origin exactly", o)
			continue
		}
		if _, msg := parseOrigin(o); msg != "" {
			p.add(path, "%s", msg)
			continue
		}
		if seen[o] {
			p.add(path, "%q is listed twice", o)
		}
		seen[o] = true
	}
}

func (c *Config) checkLogin(p *problems) {
	if c.Login.MaxAttemptsPerAccount <= 0 {
		p.add("login.max_attempts_per_account", "must be positive")
	}
	if c.Login.MaxAttemptsPerDevice <= 0 {
		p.add("login.max_attempts_per_device", "must be positive")
	}
	if c.Login.MaxAttemptsPerIP <= 0 {
		p.add("login.max_attempts_per_ip", "must be positive")
	}
	if c.Login.MaxFailuresGlobal <= 0 {
		p.add("login.max_failures_global", "must be positive")
	}
	if c.Login.MaxConcurrentHashes < 0 || c.Login.MaxConcurrentHashes > 64 {
		p.add("login.max_concurrent_hashes", "must be between 0 (the number of CPUs) and 64: each hash holds 19 MiB")
	}
	if c.Login.Window <= 0 {
		p.add("login.window", "must be positive")
	}
}

func (c *Config) checkClientToken(p *problems) {
	ct := c.ClientToken
	if ct.RefreshAfter <= 0 {
		p.add("client_token.refresh_after", "must be positive")
	}
	if ct.MinRemaining <= 0 {
		p.add("client_token.min_remaining", "must be positive")
	}
	if ct.RefreshAfter > 0 && ct.MinRemaining > 0 && ct.RefreshAfter.D()+ct.MinRemaining.D() >= tokenLifetime {
		p.add("client_token", "refresh_after + min_remaining must be less than 60m, the life of a Basiq token")
	}
	if d := ct.Deadline.D(); d < 100*time.Millisecond || d > 30*time.Second {
		p.add("client_token.deadline", "must be between 100ms and 30s")
	}
	if d := ct.L1TTL.D(); d < 0 || d > time.Minute {
		p.add("client_token.l1_ttl", "must be between 0 and 1m")
	}
	if ct.RateLimit <= 0 {
		p.add("client_token.rate_limit", "must be positive")
	}
	// Basiq allows 1,500 /token calls per 5 minutes: a larger budget would only buy 429s.
	if ct.MintBudget < 1 || ct.MintBudget > 1500 {
		p.add("client_token.mint_budget", "must be between 1 and 1500")
	}
}

func (c *Config) checkTenants(p *problems) {
	if len(c.Tenants) == 0 {
		p.add("tenants", "at least one tenant is required")
	}
	ids := map[string]int{}
	for i, t := range c.Tenants {
		path := fmt.Sprintf("tenants[%d]", i)
		switch j, dup := ids[t.ID]; {
		case !reTenantID.MatchString(t.ID):
			p.add(path+".id", "%q must be 1-63 characters of a-z, 0-9, _ and -, starting with a letter or digit", t.ID)
		case dup:
			p.add(path+".id", "%q is already used by tenants[%d]", t.ID, j)
		default:
			ids[t.ID] = i
		}
		if strings.TrimSpace(t.Name) == "" {
			p.add(path+".name", "is required")
		}
		checkBasiq(p, path+".basiq", t.Basiq)
		t.Login.check(p, path+".login")
	}
}

func checkBasiq(p *problems, path string, b Basiq) {
	if u, err := url.Parse(b.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		p.add(path+".base_url", "must be an absolute http or https URL without credentials, query or fragment")
	} else if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		p.add(path+".base_url", "must be https: over http the API key would travel in clear (http is allowed only for localhost, such as a local emulator)")
	}
	if !oneOf(b.Version, "2.0", "2.1", "3.0") {
		p.add(path+".version", `must be "2.0", "2.1" or "3.0"`)
	}
	if u, err := url.Parse(b.ConsentURL); err != nil || u.Host == "" || u.User != nil ||
		!(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())) {
		p.add(path+".consent_url", "must be an absolute https URL (http only for localhost)")
	}
	checkAPIKeys(p, path, b.APIKeys)
}

// checkAPIKeys checks a tenant's keys: unique well-formed ids, each secret, one usable.
func checkAPIKeys(p *problems, path string, keys []APIKey) {
	if len(keys) == 0 {
		p.add(path+".api_keys", "at least one key is required")
	}
	ids, active := map[string]int{}, 0
	for i, k := range keys {
		kp := fmt.Sprintf("%s.api_keys[%d]", path, i)
		switch j, dup := ids[k.ID]; {
		case !reKeyID.MatchString(k.ID):
			// Not quoted: a key pasted into the wrong field must not reach the log.
			p.add(kp+".id", "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
		case dup:
			p.add(kp+".id", "%q is already used by api_keys[%d]", k.ID, j)
		default:
			ids[k.ID] = i
		}
		checkSecret(p, kp, k.Secret, false)
		if !k.Revoked {
			active++
		}
	}
	if len(keys) > 0 && active == 0 {
		p.add(path+".api_keys", "every key is revoked; at least one must be usable")
	}
}

func oneOf(v string, allowed ...string) bool { return slices.Contains(allowed, v) }
