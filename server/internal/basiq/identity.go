package basiq

import (
	"net/http"

	"github.com/basiq-bff/bff/server/internal/reqid"
)

// Identified returns a copy of c whose requests carry User-Agent userAgent and, when the
// call's context has one, the X-Request-ID of the request being served, so Basiq's and our
// logs can be matched. wrap, when not nil, wraps the transport (tracing).
func (c *Client) Identified(userAgent string, wrap func(http.RoundTripper) http.RoundTripper) *Client {
	hc := *c.hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	var rt http.RoundTripper = identify{base: base, userAgent: userAgent}
	if wrap != nil {
		rt = wrap(rt)
	}
	hc.Transport = rt
	return &Client{hc: &hc, timeout: c.timeout}
}

type identify struct {
	base      http.RoundTripper
	userAgent string
}

func (t identify) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
	r.Header.Set("User-Agent", t.userAgent)
	if id := reqid.From(r.Context()); id != "" {
		r.Header.Set("X-Request-ID", id)
	}
	return t.base.RoundTrip(r)
}
