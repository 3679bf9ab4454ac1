package basiq

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/basiq-bff/bff/server/internal/clip"
)

// Error is a non-success answer from Basiq, decoded from its error envelope (the first item of
// "data"). Code is empty when the body was not Basiq's envelope (a proxy's HTML page, say).
// No field ever holds a key or a token.
type Error struct {
	Endpoint      string // "POST /token"
	Status        int
	Code          string // e.g. "parameter-not-valid"
	Title         string
	Detail        string
	CorrelationID string
	// RetryAfter is the Retry-After header of a 429 or 503, 0 when absent or unparseable.
	RetryAfter time.Duration
}

// Error reads like
// "basiq POST /token: 404 parameter-not-valid: Unable to authenticate. Please, check your API key (correlationId 1c16…)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("basiq ")
	b.WriteString(e.Endpoint)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	} else if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" ")
		b.WriteString(t)
	}
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if e.CorrelationID != "" {
		b.WriteString(" (correlationId ")
		b.WriteString(e.CorrelationID)
		b.WriteString(")")
	}
	return b.String()
}

// newError decodes Basiq's error envelope ({"type":"list","data":[…]}). Anything unexpected (no JSON, no data,
// extra fields, source absent/{}/null) still yields an *Error carrying the status.
func newError(endpoint string, resp *http.Response, body []byte, secrets []string) *Error {
	e := &Error{Endpoint: endpoint, Status: resp.StatusCode}
	var env struct {
		CorrelationID string `json:"correlationId"`
		Data          []struct {
			Code   string `json:"code"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"data"`
	}
	if len(body) <= maxBody && json.Unmarshal(body, &env) == nil {
		e.CorrelationID = env.CorrelationID
		if len(env.Data) > 0 {
			e.Code, e.Title, e.Detail = env.Data[0].Code, env.Data[0].Title, env.Data[0].Detail
		}
	}
	if e.CorrelationID == "" {
		e.CorrelationID = headerCorrelationID(resp.Header)
	}
	// Everything below comes from the network and ends up in logs: scrub and bound it.
	e.Code = clip.To(scrub(e.Code, secrets), 64)
	e.Title = clip.To(scrub(e.Title, secrets), 200)
	e.Detail = clip.To(scrub(e.Detail, secrets), 300)
	e.CorrelationID = clip.To(scrub(e.CorrelationID, secrets), 128)
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		// Cap before multiplying so an absurd value cannot overflow into a negative duration.
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// TransportError is a call that got no HTTP answer: refused, reset, DNS, TLS or timeout. Err
// keeps the cause for errors.Is (context.DeadlineExceeded, syscall.ECONNREFUSED); the message
// names only the endpoint and the cause, never the URL's credentials, the key or a token.
type TransportError struct {
	Endpoint string
	Err      error
	msg      string
}

func newTransportError(endpoint string, err error, secrets []string) *TransportError {
	cause := err
	// *url.Error prefixes the method and URL; the endpoint already says which call failed.
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	msg := cause.Error()
	if isTimeout(err) && !strings.Contains(msg, "timeout") {
		msg = "timeout: " + msg
	}
	return &TransportError{Endpoint: endpoint, Err: err, msg: clip.To(scrub(msg, secrets), 300)}
}

func (e *TransportError) Error() string {
	msg := e.msg
	if msg == "" && e.Err != nil {
		msg = newTransportError(e.Endpoint, e.Err, nil).msg
	}
	return "basiq " + e.Endpoint + ": " + msg
}

// Unwrap exposes the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// Timeout reports whether the call ran out of time (ours or the caller's deadline).
func (e *TransportError) Timeout() bool { return isTimeout(e.Err) }

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Class is what the caller should do about a failed call (docs/architecture.md, "Failures").
type Class int

// The classes. ClassNone is only for a nil error.
const (
	ClassNone Class = iota
	// ClassUnavailable: Basiq is down or slow. Retry with jitter inside the deadline, serve a
	// still-valid cached token, else 503.
	ClassUnavailable
	// ClassThrottled: Basiq is rate-limiting us. Back off per tenant (honour RetryAfter); no
	// retry storm.
	ClassThrottled
	// ClassKeyRejected: this API key no longer works. Try the tenant's next key; alert.
	ClassKeyRejected
	// ClassTokenExpired: the bearer token was refused. Drop the cached token, refresh once,
	// retry once.
	ClassTokenExpired
	// ClassRejected: Basiq refused the request itself. Retrying will not help: 502.
	ClassRejected
)

func (c Class) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassUnavailable:
		return "unavailable"
	case ClassThrottled:
		return "throttled"
	case ClassKeyRejected:
		return "key_rejected"
	case ClassTokenExpired:
		return "token_expired"
	case ClassRejected:
		return "rejected"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Classify maps an error from this package to what the caller does next. The first matching
// row wins:
//
//	error                                                        class
//	-----------------------------------------------------------  ------------------
//	nil                                                          ClassNone
//	*TransportError (timeout, refused, reset, TLS, DNS)          ClassUnavailable
//	ErrBadResponse (2xx with an unusable body)                   ClassUnavailable
//	status 429, or code too-many-requests                        ClassThrottled
//	403 request-not-valid (token requests too frequent per IP)   ClassThrottled
//	5xx, or code internal-server-error / service-unavailable     ClassUnavailable
//	code invalid-client or unauthorized-client                   ClassKeyRejected
//	404 on POST /token ("Unable to authenticate": key unknown,
//	  deleted, or from another environment)                      ClassKeyRejected
//	403 forbidden-access on POST /token (account disabled)       ClassKeyRejected
//	403 access-denied ("Token has expired") on any other call    ClassTokenExpired
//	401 invalid-authorization-token on any other call            ClassTokenExpired
//	ErrInvalidArgument (no call made)                            ClassRejected
//	any other *Error (invalid-request, parameter-not-valid 400,
//	  parameter-not-supplied, unsupported-grant-type,
//	  invalid-grant, 3xx, other 4xx)                             ClassRejected
//	anything else (e.g. a bare context error)                    ClassUnavailable
//
// Throttling is checked before 5xx because Basiq titles too-many-requests "Service
// Unavailable": a throttle must never be retried like an outage.
func Classify(err error) Class {
	if err == nil {
		return ClassNone
	}
	var te *TransportError
	if errors.As(err, &te) {
		return ClassUnavailable
	}
	if errors.Is(err, ErrBadResponse) {
		return ClassUnavailable
	}
	var e *Error
	if errors.As(err, &e) {
		return e.class()
	}
	if errors.Is(err, ErrInvalidArgument) {
		return ClassRejected
	}
	return ClassUnavailable
}

func (e *Error) class() Class {
	switch {
	case e.Status == http.StatusTooManyRequests || e.Code == "too-many-requests",
		e.Status == http.StatusForbidden && e.Code == "request-not-valid":
		return ClassThrottled
	case e.Status >= 500 || e.Code == "internal-server-error" || e.Code == "service-unavailable":
		return ClassUnavailable
	case e.keyRejected():
		return ClassKeyRejected
	case e.tokenExpired():
		return ClassTokenExpired
	}
	return ClassRejected
}

// keyRejected reports an answer that says the API key itself is no good.
func (e *Error) keyRejected() bool {
	onToken := e.Endpoint == EndpointToken
	return e.Code == "invalid-client" || e.Code == "unauthorized-client" ||
		onToken && e.Status == http.StatusNotFound ||
		onToken && e.Status == http.StatusForbidden && e.Code == "forbidden-access"
}

// tokenExpired reports a resource call refused because the server token it carried expired.
func (e *Error) tokenExpired() bool {
	if e.Endpoint == EndpointToken {
		return false
	}
	return e.Status == http.StatusForbidden && e.Code == "access-denied" ||
		e.Status == http.StatusUnauthorized && e.Code == "invalid-authorization-token"
}

// RetryAfter returns the Retry-After Basiq sent with a 429 or 503, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
