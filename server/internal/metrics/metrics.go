// Package metrics defines the BFF's Prometheus metrics (all named bff_*) on a registry of its
// own, and small recording methods the other packages call. Every method is safe on a nil
// *Metrics, so packages under test need no registry. It imports only client_golang.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every collector.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	tokensServed     *prometheus.CounterVec
	upstreamCalls    *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	keyFallbacks     *prometheus.CounterVec
	lockWaits        *prometheus.CounterVec
	lockWaitSeconds  prometheus.Histogram
	configReloads    *prometheus.CounterVec
	sessions         *prometheus.CounterVec
	kvErrors         *prometheus.CounterVec
	purged           *prometheus.CounterVec
	ops              opsMetrics
	usersRecreated   *prometheus.CounterVec
	logDropped       *prometheus.CounterVec

	httpSeries sync.Map // httpSeriesKey → httpSeries
}

// New registers every collector, plus the Go and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bff_http_requests_total",
		Help: "HTTP requests on the public listener, by route pattern, method and status."}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bff_http_request_duration_seconds",
		Help:    "Latency of public HTTP requests, by route pattern.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"route"})
	m.tokensServed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bff_client_tokens_served_total",
		Help: "Client tokens handed to browsers, by tenant, key id and source (l1, redis, upstream, stale)."}, []string{"tenant", "key_id", "source"})
	m.upstreamCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bff_upstream_calls_total",
		Help: "Calls to Basiq, by tenant, endpoint, key id and outcome."}, []string{"tenant", "endpoint", "key_id", "outcome"})
	m.upstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bff_upstream_call_duration_seconds",
		Help:    "Latency of calls to Basiq, by tenant and endpoint.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"tenant", "endpoint"})
	m.keyFallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bff_api_key_rejections_total",
		Help: "API keys Basiq refused on /token (the next listed key was tried): alert on any increase."}, []string{"tenant", "key_id"})
	m.lockWaits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bff_lock_waits_total",
		Help: "Waits for another replica's mint, by kind (request: a browser waited; launch: a Consent UI launch waited; refresh: a background refresh) and outcome (value, timeout)."}, []string{"kind", "outcome"})
	m.lockWaitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bff_lock_wait_seconds",
		Help: "How long requests waited for another replica's mint.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2}})
	m.configReloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bff_config_reloads_total",
		Help: "Configuration reloads, by result: applied; invalid (the file did not validate: nothing changed); rejected (a tenant's new primary key was refused: that tenant kept its previous configuration)."}, []string{"result"})
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bff_sessions_total",
		Help: "Session events on this replica: created (login), ended (logout), revoked (its tenant was removed from the configuration)."}, []string{"event"})
	m.kvErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bff_kv_errors_total",
		Help: "Failed calls to the kv store (Redis), by operation."}, []string{"op"})
	m.purged = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bff_tokens_purged_total",
		Help: "Cached tokens deleted because their API key was removed or revoked, by tenant and key id."}, []string{"tenant", "key_id"})
	m.logDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bff_log_lines_dropped_total",
		Help: "Log lines dropped because the log buffer was full (the log reader is slower than traffic), by class: routine, or priority (audit, security, warnings, errors)."}, []string{"class"})
	for _, c := range []prometheus.Collector{m.logDropped, m.httpRequests, m.httpDuration, m.tokensServed, m.upstreamCalls,
		m.upstreamDuration, m.keyFallbacks, m.lockWaits, m.lockWaitSeconds, m.configReloads, m.sessions, m.kvErrors, m.purged,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	m.registerOps()
	m.usersRecreated = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bff_basiq_users_recreated_total",
		Help: "Basiq users created again because Basiq no longer knew the stored one, by tenant and result (recreated; refused: already re-created within the hour)."}, []string{"tenant", "result"})
	f(m.usersRecreated)
	return m
}

// BasiqUserRecreated counts a stale Basiq user that was replaced (result "recreated") or not,
// because the person's was already replaced within the hour ("refused").
func (m *Metrics) BasiqUserRecreated(tenant, result string) {
	if m == nil {
		return
	}
	m.usersRecreated.WithLabelValues(tenant, result).Inc()
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// OtherMethod is the method label of every request whose method is not a standard one.
const OtherMethod = "_OTHER"

// Method returns the label for a request method: the method itself when it is one of GET,
// HEAD, POST, PUT, PATCH, DELETE and OPTIONS, otherwise OtherMethod. Clients choose the
// method freely, and every distinct label value is a time series kept for ever.
func Method(method string) string {
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return method
	}
	return OtherMethod
}

// HTTP records one public request. route must be a route pattern (or a fixed word), never a
// raw path; the method is reduced to Method's set here.
func (m *Metrics) HTTP(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	// The series of a (route, method, status) are looked up once and kept: label hashing
	// and formatting the status were a measurable share of a warm request. Routes are
	// patterns and methods a fixed set (Method), so the set is small and bounded.
	method = Method(method)
	k := httpSeriesKey{route, method, status}
	s, ok := m.httpSeries.Load(k)
	if !ok {
		s, _ = m.httpSeries.LoadOrStore(k, httpSeries{
			requests: m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: m.httpDuration.WithLabelValues(route),
		})
	}
	hs := s.(httpSeries)
	hs.requests.Inc()
	hs.duration.Observe(d.Seconds())
}

type httpSeriesKey struct {
	route, method string
	status        int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// TokenServed records a client token handed out.
func (m *Metrics) TokenServed(tenant, keyID, source string) {
	if m == nil {
		return
	}
	m.tokensServed.WithLabelValues(tenant, keyID, source).Inc()
}

// Upstream records one call to Basiq; d is 0 when no call was made (circuit open, paused).
func (m *Metrics) Upstream(tenant, endpoint, keyID, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.upstreamCalls.WithLabelValues(tenant, endpoint, keyID, outcome).Inc()
	if d > 0 {
		m.upstreamDuration.WithLabelValues(tenant, endpoint).Observe(d.Seconds())
	}
}

// KeyRejected records Basiq refusing an API key.
func (m *Metrics) KeyRejected(tenant, keyID string) {
	if m == nil {
		return
	}
	m.keyFallbacks.WithLabelValues(tenant, keyID).Inc()
}

// LockWait records a wait for another replica's mint.
func (m *Metrics) LockWait(kind, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.lockWaits.WithLabelValues(kind, outcome).Inc()
	m.lockWaitSeconds.Observe(d.Seconds())
}

// ConfigReload records a reload attempt.
func (m *Metrics) ConfigReload(result string) {
	if m == nil {
		return
	}
	m.configReloads.WithLabelValues(result).Inc()
}

// Session records a session event.
func (m *Metrics) Session(event string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.sessions.WithLabelValues(event).Add(float64(n))
}

// KVError records a failed kv call.
func (m *Metrics) KVError(op string) {
	if m == nil {
		return
	}
	m.kvErrors.WithLabelValues(op).Inc()
}

// Purged records cached tokens deleted for a removed or revoked key.
func (m *Metrics) Purged(tenant, keyID string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.purged.WithLabelValues(tenant, keyID).Add(float64(n))
}

// LogDropped records a log line dropped by the log buffer; class is routine or priority.
func (m *Metrics) LogDropped(class string) {
	if m == nil {
		return
	}
	m.logDropped.WithLabelValues(class).Inc()
}
