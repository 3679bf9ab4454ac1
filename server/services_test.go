package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/basiq-bff/bff/server/internal/testenv"
)

// The tests of this package run with whatever services they are given. With none, a stack runs
// one replica on SQLite and the in-process store, so the single-replica HTTP contract (CSRF,
// errors, limits, consent, reload, OIDC, the abuse table, the OpenAPI check...) runs on every
// `go test`. What needs more says so through skipFor, and TestMain prints one line saying what
// skipped and why. With BFF_TEST_REQUIRE_SERVICES=1 (CI) a missing service is a failure instead.

// Why a test skips; the summary groups skipped tests by these.
const (
	skipNoRedis    = "no shared Redis (set BFF_TEST_REDIS_URL)"
	skipNoChromium = "no Chromium (set BFF_TEST_CHROMIUM)"
	skipNoProc     = "no /proc"
	skipShort      = "-short"
	skipNoLoad     = "a measuring tool (set BFF_LOAD=1)"
	// skipAllSubtests: each subtest said why it skipped.
	skipAllSubtests = "every subtest skipped"
)

// haveRedis reports whether stacks use a real Redis. When services are required it is true
// even without BFF_TEST_REDIS_URL, so that kvtest fails the test.
func haveRedis() bool { return os.Getenv("BFF_TEST_REDIS_URL") != "" || testenv.Required() }

// havePostgres is haveRedis for Postgres.
func havePostgres() bool { return os.Getenv("BFF_TEST_DATABASE_URL") != "" || testenv.Required() }

// needRedis skips t unless the tests have a real Redis (fails it when services are required):
// for tests of several replicas sharing one Redis, or of Redis deployments themselves.
func needRedis(t testing.TB, why string) {
	t.Helper()
	if !haveRedis() {
		skipFor(t, skipNoRedis, why)
	}
}

// skipLog gathers the skipped top-level tests by reason for TestMain's summary line. It is the
// one piece of state shared by the package's tests, and only they write it.
type skipLog struct {
	mu    sync.Mutex
	tests map[string][]string // reason -> top-level test names
}

var skipped = &skipLog{tests: map[string][]string{}}

// skipFor records that t skips for reason, then skips it with the detail.
func skipFor(t testing.TB, reason, detail string) {
	t.Helper()
	skipped.mu.Lock()
	if name := t.Name(); !slices.Contains(skipped.tests[reason], name) {
		skipped.tests[reason] = append(skipped.tests[reason], name)
	}
	skipped.mu.Unlock()
	t.Skipf("%s: %s", reason, detail)
}

// summary is one line: how many tests and subtests skipped, grouped by reason, with names.
func (l *skipLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tests) == 0 {
		return "server tests: nothing skipped"
	}
	reasons := make([]string, 0, len(l.tests))
	tests, subs := 0, 0
	for r, names := range l.tests {
		slices.Sort(names)
		for _, n := range names {
			if strings.Contains(n, "/") {
				subs++
			} else {
				tests++
			}
		}
		reasons = append(reasons, fmt.Sprintf("%s: %s", r, strings.Join(names, ", ")))
	}
	slices.Sort(reasons)
	return fmt.Sprintf("server tests skipped: %d top-level, %d subtests; %s", tests, subs, strings.Join(reasons, "; "))
}

// TestMain prints the summary after the tests. `go test ./...` shows a passing package's
// output only with -v, so the line is also appended to the file named by
// BFF_TEST_SKIP_SUMMARY, if set (CI prints it).
func TestMain(m *testing.M) {
	code := m.Run()
	line := skipped.summary()
	fmt.Println(line)
	if path := os.Getenv("BFF_TEST_SKIP_SUMMARY"); path != "" {
		if err := appendLine(path, line); err != nil {
			fmt.Fprintf(os.Stderr, "BFF_TEST_SKIP_SUMMARY: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// subtests runs named subtests and, when every one of them skipped, skips the parent too, so
// that a table whose every row needs a missing service reports SKIP rather than PASS. Call
// done after the last run; subtests must not be parallel.
type subtests struct {
	t            *testing.T
	ran, skipped int
}

func newSubtests(t *testing.T) *subtests { return &subtests{t: t} }

func (s *subtests) run(name string, f func(t *testing.T)) bool {
	s.t.Helper()
	s.ran++
	return s.t.Run(name, func(t *testing.T) {
		defer func() {
			if t.Skipped() {
				s.skipped++
			}
		}()
		f(t)
	})
}

// done skips the parent if all of its subtests skipped.
func (s *subtests) done() {
	s.t.Helper()
	if s.ran > 0 && s.skipped == s.ran {
		skipFor(s.t, skipAllSubtests, fmt.Sprintf("all %d skipped", s.ran))
	}
}
