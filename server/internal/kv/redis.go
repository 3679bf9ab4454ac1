package kv

// The Redis URL chooses the deployment by its scheme (RFC 3986 syntax; a password with
// reserved characters must be percent-encoded):
//
//	redis://[[user]:password@]host[:port][/db][?options]        one node (port 6379 by default)
//	redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db][?options]
//	redis+cluster://[[user]:password@]host[:port][,host[:port]...][?options]
//
// and rediss://, rediss+sentinel://, rediss+cluster:// for the same over TLS.
//
// Sentinel: the hosts are Sentinels (port 26379 by default); any one that answers is enough,
// the others are discovered. The path names the master set as the Sentinels monitor it, then
// optionally the database. user and password are the data nodes' credentials; Sentinels with
// their own password take the query options sentinel_password (and sentinel_username).
// Cluster: the hosts are seed nodes (port 6379 by default); the client discovers the rest. A
// cluster has database 0 only, so there is no path.
//
// The options are the query options of go-redis's redis.ParseURL (dial_timeout, read_timeout,
// pool_size, max_retries, skip_verify, ...), the same for every form; unknown options are
// errors. go-redis's ParseFailoverURL and ParseClusterURL are deliberately not used: both take
// the plain redis:// scheme, so the deployment could not be told from the scheme alone;
// ParseFailoverURL reads the userinfo as the Sentinels' credentials and takes the data nodes'
// password from a query option (where URL redaction does not reach it); and both accept routing
// options (read_only, route_by_latency, route_randomly) that send reads to replicas, which may
// lag, and behind Sentinels silently switch to another kind of client.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts are short on purpose: a sick Redis must turn into a fast 503, not a request that
// hangs for the go-redis defaults of several seconds (docs/architecture.md, "Failures").
const (
	redisDialTimeout  = 500 * time.Millisecond
	redisReadTimeout  = 300 * time.Millisecond
	redisWriteTimeout = 300 * time.Millisecond
	redisPoolTimeout  = 500 * time.Millisecond
	// No retries (-1; 0 would mean go-redis's default of 3): a command whose reply is merely
	// late would be sent again, and INCR, SETNX, GETDEL and the scripts must run once. go-redis
	// already checks pooled connections for health before use, so a retry would buy little.
	redisMaxRetries = -1
	// One dial attempt per command attempt: go-redis would otherwise redial five times with
	// backoff, which multiplies the dial timeout against an unreachable host.
	redisDialerRetries = 1
	// How long Subscribe waits for Redis to confirm the subscription.
	redisSubscribeTimeout = time.Second
	// Messages buffered per subscriber between go-redis and the caller.
	subscriberBuffer = 64
)

// redisPoolSize sizes the connection pool. By Little's law the in-flight Redis commands are
// rate x latency: ~30k requests/s on 2 cores, up to 3 KV round trips each (session, token,
// rate limit), at ~0.3ms per loopback/LAN round trip under load is about 27 busy connections.
// 20 per core (40 on 2 cores) covers that with headroom for bursts and GC pauses; a bigger pool
// only queues inside single-threaded Redis instead, and PoolTimeout turns real exhaustion
// into a fast 503.
func redisPoolSize() int { return 20 * runtime.GOMAXPROCS(0) }

// Lua scripts make the read-compare-write steps atomic on the server. Script.Run sends
// EVALSHA and falls back to EVAL once when the script cache was flushed.
const (
	compareAndDeleteLua = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`

	compareAndExpireLua = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`

	// The TTL is set only when INCRBY created the key (a new key has no TTL), so later hits
	// never extend a window. A counter found without a TTL (written by something else) gets
	// one rather than living forever.
	incrLua = `
local n = redis.call("INCRBY", KEYS[1], ARGV[2])
local t = redis.call("PTTL", KEYS[1])
if t < 0 then
	redis.call("PEXPIRE", KEYS[1], ARGV[1])
	t = tonumber(ARGV[1])
end
return {n, t}`
)

// Redis is the Store on Redis: a single node, a master watched by Sentinels, or a Cluster,
// all through one go-redis UniversalClient. It is safe for concurrent use.
//
// In a Cluster every command touches one key (Delete sends one DEL per key, SAdd's MULTI
// touches only its own key, each Lua script one key), so no command spans hash slots; classic
// PUBLISH reaches subscribers on every node.
type Redis struct {
	client redis.UniversalClient
	prefix string

	compareAndDelete *redis.Script
	compareAndExpire *redis.Script
	incr             *redis.Script

	mu     sync.Mutex
	subs   map[*redis.PubSub]struct{} // closed by Close, so no subscriber outlives the store
	closed bool
}

var _ Store = (*Redis)(nil)

// NewRedis connects to the Redis deployment rawURL names (see the URL forms at the top of
// this file) and pings it. prefix is prepended to every key and channel ("bff:" when empty).
// Timeouts and pool size given as URL query options win over our defaults. It returns an
// error wrapping ErrUnavailable when Redis cannot be reached, and a plain error for a
// malformed URL. Error messages never include a password.
//
// Behind Sentinels the store follows a failover by itself: new connections ask the Sentinels
// for the current master, and the old master's connections are dropped when the Sentinels
// announce the switch (and killed by the Sentinels when they demote it). Calls during the
// switch fail with ErrUnavailable.
func NewRedis(ctx context.Context, rawURL, prefix string) (*Redis, error) {
	t, err := parseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	r := &Redis{
		client:           redis.NewUniversalClient(t.options),
		prefix:           prefixOrDefault(prefix),
		compareAndDelete: redis.NewScript(compareAndDeleteLua),
		compareAndExpire: redis.NewScript(compareAndExpireLua),
		incr:             redis.NewScript(incrLua),
		subs:             make(map[*redis.PubSub]struct{}),
	}
	if err := r.Ping(ctx); err != nil {
		_ = r.client.Close()
		return nil, fmt.Errorf("kv redis: connect to %s: %w", t.redacted, err)
	}
	return r, nil
}

// The deployments Scheme reports.
const (
	DeploymentSingle   = "single"
	DeploymentSentinel = "sentinel"
	DeploymentCluster  = "cluster"
)

// Scheme reports which deployment rawURL names: DeploymentSingle, DeploymentSentinel or
// DeploymentCluster. It checks the whole URL exactly as NewRedis does (hosts, master name,
// database, query options) but connects to nothing, so a configuration check can reject a
// bad URL before start-up. Its errors never include a password.
func Scheme(rawURL string) (deployment string, err error) {
	t, err := parseRedisURL(rawURL)
	if err != nil {
		return "", err
	}
	return t.deployment, nil
}

// redisTarget is a checked Redis URL.
type redisTarget struct {
	deployment string
	// redacted is the URL without its password and query, for error messages.
	redacted string
	options  *redis.UniversalOptions
}

// Default ports for host entries written without one.
const (
	redisDefaultPort    = "6379"
	sentinelDefaultPort = "26379"
)

// errUnparseableURL replaces url.Parse's error, whose text repeats the whole URL, password
// included.
var errUnparseableURL = errors.New("kv redis: the redis URL cannot be parsed")

// parseRedisURL checks rawURL and turns it into client options. The host list and the
// Sentinel parts are taken apart here; everything else (credentials, database, TLS, query
// options) is handed to redis.ParseURL as a single-node URL, so every deployment accepts the
// same options with the same meaning.
func parseRedisURL(rawURL string) (*redisTarget, error) {
	scheme, base, deployment, rest, err := splitScheme(rawURL)
	if err != nil {
		return nil, err
	}
	// A host list is not a valid URL host for net/url, so the authority (which ends at the
	// first '/', '?' or '#', RFC 3986 §3.2) is split here and each host checked on its own.
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	userinfo, hostList := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hostList = authority[:i+1], authority[i+1:]
	}
	defaultPort := redisDefaultPort
	if deployment == DeploymentSentinel {
		defaultPort = sentinelDefaultPort
	}
	hosts, err := splitHosts(hostList, defaultPort)
	if err != nil {
		return nil, err
	}
	if deployment == DeploymentSingle && len(hosts) > 1 {
		return nil, errors.New("kv redis: a redis:// URL names one host; use redis+sentinel:// or " +
			"redis+cluster:// for several")
	}
	if strings.Contains(tail, "#") {
		return nil, errors.New("kv redis: the redis URL must not have a #fragment")
	}
	path, rawQuery, _ := strings.Cut(tail, "?")
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		// The error quotes the offending query text, which may hold a password.
		return nil, errors.New("kv redis: the redis URL's query cannot be parsed")
	}
	sp, err := deploymentParts(deployment, path, query)
	if err != nil {
		return nil, err
	}

	single := base + "://" + userinfo + hosts[0] + sp.path
	if len(query) > 0 {
		single += "?" + query.Encode()
	}
	u, err := url.Parse(single)
	if err != nil {
		return nil, errUnparseableURL
	}
	redacted := scheme + "://" + redactedUser(u) + strings.Join(hosts, ",")
	if deployment == DeploymentSentinel {
		redacted += "/" + url.PathEscape(sp.masterName)
	}
	redacted += sp.path
	opt, err := redis.ParseURL(single)
	if err != nil {
		return nil, fmt.Errorf("kv redis: invalid redis URL %s: %w", redacted, err)
	}
	if deployment == DeploymentCluster && opt.DB != 0 {
		return nil, fmt.Errorf("kv redis: invalid redis URL %s: a cluster has database 0 only", redacted)
	}
	return &redisTarget{deployment: deployment, redacted: redacted, options: sp.options(deployment, opt, hosts)}, nil
}

// splitScheme takes the scheme off rawURL and names its deployment.
func splitScheme(rawURL string) (scheme, base, deployment, rest string, err error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok || !validScheme(scheme) {
		return "", "", "", "", errors.New("kv redis: the redis URL has no scheme (want redis://, rediss://, " +
			"redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://)")
	}
	scheme = strings.ToLower(scheme)
	base, deployment, ok = strings.Cut(scheme, "+")
	if !ok {
		deployment = DeploymentSingle
	}
	if (base != "redis" && base != "rediss") ||
		(deployment != DeploymentSingle && deployment != DeploymentSentinel && deployment != DeploymentCluster) {
		return "", "", "", "", fmt.Errorf("kv redis: unsupported URL scheme %q (want redis, rediss, redis+sentinel, "+
			"rediss+sentinel, redis+cluster or rediss+cluster)", scheme)
	}
	return scheme, base, deployment, rest, nil
}

// parts are what a deployment takes out of the URL before the rest goes to redis.ParseURL.
type parts struct {
	path                                     string // what is left of the path: "" or "/<db>"
	masterName, sentinelUser, sentinelPasswd string
}

// deploymentParts takes the Sentinel master name and credentials out of the path and query
// (which it changes), and checks that a cluster URL has no path.
func deploymentParts(deployment, path string, query url.Values) (parts, error) {
	p := parts{path: path}
	switch deployment {
	case DeploymentSentinel:
		var err error
		if p.masterName, p.path, err = splitMasterName(path); err != nil {
			return parts{}, err
		}
		p.sentinelUser, p.sentinelPasswd = query.Get("sentinel_username"), query.Get("sentinel_password")
		query.Del("sentinel_username")
		query.Del("sentinel_password")
	case DeploymentCluster:
		if path != "" && path != "/" {
			return parts{}, errors.New("kv redis: a redis+cluster:// URL has no path (a cluster has database 0 only)")
		}
	}
	return p, nil
}

// options turns the single-node options into the deployment's client options.
func (p parts) options(deployment string, opt *redis.Options, hosts []string) *redis.UniversalOptions {
	uo := universalOptions(opt)
	uo.Addrs = hosts
	switch deployment {
	case DeploymentSentinel:
		uo.MasterName = p.masterName
		uo.SentinelUsername = p.sentinelUser
		uo.SentinelPassword = p.sentinelPasswd
	case DeploymentCluster:
		// With a single seed, NewUniversalClient would otherwise build a single-node client.
		uo.IsClusterMode = true
	}
	if deployment != DeploymentSingle && uo.TLSConfig != nil {
		// redis.ParseURL pinned the first host's name; with several hosts (and the master or
		// nodes the client discovers) each connection must be verified under its own name,
		// which crypto/tls takes from the dialled address when ServerName is empty.
		uo.TLSConfig.ServerName = ""
	}
	return uo
}

// validScheme reports whether s is an RFC 3986 scheme. Anything else before "://" may be
// part of a mistyped URL (a password, say), so it is never echoed in an error.
func validScheme(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// splitHosts checks a comma-separated host list and returns each entry as host:port, with
// defaultPort where the port is left out. Errors give an entry's position, never its text: a
// password holding an unescaped '/' or '@' would otherwise be quoted back as a "host".
func splitHosts(list, defaultPort string) ([]string, error) {
	if list == "" {
		return nil, errors.New("kv redis: the redis URL names no host")
	}
	entries := strings.Split(list, ",")
	hosts := make([]string, 0, len(entries))
	for i, e := range entries {
		if !strings.Contains(e, ":") || (strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]")) {
			e += ":" + defaultPort
		}
		host, port, err := net.SplitHostPort(e)
		if err == nil && validHost(host) {
			if n, perr := strconv.ParseUint(port, 10, 16); perr == nil && n > 0 {
				hosts = append(hosts, net.JoinHostPort(host, port))
				continue
			}
		}
		return nil, fmt.Errorf("kv redis: host %d of the redis URL is not host[:port]", i+1)
	}
	return hosts, nil
}

// validHost accepts a DNS name, an IPv4 address or an IPv6 address (brackets already
// removed).
func validHost(h string) bool {
	if h == "" {
		return false
	}
	if strings.Contains(h, ":") {
		return net.ParseIP(h) != nil
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// splitMasterName takes the master set's name off a Sentinel URL's path and returns the rest
// ("" or "/<db>").
func splitMasterName(path string) (name, rest string, err error) {
	segments := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if path == "" || segments[0] == "" {
		return "", "", errors.New("kv redis: a redis+sentinel:// URL names the master set in its path, " +
			"e.g. redis+sentinel://host:26379/mymaster")
	}
	if len(segments) > 2 || (len(segments) == 2 && segments[1] == "") {
		return "", "", errors.New("kv redis: a redis+sentinel:// URL's path is /<master-name>[/<db>]")
	}
	if name, err = url.PathUnescape(segments[0]); err != nil {
		return "", "", errors.New("kv redis: the master name in the redis URL cannot be parsed")
	}
	if len(segments) == 2 {
		rest = "/" + segments[1]
	}
	return name, rest, nil
}

// redactedUser returns u's userinfo for an error message: the user name, and "xxxxx" in
// place of a password.
func redactedUser(u *url.URL) string {
	if u.User == nil {
		return ""
	}
	if _, ok := u.User.Password(); ok {
		return url.UserPassword(u.User.Username(), "xxxxx").String() + "@"
	}
	return u.User.String() + "@"
}

// universalOptions applies our defaults to the options redis.ParseURL read from the URL.
func universalOptions(opt *redis.Options) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		ClientName:            opt.ClientName,
		DB:                    opt.DB,
		Protocol:              opt.Protocol,
		Username:              opt.Username,
		Password:              opt.Password,
		TLSConfig:             opt.TLSConfig,
		MaxRetries:            orInt(opt.MaxRetries, redisMaxRetries),
		MinRetryBackoff:       opt.MinRetryBackoff,
		MaxRetryBackoff:       opt.MaxRetryBackoff,
		DialTimeout:           orDuration(opt.DialTimeout, redisDialTimeout),
		DialerRetries:         orInt(opt.DialerRetries, redisDialerRetries),
		ReadTimeout:           orDuration(opt.ReadTimeout, redisReadTimeout),
		WriteTimeout:          orDuration(opt.WriteTimeout, redisWriteTimeout),
		ContextTimeoutEnabled: true, // a request's own deadline also bounds its Redis calls
		PoolFIFO:              opt.PoolFIFO,
		PoolSize:              orInt(opt.PoolSize, redisPoolSize()),
		MaxConcurrentDials:    opt.MaxConcurrentDials,
		PoolTimeout:           orDuration(opt.PoolTimeout, redisPoolTimeout),
		// No MinIdleConns default: against a down Redis, the refill would dial (and log) in
		// the background on its own.
		MinIdleConns:            opt.MinIdleConns,
		MaxIdleConns:            opt.MaxIdleConns,
		MaxActiveConns:          opt.MaxActiveConns,
		ConnMaxIdleTime:         opt.ConnMaxIdleTime,
		ConnMaxLifetime:         opt.ConnMaxLifetime,
		ConnMaxLifetimeJitter:   opt.ConnMaxLifetimeJitter,
		PipelinePoolSize:        opt.PipelinePoolSize,
		PipelineReadBufferSize:  opt.PipelineReadBufferSize,
		PipelineWriteBufferSize: opt.PipelineWriteBufferSize,
	}
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orDuration(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

func (r *Redis) key(k string) string { return r.prefix + k }

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := r.client.Get(ctx, r.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("redis get", err)
	}
	return v, nil
}

// Set implements Store.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	// roundTTL maps ttl <= 0 to 0 (no expiry); a negative duration would mean KEEPTTL to
	// go-redis, silently keeping an old expiry.
	if err := r.client.Set(ctx, r.key(key), value, roundTTL(ttl)).Err(); err != nil {
		return unavailable("redis set", err)
	}
	return nil
}

// SetNX implements Store.
func (r *Redis) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errNonPositiveTTL
	}
	ok, err := r.client.SetNX(ctx, r.key(key), value, roundTTL(ttl)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, unavailable("redis setnx", err)
	}
	return ok, nil
}

// SetXX implements Store.
func (r *Redis) SetXX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errNonPositiveTTL
	}
	ok, err := r.client.SetXX(ctx, r.key(key), value, roundTTL(ttl)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, unavailable("redis setxx", err)
	}
	return ok, nil
}

// GetDel implements Store. It needs Redis 6.2 or later (GETDEL).
func (r *Redis) GetDel(ctx context.Context, key string) ([]byte, error) {
	v, err := r.client.GetDel(ctx, r.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("redis getdel", err)
	}
	return v, nil
}

// Delete implements Store. Several keys go as one pipeline of single-key DELs rather than one
// multi-key DEL, which a Redis Cluster would refuse when the keys hash to different slots.
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	switch len(keys) {
	case 0:
		return nil
	case 1:
		if err := r.client.Del(ctx, r.key(keys[0])).Err(); err != nil {
			return unavailable("redis del", err)
		}
		return nil
	}
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, r.key(k))
		}
		return nil
	})
	if err != nil {
		return unavailable("redis del", err)
	}
	return nil
}

// CompareAndDelete implements Store.
func (r *Redis) CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error) {
	n, err := r.compareAndDelete.Run(ctx, r.client, []string{r.key(key)}, value).Int64()
	if err != nil {
		return false, unavailable("redis compare-and-delete", err)
	}
	return n == 1, nil
}

// CompareAndExpire implements Store.
func (r *Redis) CompareAndExpire(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errNonPositiveTTL
	}
	n, err := r.compareAndExpire.Run(ctx, r.client, []string{r.key(key)}, value, ms(roundTTL(ttl))).Int64()
	if err != nil {
		return false, unavailable("redis compare-and-expire", err)
	}
	return n == 1, nil
}

// Incr implements Store.
func (r *Redis) Incr(ctx context.Context, key string, ttl time.Duration) (int64, time.Duration, error) {
	return r.IncrBy(ctx, key, 1, ttl)
}

// IncrBy implements Store.
func (r *Redis) IncrBy(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, time.Duration, error) {
	if err := checkIncr(delta, ttl); err != nil {
		return 0, 0, err
	}
	res, err := r.incr.Run(ctx, r.client, []string{r.key(key)}, ms(roundTTL(ttl)), delta).Int64Slice()
	if err != nil {
		return 0, 0, unavailable("redis incr", err)
	}
	if len(res) != 2 {
		return 0, 0, unavailable("redis incr", fmt.Errorf("unexpected reply of %d elements", len(res)))
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

// SAdd implements Store. The add and the new TTL go in one MULTI, so the set never exists
// without its expiry. A ttl <= 0 removes the expiry, as Set does.
func (r *Redis) SAdd(ctx context.Context, key string, ttl time.Duration, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	k := r.key(key)
	args := make([]any, len(members))
	for i, m := range members {
		args[i] = m
	}
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, k, args...)
		if ttl > 0 {
			p.PExpire(ctx, k, roundTTL(ttl))
		} else {
			p.Persist(ctx, k)
		}
		return nil
	})
	if err != nil {
		return unavailable("redis sadd", err)
	}
	return nil
}

// SMembers implements Store.
func (r *Redis) SMembers(ctx context.Context, key string) ([]string, error) {
	m, err := r.client.SMembers(ctx, r.key(key)).Result()
	if err != nil {
		return nil, unavailable("redis smembers", err)
	}
	return m, nil
}

// SRem implements Store.
func (r *Redis) SRem(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	args := make([]any, len(members))
	for i, m := range members {
		args[i] = m
	}
	if err := r.client.SRem(ctx, r.key(key), args...).Err(); err != nil {
		return unavailable("redis srem", err)
	}
	return nil
}

// Publish implements Store. In a Cluster the PUBLISH goes to the master that owns the
// channel's slot, the node Subscribe listens on. go-redis would spread this keyless command
// over all masters, and messages the cluster bus forwards from different nodes can overtake
// each other, so one publisher's messages would arrive out of order.
func (r *Redis) Publish(ctx context.Context, channel string, msg []byte) error {
	ch := r.key(channel)
	var c redis.Cmdable = r.client
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, ch)
		if err != nil {
			return unavailable("redis publish", err)
		}
		c = node
	}
	if err := c.Publish(ctx, ch, msg).Err(); err != nil {
		return unavailable("redis publish", err)
	}
	return nil
}

// Subscribe implements Store. It returns only once Redis has confirmed the subscription, so a
// message published after Subscribe returns is delivered.
func (r *Redis) Subscribe(ctx context.Context, channel string) (<-chan []byte, error) {
	ps := r.client.Subscribe(ctx, r.key(channel))
	confirmCtx, cancel := context.WithTimeout(ctx, redisSubscribeTimeout)
	_, err := ps.Receive(confirmCtx)
	cancel()
	if err != nil {
		_ = ps.Close()
		return nil, unavailable("redis subscribe", err)
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = ps.Close()
		return nil, unavailable("redis subscribe", redis.ErrClosed)
	}
	r.subs[ps] = struct{}{}
	r.mu.Unlock()

	in := ps.Channel() // closed by go-redis when ps is closed
	out := make(chan []byte, subscriberBuffer)
	go func() {
		defer close(out)
		defer r.unsubscribe(ps)
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- []byte(m.Payload):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func (r *Redis) unsubscribe(ps *redis.PubSub) {
	r.mu.Lock()
	delete(r.subs, ps)
	r.mu.Unlock()
	_ = ps.Close() // already closed when Close got there first
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return unavailable("redis ping", err)
	}
	return nil
}

// Close closes every subscription (their channels close) and then the client.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	subs := r.subs
	r.subs = nil
	r.mu.Unlock()
	for ps := range subs {
		_ = ps.Close()
	}
	if err := r.client.Close(); err != nil {
		return unavailable("redis close", err)
	}
	return nil
}
