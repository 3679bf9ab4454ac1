package store

import (
	"database/sql"

	"github.com/XSAM/otelsql"
	"go.opentelemetry.io/otel/trace"
)

// Option tunes Open.
type Option func(*options)

type options struct {
	tp trace.TracerProvider
}

// WithTracerProvider traces every SQL call (a span per query, with the statement text and
// never its arguments) through tp.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp = tp }
}

// open opens the driver, through otelsql when tracing is on.
func (o options) open(driver, dsn string) (*sql.DB, error) {
	if o.tp == nil {
		return sql.Open(driver, dsn)
	}
	return otelsql.Open(driver, dsn, otelsql.WithTracerProvider(o.tp),
		otelsql.WithSpanOptions(otelsql.SpanOptions{DisableErrSkip: true, OmitConnResetSession: true, OmitRows: true}))
}
