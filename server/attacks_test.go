package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
	"github.com/basiq-bff/bff/server/internal/testenv"
)

// The tests in this file each replay one attack made on the server, against real Redis and
// Postgres, and check the limit it must now meet.

// metricsSize is the size of the admin listener's /metrics answer.
func metricsSize(t *testing.T, r *replica) int {
	t.Helper()
	resp := newClient(t, r.admin).do("GET", "/metrics", "", nil)
	if resp.status != 200 {
		t.Fatalf("/metrics: %d", resp.status)
	}
	return len(resp.body)
}

// TestAttackUniqueMethods: requests with made-up methods, sent without logging in, get 405
// and add no time series: /metrics stays the same size.
func TestAttackUniqueMethods(t *testing.T) {
	const requests, workers = 10_000, 8
	s := newStack(t, stackOptions{discardLogs: true})
	r := s.start()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	t.Cleanup(hc.CloseIdleConnections)
	send := func(i int) (int, error) {
		method := fmt.Sprintf("M%05d%s", i, strings.Repeat("X", 1000))
		req, err := http.NewRequest(method, r.url+"/client-token", nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// The first one creates the series every later one shares.
	if st, err := send(-1); err != nil || st != http.StatusMethodNotAllowed {
		t.Fatalf("first made-up method: %d, %v; want 405", st, err)
	}
	before := metricsSize(t, r)

	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	var firstErr error
	for w := range workers {
		wg.Go(func() {
			for i := w; i < requests; i += workers {
				st, err := send(i)
				mu.Lock()
				statuses[st]++
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil || statuses[http.StatusMethodNotAllowed] != requests {
		t.Fatalf("statuses %v (first error %v); want %d × 405", statuses, firstErr, requests)
	}
	after := metricsSize(t, r)
	t.Logf("/metrics: %d bytes before, %d after %d made-up methods", before, after, requests)
	if after-before >= 1024 {
		t.Errorf("/metrics grew by %d bytes, want < 1 KB", after-before)
	}
	if n := counter(t, r, "bff_http_requests_total", `method="_OTHER"`, `status="405"`); n != requests+1 {
		t.Errorf(`bff_http_requests_total{method="_OTHER",status="405"} = %v, want %d`, n, requests+1)
	}

	// Standard methods keep their labels, echo's own 405 and CORS preflights still work.
	c := newClient(t, r.url)
	if resp := c.do("PUT", "/client-token", "", map[string]string{"X-CSRF": "1"}); resp.status != 405 || resp.errorCode(t) != "method_not_allowed" {
		t.Errorf("PUT /client-token: %d %s", resp.status, resp.body)
	}
	pre := c.do("OPTIONS", "/client-token", "", map[string]string{"Origin": "http://spa.example.test",
		"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-csrf"})
	if pre.status/100 != 2 || pre.header.Get("Access-Control-Allow-Origin") != "http://spa.example.test" {
		t.Errorf("preflight: %d %v", pre.status, pre.header)
	}
	if n := counter(t, r, "bff_http_requests_total", `method="PUT"`); n != 1 {
		t.Errorf(`method="PUT" count = %v, want 1`, n)
	}
}

// TestAttackConcurrentFailedLogins: 64 failed logins at once (each argon2 hash takes 19 MiB)
// keep the server process's peak RSS under 200 MB. The server runs as its own process, built
// without the race detector (whose shadow memory would be measured too), so the measurement
// is of the server as deployed.
func TestAttackConcurrentFailedLogins(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		skipFor(t, skipNoProc, "needs /proc to read a process's peak RSS")
	}
	const concurrent, rounds = 64, 3
	s := newStack(t, stackOptions{extra: "login:\n  max_attempts_per_ip: 100000\n  max_attempts_per_account: 100000\n"})
	bin := filepath.Join(t.TempDir(), "bff")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the server process did not stop within 15s")
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var pub, adm string
			if n, _ := fmt.Sscanf(sc.Text(), "listening on %s (admin %s", &pub, &adm); n == 2 {
				urls <- pub
			}
		}
	}()
	var base string
	select {
	case base = <-urls:
	case err := <-exited:
		t.Fatalf("the server process exited: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the server process did not start\n%s", stderr.String())
	}
	c := newClient(t, base)
	wantBadCredentials(t, "warm-up", c.login("acme", "warm@acme.test", "wrong password"))
	idle := peakRSS(t, cmd.Process.Pid)
	statuses := concurrentFailedLogins(t, base, rounds, concurrent)
	hwm := peakRSS(t, cmd.Process.Pid)
	t.Logf("server peak RSS: %.1f MB after start-up and one login, %.1f MB after %d rounds of %d concurrent failed logins; statuses %v",
		float64(idle)/1e6, float64(hwm)/1e6, rounds, concurrent, statuses)
	if statuses[401]+statuses[503] != rounds*concurrent || statuses[401] == 0 {
		t.Errorf("statuses %v: want only 401 (checked) and 503 (every hash slot busy)", statuses)
	}
	if hwm >= 200e6 {
		t.Errorf("peak RSS %.1f MB, want < 200 MB", float64(hwm)/1e6)
	}
}

// peakRSS reads the peak resident set size (VmHWM) of process pid, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

// concurrentFailedLogins runs rounds of concurrent failed logins against base, each round
// released at once, and counts the answers by status.
func concurrentFailedLogins(t *testing.T, base string, rounds, concurrent int) map[int]int {
	t.Helper()
	statuses := map[int]int{}
	var mu sync.Mutex
	for round := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range concurrent {
			wg.Go(func() {
				<-start
				resp := newClient(t, base).login("acme", fmt.Sprintf("r%d-%d@acme.test", round, i), "wrong password")
				mu.Lock()
				statuses[resp.status]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
	}
	return statuses
}

// TestAttackDisableRacesTokenRequest: `users disable` ends the session while a first token
// request (which creates the Basiq user and writes its id into the session) is in flight.
// When that request finishes it must not bring the session back, on either replica.
func TestAttackDisableRacesTokenRequest(t *testing.T) {
	s := newStack(t, stackOptions{extra: "client_token:\n  deadline: 10s\n"})
	s.addUser("acme", "dana@acme.test", testPassword)
	s.needRedis("the command line reaches replicas' sessions only through Redis")
	r1, r2 := s.start(), s.start()
	dana := newClient(t, r1.url)
	dana.mustLogin("acme", "dana@acme.test", testPassword)
	dana2 := sameSession(t, dana, r2)
	dana2.me() // replica 2 holds a copy of the session

	s.emu.SetFault(emulator.Fault{Endpoint: emulator.RouteUsers, Latency: 1500 * time.Millisecond})
	done := make(chan response, 1)
	go func() {
		_, resp := dana.token()
		done <- resp
	}()
	time.Sleep(500 * time.Millisecond) // the request is waiting on POST /users
	out, err := s.cli("", "users", "disable", "--tenant", "acme", "--email", "dana@acme.test")
	if err != nil || !strings.Contains(out, "ended 1 sessions") {
		t.Fatalf("users disable: %v\n%s", err, out)
	}
	inflight := <-done
	s.emu.SetFault(emulator.Fault{})
	t.Logf("the in-flight token request finished with %d", inflight.status)
	if inflight.status == 200 {
		t.Error("the in-flight request was served although its session ended while it ran")
	}
	// 401 ever after: past every replica's copy of the session (cache_ttl 2s).
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for name, c := range map[string]*client{"replica 1": dana, "replica 2": dana2} {
			if resp := c.do("GET", "/auth/me", "", nil); resp.status != 401 {
				t.Fatalf("%s: /auth/me answered %d after the user was disabled: %s", name, resp.status, resp.body)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAttackRecordCopiedUnderAnotherID: someone who can write to Redis copies alice's session
// record under their own session's id. Their cookie must then be no session at all, not
// alice's.
func TestAttackRecordCopiedUnderAnotherID(t *testing.T) {
	needRedis(t, "copies a session record in Redis")
	s := newStack(t, stackOptions{cacheTTL: "0s"})
	s.addUser("acme", "alice@acme.test", testPassword)
	s.addUser("acme", "mallory@acme.test", testPassword)
	r := s.start()
	alice, mallory := newClient(t, r.url), newClient(t, r.url)
	alice.mustLogin("acme", "alice@acme.test", testPassword)
	mallory.mustLogin("acme", "mallory@acme.test", testPassword)
	alice.mustToken() // alice's record now carries her Basiq user id

	key, err := hex.DecodeString(s.env["SESSION_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	idOf := func(c *client) string {
		sc := securecookie.New(key, nil)
		sc.SetSerializer(securecookie.NopEncoder{})
		var id []byte
		if err := sc.Decode("bff", sessionCookie(t, c), &id); err != nil {
			t.Fatal(err)
		}
		return string(id)
	}
	store, err := kv.NewRedis(t.Context(), s.redisURL, s.prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rec, err := store.Get(t.Context(), "sess:"+idOf(alice))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Set(t.Context(), "sess:"+idOf(mallory), rec, time.Hour); err != nil {
		t.Fatal(err)
	}
	if resp := mallory.do("GET", "/auth/me", "", nil); resp.status != 401 {
		t.Errorf("the copied record answered %d: %s", resp.status, resp.body)
	}
	if _, resp := mallory.token(); resp.status != 401 {
		t.Errorf("/client-token with the copied record: %d", resp.status)
	}
	if got := alice.me().User.Email; got != "alice@acme.test" {
		t.Errorf("alice's own session reads %q", got)
	}
}

// TestAttackIPv6Slash64: one /64 is one client. Guesses from 55 addresses of one /64 are
// refused from the 51st (max_attempts_per_ip defaults to 50).
func TestAttackIPv6Slash64(t *testing.T) {
	s := newStack(t, stackOptions{extra: "trusted_proxies: [127.0.0.1/32]\nlogin:\n  max_attempts_per_account: 1000\n"})
	r := s.start()
	for i := range 55 {
		from := fmt.Sprintf("2001:db8:77:1:%x:%x::%x", i*7919%65536, i, i+1)
		resp := rawLoginWith(t, r.url, "acme", fmt.Sprintf("guess%d@acme.test", i), "wrong password",
			map[string]string{"X-Forwarded-For": from})
		if i < 50 {
			wantBadCredentials(t, fmt.Sprintf("guess %d", i+1), resp)
			continue
		}
		wantTooMany(t, resp, 15*time.Minute)
	}
	// Another /64 is another client.
	wantBadCredentials(t, "another /64", rawLoginWith(t, r.url, "acme", "guess@acme.test", "wrong password",
		map[string]string{"X-Forwarded-For": "2001:db8:77:2::1"}))
}

// TestAttackAimedLockout: strangers' failures lock the account for strangers, not for the
// browser the person logged in from before, which carries a device cookie.
func TestAttackAimedLockout(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.addUser("acme", "vic@acme.test", testPassword)
	r := s.start()
	own := newClient(t, r.url)
	own.mustLogin("acme", "vic@acme.test", testPassword)
	if !hasCookie(t, own, "bff-device") {
		t.Error("a successful login set no device cookie")
	}
	for i := range 6 {
		resp := clientFrom(t, r.url, fmt.Sprintf("127.0.0.%d", 2+i)).login("acme", "vic@acme.test", "wrong password")
		if i < 5 {
			wantBadCredentials(t, fmt.Sprintf("stranger %d", i+1), resp)
		} else {
			wantTooMany(t, resp, 15*time.Minute)
		}
	}
	if resp := own.login("acme", "vic@acme.test", testPassword); resp.status != 200 {
		t.Errorf("the person's own browser: %d %s, want 200", resp.status, resp.body)
	}
	// Guessing stays limited for everyone else, the right password included.
	wantTooMany(t, newClient(t, r.url).login("acme", "vic@acme.test", testPassword), 15*time.Minute)
	// A device cookie is for its own account only, and cannot be forged or edited.
	wantTooMany(t, withDevice(t, r.url, deviceCookie(t, own)+"x").login("acme", "vic@acme.test", testPassword), 15*time.Minute)
	wantTooMany(t, withDevice(t, r.url, "v1."+strings.Repeat("0", 32)+".nonce.1.sig").login("acme", "vic@acme.test", testPassword), 15*time.Minute)
	// The browser with the device cookie is limited too, apart from everyone else.
	for i := range 5 {
		wantBadCredentials(t, fmt.Sprintf("own browser, wrong password %d", i+1), own.login("acme", "vic@acme.test", "wrong password"))
	}
	wantTooMany(t, own.login("acme", "vic@acme.test", testPassword), 15*time.Minute)
}

// TestAttackGlobalFailureCeiling: past the fleet-wide ceiling of failed logins, clients
// without a device cookie are refused; a person's own browser still logs in.
func TestAttackGlobalFailureCeiling(t *testing.T) {
	s := newStack(t, stackOptions{extra: "login:\n  max_failures_global: 4\n"})
	s.addUser("acme", "vic@acme.test", testPassword)
	s.addUser("acme", "other@acme.test", testPassword)
	rs := s.replicas(2)
	r1, r2 := rs[0], rs[1]
	own := newClient(t, r1.url)
	own.mustLogin("acme", "vic@acme.test", testPassword)
	for i := range 4 { // spread over replicas, addresses and accounts
		base := []string{r1.url, r2.url}[i%2]
		wantBadCredentials(t, fmt.Sprintf("guess %d", i+1),
			clientFrom(t, base, fmt.Sprintf("127.0.0.%d", 2+i)).login("acme", fmt.Sprintf("nobody%d@acme.test", i), "wrong password"))
	}
	wantTooMany(t, clientFrom(t, r2.url, "127.0.0.9").login("acme", "other@acme.test", testPassword), 15*time.Minute)
	if resp := sameSession(t, own, r2).login("acme", "vic@acme.test", testPassword); resp.status != 200 {
		t.Errorf("a browser with a device cookie, past the ceiling: %d %s", resp.status, resp.body)
	}
	if !slices.Contains(securityEvents(t, r2.logs.String()), "login.locked_out/global_limit") {
		t.Error("no login.locked_out/global_limit security event")
	}
}

// TestAttackConsentFlood: one session calling POST /connect/consent over and over is held to
// the per-session limit and leaves at most maxStates states in Redis.
func TestAttackConsentFlood(t *testing.T) {
	s := newStack(t, stackOptions{extra: "client_token:\n  rate_limit: 30\n"})
	s.addUser("acme", "flo@acme.test", testPassword)
	r := s.start()
	c := newClient(t, r.url)
	c.mustLogin("acme", "flo@acme.test", testPassword)
	startEarlyInMinute()
	statuses := map[int]int{}
	var last string
	for range 100 {
		resp := c.do("POST", "/connect/consent", "", map[string]string{"X-CSRF": "1"})
		statuses[resp.status]++
		if resp.status == 200 {
			var body struct{ URL string }
			resp.json(t, &body)
			last = mustURL(t, body.URL).Query().Get("state")
		} else if resp.status == 429 && resp.errorCode(t) != "rate_limited" {
			t.Errorf("429 with code %s", resp.errorCode(t))
		}
	}
	if statuses[200] != 30 || statuses[429] != 70 {
		t.Errorf("statuses %v, want 30 × 200 and 70 × 429", statuses)
	}
	t.Run("at most 5 states kept", func(t *testing.T) {
		s.needRedisFor(t, "counts the state keys in Redis")
		keys := kvtest.Keys(t, s.redisURL, s.prefix+"state:*")
		t.Logf("%d state keys after 100 calls", len(keys))
		if len(keys) > 5 {
			t.Errorf("%d state keys, want at most 5", len(keys))
		}
	})
	// The newest state still works.
	if resp := c.do("GET", "/connect/return?state="+last, "", nil); resp.status != 303 || strings.Contains(resp.header.Get("Location"), "error") {
		t.Errorf("the newest state: %d %s", resp.status, resp.header.Get("Location"))
	}
}

// TestAttackUnsafeConfig: `config check` refuses each unsafe production setting.
func TestAttackUnsafeConfig(t *testing.T) {
	s := newStack(t, stackOptions{})
	good, err := readFile(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, from, to, want string
	}{
		{"Basiq over http to a public host", "base_url: " + s.emuURL, "base_url: http://au-api.basiq.io", "base_url: must be https"},
		{"insecure cookies on a public origin", "public_origin: http://app.localhost", "public_origin: http://app.example.com", "session.secure: false is allowed only"},
		{"every address a trusted proxy", "tenants:\n", "trusted_proxies: [0.0.0.0/0]\ntenants:\n", "is wider than a /8"},
		{"every IPv6 address a trusted proxy", "tenants:\n", "trusted_proxies: ['::/0']\ntenants:\n", "is wider than a /32"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatalf("the config has no %q", tc.from)
			}
			path := writeTemp(t, strings.Replace(good, tc.from, tc.to, 1))
			out, err := s.cli("", "config", "check", "--config", path)
			if err == nil {
				t.Fatalf("config check passed:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output does not say %q:\n%s", tc.want, out)
			}
		})
	}
	t.Run("admin listener on every interface is a warning", func(t *testing.T) {
		path := writeTemp(t, strings.Replace(good, "admin_listen: 127.0.0.1:0", "admin_listen: 0.0.0.0:0", 1))
		out, err := s.cli("", "config", "check", "--config", path)
		if err != nil {
			t.Fatalf("config check failed: %v\n%s", err, out)
		}
		if !strings.Contains(out, "admin_listen") {
			t.Errorf("no warning about admin_listen:\n%s", out)
		}
	})
}

func hasCookie(t *testing.T, c *client, name string) bool {
	t.Helper()
	v, ok := cookieValue(t, c, name)
	return ok && v != ""
}

// cookieValue returns the value of c's cookie called name, if its jar holds one.
func cookieValue(t *testing.T, c *client, name string) (string, bool) {
	t.Helper()
	for _, ck := range c.http.Jar.Cookies(mustURL(t, c.base)) {
		if ck.Name == name {
			return ck.Value, true
		}
	}
	return "", false
}

func deviceCookie(t *testing.T, c *client) string {
	t.Helper()
	v, ok := cookieValue(t, c, "bff-device")
	if !ok {
		t.Fatal("no device cookie")
	}
	return v
}

// withDevice is a fresh client carrying the given device cookie value.
func withDevice(t *testing.T, base, value string) *client {
	t.Helper()
	c := newClient(t, base)
	c.http.Jar.SetCookies(mustURL(t, base), []*http.Cookie{{Name: "bff-device", Value: value, Path: "/"}})
	return c
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// writeTemp writes a config file in the test's temp directory.
func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bff.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAttackSmallerPoints: answers about a person are never cached, the SPA's files cannot
// be embedded by other sites, and login counters in Redis name nobody.
func TestAttackSmallerPoints(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.addUser("acme", "pat@acme.test", testPassword)
	r := s.start()
	c := newClient(t, r.url)
	wrong := c.login("acme", "pat@acme.test", "wrong password")
	ok := c.login("acme", "pat@acme.test", testPassword)
	cases := []struct {
		name       string
		resp       response
		wantStatus int
		noStore    bool
	}{
		{"login answer", ok, 200, true},
		{"login refused", wrong, 401, true},
		{"bad request", c.do("POST", "/auth/login", "{", spaHeaders), 400, true},
		{"unknown asset", c.do("GET", "/nothing-here.js", "", nil), 404, true},
		{"CSRF refusal", c.do("GET", "/client-token", "", nil), 403, true},
		{"tenants", c.do("GET", "/auth/tenants", "", map[string]string{"X-CSRF": "1"}), 200, true},
		{"the SPA", c.do("GET", "/", "", nil), 200, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.resp.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", tc.resp.status, tc.wantStatus, tc.resp.body)
			}
			if got := tc.resp.header.Get("Cache-Control"); tc.noStore && got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if got := tc.resp.header.Get("Cross-Origin-Resource-Policy"); got != "same-origin" {
				t.Errorf("Cross-Origin-Resource-Policy = %q, want same-origin", got)
			}
		})
	}
	t.Run("login keys hold keyed hashes", func(t *testing.T) {
		sum := sha256.Sum256([]byte("pat@acme.test"))
		unkeyed := hex.EncodeToString(sum[:12])
		s.needRedisFor(t, "reads the login counters' keys in Redis")
		keys := kvtest.Keys(t, s.redisURL, s.prefix+"rl:login:*")
		if len(keys) == 0 {
			t.Fatal("no login counters in Redis")
		}
		for _, k := range keys {
			if strings.Contains(k, unkeyed) || strings.Contains(k, "pat@") || strings.Contains(k, "127.0.0.1") {
				t.Errorf("key %q names the person or their address", k)
			}
		}
	})
}
