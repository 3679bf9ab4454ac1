package testenv

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// outcome records how Missing ended a test, instead of ending it.
type outcome struct {
	testing.TB
	skipped, failed string
}

func (o *outcome) Helper()                        {}
func (o *outcome) Skip(args ...any)               { o.skipped = fmt.Sprint(args...) }
func (o *outcome) Fatalf(format string, a ...any) { o.failed = fmt.Sprintf(format, a...) }

func TestURL(t *testing.T) {
	tests := []struct {
		name           string
		value, require string
		want           string
		skip, fail     bool
	}{
		{name: "set", value: "redis://127.0.0.1:6379/9", want: "redis://127.0.0.1:6379/9"},
		{name: "set while services are required", value: "redis://x", require: "1", want: "redis://x"},
		{name: "unset skips", skip: true},
		{name: "unset fails when services are required", require: "1", fail: true},
		{name: "only 1 requires services", require: "yes", skip: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("BFF_TEST_SOME_URL", tc.value)
			t.Setenv(RequireServices, tc.require)
			o := &outcome{TB: t}
			if got := URL(o, "BFF_TEST_SOME_URL", "Thing", "thing://example"); got != tc.want {
				t.Errorf("URL = %q, want %q", got, tc.want)
			}
			if (o.skipped != "") != tc.skip || (o.failed != "") != tc.fail {
				t.Fatalf("skipped %q, failed %q; want skip %v, fail %v", o.skipped, o.failed, tc.skip, tc.fail)
			}
			for _, msg := range []string{o.skipped, o.failed} {
				if msg != "" && (!strings.Contains(msg, "BFF_TEST_SOME_URL not set") || !strings.Contains(msg, "thing://example")) {
					t.Errorf("the message %q does not say what is missing and what a value looks like", msg)
				}
			}
			if tc.fail && !strings.Contains(o.failed, RequireServices+"=1") {
				t.Errorf("the failure %q does not say why a missing service fails", o.failed)
			}
		})
	}
}

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { fmt.Fprintf(&b, "line %02d\n", i) })
	}
	wg.Wait()
	if got := b.Writes(); got != 50 {
		t.Errorf("Writes = %d, want 50", got)
	}
	for i := range 50 {
		if !strings.Contains(b.String(), fmt.Sprintf("line %02d\n", i)) {
			t.Errorf("line %02d is missing or torn:\n%s", i, b.String())
		}
	}
}

func TestRepeat(t *testing.T) {
	var calls atomic.Int64
	third := make(chan struct{})
	stop := Repeat(func() {
		if calls.Add(1) == 3 {
			close(third)
		}
	})
	<-third // Repeat calls again and again until stopped
	stop()
	after := calls.Load()
	stop() // a second stop does nothing
	if got := calls.Load(); got != after {
		t.Errorf("f was called %d more times after stop returned", got-after)
	}
}
