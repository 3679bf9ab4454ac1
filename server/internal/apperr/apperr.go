// Package apperr defines the error kinds of the BFF and the public code each one carries. It
// is a leaf that knows nothing of transport: it imports only the standard library, and no
// kind names an HTTP status.
//
// Handlers and services return errors; the HTTP adapter (httpapi) maps each kind to a status
// in one table and renders the JSON error body from Public. Anything not classified here is
// internal and is never shown verbatim.
package apperr

import (
	"errors"
	"time"
)

// Kind is one class of failure. Its Code is the snake_case code in the JSON error body and
// Message the default human sentence.
type Kind struct {
	Code    string
	Message string
}

func (k *Kind) Error() string { return k.Code }

// The kinds of failure. Their codes are part of the public contract (README, "The HTTP contract").
var (
	Invalid             = &Kind{"invalid_request", "The request is not valid."}
	InvalidState        = &Kind{"invalid_state", "The state is invalid, expired or already used."}
	InvalidCredentials  = &Kind{"invalid_credentials", "The email or password is incorrect."}
	Unauthenticated     = &Kind{"unauthenticated", "You are not logged in."}
	CSRF                = &Kind{"csrf_failed", "The request failed the cross-site request check."}
	Forbidden           = &Kind{"forbidden", "This action is not allowed."}
	PasswordLoginOff    = &Kind{"password_login_disabled", "This organisation signs in with its identity provider, not a password."}
	NotFound            = &Kind{"not_found", "Not found."}
	Conflict            = &Kind{"conflict", "The resource already exists."}
	TooManyAttempts     = &Kind{"too_many_attempts", "Too many login attempts. Try again later."}
	RateLimited         = &Kind{"rate_limited", "Too many requests. Try again later."}
	UpstreamRejected    = &Kind{"upstream_rejected", "Basiq rejected the request."}
	UpstreamUnavailable = &Kind{"upstream_unavailable", "Basiq is unavailable. Try again shortly."}
	StoreUnavailable    = &Kind{"store_unavailable", "The service is temporarily unavailable. Try again shortly."}
	Busy                = &Kind{"busy", "The service is busy. Try again shortly."}
	Internal            = &Kind{"internal_error", "Something went wrong on our side."}
)

// Error is a classified error. Msg is safe to show a user; Err is the cause, logged and never
// sent. RetryAfter, when set, is how long the caller should wait before trying again (HTTP
// sends it as Retry-After).
type Error struct {
	Kind       *Kind
	Msg        string
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	s := e.Kind.Code
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap exposes both the kind and the cause, so errors.Is(err, apperr.NotFound) and
// errors.Is(err, context.DeadlineExceeded) both work.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// New returns an error of kind k with a public message (empty: the kind's default).
func New(k *Kind, msg string) error { return &Error{Kind: k, Msg: msg} }

// Wrap classifies cause as kind k. msg is public; cause is not.
func Wrap(k *Kind, cause error, msg string) error { return &Error{Kind: k, Msg: msg, Err: cause} }

// Retry classifies cause as kind k and asks the client to retry after d.
func Retry(k *Kind, cause error, msg string, d time.Duration) error {
	return &Error{Kind: k, Msg: msg, Err: cause, RetryAfter: d}
}

// Public returns what may be shown for err: its kind, message and retry delay (0 when none).
// An unclassified error is Internal with the generic message.
func Public(err error) (kind *Kind, msg string, retryAfter time.Duration) {
	var e *Error
	if errors.As(err, &e) {
		msg = e.Msg
		if msg == "" {
			msg = e.Kind.Message
		}
		return e.Kind, msg, e.RetryAfter
	}
	var k *Kind
	if errors.As(err, &k) {
		return k, k.Message, 0
	}
	return Internal, Internal.Message, 0
}
