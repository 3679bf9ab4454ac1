//go:build linux

package kv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
	"github.com/basiq-bff/bff/server/internal/testenv"
)

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

// TestRedisSentinel runs the contract suite through Sentinels, then fails the master over and
// checks that the same store follows the new master by itself.
func TestRedisSentinel(t *testing.T) {
	s := kvtest.StartSentinel(t)
	if d, err := Scheme(s.URL); err != nil || d != DeploymentSentinel {
		t.Fatalf("Scheme(%q) = %q, %v; want sentinel", s.URL, d, err)
	}
	t.Run("Contract", func(t *testing.T) {
		// A store's first connection asks the Sentinels for the master and dials it within
		// one dial timeout; two dozen stores doing that at once on a loaded CI runner can
		// overrun the 500ms default, which is not what this suite is about. The failover
		// below keeps the defaults.
		contractURL := s.URL + "?dial_timeout=2s"
		runContract(t, func(t *testing.T) Store { return newStoreAt(t, contractURL) })
	})
	t.Run("Failover", func(t *testing.T) { testSentinelFailover(t, s, s.Failover, false) })
}

// TestRedisSentinelMasterHangs: a master that stops answering is failed over by the
// Sentinels, and the store follows them, failing calls meanwhile only as ErrUnavailable.
func TestRedisSentinelMasterHangs(t *testing.T) {
	s := kvtest.StartSentinel(t)
	testSentinelFailover(t, s, func(tb testing.TB) { s.HangMaster(tb, 10*time.Second) }, true)
}

// switchReader reads "k" through a store in a loop while a failover runs, counting the reads
// and those that failed as ErrUnavailable, and keeping the first read that was neither the
// value "v" nor such a prompt failure.
type switchReader struct {
	reads, unavailable atomic.Int64
	readErr            atomic.Value // the first read that broke those rules
	stop               func()       // ends the loop and waits for it; safe to call twice
}

// startSwitchReader starts reading through r until its stop is called.
func startSwitchReader(ctx context.Context, r Store) *switchReader {
	sr := &switchReader{}
	sr.stop = testenv.Repeat(func() { sr.read(ctx, r) })
	return sr
}

// read makes one read of "k" and counts it.
func (sr *switchReader) read(ctx context.Context, r Store) {
	began := time.Now()
	got, err := r.Get(ctx, "k")
	took := time.Since(began)
	sr.reads.Add(1)
	switch {
	case errors.Is(err, ErrUnavailable) && took < 3*time.Second:
		sr.unavailable.Add(1)
	case err != nil:
		sr.readErr.CompareAndSwap(nil, fmt.Sprintf("Get after %v: %v, want ErrUnavailable within 3s", took, err))
	case string(got) != "v":
		sr.readErr.CompareAndSwap(nil, fmt.Sprintf("Get = %q, want v", got))
	}
}

// testSentinelFailover writes through a store, runs fail (which returns once every Sentinel
// names the new master) while reading through the store, and checks the store moves to the
// new master with its data. outage says the master stops answering, so reads must fail for
// a while.
func testSentinelFailover(t *testing.T, s *kvtest.Sentinel, fail func(testing.TB), outage bool) {
	ctx := t.Context()
	r := newStoreAt(t, s.URL)
	mustNoErr(t, r.Set(ctx, "k", []byte("v"), time.Minute))
	mustNoErr(t, r.SAdd(ctx, "set", time.Minute, "a", "b"))
	if n, _, err := r.Incr(ctx, "n", time.Minute); err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v; want 1", n, err)
	}

	// Reads during the switch either see the data or fail as ErrUnavailable, promptly.
	reader := startSwitchReader(ctx, r)
	defer reader.stop()

	// fail waits for the replica to hold these writes before the master goes.
	start := time.Now()
	fail(t)
	reader.stop()
	if msg := reader.readErr.Load(); msg != nil {
		t.Error(msg)
	}
	if outage && reader.unavailable.Load() == 0 {
		t.Errorf("all %d reads succeeded while the master did not answer", reader.reads.Load())
	}
	t.Logf("%d reads during the switch, %d failed as unavailable", reader.reads.Load(), reader.unavailable.Load())
	newMaster := kvtest.NodeClient(t, s.Master())
	t.Logf("failover to %s announced by every Sentinel after %v", s.Master(), time.Since(start).Round(time.Millisecond))

	// The store must recover on its own: a write through it lands on the new master. Calls may
	// fail meanwhile, but only as ErrUnavailable.
	var failures int
	kvtest.WaitFor(t, 15*time.Second, "a write through the store to reach the new master", func(ctx context.Context) error {
		want := rand.Text()
		if err := r.Set(ctx, "after", []byte(want), time.Minute); err != nil {
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Set during failover: %v, want ErrUnavailable", err)
			}
			failures++
			return err
		}
		got, err := newMaster.Get(ctx, r.key("after")).Result()
		if err == nil && got != want {
			err = fmt.Errorf("new master holds %q, the store wrote %q (it wrote to the old master)", got, want)
		}
		return err
	})
	t.Logf("store writing to the new master after %v (%d failed writes)", time.Since(start).Round(time.Millisecond), failures)

	checkAfterFailover(t, r, newMaster)
}

// checkAfterFailover: the data written before the failover is still there, and the scripts
// run on the new master (whose script cache is empty).
func checkAfterFailover(t *testing.T, r *Redis, newMaster *redis.Client) {
	t.Helper()
	ctx := t.Context()
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
	if role, err := newMaster.Do(ctx, "ROLE").Slice(); err != nil || len(role) == 0 || role[0] != "master" {
		t.Fatalf("ROLE of the promoted replica = %v, %v; want master", role, err)
	}
}
