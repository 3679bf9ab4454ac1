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
		name  string
		err   error
		kind  *Kind
		msg   string
		retry time.Duration
	}{
		{"kind default message", New(Unauthenticated, ""), Unauthenticated, Unauthenticated.Message, 0},
		{"own message", New(Invalid, "Choose a tenant."), Invalid, "Choose a tenant.", 0},
		{"wrapped cause is hidden", Wrap(StoreUnavailable, cause, ""), StoreUnavailable, StoreUnavailable.Message, 0},
		{"retry delay", Retry(UpstreamUnavailable, cause, "", 5*time.Second), UpstreamUnavailable, UpstreamUnavailable.Message, 5 * time.Second},
		{"wrapped again with %w", fmt.Errorf("login: %w", New(TooManyAttempts, "")), TooManyAttempts, TooManyAttempts.Message, 0},
		{"a bare kind", fmt.Errorf("x: %w", CSRF), CSRF, CSRF.Message, 0},
		{"unclassified", cause, Internal, Internal.Message, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, msg, retry := Public(tc.err)
			if kind != tc.kind || msg != tc.msg || retry != tc.retry {
				t.Errorf("Public = %s %q %v; want %s %q %v", kind.Code, msg, retry, tc.kind.Code, tc.msg, tc.retry)
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
