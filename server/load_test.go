package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// Load test bounds: the knobs come from the environment, so they are clamped.
const (
	loadWarmup        = 2 * time.Second
	loadMaxConns      = 1024
	loadMaxDuration   = 10 * time.Minute
	loadMaxRounds     = 9
	loadMaxErrors     = 100 // per worker and phase; then the worker stops
	loadRecordCeilRPS = 100_000
)

// TestLoad compares GET /client-token on a warm cache with the baseline (one Redis GET behind
// bare Echo) under N keep-alive connections, and prints requests per second and latency
// percentiles for both. It is a measuring tool, run by scripts/load.sh, so it skips unless
// BFF_LOAD=1. The targets run one after the other, alternating over several rounds, so that
// they never compete for the CPU; the median round of each is compared.
//
// Knobs: BFF_LOAD_CONNS (32), BFF_LOAD_DURATION (10s), BFF_LOAD_ROUNDS (2) and
// BFF_LOAD_VERSION (v2: the 2.0 tenant; v3: the 3.0 tenant).
func TestLoad(t *testing.T) {
	if os.Getenv("BFF_LOAD") != "1" {
		t.Skip("set BFF_LOAD=1 to run the load test (scripts/load.sh does)")
	}
	conns := loadEnvInt(t, "BFF_LOAD_CONNS", 32, loadMaxConns)
	rounds := loadEnvInt(t, "BFF_LOAD_ROUNDS", 2, loadMaxRounds)
	dur := 10 * time.Second
	if v := os.Getenv("BFF_LOAD_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > loadMaxDuration {
			t.Fatalf("BFF_LOAD_DURATION=%q: want a duration in (0, %s]", v, loadMaxDuration)
		}
		dur = d
	}
	version := os.Getenv("BFF_LOAD_VERSION")
	if version == "" {
		version = "v2"
	}
	if version != "v2" && version != "v3" {
		t.Fatalf("BFF_LOAD_VERSION=%q: want v2 or v3", version)
	}
	// The services are loaded too: they must be on this machine.
	for _, k := range []string{"BFF_TEST_REDIS_URL", "BFF_TEST_DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			requireLoopback(t, v)
		}
	}

	h := startHotStack(t)
	hot := h.v2
	if version == "v3" {
		hot = h.v3
	}
	base := startBaseline(t)
	targets := []target{hot, base}
	sizes := make([]int64, len(targets))
	for i, tg := range targets {
		requireLoopback(t, tg.url)
		lc := newLoadClient(1)
		n, err := fetchN(t.Context(), lc, tg.url, tg.header)
		lc.CloseIdleConnections()
		if err != nil {
			t.Fatalf("%s: %v", tg.name, err)
		}
		sizes[i] = n
	}

	// One latency buffer per worker, allocated and touched once, reused by every phase.
	perWorker := max(1024, int(dur.Seconds()*loadRecordCeilRPS)/conns*4)
	bufs := make([][]time.Duration, conns)
	for i := range bufs {
		bufs[i] = make([]time.Duration, perWorker)
		clear(bufs[i])
	}

	results := make([][]loadResult, len(targets))
	for round := range rounds {
		for i, tg := range targets {
			// Warm-up: connections, pools and caches, nothing recorded.
			if w := runPhase(t, tg, conns, loadWarmup, nil); w.errors > 0 {
				t.Errorf("%s warm-up: %d failed requests, first: %v", tg.name, w.errors, w.firstErr)
			}
			r := runPhase(t, tg, conns, dur, bufs)
			r.round = round + 1
			results[i] = append(results[i], r)
			t.Logf("round %d %s: %.0f req/s", r.round, tg.name, r.rps)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\nGET load, %d keep-alive connections, %s per round after a %s warm-up, %d rounds alternating, GOMAXPROCS=%d\n",
		conns, dur, loadWarmup, rounds, runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tround\trequests\terrors\treq/s\tp50\tp99\tmax\tbody bytes\t")
	medians := make([]loadResult, len(targets))
	for i, tg := range targets {
		for _, r := range results[i] {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", tg.name, r.round, r.row(sizes[i]))
		}
		medians[i] = medianRound(results[i])
	}
	for i, tg := range targets {
		fmt.Fprintf(tw, "%s\tmedian (%d)\t%s\n", tg.name, medians[i].round, medians[i].row(sizes[i]))
	}
	tw.Flush()
	fmt.Fprintf(&b, "ratio hot/baseline: req/s %.2f, p50 %.2f, p99 %.2f\n",
		medians[0].rps/medians[1].rps,
		float64(medians[0].p50)/float64(medians[1].p50),
		float64(medians[0].p99)/float64(medians[1].p99))
	t.Log(b.String())
	fmt.Print(b.String())

	for i, tg := range targets {
		for _, r := range results[i] {
			if r.errors > 0 {
				t.Errorf("%s round %d: %d failed requests, first: %v", tg.name, r.round, r.errors, r.firstErr)
			}
			if r.truncated {
				t.Errorf("%s round %d: a worker filled its latency buffer; results are partial", tg.name, r.round)
			}
			if r.requests == 0 {
				t.Errorf("%s round %d: no successful request", tg.name, r.round)
			}
		}
	}
}

// loadResult is one target's measured phase.
type loadResult struct {
	round            int
	requests, errors int
	firstErr         error
	truncated        bool
	elapsed          time.Duration
	rps              float64
	p50, p99, maxLat time.Duration
}

func (r loadResult) row(size int64) string {
	return fmt.Sprintf("%d\t%d\t%.0f\t%s\t%s\t%s\t%d\t", r.requests, r.errors, r.rps,
		r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.maxLat.Round(time.Microsecond), size)
}

// medianRound is the round with the median throughput (the lower of the two middle rounds
// when there is an even number).
func medianRound(rs []loadResult) loadResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b loadResult) int {
		switch {
		case a.rps < b.rps:
			return -1
		case a.rps > b.rps:
			return 1
		}
		return 0
	})
	return s[(len(s)-1)/2]
}

// loadWorker is one connection's share of a phase. Each worker writes only its own slot, so
// the request loop takes no locks.
type loadWorker struct {
	lat       []time.Duration
	errors    int
	firstErr  error
	truncated bool
}

// runPhase sends requests to tg over conns connections (one worker and one client each) for
// dur. With bufs nil it only warms up and records nothing.
func runPhase(t *testing.T, tg target, conns int, dur time.Duration, bufs [][]time.Duration) loadResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), dur+30*time.Second)
	defer cancel()
	workers := make([]loadWorker, conns)
	clients := make([]*http.Client, conns)
	for i := range clients {
		clients[i] = newLoadClient(1)
		if bufs != nil {
			workers[i].lat = bufs[i][:0]
		}
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()

	startGate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			w, c, h := &workers[i], clients[i], tg.header.Clone()
			<-startGate
			deadline := time.Now().Add(dur)
			for {
				begin := time.Now()
				if !begin.Before(deadline) {
					return
				}
				if bufs != nil && len(w.lat) == cap(w.lat) {
					w.truncated = true
					return
				}
				err := fetch(ctx, c, tg.url, h)
				took := time.Since(begin)
				if err != nil {
					if w.errors == 0 {
						w.firstErr = err
					}
					if w.errors++; w.errors >= loadMaxErrors {
						return
					}
					continue
				}
				if bufs != nil {
					w.lat = append(w.lat, took)
				}
			}
		})
	}
	start := time.Now()
	close(startGate)
	wg.Wait()
	elapsed := time.Since(start)

	var r loadResult
	r.elapsed = elapsed
	var all []time.Duration
	if bufs != nil {
		n := 0
		for _, w := range workers {
			n += len(w.lat)
		}
		all = make([]time.Duration, 0, n)
	}
	for _, w := range workers {
		all = append(all, w.lat...)
		r.errors += w.errors
		r.truncated = r.truncated || w.truncated
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
	}
	r.requests = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		r.rps = float64(len(all)) / elapsed.Seconds()
		r.p50 = all[len(all)*50/100]
		r.p99 = all[min(len(all)-1, len(all)*99/100)]
		r.maxLat = all[len(all)-1]
	}
	return r
}

func loadEnvInt(t *testing.T, key string, def, ceil int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > ceil {
		t.Fatalf("%s=%q: want an integer in [1, %d]", key, v, ceil)
	}
	return n
}
