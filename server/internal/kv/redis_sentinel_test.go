//go:build linux

package kv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// These tests start their own Redis processes on loopback (Debian's redis-server and
// redis-sentinel), so they need no shared service; BFF_TEST_REDIS_URL only signals that Redis
// tests are wanted on this machine.
const (
	redisServerBin   = "/usr/bin/redis-server"
	redisSentinelBin = "/usr/bin/redis-sentinel"
	sentinelMaster   = "mymaster"
)

// requireRedisBinary returns path when it is an executable, and otherwise skips the test (fails
// it when services are required).
func requireRedisBinary(t *testing.T, path string) string {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("BFF_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is needed and BFF_TEST_REQUIRE_SERVICES=1: %v", path, err)
		}
		t.Skipf("%s not installed: skipping (apt-get install redis-server redis-sentinel)", path)
	}
	return path
}

// freePorts returns n distinct loopback ports that were free a moment ago. All listeners are
// held until every port is chosen, so the n ports differ from each other.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("pick a free port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// startProcess runs bin until the test ends. Its output goes to a file that is printed when the
// test fails. The process is killed at cleanup (also after t.Fatal or a panic), and by the
// kernel if the test binary itself dies first (Pdeathsig), so none outlives the test run.
func startProcess(t *testing.T, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		_ = logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cancel() // kills the process
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			if out, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s output:\n%s", name, tail(string(out), 40))
			}
		}
	})
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startRedisServer starts a throwaway redis-server on port (no persistence) with extra
// arguments, and waits until it answers.
func startRedisServer(t *testing.T, name string, port int, extra ...string) {
	t.Helper()
	bin := requireRedisBinary(t, redisServerBin)
	dir := t.TempDir()
	args := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no",
		// The default diskless-sync delay of 5 s would hold up every full resync.
		"--repl-diskless-sync-delay", "0",
	}, extra...)
	startProcess(t, name, bin, args...)
	c := plainClient(t, loopback(port))
	waitFor(t, 5*time.Second, name+" answering PING", func(ctx context.Context) error {
		return c.Ping(ctx).Err()
	})
}

// plainClient is a direct single-node client for checking a server behind the store's back.
func plainClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitFor polls check every 100ms until it returns nil, failing the test after timeout with
// the last error.
func waitFor(t *testing.T, timeout time.Duration, what string, check func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newStoreAt opens a store on rawURL under a fresh random prefix, closed at cleanup. The
// servers are thrown away with the test, so keys need no cleanup.
func newStoreAt(t *testing.T, rawURL string) *Redis {
	t.Helper()
	r, err := NewRedis(t.Context(), rawURL, "bfftest:"+rand.Text()[:12]+":")
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// sentinelSetup is one master, one replica and three Sentinels on loopback.
type sentinelSetup struct {
	url       string // the redis+sentinel URL for NewRedis
	master    string // the first master's address
	replica   string // the replica's address, the master after a failover
	sentinels []string
}

func startSentinelSetup(t *testing.T) *sentinelSetup {
	t.Helper()
	redisURL(t) // skips unless Redis tests are wanted
	sentinelBin := requireRedisBinary(t, redisSentinelBin)
	requireRedisBinary(t, redisServerBin)

	ports := freePorts(t, 5)
	s := &sentinelSetup{master: loopback(ports[0]), replica: loopback(ports[1])}
	startRedisServer(t, "master", ports[0])
	startRedisServer(t, "replica", ports[1], "--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))
	// Sentinels start only once the replica is in sync, so their first INFO of the master
	// already lists it; the next one would come 10 s later.
	replica := plainClient(t, s.replica)
	waitFor(t, 10*time.Second, "the replica to sync", func(ctx context.Context) error {
		info, err := replica.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return errors.New("master link not up yet")
		}
		return nil
	})

	for i, port := range ports[2:] {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it, so it must be writable
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[3]s 1000\n"+
			"sentinel failover-timeout %[3]s 5000\n", port, dir, sentinelMaster, ports[0])
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("sentinel-%d", i+1)
		startProcess(t, name, sentinelBin, conf)
		addr := loopback(port)
		s.sentinels = append(s.sentinels, addr)
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
		t.Cleanup(func() { _ = sc.Close() })
		// A forced failover needs a Sentinel that knows a healthy replica.
		waitFor(t, 10*time.Second, name+" to see the replica", func(ctx context.Context) error {
			replicas, err := sc.Replicas(ctx, sentinelMaster).Result()
			if err != nil {
				return err
			}
			for _, r := range replicas {
				if net.JoinHostPort(r["ip"], r["port"]) == s.replica && r["flags"] == "slave" {
					return nil
				}
			}
			return fmt.Errorf("replicas known: %v", replicas)
		})
	}
	s.url = "redis+sentinel://" + strings.Join(s.sentinels, ",") + "/" + sentinelMaster
	return s
}

// TestRedisSentinel runs the contract suite through Sentinels, then fails the master over and
// checks that the same store follows the new master by itself.
func TestRedisSentinel(t *testing.T) {
	s := startSentinelSetup(t)
	if d, err := Scheme(s.url); err != nil || d != DeploymentSentinel {
		t.Fatalf("Scheme(%q) = %q, %v; want sentinel", s.url, d, err)
	}
	t.Run("Contract", func(t *testing.T) {
		// A store's first connection asks the Sentinels for the master and dials it within
		// one dial timeout; two dozen stores doing that at once on a loaded CI runner can
		// overrun the 500ms default, which is not what this suite is about. The failover
		// below keeps the defaults.
		contractURL := s.url + "?dial_timeout=2s"
		runContract(t, func(t *testing.T) Store { return newStoreAt(t, contractURL) })
	})
	t.Run("Failover", func(t *testing.T) { testSentinelFailover(t, s) })
}

func testSentinelFailover(t *testing.T, s *sentinelSetup) {
	ctx := t.Context()
	r := newStoreAt(t, s.url)
	mustNoErr(t, r.Set(ctx, "k", []byte("v"), time.Minute))
	mustNoErr(t, r.SAdd(ctx, "set", time.Minute, "a", "b"))
	if n, _, err := r.Incr(ctx, "n", time.Minute); err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v; want 1", n, err)
	}

	// Replication is asynchronous: fail over only once the replica holds the writes, or a
	// lost write would look like a client bug.
	replica := plainClient(t, s.replica)
	keys := []string{r.key("k"), r.key("set"), r.key("n")}
	waitFor(t, 5*time.Second, "the replica to hold the writes", func(ctx context.Context) error {
		n, err := replica.Exists(ctx, keys...).Result()
		if err == nil && n != int64(len(keys)) {
			err = fmt.Errorf("%d of %d keys replicated", n, len(keys))
		}
		return err
	})

	start := time.Now()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0], DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = sc.Close() })
	waitFor(t, 5*time.Second, "SENTINEL FAILOVER to be accepted", func(ctx context.Context) error {
		return sc.Failover(ctx, sentinelMaster).Err()
	})
	// Every Sentinel must name the new master before the store is judged: a client asking a
	// Sentinel that has not yet heard of the failover is sent back to the old master.
	for _, addr := range s.sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
		waitFor(t, 15*time.Second, "Sentinel "+addr+" to name the new master", func(ctx context.Context) error {
			got, err := c.GetMasterAddrByName(ctx, sentinelMaster).Result()
			if err == nil && (len(got) != 2 || net.JoinHostPort(got[0], got[1]) != s.replica) {
				err = fmt.Errorf("master is %v", got)
			}
			return err
		})
		_ = c.Close()
	}
	t.Logf("failover to %s announced by every Sentinel after %v", s.replica, time.Since(start).Round(time.Millisecond))

	// The store must recover on its own: a write through it lands on the new master. Calls may
	// fail meanwhile, but only as ErrUnavailable.
	var failures int
	waitFor(t, 15*time.Second, "a write through the store to reach the new master", func(ctx context.Context) error {
		want := rand.Text()
		if err := r.Set(ctx, "after", []byte(want), time.Minute); err != nil {
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Set during failover: %v, want ErrUnavailable", err)
			}
			failures++
			return err
		}
		got, err := replica.Get(ctx, r.key("after")).Result()
		if err == nil && got != want {
			err = fmt.Errorf("new master holds %q, the store wrote %q (it wrote to the old master)", got, want)
		}
		return err
	})
	t.Logf("store writing to the new master after %v (%d failed writes)", time.Since(start).Round(time.Millisecond), failures)

	// The data written before the failover is still there, and the scripts run on the new
	// master (whose script cache is empty).
	mustGet(t, r, "k", []byte("v"))
	mustMembers(t, r, "set", "a", "b")
	n, ttl, err := r.Incr(ctx, "n", time.Minute)
	if err != nil || n != 2 || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("Incr after failover = %d, %v, %v; want 2 with the old window", n, ttl, err)
	}
	ok, err := r.CompareAndDelete(ctx, "k", []byte("v"))
	if err != nil || !ok {
		t.Fatalf("CompareAndDelete after failover = %v, %v; want true", ok, err)
	}
	mustMissing(t, r, "k")
	if role, err := replica.Do(ctx, "ROLE").Slice(); err != nil || len(role) == 0 || role[0] != "master" {
		t.Fatalf("ROLE of the promoted replica = %v, %v; want master", role, err)
	}
}
