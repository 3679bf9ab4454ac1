package httpapi

import (
	"testing"

	"github.com/basiq-bff/bff/server/internal/apperr"
)

// TestStatusOf pins the kind-to-status table to the statuses the README's contract lists.
func TestStatusOf(t *testing.T) {
	tests := []struct {
		kind   *apperr.Kind
		status int
	}{
		{apperr.Invalid, 400},
		{apperr.InvalidState, 400},
		{apperr.InvalidCredentials, 401},
		{apperr.Unauthenticated, 401},
		{apperr.CSRF, 403},
		{apperr.Forbidden, 403},
		{apperr.PasswordLoginOff, 403},
		{apperr.NotFound, 404},
		{apperr.Conflict, 409},
		{apperr.TooManyAttempts, 429},
		{apperr.RateLimited, 429},
		{apperr.UpstreamRejected, 502},
		{apperr.UpstreamUnavailable, 503},
		{apperr.StoreUnavailable, 503},
		{apperr.Busy, 503},
		{apperr.Internal, 500},
		{&apperr.Kind{Code: "unlisted"}, 500},
	}
	for _, tc := range tests {
		t.Run(tc.kind.Code, func(t *testing.T) {
			if got := statusOf(tc.kind); got != tc.status {
				t.Errorf("statusOf(%s) = %d, want %d", tc.kind.Code, got, tc.status)
			}
		})
	}
}
