package metrics

import (
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// opsMetrics are the operational series: build, breaker and connection pools.
type opsMetrics struct {
	breaker *prometheus.GaugeVec
}

func (m *Metrics) registerOps() {
	m.ops.breaker = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bff_circuit_breaker_state",
		Help: "The Basiq circuit breaker of each tenant: 0 closed, 1 half-open (one trial call), 2 open (no calls)."}, []string{"tenant"})
	m.reg.MustRegister(m.ops.breaker)
}

// BuildInfo is the running binary, as bff_build_info's labels.
type BuildInfo struct{ Version, Revision, Go string }

// SetBuildInfo registers bff_build_info{version,revision,go} 1. Call it once.
func (m *Metrics) SetBuildInfo(b BuildInfo) {
	if m == nil {
		return
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "bff_build_info",
		Help:        "Always 1; the labels say which build runs (the same as --version).",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "go": b.Go}})
	g.Set(1)
	m.reg.MustRegister(g)
}

// BreakerState records a tenant's circuit breaker state: 0 closed, 1 half-open, 2 open.
func (m *Metrics) BreakerState(tenant string, state int) {
	if m == nil {
		return
	}
	m.ops.breaker.WithLabelValues(tenant).Set(float64(state))
}

// WatchDB exports db's connection pool through client_golang's DB stats collector
// (go_sql_* series, db_name="bff"). Call it once.
func (m *Metrics) WatchDB(db *sql.DB) {
	if m == nil || db == nil {
		return
	}
	m.reg.MustRegister(collectors.NewDBStatsCollector(db, "bff"))
}

// RedisPool is a snapshot of the Redis client's connection pool; the counters only grow.
type RedisPool struct {
	Hits, Misses, Timeouts, StaleConns uint64
	TotalConns, IdleConns              uint64
}

// WatchRedisPool exports the pool snapshot stats returns at each scrape. Call it once.
func (m *Metrics) WatchRedisPool(stats func() RedisPool) {
	if m == nil || stats == nil {
		return
	}
	m.reg.MustRegister(redisPoolCollector{stats: stats,
		hits:     prometheus.NewDesc("bff_redis_pool_hits_total", "Redis commands that found a free pooled connection.", nil, nil),
		misses:   prometheus.NewDesc("bff_redis_pool_misses_total", "Redis commands that had to dial a new connection.", nil, nil),
		timeouts: prometheus.NewDesc("bff_redis_pool_timeouts_total", "Redis commands that gave up waiting for a pooled connection.", nil, nil),
		stale:    prometheus.NewDesc("bff_redis_pool_stale_connections_total", "Pooled Redis connections closed as stale.", nil, nil),
		total:    prometheus.NewDesc("bff_redis_pool_connections", "Open Redis connections in the pool.", nil, nil),
		idle:     prometheus.NewDesc("bff_redis_pool_idle_connections", "Idle Redis connections in the pool.", nil, nil),
	})
}

type redisPoolCollector struct {
	stats                                      func() RedisPool
	hits, misses, timeouts, stale, total, idle *prometheus.Desc
}

func (c redisPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.timeouts, c.stale, c.total, c.idle} {
		ch <- d
	}
}

func (c redisPoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.timeouts, prometheus.CounterValue, float64(s.Timeouts))
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.CounterValue, float64(s.StaleConns))
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(s.TotalConns))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.IdleConns))
}

// ForgetTenant deletes the series labelled with a tenant that has been removed from the
// configuration, so they do not linger until restart. Its keys' purge counters go with
// ForgetKey.
func (m *Metrics) ForgetTenant(tenant string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"tenant": tenant}
	m.tokensServed.DeletePartialMatch(l)
	m.upstreamCalls.DeletePartialMatch(l)
	m.upstreamDuration.DeletePartialMatch(l)
	m.keyFallbacks.DeletePartialMatch(l)
	m.ops.breaker.DeletePartialMatch(l)
}

// ForgetKey deletes the series of an API key no longer listed. withPurges also deletes its
// bff_tokens_purged_total series; the reload that purges a key keeps that one for a while,
// so the purge can be seen.
func (m *Metrics) ForgetKey(tenant, keyID string, withPurges bool) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"tenant": tenant, "key_id": keyID}
	m.tokensServed.DeletePartialMatch(l)
	m.upstreamCalls.DeletePartialMatch(l)
	m.keyFallbacks.DeletePartialMatch(l)
	if withPurges {
		m.purged.DeletePartialMatch(l)
	}
}
