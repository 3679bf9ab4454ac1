package httpapi

import (
	"io"
	"log/slog"
	"strconv"
	"time"
)

// RequestLines is where the request line goes when it is written without slog's handler: the
// one line every request logs, formatted by appendRequestLine exactly as slog's JSONHandler
// formats it, but without building a record and walking it through the handler chain. Both
// writers take one whole line per Write and are safe for concurrent use (the log buffer's
// class writers are). Lines carrying a token's audit fields go to Priority, the rest to
// Routine, as the log handler would classify them. Set only when the log format is JSON.
type RequestLines struct {
	Routine, Priority io.Writer
}

// appendRequestLine appends the JSON line slog.JSONHandler writes for an INFO record with
// time t, message msg and attrs, and reports whether it could: it handles the kinds the
// request line uses (string, int64, duration, bool), and only strings that JSON carries as
// they are. Anything else is left to slog.
func appendRequestLine(b []byte, t time.Time, msg string, attrs []slog.Attr) ([]byte, bool) {
	if y := t.Year(); y < 0 || y >= 10000 || !jsonSafe(msg) {
		return b, false
	}
	b = append(b, `{"time":"`...)
	b = t.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"`...)
	b = append(b, msg...)
	b = append(b, '"')
	for _, a := range attrs {
		if !jsonSafe(a.Key) {
			return b, false
		}
		b = append(b, ',', '"')
		b = append(b, a.Key...)
		b = append(b, '"', ':')
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			s := v.String()
			if !jsonSafe(s) {
				return b, false
			}
			b = append(b, '"')
			b = append(b, s...)
			b = append(b, '"')
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindDuration:
			b = strconv.AppendInt(b, int64(v.Duration()), 10)
		case slog.KindBool:
			b = strconv.AppendBool(b, v.Bool())
		default:
			return b, false
		}
	}
	return append(b, '}', '\n'), true
}
