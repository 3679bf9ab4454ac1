//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
	"github.com/basiq-bff/bff/server/internal/testenv"
)

// TestSentinelFailoverKeepsSessionsAndTokens runs two replicas on a Sentinel-managed Redis and
// fails its master over while people use them: every session and cached token survives the
// switch on both replicas (no new /token call), a new login works on the new master, and any
// request that fails meanwhile is a prompt 503 store_unavailable with Retry-After, never a 401
// that would log people out nor a 500.
func TestSentinelFailoverKeepsSessionsAndTokens(t *testing.T) {
	needRedis(t, "starts a Sentinel deployment for two replicas")
	tests := []struct {
		name string
		fail func(t *testing.T, rs *kvtest.Sentinel) // returns once every Sentinel names the new master
		// outage: Redis cannot answer for a while, so some requests must fail (with 503).
		outage bool
	}{
		{"SENTINEL FAILOVER", func(t *testing.T, rs *kvtest.Sentinel) { rs.Failover(t) }, false},
		{"master stops answering", func(t *testing.T, rs *kvtest.Sentinel) { rs.HangMaster(t, 10*time.Second) }, true},
	}
	// Without the Redis binaries every row skips, and so does the test.
	sub := newSubtests(t)
	for _, tc := range tests {
		sub.run(tc.name, func(t *testing.T) {
			testSentinelFailover(t, tc.fail, tc.outage)
		})
	}
	sub.done()
}

func testSentinelFailover(t *testing.T, fail func(*testing.T, *kvtest.Sentinel), outage bool) {
	rs := kvtest.StartSentinel(t)
	// Both in-process copies are off (session records and L1 tokens), so every request reads
	// Redis: with them, the replicas could answer from memory throughout the switch and the
	// test would prove nothing. The rate limit is out of the way of the polling.
	s := newStack(t, stackOptions{
		redisURL: rs.URL,
		cacheTTL: "0s",
		extra:    "client_token:\n  l1_ttl: 0s\n  rate_limit: 1000000\n",
	})
	s.addUser("acme", "mia@acme.test", testPassword)
	s.addUser("beta", "noah@beta.test", testPassword)
	s.addUser("acme", "olga@acme.test", testPassword)
	r1, r2 := s.start(), s.start()

	// A 3.0 user with her own bound token, and a 2.0 user on the tenant's shared one, each
	// logged in on one replica and using the same session through the other.
	users := []*failoverUser{
		{tenant: "acme", email: "mia@acme.test"},
		{tenant: "beta", email: "noah@beta.test"},
	}
	loginFailoverUsers(t, users, r1, r2)
	calls := s.emu.TokenCalls()

	// Poll both sessions on both replicas without pause while the failover runs.
	var log answerLog
	poll := startFailoverPolling(users, &log)
	defer poll.stop()

	start := time.Now()
	fail(t, rs)
	poll.failingOver.Store(false)
	t.Logf("every Sentinel names the new master %s after %v", rs.Master(), time.Since(start).Round(time.Millisecond))

	// Every session works again, with the token cached before the switch.
	deadline := start.Add(15 * time.Second)
	waitServed(t, users, &log, deadline)
	t.Logf("both sessions served on both replicas %v after the failover began", time.Since(start).Round(time.Millisecond))
	poll.stop()
	if n := poll.during.Load(); n == 0 {
		t.Error("no request ran while the failover was under way: the test proved nothing")
	}
	if got := s.emu.TokenCalls(); got != calls {
		t.Errorf("/token called %d times across the failover; the cached tokens should have been served", got-calls)
	}

	// A new login works, and its session lands on the new master.
	checkNewLogin(t, s, rs, r1, r2, &log, deadline)

	checkFailoverAnswers(t, &log, outage, poll.during.Load())
}

// loginFailoverUsers logs each user in on one replica, alternating, and gives them a client of
// the same session on the other; both replicas must serve them the same token.
func loginFailoverUsers(t *testing.T, users []*failoverUser, r1, r2 *replica) {
	t.Helper()
	for i, u := range users {
		home, other := r1, r2
		if i%2 == 1 {
			home, other = r2, r1
		}
		c := newClient(t, home.url)
		c.mustLogin(u.tenant, u.email, testPassword)
		u.clients = []*client{c, sameSession(t, c, other)}
		u.token = c.mustToken().AccessToken
		for _, c := range u.clients {
			if got := c.mustToken().AccessToken; got != u.token {
				t.Fatalf("%s got two different tokens from the two replicas", u.email)
			}
			if got := c.me().User.Email; got != u.email {
				t.Fatalf("%s's session says %q", u.email, got)
			}
		}
	}
}

// failoverPolling polls every user's sessions on both replicas without pause, counting the
// rounds finished while failingOver is set.
type failoverPolling struct {
	during      atomic.Int64 // rounds finished while the failover was under way
	failingOver atomic.Bool
	stop        func() // ends the polling and waits for it; safe to call twice
}

// startFailoverPolling starts polling every user until the returned polling's stop is called.
func startFailoverPolling(users []*failoverUser, log *answerLog) *failoverPolling {
	p := &failoverPolling{}
	p.failingOver.Store(true)
	p.stop = testenv.Repeat(func() {
		for _, u := range users {
			u.round(log)
		}
		if p.failingOver.Load() {
			p.during.Add(1)
		}
	})
	return p
}

// waitServed polls until every session works again on both replicas, with the token cached
// before the switch, and fails the test at deadline.
func waitServed(t *testing.T, users []*failoverUser, log *answerLog, deadline time.Time) {
	t.Helper()
	for {
		ok := true
		for _, u := range users {
			ok = u.round(log) && ok
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions still failing 15s after the failover began: %s", log.summary())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkNewLogin: a login after the failover works on r2 (retried until deadline), its session
// serves one token on both replicas, and the new master holds it with the two from before.
func checkNewLogin(t *testing.T, s *stack, rs *kvtest.Sentinel, r1, r2 *replica, log *answerLog, deadline time.Time) {
	t.Helper()
	olga := newClient(t, r2.url)
	for {
		resp := olga.login("acme", "olga@acme.test", testPassword)
		log.record("POST /auth/login", "olga@acme.test", resp, nil)
		if resp.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new login still fails 15s after the failover began: %d %s", resp.status, resp.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	olga1 := sameSession(t, olga, r1)
	if got := olga1.me().User.Email; got != "olga@acme.test" {
		t.Errorf("the new session says %q", got)
	}
	if a, b := olga.mustToken().AccessToken, olga1.mustToken().AccessToken; a != b {
		t.Error("the new session got two different tokens from the two replicas")
	}
	if sess := kvtest.Keys(t, "redis://"+rs.Master(), s.prefix+"sess:*"); len(sess) != 3 {
		t.Errorf("the new master holds %d sessions, want 3 (two from before the failover, one after)", len(sess))
	}
}

// checkFailoverAnswers: during the failover every answer was right or a prompt 503, and when
// Redis could not answer (outage) some requests did fail.
func checkFailoverAnswers(t *testing.T, log *answerLog, outage bool, during int64) {
	t.Helper()
	t.Logf("answers seen: %s (%d polling rounds during the failover)", log.summary(), during)
	for _, w := range log.wrong() {
		t.Error(w)
	}
	statuses := log.statuses()
	for status := range statuses {
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			t.Errorf("status %d seen during the failover; want only 200 and 503", status)
		}
	}
	if outage && statuses[http.StatusServiceUnavailable] == 0 {
		t.Error("no request failed while Redis could not answer: the replicas did not depend on it")
	}
	// A hung Redis must turn into a prompt answer (docs/architecture.md, "Failures": kv calls time out in hundreds
	// of milliseconds), not a request that waits for the failover.
	if slowest := log.slowestPoll(); slowest > 3*time.Second {
		t.Errorf("a request took %v during the failover", slowest)
	}
}

// failoverUser is one logged-in person and their session on each replica.
type failoverUser struct {
	tenant, email string
	clients       []*client // the same session, one client per replica
	token         string    // the token served before the failover
}

// round asks every replica for the user and their token once, and reports whether all
// answered 200 with the right content. It does not fail the test: it may run on a goroutine
// of its own.
func (u *failoverUser) round(log *answerLog) bool {
	ok := true
	for _, c := range u.clients {
		for _, path := range []string{"/auth/me", "/client-token"} {
			began := time.Now()
			resp, err := probe(c, path)
			log.took(time.Since(began))
			if err != nil {
				log.fail(fmt.Sprintf("GET %s for %s on %s: %v", path, u.email, c.base, err))
				ok = false
				continue
			}
			ok = log.record("GET "+path, u.email, resp, u) && ok
		}
	}
	return ok
}

// probe is client.do for a GET that reports a transport error instead of failing the test.
func probe(c *client, path string) (response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("X-CSRF", "1")
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// answerLog counts the statuses seen and keeps every answer that breaks the contract. It is
// safe for concurrent use.
type answerLog struct {
	mu      sync.Mutex
	counts  map[int]int
	bad     []string
	slowest time.Duration
}

// took notes how long one polling request took.
func (l *answerLog) took(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slowest = max(l.slowest, d)
}

// record notes one answer to route for email and reports whether it was a 200 with the right
// content; u, when set, holds the content expected from /auth/me and /client-token.
func (l *answerLog) record(route, email string, resp response, u *failoverUser) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = make(map[int]int)
	}
	l.counts[resp.status]++
	switch resp.status {
	case http.StatusOK:
		var body struct {
			AccessToken string `json:"access_token"`
			User        struct {
				Email string `json:"email"`
			} `json:"user"`
		}
		if err := json.Unmarshal(resp.body, &body); err != nil {
			l.bad = append(l.bad, fmt.Sprintf("%s for %s: 200 with an undecodable body: %v", route, email, err))
			return false
		}
		switch {
		case u == nil:
		case route == "GET /client-token" && body.AccessToken != u.token:
			l.bad = append(l.bad, fmt.Sprintf("%s for %s: 200 with a token other than the cached one", route, email))
			return false
		case route == "GET /auth/me" && body.User.Email != email:
			l.bad = append(l.bad, fmt.Sprintf("%s for %s: 200 for %q", route, email, body.User.Email))
			return false
		}
		return true
	case http.StatusServiceUnavailable:
		var e struct{ Error struct{ Code string } }
		if resp.header.Get("Retry-After") == "" {
			l.bad = append(l.bad, fmt.Sprintf("%s for %s: 503 without Retry-After", route, email))
		}
		if err := json.Unmarshal(resp.body, &e); err != nil || e.Error.Code != "store_unavailable" {
			l.bad = append(l.bad, fmt.Sprintf("%s for %s: 503 %s; want code store_unavailable", route, email, resp.body))
		}
	default:
		l.bad = append(l.bad, fmt.Sprintf("%s for %s: %d %s", route, email, resp.status, resp.body))
	}
	return false
}

// fail notes a request that got no answer at all.
func (l *answerLog) fail(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bad = append(l.bad, what)
}

func (l *answerLog) wrong() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.bad)
}

func (l *answerLog) statuses() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.counts)
}

func (l *answerLog) slowestPoll() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.slowest
}

func (l *answerLog) summary() string {
	counts, slowest := l.statuses(), l.slowestPoll()
	return fmt.Sprintf("status counts %v, %d wrong answers, slowest poll %v", counts, len(l.wrong()), slowest.Round(time.Millisecond))
}
