package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
)

// counter sums the samples of a Prometheus metric on r whose labels contain every given
// `name="value"` pair.
func counter(t *testing.T, r *replica, metric string, labels ...string) float64 {
	t.Helper()
	resp := newClient(t, r.admin).do("GET", "/metrics", "", nil)
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(string(resp.body)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// fleetCounter sums counter over every replica.
func fleetCounter(t *testing.T, rs []*replica, metric string, labels ...string) float64 {
	var sum float64
	for _, r := range rs {
		sum += counter(t, r, metric, labels...)
	}
	return sum
}

// loginMany logs n users of tenant in, round robin over the replicas, each with a first token
// (which creates their Basiq user).
func loginMany(t *testing.T, s *stack, rs []*replica, tenant string, n int) []*client {
	t.Helper()
	var cs []*client
	for i := range n {
		email := fmt.Sprintf("user%d@%s.test", i, tenant)
		s.addUser(tenant, email, testPassword)
		c := newClient(t, rs[i%len(rs)].url)
		c.mustLogin(tenant, email, testPassword)
		c.mustToken()
		cs = append(cs, c)
	}
	return cs
}

// TestFleetColdStampede: 1,000 concurrent requests for one cold cache key, spread over three
// replicas, while Basiq takes 200 ms to answer, make exactly one /token call.
func TestFleetColdStampede(t *testing.T) {
	s := newStack(t, stackOptions{
		extra:      "client_token:\n  deadline: 20s\n  l1_ttl: 100ms\n",
		redisQuery: "dial_timeout=5s&read_timeout=5s&write_timeout=5s&pool_timeout=5s",
	})
	rs := []*replica{s.start(), s.start(), s.start()}
	users := loginMany(t, s, rs, "beta", 10)
	var clients []*client // each user on each replica
	for _, u := range users {
		for _, r := range rs {
			clients = append(clients, sameSession(t, u, r))
		}
	}
	if err := kvtest.DeletePrefix(s.redisURL, s.prefix+"tok:"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // past l1_ttl: every replica is cold
	s.emu.SetLatency(200 * time.Millisecond)
	s.emu.ResetCounters()

	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for i := range 1000 {
		wg.Go(func() {
			tok, resp := clients[i%len(clients)].token()
			if resp.status != 200 {
				t.Errorf("request %d: %d %s", i, resp.status, resp.body)
				return
			}
			mu.Lock()
			seen[tok.AccessToken]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if n := s.emu.TokenCalls(); n != 1 {
		t.Errorf("/token calls = %d, want exactly 1", n)
	}
	if len(seen) != 1 {
		t.Errorf("the fleet handed out %d different tokens, want 1", len(seen))
	}
}

// TestFleetRefreshBoundary: a token crosses refresh_after while 30 clients load three
// replicas. Exactly one more /token call is made, and no request waits on Basiq: every token
// served during the load comes from a cache.
func TestFleetRefreshBoundary(t *testing.T) {
	// Basiq tokens live 6 s here, so the 2 s refresh boundary comes quickly.
	s := newStack(t, stackOptions{
		extra: "client_token:\n  refresh_after: 2s\n  min_remaining: 1s\n  l1_ttl: 200ms\n  deadline: 10s\n",
		emu:   emulator.Options{TokenTTL: 6 * time.Second},
	})
	rs := []*replica{s.start(), s.start(), s.start()}
	users := loginMany(t, s, rs, "beta", 6)
	// Start the clock at a fresh mint.
	if err := kvtest.DeletePrefix(s.redisURL, s.prefix+"tok:"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	users[0].mustToken()
	minted := time.Now()
	s.emu.SetLatency(200 * time.Millisecond)
	calls := s.emu.TokenCalls()
	upstreamBefore := fleetCounter(t, rs, "bff_client_tokens_served_total", `source="upstream"`)
	waitsBefore := fleetCounter(t, rs, "bff_lock_waits_total", `kind="request"`)

	var clients []*client
	for _, u := range users {
		for _, r := range rs {
			clients = append(clients, sameSession(t, u, r))
		}
	}
	stop := minted.Add(3500 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var latencies []time.Duration
	tokens := map[string]bool{}
	for i := range 30 {
		wg.Go(func() {
			c := clients[i%len(clients)]
			for time.Now().Before(stop) {
				start := time.Now()
				tok, resp := c.token()
				took := time.Since(start)
				if resp.status != 200 {
					t.Errorf("%d %s", resp.status, resp.body)
					return
				}
				mu.Lock()
				latencies = append(latencies, took)
				tokens[tok.AccessToken] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got := s.emu.TokenCalls() - calls; got != 1 {
		t.Errorf("/token calls across the refresh = %d, want exactly 1", got)
	}
	if len(tokens) != 2 {
		t.Errorf("tokens served = %d, want the old one and the refreshed one", len(tokens))
	}
	if got := fleetCounter(t, rs, "bff_client_tokens_served_total", `source="upstream"`) - upstreamBefore; got != 0 {
		t.Errorf("%v requests waited for Basiq during the refresh", got)
	}
	if got := fleetCounter(t, rs, "bff_lock_waits_total", `kind="request"`) - waitsBefore; got != 0 {
		t.Errorf("%v requests waited for another replica's mint", got)
	}
	slices.Sort(latencies)
	t.Logf("%d requests across the refresh: p50 %v, p99 %v, max %v", len(latencies),
		latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1])
}

// TestFleetBasiqOutage: while Basiq fails, tokens with life left keep being served, cold keys
// get a fast 503, and the service recovers by itself once Basiq is back.
func TestFleetBasiqOutage(t *testing.T) {
	s := newStack(t, stackOptions{extra: "client_token:\n  deadline: 1s\n"})
	rs := []*replica{s.start(), s.start()}
	warm := loginMany(t, s, rs, "beta", 2)
	s.addUser("acme", "cold@acme.test", testPassword)
	cold := newClient(t, rs[0].url)
	cold.mustLogin("acme", "cold@acme.test", testPassword)

	for _, fault := range []emulator.Fault{{Status: 500}, {Hang: true}} {
		s.emu.SetFault(fault)
		for _, c := range warm {
			for _, r := range rs {
				sameSession(t, c, r).mustToken()
			}
		}
		start := time.Now()
		_, resp := cold.token()
		if took := time.Since(start); resp.status != 503 || took > 2500*time.Millisecond {
			t.Errorf("cold key during %+v: %d after %v, want a 503 within the 1s deadline", fault, resp.status, took)
		}
		if resp.header.Get("Retry-After") == "" {
			t.Error("no Retry-After on the 503")
		}
	}
	s.emu.SetFault(emulator.Fault{})
	// The circuit breaker may hold calls off for its open period; then one probe closes it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, resp := cold.token()
		if resp.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered 20s after Basiq came back: %d %s", resp.status, resp.body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestFleetReplicaKilledHoldingLock: a replica process is SIGKILLed while it holds the mint lock
// (Basiq hangs on its call). Another replica waits out the lease, then mints.
func TestFleetReplicaKilledHoldingLock(t *testing.T) {
	if testing.Short() {
		skipFor(t, skipShort, "builds the server binary")
	}
	needRedis(t, "a second replica process")
	s := newStack(t, stackOptions{extra: "client_token:\n  deadline: 15s\n  l1_ttl: 100ms\n"})
	bin := filepath.Join(t.TempDir(), "bff")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := s.start()
	users := loginMany(t, s, []*replica{r}, "beta", 1)
	victimURL, kill := startProcess(t, bin, s.env)
	victim := sameSession(t, users[0], &replica{url: victimURL})
	if err := kvtest.DeletePrefix(s.redisURL, s.prefix+"tok:"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)

	s.emu.SetFault(emulator.Fault{Hang: true, Endpoint: emulator.RouteToken})
	s.emu.ResetCounters()
	go func() { // its answer never comes: the process dies first
		req, _ := http.NewRequest("GET", victimURL+"/client-token", nil)
		req.Header.Set("X-CSRF", "1")
		if resp, err := victim.http.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.emu.TokenCalls() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the victim never called /token")
		}
		time.Sleep(10 * time.Millisecond)
	}
	kill()
	s.emu.SetFault(emulator.Fault{})

	start := time.Now()
	tok, resp := users[0].token()
	took := time.Since(start)
	if resp.status != 200 {
		t.Fatalf("after the holder died: %d %s", resp.status, resp.body)
	}
	if took < time.Second {
		t.Errorf("minted after %v although the dead replica's lease was live", took)
	}
	if n := s.emu.TokenCalls(); n != 2 {
		t.Errorf("/token calls = %d, want 2 (the dead replica's and the survivor's)", n)
	}
	t.Logf("the survivor minted %v after the kill (lease 5s)", took)
	_ = tok
}

// startProcess runs the server binary with env and returns its public URL and a SIGKILL.
func startProcess(t *testing.T, bin string, env map[string]string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}
	t.Cleanup(func() { kill(); cancel() })
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var pub string
			if n, _ := fmt.Sscanf(sc.Text(), "listening on %s", &pub); n == 1 {
				urlc <- pub
			}
		}
	}()
	select {
	case u := <-urlc:
		return u, kill
	case <-time.After(30 * time.Second):
		t.Fatal("the server process did not start")
	}
	return "", nil
}
