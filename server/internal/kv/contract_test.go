package kv

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runContract checks that a Store behaves as the port documents. newStore must return a fresh,
// empty store each call, isolated from every other store it returned; the store is closed at
// cleanup. TTL cases use real short sleeps so the same suite fits stores whose clock cannot be
// injected (Redis).
func runContract(t *testing.T, newStore func(t *testing.T) Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"GetMissing", testGetMissing},
		{"SetGet", testSetGet},
		{"BinaryValues", testBinaryValues},
		{"ValuesAreCopied", testValuesAreCopied},
		{"SetTTL", testSetTTL},
		{"SetNX", testSetNX},
		{"SetNXRace", testSetNXRace},
		{"SetXX", testSetXX},
		{"GetDel", testGetDel},
		{"GetDelRace", testGetDelRace},
		{"Delete", testDelete},
		{"CompareAndDelete", testCompareAndDelete},
		{"CompareAndExpire", testCompareAndExpire},
		{"IncrWindow", testIncrWindow},
		{"IncrBy", testIncrBy},
		{"IncrConcurrent", testIncrConcurrent},
		{"InvalidTTL", testInvalidTTL},
		{"WrongTypeIsUnavailable", testWrongType},
		{"Sets", testSets},
		{"SetTTLExtended", testSetTTLExtended},
		{"PublishSubscribe", testPublishSubscribe},
		{"SubscribeClosesOnCancel", testSubscribeClosesOnCancel},
		{"Ping", func(t *testing.T, s Store) { mustNoErr(t, s.Ping(t.Context())) }},
		{"CanceledContext", testCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}

	t.Run("PrefixIsolation", func(t *testing.T) {
		t.Parallel()
		testIsolation(t, newStore(t), newStore(t))
	})
	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		testClosed(t, newStore(t))
	})
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func mustGet(t *testing.T, s Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func mustMissing(t *testing.T, s Store, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

func mustMembers(t *testing.T, s Store, key string, want ...string) {
	t.Helper()
	got, err := s.SMembers(t.Context(), key)
	mustNoErr(t, err)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("SMembers(%q) = %q, want %q", key, got, want)
	}
}

// recv waits for one message on ch.
func recv(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed before a message arrived")
		}
		return m
	case <-time.After(2 * time.Second):
		t.Fatal("no message within 2s")
	}
	return nil
}

// waitClosed waits for ch to be closed, draining anything still buffered.
func waitClosed(t *testing.T, ch <-chan []byte) {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("subscription channel not closed within 2s")
		}
	}
}

// race runs f in n goroutines released at the same moment.
func race(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func testGetMissing(t *testing.T, s Store) {
	ctx := t.Context()
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get missing: err = %v, want ErrNotFound only", err)
	}
	if _, err := s.GetDel(ctx, "missing"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("GetDel missing: err = %v, want ErrNotFound only", err)
	}
}

func testSetGet(t *testing.T, s Store) {
	ctx := t.Context()
	mustNoErr(t, s.Set(ctx, "k", []byte("v1"), time.Minute))
	mustGet(t, s, "k", []byte("v1"))
	mustNoErr(t, s.Set(ctx, "k", []byte("v2"), time.Minute))
	mustGet(t, s, "k", []byte("v2"))
}

func testBinaryValues(t *testing.T, s Store) {
	ctx := t.Context()
	values := []struct {
		name string
		val  []byte
	}{
		{"empty", []byte{}},
		{"nul and high bytes", []byte{0, 1, 0xfe, 0xff, 0}},
		{"invalid utf8", []byte{0xc3, 0x28, 0xa0, 0xa1}},
		{"large", bytes.Repeat([]byte{0xab, 0x00}, 64<<10)},
	}
	for _, v := range values {
		t.Run(v.name, func(t *testing.T) {
			key := "bin:" + v.name
			mustNoErr(t, s.Set(ctx, key, v.val, time.Minute))
			mustGet(t, s, key, v.val)
			got, err := s.GetDel(ctx, key)
			mustNoErr(t, err)
			if !bytes.Equal(got, v.val) {
				t.Fatalf("GetDel = %x, want %x", got, v.val)
			}
		})
	}
}

func testValuesAreCopied(t *testing.T, s Store) {
	ctx := t.Context()
	in := []byte("original")
	mustNoErr(t, s.Set(ctx, "k", in, time.Minute))
	copy(in, "XXXXXXXX")
	out, err := s.Get(ctx, "k")
	mustNoErr(t, err)
	if string(out) != "original" {
		t.Fatalf("value changed by mutating the caller's slice: %q", out)
	}
	copy(out, "YYYYYYYY")
	mustGet(t, s, "k", []byte("original"))
}

func testSetTTL(t *testing.T, s Store) {
	ctx := t.Context()
	mustNoErr(t, s.Set(ctx, "short", []byte("v"), 50*time.Millisecond))
	mustNoErr(t, s.Set(ctx, "forever", []byte("v"), 0))
	mustNoErr(t, s.Set(ctx, "replaced", []byte("v"), 50*time.Millisecond))
	mustNoErr(t, s.Set(ctx, "replaced", []byte("w"), 0)) // a new Set drops the old expiry
	mustGet(t, s, "short", []byte("v"))
	time.Sleep(200 * time.Millisecond)
	mustMissing(t, s, "short")
	mustGet(t, s, "forever", []byte("v"))
	mustGet(t, s, "replaced", []byte("w"))
}

func testSetXX(t *testing.T, s Store) {
	ctx := t.Context()
	ok, err := s.SetXX(ctx, "sess", []byte("a"), time.Minute)
	mustNoErr(t, err)
	if ok {
		t.Fatal("SetXX created a missing key")
	}
	mustMissing(t, s, "sess")
	mustNoErr(t, s.Set(ctx, "sess", []byte("a"), time.Minute))
	ok, err = s.SetXX(ctx, "sess", []byte("b"), 300*time.Millisecond)
	mustNoErr(t, err)
	if !ok {
		t.Fatal("SetXX did not replace an existing key")
	}
	mustGet(t, s, "sess", []byte("b"))
	time.Sleep(450 * time.Millisecond) // the new TTL applies
	mustMissing(t, s, "sess")
	mustNoErr(t, s.Set(ctx, "sess", []byte("c"), time.Minute))
	mustNoErr(t, s.Delete(ctx, "sess"))
	ok, err = s.SetXX(ctx, "sess", []byte("d"), time.Minute)
	mustNoErr(t, err)
	if ok {
		t.Fatal("SetXX recreated a deleted key")
	}
	mustMissing(t, s, "sess")
}

func testSetNX(t *testing.T, s Store) {
	ctx := t.Context()
	ok, err := s.SetNX(ctx, "lock", []byte("a"), 300*time.Millisecond)
	mustNoErr(t, err)
	if !ok {
		t.Fatal("first SetNX did not set")
	}
	ok, err = s.SetNX(ctx, "lock", []byte("b"), time.Minute)
	mustNoErr(t, err)
	if ok {
		t.Fatal("second SetNX set an existing key")
	}
	mustGet(t, s, "lock", []byte("a"))
	time.Sleep(450 * time.Millisecond)
	ok, err = s.SetNX(ctx, "lock", []byte("c"), time.Minute)
	mustNoErr(t, err)
	if !ok {
		t.Fatal("SetNX after expiry did not set")
	}
	mustGet(t, s, "lock", []byte("c"))
}

func testSetNXRace(t *testing.T, s Store) {
	ctx := t.Context()
	var wins atomic.Int32
	var winner atomic.Value
	var failures atomic.Int32
	race(50, func(i int) {
		v := []byte("owner-" + strconv.Itoa(i))
		ok, err := s.SetNX(ctx, "race", v, time.Minute)
		if err != nil {
			failures.Add(1)
			return
		}
		if ok {
			wins.Add(1)
			winner.Store(v)
		}
	})
	if failures.Load() != 0 {
		t.Fatalf("%d SetNX calls failed", failures.Load())
	}
	if wins.Load() != 1 {
		t.Fatalf("%d SetNX winners, want exactly 1", wins.Load())
	}
	mustGet(t, s, "race", winner.Load().([]byte))
}

func testGetDel(t *testing.T, s Store) {
	ctx := t.Context()
	mustNoErr(t, s.Set(ctx, "state", []byte("once"), time.Minute))
	got, err := s.GetDel(ctx, "state")
	mustNoErr(t, err)
	if string(got) != "once" {
		t.Fatalf("GetDel = %q", got)
	}
	if _, err := s.GetDel(ctx, "state"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second GetDel: err = %v, want ErrNotFound", err)
	}
	mustMissing(t, s, "state")

	mustNoErr(t, s.Set(ctx, "expiring", []byte("v"), 50*time.Millisecond))
	time.Sleep(200 * time.Millisecond)
	if _, err := s.GetDel(ctx, "expiring"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetDel after expiry: err = %v, want ErrNotFound", err)
	}
}

func testGetDelRace(t *testing.T, s Store) {
	ctx := t.Context()
	mustNoErr(t, s.Set(ctx, "single-use", []byte("secret"), time.Minute))
	var seen, notFound, failures atomic.Int32
	race(50, func(int) {
		v, err := s.GetDel(ctx, "single-use")
		switch {
		case err == nil && string(v) == "secret":
			seen.Add(1)
		case errors.Is(err, ErrNotFound):
			notFound.Add(1)
		default:
			failures.Add(1)
		}
	})
	if seen.Load() != 1 || notFound.Load() != 49 || failures.Load() != 0 {
		t.Fatalf("seen=%d notFound=%d failures=%d, want 1/49/0", seen.Load(), notFound.Load(), failures.Load())
	}
}

func testDelete(t *testing.T, s Store) {
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		mustNoErr(t, s.Set(ctx, k, []byte(k), time.Minute))
	}
	mustNoErr(t, s.SAdd(ctx, "set", time.Minute, "m"))
	mustNoErr(t, s.Delete(ctx))
	mustNoErr(t, s.Delete(ctx, "a"))
	mustMissing(t, s, "a")
	mustNoErr(t, s.Delete(ctx, "b", "missing", "set"))
	mustMissing(t, s, "b")
	mustMembers(t, s, "set")
	mustGet(t, s, "c", []byte("c"))
}

func testCompareAndDelete(t *testing.T, s Store) {
	ctx := t.Context()
	mustNoErr(t, s.Set(ctx, "lock", []byte("owner-1"), time.Minute))
	tests := []struct {
		name    string
		key     string
		value   string
		want    bool
		present bool // whether "lock" still exists afterwards
	}{
		{"wrong owner", "lock", "owner-2", false, true},
		{"prefix of owner", "lock", "owner-", false, true},
		{"missing key", "other", "owner-1", false, true},
		{"right owner", "lock", "owner-1", true, false},
		{"already released", "lock", "owner-1", false, false},
	}
	for _, tc := range tests {
		ok, err := s.CompareAndDelete(ctx, tc.key, []byte(tc.value))
		mustNoErr(t, err)
		if ok != tc.want {
			t.Fatalf("%s: CompareAndDelete = %v, want %v", tc.name, ok, tc.want)
		}
		_, err = s.Get(ctx, "lock")
		if present := err == nil; present != tc.present {
			t.Fatalf("%s: lock present = %v, want %v (err %v)", tc.name, present, tc.present, err)
		}
	}
}

func testCompareAndExpire(t *testing.T, s Store) {
	ctx := t.Context()
	mustNoErr(t, s.Set(ctx, "mine", []byte("owner-1"), 500*time.Millisecond))
	mustNoErr(t, s.Set(ctx, "theirs", []byte("owner-2"), 500*time.Millisecond))

	ok, err := s.CompareAndExpire(ctx, "mine", []byte("owner-1"), time.Minute)
	mustNoErr(t, err)
	if !ok {
		t.Fatal("CompareAndExpire by the owner did not renew")
	}
	ok, err = s.CompareAndExpire(ctx, "theirs", []byte("owner-1"), time.Minute)
	mustNoErr(t, err)
	if ok {
		t.Fatal("CompareAndExpire by another owner renewed")
	}
	ok, err = s.CompareAndExpire(ctx, "missing", []byte("owner-1"), time.Minute)
	mustNoErr(t, err)
	if ok {
		t.Fatal("CompareAndExpire renewed a missing key")
	}

	time.Sleep(700 * time.Millisecond)
	mustGet(t, s, "mine", []byte("owner-1"))
	mustMissing(t, s, "theirs")

	// A renewal can also shorten the lease.
	ok, err = s.CompareAndExpire(ctx, "mine", []byte("owner-1"), 50*time.Millisecond)
	mustNoErr(t, err)
	if !ok {
		t.Fatal("CompareAndExpire to a short lease failed")
	}
	time.Sleep(200 * time.Millisecond)
	mustMissing(t, s, "mine")
}

func testIncrWindow(t *testing.T, s Store) {
	ctx := t.Context()
	const window = time.Second
	n, ttl, err := s.Incr(ctx, "rl", window)
	mustNoErr(t, err)
	if n != 1 || ttl <= 0 || ttl > window {
		t.Fatalf("first Incr = %d, %v; want 1 and 0 < ttl <= %v", n, ttl, window)
	}
	time.Sleep(300 * time.Millisecond)
	n, ttl2, err := s.Incr(ctx, "rl", window)
	mustNoErr(t, err)
	// The window is fixed: a later hit must not reset the TTL to the full window.
	if n != 2 || ttl2 <= 0 || ttl2 > window-200*time.Millisecond {
		t.Fatalf("second Incr = %d, %v; want 2 and a TTL that was not extended", n, ttl2)
	}
	mustGet(t, s, "rl", []byte("2"))
	time.Sleep(ttl2 + 150*time.Millisecond)
	n, ttl3, err := s.Incr(ctx, "rl", window)
	mustNoErr(t, err)
	if n != 1 || ttl3 <= window-200*time.Millisecond {
		t.Fatalf("Incr after the window = %d, %v; want a fresh window at 1", n, ttl3)
	}
}

func testIncrBy(t *testing.T, s Store) {
	ctx := t.Context()
	n, ttl, err := s.IncrBy(ctx, "batch", 7, time.Minute)
	mustNoErr(t, err)
	if n != 7 || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("first IncrBy = %d, %v; want 7 with the window's TTL", n, ttl)
	}
	n, ttl2, err := s.IncrBy(ctx, "batch", 5, time.Hour)
	mustNoErr(t, err)
	if n != 12 || ttl2 > time.Minute {
		t.Fatalf("second IncrBy = %d, %v; want 12 and the first window kept", n, ttl2)
	}
	if n, _, err := s.Incr(ctx, "batch", time.Minute); err != nil || n != 13 {
		t.Fatalf("Incr after IncrBy = %d, %v; want 13", n, err)
	}
	if _, _, err := s.IncrBy(ctx, "batch", 0, time.Minute); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("IncrBy 0 = %v; want a caller error that is not ErrUnavailable", err)
	}
}

func testIncrConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	counts := make([]int64, 50)
	var failures atomic.Int32
	race(50, func(i int) {
		n, _, err := s.Incr(ctx, "ctr", time.Minute)
		if err != nil {
			failures.Add(1)
		}
		counts[i] = n
	})
	if failures.Load() != 0 {
		t.Fatalf("%d Incr calls failed", failures.Load())
	}
	slices.Sort(counts)
	for i, n := range counts {
		if n != int64(i+1) {
			t.Fatalf("counts = %v, want 1..50 each once", counts)
		}
	}
}

func testInvalidTTL(t *testing.T, s Store) {
	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"SetNX zero", func() error { _, err := s.SetNX(ctx, "k", []byte("v"), 0); return err }},
		{"SetNX negative", func() error { _, err := s.SetNX(ctx, "k", []byte("v"), -time.Second); return err }},
		{"SetXX zero", func() error { _, err := s.SetXX(ctx, "k", []byte("v"), 0); return err }},
		{"Incr zero", func() error { _, _, err := s.Incr(ctx, "k", 0); return err }},
		{"CompareAndExpire zero", func() error { _, err := s.CompareAndExpire(ctx, "k", []byte("v"), 0); return err }},
	}
	for _, c := range calls {
		err := c.call()
		if err == nil || errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: err = %v, want a non-store error", c.name, err)
		}
	}
	mustMissing(t, s, "k")
}

func testWrongType(t *testing.T, s Store) {
	ctx := t.Context()
	const secretValue = "value-that-must-not-leak"
	mustNoErr(t, s.Set(ctx, "str-key-secret", []byte(secretValue), time.Minute))
	mustNoErr(t, s.SAdd(ctx, "set-key-secret", time.Minute, secretValue))
	calls := []struct {
		name string
		call func() error
	}{
		{"Incr on text", func() error { _, _, err := s.Incr(ctx, "str-key-secret", time.Minute); return err }},
		{"Get on set", func() error { _, err := s.Get(ctx, "set-key-secret"); return err }},
		{"SAdd on string", func() error { return s.SAdd(ctx, "str-key-secret", time.Minute, "x") }},
		{"SMembers on string", func() error { _, err := s.SMembers(ctx, "str-key-secret"); return err }},
		{"SRem on string", func() error { return s.SRem(ctx, "str-key-secret", "x") }},
		{"GetDel on set", func() error { _, err := s.GetDel(ctx, "set-key-secret"); return err }},
	}
	for _, c := range calls {
		err := c.call()
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: err = %v, want ErrUnavailable", c.name, err)
		}
		if msg := err.Error(); strings.Contains(msg, secretValue) || strings.Contains(msg, "key-secret") {
			t.Fatalf("%s: error message leaks a key or value: %q", c.name, msg)
		}
	}
}

func testSets(t *testing.T, s Store) {
	ctx := t.Context()
	mustMembers(t, s, "missing")
	mustNoErr(t, s.SAdd(ctx, "s", time.Minute, "a", "b"))
	mustNoErr(t, s.SAdd(ctx, "s", time.Minute, "b", "c"))
	mustNoErr(t, s.SAdd(ctx, "s", time.Minute)) // no members: no-op
	mustMembers(t, s, "s", "a", "b", "c")
	mustNoErr(t, s.SRem(ctx, "s", "a", "missing"))
	mustMembers(t, s, "s", "b", "c")
	mustNoErr(t, s.SRem(ctx, "s"))
	mustNoErr(t, s.SRem(ctx, "missing", "x"))
	mustNoErr(t, s.SRem(ctx, "s", "b", "c"))
	mustMembers(t, s, "s")
	mustMissing(t, s, "s") // the last member gone, the key is gone

	mustNoErr(t, s.SAdd(ctx, "short", 50*time.Millisecond, "x"))
	mustMembers(t, s, "short", "x")
	time.Sleep(200 * time.Millisecond)
	mustMembers(t, s, "short")
}

func testSetTTLExtended(t *testing.T, s Store) {
	ctx := t.Context()
	// The first TTL leaves a loaded machine most of a second to make the second call.
	mustNoErr(t, s.SAdd(ctx, "s", time.Second, "a"))
	time.Sleep(50 * time.Millisecond)
	mustNoErr(t, s.SAdd(ctx, "s", time.Minute, "b")) // extends the whole set
	time.Sleep(1100 * time.Millisecond)
	mustMembers(t, s, "s", "a", "b")
	mustNoErr(t, s.SAdd(ctx, "s", 50*time.Millisecond, "c")) // and can shorten it
	time.Sleep(200 * time.Millisecond)
	mustMembers(t, s, "s")
}

func testPublishSubscribe(t *testing.T, s Store) {
	ctx := t.Context()
	mustNoErr(t, s.Publish(ctx, "nobody-listens", []byte("x")))

	a, err := s.Subscribe(ctx, "ch")
	mustNoErr(t, err)
	b, err := s.Subscribe(ctx, "ch")
	mustNoErr(t, err)
	other, err := s.Subscribe(ctx, "other")
	mustNoErr(t, err)

	msgs := [][]byte{[]byte("one"), {0, 0xff, 0}, []byte("three")}
	for _, m := range msgs {
		mustNoErr(t, s.Publish(ctx, "ch", m))
	}
	for _, sub := range []<-chan []byte{a, b} {
		for _, want := range msgs {
			if got := recv(t, sub); !bytes.Equal(got, want) {
				t.Fatalf("received %q, want %q", got, want)
			}
		}
	}
	mustNoErr(t, s.Publish(ctx, "other", []byte("for other")))
	if got := recv(t, other); string(got) != "for other" {
		t.Fatalf("other received %q", got)
	}
	select {
	case m := <-a:
		t.Fatalf("subscriber of ch received %q published elsewhere", m)
	case <-time.After(50 * time.Millisecond):
	}
}

func testSubscribeClosesOnCancel(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(t.Context())
	sub, err := s.Subscribe(ctx, "ch")
	mustNoErr(t, err)
	mustNoErr(t, s.Publish(t.Context(), "ch", []byte("before")))
	if got := recv(t, sub); string(got) != "before" {
		t.Fatalf("received %q", got)
	}
	cancel()
	waitClosed(t, sub)
	// The store is still usable and a new subscriber still receives.
	sub2, err := s.Subscribe(t.Context(), "ch")
	mustNoErr(t, err)
	mustNoErr(t, s.Publish(t.Context(), "ch", []byte("after")))
	if got := recv(t, sub2); string(got) != "after" {
		t.Fatalf("received %q", got)
	}
}

func testCanceledContext(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Set(ctx, "k", []byte("v"), time.Minute)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Set with a canceled context: err = %v, want ErrUnavailable and context.Canceled", err)
	}
	mustMissing(t, s, "k")
}

func testIsolation(t *testing.T, s1, s2 Store) {
	ctx := t.Context()
	mustNoErr(t, s1.Set(ctx, "shared-name", []byte("one"), time.Minute))
	mustMissing(t, s2, "shared-name")
	mustNoErr(t, s2.Set(ctx, "shared-name", []byte("two"), time.Minute))
	mustGet(t, s1, "shared-name", []byte("one"))
	mustNoErr(t, s1.SAdd(ctx, "set", time.Minute, "x"))
	mustMembers(t, s2, "set")

	sub2, err := s2.Subscribe(ctx, "ch")
	mustNoErr(t, err)
	sub1, err := s1.Subscribe(ctx, "ch")
	mustNoErr(t, err)
	mustNoErr(t, s1.Publish(ctx, "ch", []byte("for one")))
	if got := recv(t, sub1); string(got) != "for one" {
		t.Fatalf("received %q", got)
	}
	select {
	case m := <-sub2:
		t.Fatalf("store with another prefix received %q", m)
	case <-time.After(50 * time.Millisecond):
	}
}

func testClosed(t *testing.T, s Store) {
	ctx := t.Context()
	sub, err := s.Subscribe(ctx, "ch")
	mustNoErr(t, err)
	mustNoErr(t, s.Close())
	waitClosed(t, sub)
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Set after Close: err = %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get after Close: err = %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping after Close: err = %v, want ErrUnavailable", err)
	}
	mustNoErr(t, s.Close()) // idempotent
}
