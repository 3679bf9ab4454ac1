package httpapi

import (
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/basiq-bff/bff/server/internal/metrics"
	"github.com/basiq-bff/bff/server/internal/reqid"
)

// requestIdentity names the request's span after the matched route (the tracing wrapper
// outside echo knows only the method) and gives it the request id.
func requestIdentity() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
				route, id := routeOf(c), reqid.From(r.Context())
				span.SetName(metrics.Method(r.Method) + " " + route)
				span.SetAttributes(attribute.String("http.route", route), attribute.String("bff.request_id", id))
			}
			return next(c)
		}
	}
}
