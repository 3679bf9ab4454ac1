package main

import (
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/basiq-bff/bff/server/internal/buildinfo"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes each export with the official
// OTLP protobuf types and keeps the spans.
type otlpReceiver struct {
	mu        sync.Mutex
	spans     []*tracepb.Span
	resources []string // service.name of each export
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces application/x-protobuf", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				o.resources = append(o.resources, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// trace returns the spans of one trace.
func (o *otlpReceiver) trace(traceID string) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range o.spans {
		if hex.EncodeToString(s.TraceId) == traceID {
			out = append(out, s)
		}
	}
	return out
}

// TestTracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, a request whose traceparent comes from the
// SPA yields, in one trace, the request's server span, the Basiq call (which
// carries the traceparent, the request id and our User-Agent to Basiq), Redis commands and
// SQL; every log line of the request carries that trace_id. A traceparent from anyone else
// is ignored.
func TestTracing(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()

	s := newStack(t, stackOptions{})
	// Basiq is reached through a recording proxy, to see what the BFF sends.
	var seenMu sync.Mutex
	var seen []http.Header
	emu, _ := url.Parse(s.emuURL)
	proxy := httputil.NewSingleHostReverseProxy(emu)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenMu.Lock()
		seen = append(seen, r.Header.Clone())
		seenMu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	s.emuURL = front.URL
	s.writeConfig(s.extra)
	s.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.URL
	s.env["OTEL_SERVICE_NAME"] = "bff-under-test"
	s.env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
	s.addUser("acme", "ann@acme.test", testPassword)
	r := s.start()

	c := newClient(t, r.url)
	c.mustLogin("acme", "ann@acme.test", testPassword)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	// The SPA's fetch: same-origin, with the browser-side trace's traceparent.
	resp := c.do("GET", "/client-token", "", map[string]string{"X-CSRF": "1", "X-Request-ID": "trace-test-1",
		"Sec-Fetch-Site": "same-origin", "traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"})
	if resp.status != 200 {
		t.Fatalf("client-token: %d %s", resp.status, resp.body)
	}
	// Not from the SPA nor a trusted proxy: the traceparent is ignored.
	const ignoredTrace = "0af7651916cd43dd8448eb211c80319c"
	if resp := c.do("GET", "/auth/me", "", map[string]string{"traceparent": "00-" + ignoredTrace + "-b7ad6b7169203331-01"}); resp.status != 200 {
		t.Fatalf("/auth/me: %d", resp.status)
	}

	// Stopping the replica flushes the spans.
	r.stop()
	if err := waitDone(t, r, 15*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}

	if n := len(recv.trace(ignoredTrace)); n != 0 {
		t.Errorf("%d spans continue a traceparent from an untrusted client", n)
	}
	spans := recv.trace(traceID)
	kinds := spanKinds(t, spans)
	// The in-process store (no Redis) is not traced: it makes no network call.
	want := []string{"request", "basiq token", "basiq users", "sql"}
	if s.redisURL != "" {
		want = append(want, "redis")
	} else if kinds["redis"] {
		t.Error("a redis span without Redis")
	}
	for _, k := range want {
		if !kinds[k] {
			var names []string
			for _, sp := range spans {
				names = append(names, sp.Name)
			}
			t.Errorf("no %s span in the trace; spans: %v", k, names)
		}
	}
	if len(recv.resources) == 0 || recv.resources[0] != "bff-under-test" {
		t.Errorf("service.name = %v", recv.resources)
	}

	// What Basiq received.
	seenMu.Lock()
	defer seenMu.Unlock()
	if len(seen) < 2 {
		t.Fatalf("Basiq saw %d calls", len(seen))
	}
	checkBasiqHeaders(t, seen, traceID)

	// Every log line of the request carries the trace id.
	checkTraceInLogs(t, r.logs.String(), traceID)
}

// spanKinds names the kinds of span in a trace: the request's server span (which must continue
// the incoming traceparent), the Basiq token and users calls, Redis commands and SQL.
func spanKinds(t *testing.T, spans []*tracepb.Span) map[string]bool {
	t.Helper()
	kinds := map[string]bool{}
	for _, sp := range spans {
		switch {
		case sp.Kind == tracepb.Span_SPAN_KIND_SERVER && sp.Name == "GET /client-token":
			kinds["request"] = true
			if hex.EncodeToString(sp.ParentSpanId) != "00f067aa0ba902b7" {
				t.Errorf("the request span does not continue the incoming traceparent: parent %x", sp.ParentSpanId)
			}
		case sp.Kind == tracepb.Span_SPAN_KIND_CLIENT && strings.HasPrefix(sp.Name, "basiq POST /token"):
			kinds["basiq token"] = true
		case sp.Kind == tracepb.Span_SPAN_KIND_CLIENT && strings.HasPrefix(sp.Name, "basiq POST /users"):
			kinds["basiq users"] = true
		case hasAttr(sp, "db.system", "redis") || hasAttr(sp, "db.system.name", "redis"):
			kinds["redis"] = true
		case hasAttr(sp, "db.system", "postgresql") || strings.HasPrefix(sp.Name, "sql.") || hasAttr(sp, "db.system.name", "postgresql"):
			kinds["sql"] = true
		}
	}
	return kinds
}

// checkBasiqHeaders: every call Basiq received carried the trace, the request id and our
// User-Agent.
func checkBasiqHeaders(t *testing.T, seen []http.Header, traceID string) {
	t.Helper()
	for _, h := range seen {
		if !strings.HasPrefix(h.Get("traceparent"), "00-"+traceID+"-") {
			t.Errorf("a Basiq call carried traceparent %q", h.Get("traceparent"))
		}
		if h.Get("X-Request-ID") != "trace-test-1" {
			t.Errorf("a Basiq call carried X-Request-ID %q", h.Get("X-Request-ID"))
		}
		if want := "basiq-bff/" + buildinfo.Read().Version; h.Get("User-Agent") != want {
			t.Errorf("User-Agent %q, want %q", h.Get("User-Agent"), want)
		}
	}
}

// checkTraceInLogs: every log line of the request trace-test-1 carries traceID, and there are
// at least three.
func checkTraceInLogs(t *testing.T, logs, traceID string) {
	t.Helper()
	lines := 0
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["request_id"] != "trace-test-1" {
			continue
		}
		lines++
		if rec["trace_id"] != traceID {
			t.Errorf("a log line of the request lacks its trace_id: %s", line)
		}
	}
	if lines < 3 {
		t.Errorf("only %d log lines of the request:\n%s", lines, logs)
	}
}

func hasAttr(sp *tracepb.Span, key, value string) bool {
	for _, a := range sp.Attributes {
		if a.Key == key && a.GetValue().GetStringValue() == value {
			return true
		}
	}
	return false
}
