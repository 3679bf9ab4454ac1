// Package tracing sets up OpenTelemetry tracing from the standard OTEL_* environment
// variables (off unless they ask for it), exporting over OTLP/HTTP, and provides the HTTP
// server and client wrappers and the slog handler that puts trace_id on log lines. It imports
// the OpenTelemetry SDK and nothing of this module but buildinfo.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/basiq-bff/bff/server/internal/buildinfo"
	"github.com/basiq-bff/bff/server/internal/metrics"
)

// Tracing is the tracer provider and propagator in force; the zero value (tracing off) makes
// every wrapper a no-op.
type Tracing struct {
	tp   *sdktrace.TracerProvider
	prop propagation.TextMapPropagator
}

// Enabled reports whether spans are exported.
func (t *Tracing) Enabled() bool { return t != nil && t.tp != nil }

// Provider returns the tracer provider (nil when tracing is off).
func (t *Tracing) Provider() trace.TracerProvider {
	if !t.Enabled() {
		return nil
	}
	return t.tp
}

// Shutdown flushes spans not yet exported and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// Setup reads the OTEL_* variables through getenv. Tracing is on when
// OTEL_TRACES_EXPORTER=otlp, or when it is unset and OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turn it off. It also reads OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL
// (http/protobuf only), OTEL_EXPORTER_OTLP[_TRACES]_HEADERS, OTEL_SERVICE_NAME (default
// basiq-bff), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG] and
// OTEL_BSP_SCHEDULE_DELAY. A value it cannot honour is an error naming the variable.
func Setup(getenv func(string) string, bi buildinfo.Info) (*Tracing, error) {
	endpoint, on, err := tracesEndpoint(getenv)
	if err != nil || !on {
		return &Tracing{}, err
	}
	exporter, err := newExporter(getenv, endpoint)
	if err != nil {
		return nil, err
	}
	res, err := newResource(getenv, bi)
	if err != nil {
		return nil, err
	}
	sampler, err := sampler(getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		return nil, err
	}
	var bspOpts []sdktrace.BatchSpanProcessorOption
	if d := getenv("OTEL_BSP_SCHEDULE_DELAY"); d != "" {
		ms, err := strconv.Atoi(d)
		if err != nil || ms < 0 {
			return nil, fmt.Errorf("OTEL_BSP_SCHEDULE_DELAY=%q: must be milliseconds", d)
		}
		bspOpts = append(bspOpts, sdktrace.WithBatchTimeout(time.Duration(ms)*time.Millisecond))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter, bspOpts...),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
	)
	return &Tracing{tp: tp, prop: propagation.TraceContext{}}, nil
}

// tracesEndpoint reads where spans go; on is false when tracing stays off.
func tracesEndpoint(getenv func(string) string) (endpoint string, on bool, err error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return "", false, nil
	}
	endpoint = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		if base := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); base != "" {
			endpoint = strings.TrimRight(base, "/") + "/v1/traces"
		}
	}
	switch exp := strings.ToLower(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return "", false, nil
	case "":
		if endpoint == "" {
			return "", false, nil
		}
	case "otlp":
		if endpoint == "" {
			endpoint = "http://localhost:4318/v1/traces"
		}
	default:
		return "", false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only otlp and none are supported", exp)
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(v); p != "" && p != "http/protobuf" {
			return "", false, fmt.Errorf("%s=%q: only http/protobuf is supported", v, p)
		}
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, errors.New("the OTLP traces endpoint must be an http:// or https:// URL")
	}
	return endpoint, true, nil
}

// newExporter returns the OTLP/HTTP exporter for endpoint, with the configured headers.
func newExporter(getenv func(string) string, endpoint string) (sdktrace.SpanExporter, error) {
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint)}
	headers := map[string]string{}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		h, err := keyValues(getenv(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v, err)
		}
		for k, val := range h {
			headers[k] = val
		}
	}
	if len(headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(headers))
	}
	exporter, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	return exporter, nil
}

// newResource describes this service: its name and version, and OTEL_RESOURCE_ATTRIBUTES.
func newResource(getenv func(string) string, bi buildinfo.Info) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.version", bi.Version)}
	resAttrs, err := keyValues(getenv("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	name := "basiq-bff"
	for k, v := range resAttrs {
		if k == "service.name" {
			name = v
			continue
		}
		attrs = append(attrs, attribute.String(k, v))
	}
	if n := getenv("OTEL_SERVICE_NAME"); n != "" {
		name = n
	}
	attrs = append(attrs, attribute.String("service.name", name))
	// Not resource.Default(): it reads the process environment, and configuration comes
	// through getenv only.
	return resource.NewSchemaless(attrs...), nil
}

// keyValues parses the OTEL list form "k1=v1,k2=v2" (values percent-decoded).
func keyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, errors.New("want a list of key=value pairs separated by commas")
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("key %q: bad percent-encoding", strings.TrimSpace(k))
		}
		out[strings.TrimSpace(k)] = dv
	}
	return out, nil
}

func sampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || f < 0 || f > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", arg)
		}
		return f, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q is not supported", name)
}

// Handler wraps a server's handler so each request is a span. An incoming W3C traceparent is
// continued only from a trusted source: a peer in trusted (the load balancers of
// trusted_proxies), or the SPA, that is a request whose Origin passes originOK or, without an
// Origin, a browser's same-origin request (Sec-Fetch-Site: same-origin). From anyone else it
// is dropped and the request starts a trace of its own. Off: h itself.
func (t *Tracing) Handler(h http.Handler, trusted []netip.Prefix, originOK func(string) bool) http.Handler {
	if !t.Enabled() {
		return h
	}
	traced := otelhttp.NewHandler(h, "request",
		otelhttp.WithTracerProvider(t.tp), otelhttp.WithPropagators(t.prop),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return metrics.Method(r.Method) }))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("traceparent") != "" && !trustedPeer(r.RemoteAddr, trusted) && !fromSPA(r, originOK) {
			r = r.Clone(r.Context())
			r.Header.Del("traceparent")
			r.Header.Del("tracestate")
		}
		traced.ServeHTTP(w, r)
	})
}

func fromSPA(r *http.Request, originOK func(string) bool) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return originOK != nil && originOK(o)
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

func trustedPeer(remoteAddr string, trusted []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Transport returns a wrapper for an HTTP client's transport that makes each call a client
// span named "basiq METHOD PATH" and sends traceparent on; nil when tracing is off.
func (t *Tracing) Transport() func(http.RoundTripper) http.RoundTripper {
	if !t.Enabled() {
		return nil
	}
	return func(rt http.RoundTripper) http.RoundTripper {
		return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(t.tp), otelhttp.WithPropagators(t.prop),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				return "basiq " + r.Method + " " + pathPattern(r.URL.Path)
			}))
	}
}

// pathPattern is a Basiq path with its ids replaced by {id} (/users/{id}/consents): a span
// name is a bounded set, and a Basiq user id is a person's pseudonym that no span name needs.
func pathPattern(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if strings.IndexFunc(seg, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// LogHandler wraps h so that a record logged with a context holding a valid span carries
// trace_id and span_id, matching the exported spans.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(a []slog.Attr) slog.Handler { return logHandler{h.Handler.WithAttrs(a)} }
func (h logHandler) WithGroup(n string) slog.Handler      { return logHandler{h.Handler.WithGroup(n)} }
