package kv

import (
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"go.opentelemetry.io/otel/trace"
)

// Trace makes every Redis command a span of tp (go-redis's own OpenTelemetry hooks). The
// command's arguments are never recorded: they hold sessions and encrypted tokens.
func (r *Redis) Trace(tp trace.TracerProvider) error {
	if err := redisotel.InstrumentTracing(r.client, redisotel.WithTracerProvider(tp), redisotel.WithDBStatement(false)); err != nil {
		return fmt.Errorf("kv: trace redis: %w", err)
	}
	return nil
}
