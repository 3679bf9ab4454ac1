package main

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopSignal sends this process SIGTERM, as Kubernetes does. Only run's signal handler is
// registered while a replica runs (tests in this package run one at a time), so it is the
// one that sees it.
func stopSignal(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// waitDone waits for the replica to stop and returns its result; the test judges it, so the
// cleanup is handed nil.
func waitDone(t *testing.T, r *replica, within time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- nil
		return err
	case <-time.After(within):
		t.Fatalf("the server did not stop within %v\n%s", within, r.logs)
		return nil
	}
}

func readyStatus(t *testing.T, admin string) int {
	t.Helper()
	resp, err := http.Get(admin + "/readyz")
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestGracefulDrain: on SIGTERM /readyz fails at once while every request sent during the
// drain, and one still running when the listeners close, succeeds; then the process ends
// cleanly.
func TestGracefulDrain(t *testing.T) {
	const drainFor = 3 * time.Second
	s := newStack(t, stackOptions{extra: "shutdown:\n  drain: 3s\n  timeout: 10s\n"})
	s.addUser("acme", "ann@example.com", "correct horse battery")
	s.addUser("acme", "bob@example.com", "correct horse battery")
	r := s.start()
	ann := newClient(t, r.url)
	ann.mustLogin("acme", "ann@example.com", "correct horse battery")
	ann.mustToken()
	bob := newClient(t, r.url)
	bob.mustLogin("acme", "bob@example.com", "correct horse battery")
	if got := readyStatus(t, r.admin); got != http.StatusOK {
		t.Fatalf("readyz before the signal: %d", got)
	}

	start := time.Now()
	stopSignal(t)
	waitNotReady(t, r)

	// Bob's first token needs a Basiq user and a mint, each slowed down: the request is
	// still running when the drain ends and the listeners close.
	var wg sync.WaitGroup
	var bobStatus int
	var bobErr error
	var bobStarted, bobDone time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(drainFor - time.Second - time.Since(start))
		s.emu.SetLatency(700 * time.Millisecond)
		req, _ := http.NewRequest("GET", r.url+"/client-token", nil)
		req.Header.Set("X-CSRF", "1")
		bobStarted = time.Since(start)
		resp, err := bob.http.Do(req)
		bobDone = time.Since(start)
		if err != nil {
			bobErr = err
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		bobStatus = resp.StatusCode
	}()

	// Traffic through the drain, from several clients at once, as a load balancer that has
	// not yet seen the readiness change would send it.
	var mu sync.Mutex
	sent, failed := 0, []string{}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < drainFor-200*time.Millisecond {
				req, _ := http.NewRequest("GET", r.url+"/client-token", nil)
				req.Header.Set("X-CSRF", "1")
				resp, err := ann.http.Do(req)
				mu.Lock()
				sent++
				switch {
				case err != nil:
					failed = append(failed, err.Error())
				case resp.StatusCode != http.StatusOK:
					failed = append(failed, resp.Status)
				}
				mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 || sent < 20 {
		t.Errorf("during the drain %d of %d requests failed: %v", len(failed), sent, failed)
	}
	if bobErr != nil || bobStatus != http.StatusOK {
		t.Errorf("request in flight at the end of the drain: status %d, %v", bobStatus, bobErr)
	}
	if bobStarted >= drainFor || bobDone <= drainFor {
		t.Errorf("the slow request ran from %v to %v: it did not span the end of the %v drain", bobStarted, bobDone, drainFor)
	}
	if err := waitDone(t, r, 15*time.Second); err != nil {
		t.Fatalf("after the drain the server returned %v, want nil (exit 0)", err)
	}
	if took := time.Since(start); took < drainFor {
		t.Errorf("stopped after %v, before the %v drain ended", took, drainFor)
	}
	if _, err := http.Get(r.url + "/client-token"); err == nil {
		t.Error("the public listener still accepts after shutdown")
	}
	t.Logf("%d requests served during a %v drain", sent, drainFor)
}

// TestSecondSignalStopsAtOnce: a second SIGTERM during a long drain ends the process at once.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	s := newStack(t, stackOptions{extra: "shutdown:\n  drain: 1m\n"})
	r := s.start()
	stopSignal(t)
	waitNotReady(t, r)
	start := time.Now()
	stopSignal(t)
	err := waitDone(t, r, 3*time.Second)
	if !errors.Is(err, errForced) {
		t.Errorf("after a second signal the server returned %v, want errForced", err)
	}
	t.Logf("stopped %v after the second signal", time.Since(start))
}

// waitNotReady waits, at most half a second, for r's /readyz to answer 503 after a signal.
func waitNotReady(t *testing.T, r *replica) {
	t.Helper()
	deadline := time.Now().Add(500 * time.Millisecond)
	for readyStatus(t, r.admin) != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still 200 half a second after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
