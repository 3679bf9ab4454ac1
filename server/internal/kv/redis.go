package kv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts are short on purpose: a sick Redis must turn into a fast 503, not a request that
// hangs for the go-redis defaults of several seconds (DESIGN §5).
const (
	redisDialTimeout  = 500 * time.Millisecond
	redisReadTimeout  = 300 * time.Millisecond
	redisWriteTimeout = 300 * time.Millisecond
	redisPoolTimeout  = 500 * time.Millisecond
	// One retry covers a connection the server closed while it sat idle in the pool.
	redisMaxRetries = 1
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

	// The TTL is set only when INCR created the key, so later hits never extend a window. A
	// counter found without a TTL (written by something else) gets one rather than living
	// forever.
	incrLua = `
local n = redis.call("INCR", KEYS[1])
if n == 1 then
	redis.call("PEXPIRE", KEYS[1], ARGV[1])
end
local t = redis.call("PTTL", KEYS[1])
if t < 0 then
	redis.call("PEXPIRE", KEYS[1], ARGV[1])
	t = tonumber(ARGV[1])
end
return {n, t}`
)

// Redis is the Store on Redis (single node now; Sentinel or Cluster later through the same
// UniversalClient). It is safe for concurrent use.
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

// NewRedis connects to the Redis at rawURL (redis:// or rediss:// for TLS, in the form
// redis.ParseURL accepts) and pings it. prefix is prepended to every key and channel ("bff:"
// when empty). Timeouts and pool size given as URL query parameters win over our defaults.
// It returns an error wrapping ErrUnavailable when Redis cannot be reached, and a plain error
// for a malformed URL. Error messages never include the URL's password.
func NewRedis(ctx context.Context, rawURL, prefix string) (*Redis, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the whole URL, password included, so its text is dropped.
		return nil, errors.New("kv redis: the redis URL cannot be parsed")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("kv redis: unsupported URL scheme %q (want redis or rediss)", u.Scheme)
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("kv redis: invalid redis URL %s: %w", u.Redacted(), err)
	}

	uo := &redis.UniversalOptions{
		Addrs:                 []string{opt.Addr},
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
		PoolTimeout:           orDuration(opt.PoolTimeout, redisPoolTimeout),
		// No MinIdleConns default: against a down Redis, the refill would dial (and log) in
		// the background on its own.
		MinIdleConns:    opt.MinIdleConns,
		MaxIdleConns:    opt.MaxIdleConns,
		MaxActiveConns:  opt.MaxActiveConns,
		ConnMaxIdleTime: opt.ConnMaxIdleTime,
		ConnMaxLifetime: opt.ConnMaxLifetime,
	}

	r := &Redis{
		client:           redis.NewUniversalClient(uo),
		prefix:           prefixOrDefault(prefix),
		compareAndDelete: redis.NewScript(compareAndDeleteLua),
		compareAndExpire: redis.NewScript(compareAndExpireLua),
		incr:             redis.NewScript(incrLua),
		subs:             make(map[*redis.PubSub]struct{}),
	}
	if err := r.Ping(ctx); err != nil {
		_ = r.client.Close()
		return nil, fmt.Errorf("kv redis: connect to %s: %w", u.Redacted(), err)
	}
	return r, nil
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
	if ttl <= 0 {
		return 0, 0, errNonPositiveTTL
	}
	res, err := r.incr.Run(ctx, r.client, []string{r.key(key)}, ms(roundTTL(ttl))).Int64Slice()
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

// Publish implements Store.
func (r *Redis) Publish(ctx context.Context, channel string, msg []byte) error {
	if err := r.client.Publish(ctx, r.key(channel), msg).Err(); err != nil {
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
