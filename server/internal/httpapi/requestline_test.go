package httpapi

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestAppendRequestLine checks the hand-formatted request line byte for byte against what
// slog's JSONHandler writes for the same record, and that anything it cannot write as slog
// would is left to slog.
func TestAppendRequestLine(t *testing.T) {
	at := time.Date(2026, 12, 1, 21, 30, 5, 123456789, time.FixedZone("AEST", 10*3600))
	full := []slog.Attr{
		slog.String("method", "GET"), slog.String("route", "/client-token"), slog.Int("status", 200),
		slog.Duration("duration", 1234567*time.Nanosecond), slog.String("ip", "2001:db8::1"),
		slog.String("request_id", "a1b2c3"), slog.String("tenant", "acme"), slog.String("user", "u_3f9a"),
		slog.String("session", "s_77e1"), slog.Bool("audit", true), slog.String("key_id", "k2026"),
		slog.String("source", "l1"), slog.String("correlation_id", "c-1<&>"),
	}
	tests := []struct {
		name  string
		t     time.Time
		attrs []slog.Attr
		ok    bool
	}{
		{name: "audit line", t: at, attrs: full, ok: true},
		{name: "plain request", t: at.UTC(), attrs: full[:6], ok: true},
		{name: "whole second, monotonic clock", t: time.Now().Truncate(time.Second), attrs: full[:3], ok: true},
		{name: "negative status", t: at, attrs: []slog.Attr{slog.Int("status", -1)}, ok: true},
		{name: "quote in a value", t: at, attrs: []slog.Attr{slog.String("ip", `1"2`)}},
		{name: "backslash in a value", t: at, attrs: []slog.Attr{slog.String("ip", `1\2`)}},
		{name: "control byte in a value", t: at, attrs: []slog.Attr{slog.String("correlation_id", "a\nb")}},
		{name: "non-ASCII value", t: at, attrs: []slog.Attr{slog.String("tenant", "café")}},
		{name: "key needing escaping", t: at, attrs: []slog.Attr{slog.String(`k"`, "v")}},
		{name: "kind it does not write", t: at, attrs: []slog.Attr{slog.Float64("f", 1.5)}},
		{name: "year past 9999", t: at.AddDate(8000, 0, 0), attrs: full[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := appendRequestLine([]byte("kept"), tt.t, "request", tt.attrs)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v (line %q)", ok, tt.ok, got)
			}
			if !bytes.HasPrefix(got, []byte("kept")) {
				t.Fatalf("the buffer's contents were not kept: %q", got)
			}
			if !ok {
				return
			}
			var want bytes.Buffer
			r := slog.NewRecord(tt.t, slog.LevelInfo, "request", 0)
			r.AddAttrs(tt.attrs...)
			if err := slog.NewJSONHandler(&want, nil).Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if string(got[len("kept"):]) != want.String() {
				t.Errorf("line\n got %s\nwant %s", got[len("kept"):], want.String())
			}
		})
	}
}
