package tracing

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/basiq-bff/bff/server/internal/buildinfo"
)

func TestSetup(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		enabled bool
		wantErr string
	}{
		{"off by default", nil, false, ""},
		{"on with an endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{"on with a traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otel.example.com/v1/traces"}, true, ""},
		{"on with the otlp exporter named", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, ""},
		{"exporter none wins", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, false, ""},
		{"sdk disabled wins", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, false, ""},
		{"sampler and headers", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG": "0.25", "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20x,team=ops", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod"}, true, ""},
		{"unsupported exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, "OTEL_TRACES_EXPORTER"},
		{"grpc protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, "only http/protobuf"},
		{"bad endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "x:4318"}, false, "must be an http:// or https:// URL"},
		{"bad sampler", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_SAMPLER": "sometimes"}, false, "OTEL_TRACES_SAMPLER"},
		{"bad ratio", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, false, "OTEL_TRACES_SAMPLER_ARG"},
		{"bad headers", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, false, "OTEL_EXPORTER_OTLP_HEADERS"},
		{"bad batch delay", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_BSP_SCHEDULE_DELAY": "soon"}, false, "OTEL_BSP_SCHEDULE_DELAY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Setup(func(k string) string { return tc.env[k] }, buildinfo.Read())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			if tr.Enabled() != tc.enabled {
				t.Errorf("enabled = %v, want %v", tr.Enabled(), tc.enabled)
			}
			if !tc.enabled && (tr.Transport() != nil || tr.Provider() != nil) {
				t.Error("tracing off still wraps")
			}
		})
	}
}

// TestHandlerTrust: an incoming traceparent is continued from a trusted proxy or the SPA only.
func TestHandlerTrust(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name      string
		remote    string
		header    map[string]string
		continues bool
	}{
		{"trusted proxy", "10.1.2.3:5555", nil, true},
		{"trusted proxy, mapped address", "[::ffff:10.1.2.3]:5555", nil, true},
		{"anyone else", "192.0.2.7:5555", nil, false},
		{"unparseable peer", "somewhere", nil, false},
		{"the SPA on an allowed origin", "192.0.2.7:5555", map[string]string{"Origin": "https://app.example.com"}, true},
		{"a foreign origin", "192.0.2.7:5555", map[string]string{"Origin": "https://evil.example"}, false},
		{"a same-origin browser request", "192.0.2.7:5555", map[string]string{"Sec-Fetch-Site": "same-origin"}, true},
		{"a cross-site browser request", "192.0.2.7:5555", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tr := &Tracing{tp: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), prop: propagation.TraceContext{}}
			var inner trace.SpanContext
			h := tr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inner = trace.SpanContextFromContext(r.Context())
			}), []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, func(o string) bool { return o == "https://app.example.com" })
			req := httptest.NewRequest("GET", "/client-token", nil)
			req.RemoteAddr = tc.remote
			req.Header.Set("traceparent", parent)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			got := inner.TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736"
			if got != tc.continues || !inner.IsValid() {
				t.Errorf("continued = %v (trace %s), want %v", got, inner.TraceID(), tc.continues)
			}
			if ended := rec.Ended(); len(ended) != 1 || ended[0].SpanKind() != trace.SpanKindServer {
				t.Errorf("spans: %v", ended)
			}
		})
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil)))
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "x")
	log.InfoContext(ctx, "inside")
	span.End()
	log.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"trace_id":"`+span.SpanContext().TraceID().String()+`"`) ||
		strings.Contains(lines[1], "trace_id") {
		t.Errorf("log lines:\n%s", buf.String())
	}
}

func TestPathPattern(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/token", "/token"},
		{"/users", "/users"},
		{"/users/8b4a3c2e-1d2f-4e5a-9b6c-7d8e9f0a1b2c", "/users/{id}"},
		{"/users/8b4a3c2e-1d2f/consents", "/users/{id}/consents"},
		{"/jobs/Zx9Q1/mfa", "/jobs/{id}/mfa"},
		{"/", "/"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			if got := pathPattern(tc.path); got != tc.want {
				t.Errorf("pathPattern(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}
