package apperr

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestPublic(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.1:6379: secret detail")
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
		retry  time.Duration
	}{
		{"kind default message", New(Unauthenticated, ""), 401, "unauthenticated", Unauthenticated.Message, 0},
		{"own message", New(Invalid, "Choose a tenant."), 400, "invalid_request", "Choose a tenant.", 0},
		{"wrapped cause is hidden", Wrap(StoreUnavailable, cause, ""), 503, "store_unavailable", StoreUnavailable.Message, 0},
		{"retry delay", Retry(UpstreamUnavailable, cause, "", 5*time.Second), 503, "upstream_unavailable", UpstreamUnavailable.Message, 5 * time.Second},
		{"wrapped again with %w", fmt.Errorf("login: %w", New(TooManyAttempts, "")), 429, "too_many_attempts", TooManyAttempts.Message, 0},
		{"a bare kind", fmt.Errorf("x: %w", CSRF), 403, "csrf_failed", CSRF.Message, 0},
		{"unclassified", cause, 500, "internal_error", Internal.Message, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, code, msg, retry := Public(tc.err)
			if status != tc.status || code != tc.code || msg != tc.msg || retry != tc.retry {
				t.Errorf("Public = %d %q %q %v; want %d %q %q %v", status, code, msg, retry, tc.status, tc.code, tc.msg, tc.retry)
			}
		})
	}
}

func TestErrorsIs(t *testing.T) {
	err := Wrap(UpstreamUnavailable, context.DeadlineExceeded, "")
	if !errors.Is(err, UpstreamUnavailable) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, StoreUnavailable) {
		t.Error("errors.Is must see both the kind and the cause, and nothing else")
	}
}
