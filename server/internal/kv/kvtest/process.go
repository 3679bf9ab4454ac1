//go:build linux

package kvtest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/testenv"
)

// The throwaway Redis deployments run Debian's binaries (apt-get install redis-server
// redis-sentinel), so they need no shared service; BFF_TEST_REDIS_URL only signals that Redis
// tests are wanted on this machine.
const (
	redisServerBin   = "/usr/bin/redis-server"
	redisSentinelBin = "/usr/bin/redis-sentinel"
	redisCLIBin      = "/usr/bin/redis-cli"
)

// requireBinary returns path when it is an executable, and otherwise skips the test (fails it
// when services are required).
func requireBinary(tb testing.TB, path string) string {
	tb.Helper()
	if _, err := exec.LookPath(path); err != nil {
		testenv.Missing(tb, "%s not installed (apt-get install redis-server redis-sentinel): %v", path, err)
	}
	return path
}

// freePorts returns n distinct loopback ports that were free a moment ago. All listeners are
// held until every port is chosen, so the n ports differ from each other.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("pick a free port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// startProcess runs bin until the test ends. Its output goes to a file that is printed when the
// test fails. The process is killed at cleanup (also after a failure or a panic), and by the
// kernel if the test binary itself dies first (Pdeathsig), so none outlives the test run.
func startProcess(tb testing.TB, name, bin string, args ...string) {
	tb.Helper()
	logPath := filepath.Join(tb.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
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
		tb.Fatalf("start %s: %v", name, err)
	}
	tb.Cleanup(func() {
		cancel() // kills the process
		_ = cmd.Wait()
		_ = logFile.Close()
		if tb.Failed() {
			if out, err := os.ReadFile(logPath); err == nil {
				tb.Logf("%s output:\n%s", name, tail(string(out), 40))
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
func startRedisServer(tb testing.TB, name string, port int, extra ...string) {
	tb.Helper()
	bin := requireBinary(tb, redisServerBin)
	args := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", tb.TempDir(),
		"--save", "", "--appendonly", "no",
		// The default diskless-sync delay of 5 s would hold up every full resync.
		"--repl-diskless-sync-delay", "0",
	}, extra...)
	startProcess(tb, name, bin, args...)
	c := NodeClient(tb, loopback(port))
	WaitFor(tb, 5*time.Second, name+" answering PING", func(ctx context.Context) error {
		return c.Ping(ctx).Err()
	})
}
