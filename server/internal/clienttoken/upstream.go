package clienttoken

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/basiq"
)

// Upstream resilience, per tenant (each tenant is its own Basiq application with its own
// limits):
//   - network errors and 5xx are retried at most twice, with jittered backoff, inside the
//     caller's deadline;
//   - 429 and 403 request-not-valid stop all of the tenant's calls for a while (Basiq's
//     Retry-After, else throttlePause): retrying a throttle only deepens it;
//   - five outages in a row open the tenant's circuit for breakerOpen, so a dead Basiq is not
//     hammered; one probe call then decides whether it closes.
const (
	maxTries      = 3
	throttlePause = 30 * time.Second
	breakerOpen   = 10 * time.Second
	breakerTrip   = 5
)

// guard holds one tenant's breaker and throttle state.
type guard struct {
	cb *gobreaker.CircuitBreaker[any]

	mu             sync.Mutex
	throttledUntil time.Time
}

func (s *Service) guard(tenantID string) *guard {
	if g, ok := s.guards.Load(tenantID); ok {
		return g.(*guard)
	}
	g := &guard{cb: gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        tenantID,
		MaxRequests: 1,
		Timeout:     breakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breakerTrip },
		// Only outages count against Basiq's health: a rejected key or request is an answer.
		IsSuccessful: func(err error) bool { return err == nil || basiq.Classify(err) != basiq.ClassUnavailable },
		OnStateChange: func(name string, from, to gobreaker.State) {
			s.log.Warn("basiq circuit breaker changed state", "tenant", name, "from", from.String(), "to", to.String())
			s.metrics.BreakerState(name, int(to)) // gobreaker numbers closed 0, half-open 1, open 2
		},
	})}
	actual, loaded := s.guards.LoadOrStore(tenantID, g)
	if !loaded {
		s.metrics.BreakerState(tenantID, int(gobreaker.StateClosed))
	}
	return actual.(*guard)
}

// ForgetTenant drops the breaker and throttle state of a tenant removed from the
// configuration; if it comes back it starts afresh.
func (s *Service) ForgetTenant(tenantID string) { s.guards.Delete(tenantID) }

// call runs one Basiq call for tenantID under the tenant's throttle, breaker and retry policy.
// It returns the Basiq error for answers (rejections) and an apperr.UpstreamUnavailable with a
// retry delay for outages and throttling.
func call[T any](ctx context.Context, s *Service, tenantID, endpoint, keyID string, f func(context.Context) (T, error)) (T, error) {
	var zero T
	g := s.guard(tenantID)
	if wait := g.throttled(s.o.Now()); wait > 0 {
		s.metrics.Upstream(tenantID, endpoint, keyID, "throttled_locally", 0)
		return zero, apperr.Retry(apperr.UpstreamUnavailable, errors.New("basiq throttled this tenant; pausing calls"), "", wait)
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     100 * time.Millisecond,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         400 * time.Millisecond,
	}
	return backoff.Retry(ctx, func() (T, error) {
		if endpoint == basiq.EndpointToken {
			if err := s.spendBudget(ctx, tenantID); err != nil {
				s.metrics.Upstream(tenantID, endpoint, keyID, "budget_spent", 0)
				return zero, backoff.Permanent(err)
			}
		}
		start := time.Now()
		v, err := g.cb.Execute(func() (any, error) { return f(ctx) })
		switch {
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			s.metrics.Upstream(tenantID, endpoint, keyID, "circuit_open", 0)
			return zero, backoff.Permanent(apperr.Retry(apperr.UpstreamUnavailable, err, "", breakerOpen))
		case err == nil:
			s.metrics.Upstream(tenantID, endpoint, keyID, "ok", time.Since(start))
			return v.(T), nil
		}
		class := basiq.Classify(err)
		s.metrics.Upstream(tenantID, endpoint, keyID, class.String(), time.Since(start))
		switch class {
		case basiq.ClassUnavailable:
			if ctx.Err() != nil {
				return zero, backoff.Permanent(err)
			}
			return zero, err
		case basiq.ClassThrottled:
			pause := basiq.RetryAfter(err)
			if pause <= 0 {
				pause = throttlePause
			}
			g.throttle(s.o.Now().Add(pause))
			s.log.WarnContext(ctx, "basiq is throttling this tenant; pausing its calls", "tenant", tenantID, "pause", pause, "err", err)
		}
		return zero, backoff.Permanent(err)
	}, backoff.WithBackOff(b), backoff.WithMaxTries(maxTries))
}

func (g *guard) throttled(now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.throttledUntil.Sub(now)
}

func (g *guard) throttle(until time.Time) {
	g.mu.Lock()
	if until.After(g.throttledUntil) {
		g.throttledUntil = until
	}
	g.mu.Unlock()
}
