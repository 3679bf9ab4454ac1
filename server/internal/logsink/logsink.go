// Package logsink is the buffered, non-blocking end of the log pipeline. Log lines are copied
// into a bounded in-memory buffer and one writer goroutine writes them out in batches (at every
// flush interval, or as soon as a batch of FlushBytes is waiting), the way nginx's
// `access_log … buffer= flush=` does, so that a request never waits on a slow log reader.
// When the reader falls behind and the buffer fills, routine lines are dropped first; priority
// lines (audit, security, warnings and errors) have a reserve of their own, and if even that is
// full their loss is counted and reported in a line of its own once the reader catches up. It
// also holds the slog handler that sends each record to its class. It imports only the
// standard library.
package logsink

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Class is a log line's priority when the buffer is full.
type Class int

// Classes.
const (
	// Routine lines (request lines without audit fields, debug and info notices) are the
	// first to go.
	Routine Class = iota
	// Priority lines (audit and security events, warnings, errors) may use a reserve as large
	// as the buffer itself; past that they are dropped, counted and reported.
	Priority
)

func (c Class) String() string {
	if c == Priority {
		return "priority"
	}
	return "routine"
}

// FlushBytes is the batch size that triggers a write before the flush interval is up.
const FlushBytes = 64 << 10

// Options tune a Sink.
type Options struct {
	// Size bounds the routine lines waiting to be written, in bytes; priority lines may use
	// Size more. It is raised to FlushBytes if smaller.
	Size int
	// FlushEvery is the longest a line waits before it is written (100ms if zero).
	FlushEvery time.Duration
	// Dropped, if set, is called with every line the sink drops (for a metric). It runs on
	// the logging goroutine and must not log.
	Dropped func(c Class)
	// Report, if set, is called from the writer goroutine after a write, when lines were
	// dropped since the last report, with the counts per class. It usually logs one error
	// line, which goes through the sink like any other.
	Report func(routine, priority int)
}

// Sink buffers lines for one writer. It is safe for concurrent use.
type Sink struct {
	w io.Writer
	o Options

	mu       sync.Mutex
	buf      []byte // lines waiting; swapped with spare by the writer goroutine
	spare    []byte
	dropped  [2]int // since the last report
	closed   bool
	writeErr error

	kick chan struct{} // a batch is ready: write before the interval is up
	stop chan struct{}
	done chan struct{}
}

// New starts a sink writing to w. Close it to write what is left and stop its goroutine.
func New(w io.Writer, o Options) *Sink {
	o.Size = max(o.Size, FlushBytes)
	if o.FlushEvery <= 0 {
		o.FlushEvery = 100 * time.Millisecond
	}
	s := &Sink{
		w: w, o: o,
		buf:   make([]byte, 0, FlushBytes*2),
		spare: make([]byte, 0, FlushBytes*2),
		kick:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go s.run()
	return s
}

// Writer returns the io.Writer for lines of class c. Each Write must be one whole line (as
// slog handlers write them); it never blocks on the underlying writer and never fails: a line
// that does not fit is dropped and counted.
func (s *Sink) Writer(c Class) io.Writer { return classWriter{s, c} }

type classWriter struct {
	s *Sink
	c Class
}

func (cw classWriter) Write(p []byte) (int, error) {
	cw.s.add(p, cw.c)
	return len(p), nil
}

func (s *Sink) add(p []byte, c Class) {
	limit := s.o.Size
	if c == Priority {
		limit *= 2
	}
	s.mu.Lock()
	if s.closed {
		// After Close the writer goroutine is gone: write through, so that nothing logged
		// during the last moments of shutdown is lost.
		s.mu.Unlock()
		_, _ = s.w.Write(p)
		return
	}
	if len(s.buf)+len(p) > limit {
		s.dropped[c]++
		s.mu.Unlock()
		if s.o.Dropped != nil {
			s.o.Dropped(c)
		}
		return
	}
	s.buf = append(s.buf, p...)
	full := len(s.buf) >= FlushBytes
	s.mu.Unlock()
	if full {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (s *Sink) run() {
	defer close(s.done)
	t := time.NewTicker(s.o.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kick:
		}
		s.flush()
	}
}

// flush writes what is waiting. Only the writer goroutine (or Close, after it has stopped)
// calls it, so one write runs at a time and lines keep their order.
func (s *Sink) flush() {
	s.mu.Lock()
	batch := s.buf
	s.buf = s.spare[:0]
	dropped := s.dropped
	s.dropped = [2]int{}
	s.mu.Unlock()
	if len(batch) > 0 {
		if _, err := s.w.Write(batch); err != nil {
			s.mu.Lock()
			if s.writeErr == nil {
				s.writeErr = err
			}
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	// Keep the larger of the two buffers for the next swap, but never hold on to one that
	// grew far past a batch while the reader was slow.
	if cap(batch) <= 4*s.o.Size {
		s.spare = batch[:0]
	} else {
		s.spare = make([]byte, 0, FlushBytes*2)
	}
	s.mu.Unlock()
	if (dropped[Routine] > 0 || dropped[Priority] > 0) && s.o.Report != nil {
		s.o.Report(dropped[Routine], dropped[Priority])
	}
}

// Close writes every waiting line, stops the writer goroutine and returns the first error the
// underlying writer returned, if any. Lines logged after Close are written directly. It is
// safe to call more than once.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		err := s.writeErr
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	// The report of drops found by this flush goes into the buffer; the second flush writes
	// it.
	s.flush()
	s.flush()
	s.mu.Lock()
	s.closed = true
	err := s.writeErr
	s.mu.Unlock()
	return err
}

// Handler sends each record to one of two handlers by class: priority for warnings and
// errors and for records carrying a true "audit", "alert" or "security" attribute, routine for
// the rest. Both handlers should format alike and write to the same Sink's class writers.
func Handler(routine, priority slog.Handler) slog.Handler {
	return classHandler{routine: routine, priority: priority}
}

type classHandler struct {
	routine, priority slog.Handler
	// marked is set when WithAttrs added a priority marker: every record is then priority.
	marked bool
}

func (h classHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.routine.Enabled(ctx, l)
}

func (h classHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.marked || Classify(r) == Priority {
		return h.priority.Handle(ctx, r)
	}
	return h.routine.Handle(ctx, r)
}

func (h classHandler) WithAttrs(as []slog.Attr) slog.Handler {
	marked := h.marked
	for _, a := range as {
		marked = marked || isMarker(a)
	}
	return classHandler{routine: h.routine.WithAttrs(as), priority: h.priority.WithAttrs(as), marked: marked}
}

func (h classHandler) WithGroup(name string) slog.Handler {
	return classHandler{routine: h.routine.WithGroup(name), priority: h.priority.WithGroup(name), marked: h.marked}
}

// Classify returns the class of r.
func Classify(r slog.Record) Class {
	if r.Level >= slog.LevelWarn {
		return Priority
	}
	c := Routine
	r.Attrs(func(a slog.Attr) bool {
		if isMarker(a) {
			c = Priority
			return false
		}
		return true
	})
	return c
}

func isMarker(a slog.Attr) bool {
	switch a.Key {
	case "audit", "alert", "security":
		v := a.Value.Resolve()
		return v.Kind() == slog.KindBool && v.Bool()
	}
	return false
}
