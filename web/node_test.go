package web

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestSPAUnitTests runs the SPA's own unit tests (test/*.test.mjs) with Node's test runner, so
// that `go test ./...` covers the JavaScript modules too.
func TestSPAUnitTests(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("BFF_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("node is not on PATH, and BFF_TEST_REQUIRE_SERVICES=1: %v", err)
		}
		t.Skip("node is not on PATH; install Node.js 20+ to run the SPA unit tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The working directory of a package's test is the package directory: this one.
	cmd := exec.CommandContext(ctx, node, "--test", "test/")
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("node --test test/ did not finish within 2 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("node --test test/: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}
