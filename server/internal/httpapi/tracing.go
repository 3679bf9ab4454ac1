package httpapi

import (
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/basiq-bff/bff/server/internal/metrics"
	"github.com/basiq-bff/bff/server/internal/reqid"
)

// requestIdentity names the request's span after the matched route (the tracing wrapper
// outside echo knows only the method) and puts the request id where calls to Basiq find it.
func requestIdentity() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			route := routeOf(c)
			id := c.Response().Header().Get(echo.HeaderXRequestID)
			if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
				span.SetName(metrics.Method(r.Method) + " " + route)
				span.SetAttributes(attribute.String("http.route", route), attribute.String("bff.request_id", id))
			}
			c.SetRequest(r.WithContext(reqid.With(r.Context(), id)))
			return next(c)
		}
	}
}
