package logsink

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/testenv"
)

// gate is a writer that blocks every Write until released: a log reader that has stopped.
type gate struct {
	testenv.Buffer
	open    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func newGate() *gate {
	return &gate{open: make(chan struct{}), entered: make(chan struct{})}
}

func (g *gate) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	return g.Buffer.Write(p)
}

func line(i int, n int) []byte {
	s := fmt.Sprintf("line %06d ", i)
	return []byte(s + strings.Repeat("x", max(0, n-len(s)-1)) + "\n")
}

func TestSinkWritesInBatches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines int
		every time.Duration
		// wantBatched: fewer writes than lines reached the writer.
		wantBatched bool
	}{
		{name: "a few lines wait for the interval", lines: 10, every: 20 * time.Millisecond, wantBatched: true},
		{name: "a full batch is written before the interval", lines: 2000, every: time.Hour, wantBatched: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out testenv.Buffer
			s := New(&out, Options{Size: 1 << 20, FlushEvery: tc.every})
			w := s.Writer(Routine)
			var want strings.Builder
			for i := range tc.lines {
				l := line(i, 100)
				want.Write(l)
				if _, err := w.Write(l); err != nil {
					t.Fatal(err)
				}
			}
			if tc.every == time.Hour {
				// Past FlushBytes the writer goroutine is kicked; wait for it.
				deadline := time.Now().Add(5 * time.Second)
				for out.Writes() == 0 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if out.Writes() == 0 {
					t.Fatal("nothing was written although more than a batch was waiting")
				}
			} else {
				time.Sleep(10 * tc.every)
				if got := out.String(); got != want.String() {
					t.Fatalf("after the interval: got %d bytes, want %d", len(got), want.Len())
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != want.String() {
				t.Fatalf("after Close: got %d bytes, want %d (order or content differs)", len(got), want.Len())
			}
			if tc.wantBatched && out.Writes() >= tc.lines {
				t.Errorf("%d writes for %d lines: not batched", out.Writes(), tc.lines)
			}
		})
	}
}

func TestSinkNeverBlocksAndDropsRoutineFirst(t *testing.T) {
	g := newGate()
	var dropped [2]atomic.Int64
	var reports [][2]int
	var rmu sync.Mutex
	var s *Sink
	s = New(g, Options{Size: FlushBytes, FlushEvery: time.Millisecond,
		Dropped: func(c Class) { dropped[c].Add(1) },
		Report: func(r, p int) {
			rmu.Lock()
			reports = append(reports, [2]int{r, p})
			rmu.Unlock()
			s.Writer(Priority).Write([]byte(fmt.Sprintf("dropped routine=%d priority=%d\n", r, p)))
		},
	})
	routine, priority := s.Writer(Routine), s.Writer(Priority)
	// The first batch goes to the writer, which hangs: every later line waits in the buffer.
	routine.Write(line(0, 100))
	<-g.entered

	start := time.Now()
	const n = 5000 // 500 KB of each class: far more than the buffer holds
	for i := 1; i <= n; i++ {
		routine.Write(line(i, 100))
		priority.Write(line(-i, 100))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("logging %d lines into a stalled sink took %s: it must not wait on the writer", 2*n, took)
	}
	r, p := dropped[Routine].Load(), dropped[Priority].Load()
	t.Logf("while stalled: dropped %d routine and %d priority lines", r, p)
	if r == 0 || p == 0 {
		t.Fatalf("dropped routine=%d priority=%d: both classes should overflow a %d-byte buffer", r, p, FlushBytes)
	}
	// Priority lines have a reserve as large as the buffer: more of them survive.
	if keptP, keptR := n-p, n-r; keptP <= keptR {
		t.Errorf("kept %d priority lines and %d routine ones: priority should keep more", keptP, keptR)
	}

	close(g.open)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rmu.Lock()
	defer rmu.Unlock()
	var sumR, sumP int
	for _, rep := range reports {
		sumR += rep[0]
		sumP += rep[1]
	}
	if int64(sumR) != r || int64(sumP) != p {
		t.Errorf("reported routine=%d priority=%d, counted %d and %d", sumR, sumP, r, p)
	}
	if out := g.String(); !strings.Contains(out, fmt.Sprintf("dropped routine=%d priority=%d", r, p)) {
		t.Errorf("the drop report is not in the output")
	}
}

func TestSinkCloseFlushesAndWritesThrough(t *testing.T) {
	var out testenv.Buffer
	s := New(&out, Options{FlushEvery: time.Hour})
	s.Writer(Routine).Write([]byte("before\n"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s.Writer(Priority).Write([]byte("after\n"))
	if got := out.String(); got != "before\nafter\n" {
		t.Errorf("got %q", got)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name  string
		level slog.Level
		attrs []slog.Attr
		want  Class
	}{
		{name: "info request line", level: slog.LevelInfo, attrs: []slog.Attr{slog.String("route", "/")}, want: Routine},
		{name: "debug", level: slog.LevelDebug, want: Routine},
		{name: "warning", level: slog.LevelWarn, want: Priority},
		{name: "error", level: slog.LevelError, want: Priority},
		{name: "audit", level: slog.LevelInfo, attrs: []slog.Attr{slog.String("tenant", "acme"), slog.Bool("audit", true)}, want: Priority},
		{name: "security", level: slog.LevelInfo, attrs: []slog.Attr{slog.Bool("security", true)}, want: Priority},
		{name: "alert", level: slog.LevelInfo, attrs: []slog.Attr{slog.Bool("alert", true)}, want: Priority},
		{name: "audit false", level: slog.LevelInfo, attrs: []slog.Attr{slog.Bool("audit", false)}, want: Routine},
		{name: "audit as a string", level: slog.LevelInfo, attrs: []slog.Attr{slog.String("audit", "true")}, want: Routine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := slog.NewRecord(time.Now(), tc.level, "m", 0)
			r.AddAttrs(tc.attrs...)
			if got := Classify(r); got != tc.want {
				t.Errorf("Classify = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestHandlerRoutesByClass(t *testing.T) {
	var routine, priority bytes.Buffer
	h := Handler(slog.NewJSONHandler(&routine, nil), slog.NewJSONHandler(&priority, nil))
	log := slog.New(h)
	log.Info("request", "route", "/")
	log.Info("client token served", "audit", true)
	log.Warn("careful")
	log.With("security", true).Info("login refused")
	log.WithGroup("g").Info("grouped")
	log.DebugContext(context.Background(), "not enabled")
	if got := strings.Count(routine.String(), "\n"); got != 2 {
		t.Errorf("routine lines = %d, want 2:\n%s", got, routine.String())
	}
	if got := strings.Count(priority.String(), "\n"); got != 3 {
		t.Errorf("priority lines = %d, want 3:\n%s", got, priority.String())
	}
}
