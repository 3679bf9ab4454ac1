package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
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
// Knobs: BFF_LOAD_CONNS (32), BFF_LOAD_DURATION (10s), BFF_LOAD_ROUNDS (2),
// BFF_LOAD_VERSION (v2: the 2.0 tenant; v3: the 3.0 tenant) and BFF_LOAD_MODE: "compare" (the
// default, above) or "refresh" (see loadRefresh; one run, 25s by default, no baseline).
func TestLoad(t *testing.T) {
	if os.Getenv("BFF_LOAD") != "1" {
		skipFor(t, skipNoLoad, "set BFF_LOAD=1 to run the load test (scripts/load.sh does)")
	}
	set := loadSettingsFromEnv(t)

	if set.mode == "refresh" {
		loadRefresh(t, set.conns, set.dur, set.version)
		return
	}

	logMode := os.Getenv("BFF_LOAD_LOGS")
	if logMode == "" {
		logMode = "file"
	}
	logTo, drainLogs := loadLogWriter(t, logMode)
	h := startHotStackWith(t, stackOptions{logTo: logTo, extra: "client_token:\n  rate_limit: 1000000000\n"})
	// Registered after the replica's cleanup, so it runs before it: a slow log reader
	// speeds up while the replica stops and writes out its buffer.
	t.Cleanup(drainLogs)
	hot := h.v2
	if set.version == "v3" {
		hot = h.v3
	}
	targets := []target{hot, startBareEcho(t), startBaseline(t)}
	sizes := bodySizes(t, targets)

	// BFF_LOAD_PROFILE=DIR writes a CPU profile of the hot path's measured phases and, at
	// the end, the process's allocation profile (load client and references included).
	profileDir := os.Getenv("BFF_LOAD_PROFILE")
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			t.Fatal(err)
		}
		defer writeAllocsProfile(t, profileDir)
	}

	client := loadClient(t)
	// One latency buffer per worker, allocated and touched once, reused by every phase.
	var bufs [][]time.Duration
	if client == "go" {
		bufs = newLoadBufs(set.conns, set.dur)
	}
	phase := func(tg target, d time.Duration, record bool) loadResult {
		if client == "wrk" {
			return runWrk(t, tg, set.conns, d)
		}
		if !record {
			return runPhase(t, tg, set.conns, d, nil, nil)
		}
		return runPhase(t, tg, set.conns, d, bufs, nil)
	}

	results := make([][]loadResult, len(targets))
	for round := range set.rounds {
		for i, tg := range targets {
			// Warm-up: connections, pools and caches, nothing recorded.
			if w := phase(tg, loadWarmup, false); w.errors > 0 {
				t.Errorf("%s warm-up: %d failed requests, first: %v", tg.name, w.errors, w.firstErr)
			}
			stopProfile := func() {}
			if i == 0 {
				stopProfile = startLoadProfile(t, profileDir)
			}
			r := phase(tg, set.dur, true)
			stopProfile()
			r.round = round + 1
			results[i] = append(results[i], r)
			t.Logf("round %d %s: %.0f req/s", r.round, tg.name, r.rps)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\nGET load, %d keep-alive connections, %s per round after a %s warm-up, %d rounds alternating, GOMAXPROCS=%d\n",
		set.conns, set.dur, loadWarmup, set.rounds, runtime.GOMAXPROCS(0))
	allocsOf := "the servers only (wrk runs outside)"
	if client == "go" {
		allocsOf = "the whole process, the Go load client included"
	}
	fmt.Fprintf(&b, "load client: %s; BFF logs: %s (info level, log buffer as shipped); allocs/req: %s\n", client, logMode, allocsOf)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tround\trequests\terrors\treq/s\tp50\tp99\tmax\tallocs/req\tCPU/req\tbody bytes\t")
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
	writeLoadRatios(&b, results, medians)
	if logMode == "slowpipe" {
		fmt.Fprintf(&b, "log reader: %d bytes every %s; log lines dropped by the BFF's log buffer: routine %.0f, priority %.0f\n",
			slowPipeChunk, slowPipeEvery, counter(t, h.r, "bff_log_lines_dropped_total", `class="routine"`),
			counter(t, h.r, "bff_log_lines_dropped_total", `class="priority"`))
	}
	t.Log(b.String())
	fmt.Print(b.String())

	checkLoadRounds(t, targets, results)
}

// loadSettings are TestLoad's knobs, read from the environment.
type loadSettings struct {
	mode          string // compare or refresh
	conns, rounds int
	dur           time.Duration
	version       string // v2 or v3
}

// loadSettingsFromEnv reads the knobs, with their defaults and bounds, and checks that the
// services are on this machine.
func loadSettingsFromEnv(t *testing.T) loadSettings {
	t.Helper()
	mode := os.Getenv("BFF_LOAD_MODE")
	if mode == "" {
		mode = "compare"
	}
	if mode != "compare" && mode != "refresh" {
		t.Fatalf("BFF_LOAD_MODE=%q: want compare or refresh", mode)
	}
	conns := loadEnvInt(t, "BFF_LOAD_CONNS", 32, loadMaxConns)
	rounds := loadEnvInt(t, "BFF_LOAD_ROUNDS", 2, loadMaxRounds)
	dur := 10 * time.Second
	if mode == "refresh" {
		dur = refreshLoadDuration
	}
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
	return loadSettings{mode: mode, conns: conns, rounds: rounds, dur: dur, version: version}
}

// bodySizes fetches each target once, over loopback only, and returns the size of its answer.
func bodySizes(t *testing.T, targets []target) []int64 {
	t.Helper()
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
	return sizes
}

// checkLoadRounds: every measured round of every target ran without failures, within its
// latency buffer, and with at least one successful request.
func checkLoadRounds(t *testing.T, targets []target, results [][]loadResult) {
	t.Helper()
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

// writeLoadRatios writes how the hot path (the first target) compares with the two references:
// round by round, and median against median.
func writeLoadRatios(b *strings.Builder, results [][]loadResult, medians []loadResult) {
	// Rounds are paired: each round's targets ran back to back, so their ratio is less
	// exposed to other load on the machine than the ratio of medians.
	for i, name := range []string{"bare Echo", "Echo + 1 Redis GET"} {
		var ratios []float64
		for round := range results[0] {
			ratios = append(ratios, results[0][round].rps/results[i+1][round].rps)
		}
		sorted := slices.Clone(ratios)
		slices.Sort(sorted)
		fmt.Fprintf(b, "hot / %s req/s, per round: %.2f; median %.2fx\n", name, ratios, sorted[(len(sorted)-1)/2])
	}
	for i, name := range []string{"bare Echo (the limit)", "Echo + 1 Redis GET"} {
		hotM, ref := medians[0], medians[i+1]
		fmt.Fprintf(b, "hot / %s: req/s %.2fx, p50 %.2fx, p99 %.2fx (%+.3f ms), allocs/req %+.1f, CPU/req %.2fx (%+.1fµs)\n", name,
			hotM.rps/ref.rps, float64(hotM.p50)/float64(ref.p50), float64(hotM.p99)/float64(ref.p99),
			float64(hotM.p99-ref.p99)/float64(time.Millisecond), hotM.allocs-ref.allocs,
			float64(hotM.cpu)/float64(ref.cpu), float64(hotM.cpu-ref.cpu)/float64(time.Microsecond))
	}
}

// loadResult is one target's measured phase.
type loadResult struct {
	start            time.Time // when the workers were released
	round            int
	requests, errors int
	firstErr         error
	truncated        bool
	elapsed          time.Duration
	rps              float64
	p50, p99, maxLat time.Duration
	allocs           float64       // heap allocations per request, whole process (recorded phases)
	cpu              time.Duration // CPU time of this process per request (user + system)
	samples          []loadSample  // only when runPhase was given stamps
}

// loadSample is one request: when it began, since the phase's start, and how long it took.
type loadSample struct {
	at, lat time.Duration
}

func (r loadResult) row(size int64) string {
	return fmt.Sprintf("%d\t%d\t%.0f\t%s\t%s\t%s\t%.1f\t%.1fµs\t%d\t", r.requests, r.errors, r.rps,
		r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.maxLat.Round(time.Microsecond), r.allocs,
		float64(r.cpu)/float64(time.Microsecond), size)
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
	at        []time.Duration // when each request of lat began, since the phase's start
	errors    int
	firstErr  error
	truncated bool
}

// runPhase sends requests to tg over conns connections (one worker and one client each) for
// dur. With bufs nil it only warms up and records nothing. With stamps too (as long as bufs),
// it also records when each request began, since r.start, in r.at (same order as r.lat).
func runPhase(t *testing.T, tg target, conns int, dur time.Duration, bufs, stamps [][]time.Duration) loadResult {
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
		if stamps != nil {
			workers[i].at = stamps[i][:0]
		}
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()

	startGate := make(chan struct{})
	var start time.Time // written before startGate closes, read by workers after
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			w, c, h := &workers[i], clients[i], tg.header.Clone()
			<-startGate
			w.run(ctx, c, tg.url, h, time.Now().Add(dur), start, bufs != nil, stamps != nil)
		})
	}
	var ms runtime.MemStats
	if bufs != nil {
		runtime.ReadMemStats(&ms)
	}
	mallocs, cpu := ms.Mallocs, processCPU()
	start = time.Now()
	close(startGate)
	wg.Wait()
	elapsed := time.Since(start)
	cpu = processCPU() - cpu
	if bufs != nil {
		runtime.ReadMemStats(&ms)
		mallocs = ms.Mallocs - mallocs
	}

	return summarize(workers, start, elapsed, mallocs, cpu, stamps != nil)
}

// run sends requests to url until deadline, or until it has loadMaxErrors failures or (with
// record) a full latency buffer. With record it keeps each request's latency; with stamp, also
// when it began, since start.
func (w *loadWorker) run(ctx context.Context, c *http.Client, url string, h http.Header, deadline, start time.Time, record, stamp bool) {
	for {
		begin := time.Now()
		if !begin.Before(deadline) {
			return
		}
		if record && len(w.lat) == cap(w.lat) {
			w.truncated = true
			return
		}
		err := fetch(ctx, c, url, h)
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
		if record {
			w.lat = append(w.lat, took)
		}
		if stamp {
			w.at = append(w.at, begin.Sub(start))
		}
	}
}

// summarize joins the workers' records of a phase that ran elapsed from start, using mallocs
// heap allocations and cpu process CPU time, into its result; stamped says the workers kept
// when each request began.
func summarize(workers []loadWorker, start time.Time, elapsed time.Duration, mallocs uint64, cpu time.Duration, stamped bool) loadResult {
	var r loadResult
	r.start = start
	r.elapsed = elapsed
	n := 0
	for _, w := range workers {
		n += len(w.lat)
	}
	all := make([]time.Duration, 0, n)
	for _, w := range workers {
		all = append(all, w.lat...)
		r.errors += w.errors
		r.truncated = r.truncated || w.truncated
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
	}
	if stamped {
		r.samples = make([]loadSample, 0, len(all))
		for _, w := range workers {
			for j, lat := range w.lat {
				r.samples = append(r.samples, loadSample{at: w.at[j], lat: lat})
			}
		}
	}
	r.requests = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		r.rps = float64(len(all)) / elapsed.Seconds()
		r.p50 = all[len(all)*50/100]
		r.p99 = all[min(len(all)-1, len(all)*99/100)]
		r.maxLat = all[len(all)-1]
		r.allocs = float64(mallocs) / float64(len(all))
		r.cpu = cpu / time.Duration(len(all))
	}
	return r
}

// pollRefreshes watches emu's /token calls every refreshPoll until the returned function is
// called, which returns when each new call was seen and how many.
func pollRefreshes(ctx context.Context, emu *emulator.Emulator) func() []refreshMoment {
	var moments []refreshMoment
	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		tick := time.NewTicker(refreshPoll)
		defer tick.Stop()
		last := emu.TokenCalls()
		for {
			select {
			case <-pollCtx.Done():
				return
			case <-tick.C:
				if n := emu.TokenCalls(); n > last {
					moments = append(moments, refreshMoment{at: time.Now(), calls: n - last})
					last = n
				}
			}
		}
	}()
	return func() []refreshMoment {
		stopPoll()
		<-polled
		return moments
	}
}

// refreshSlices is a refresh run's latencies sliced by the refresh moments: their offsets from
// the run's start (and how many fall inside it), the whole run, the requests within
// refreshWindow of a refresh (all, and per refresh), and the rest.
type refreshSlices struct {
	offsets                []time.Duration
	inRun                  int
	whole, windows, steady []time.Duration
	perWindow              [][]time.Duration
}

// sliceByRefresh slices r's samples by the refresh moments: a request belongs to the first
// window its start falls in.
func sliceByRefresh(r loadResult, moments []refreshMoment) refreshSlices {
	offsets := make([]time.Duration, len(moments))
	inRun := 0
	for i, m := range moments {
		offsets[i] = m.at.Sub(r.start)
		if offsets[i] >= 0 && offsets[i] <= r.elapsed {
			inRun++
		}
	}
	var whole, windows, steady []time.Duration
	perWindow := make([][]time.Duration, len(offsets))
	for _, smp := range r.samples {
		whole = append(whole, smp.lat)
		w := slices.IndexFunc(offsets, func(o time.Duration) bool {
			return smp.at >= o-refreshWindow && smp.at <= o+refreshWindow
		})
		if w < 0 {
			steady = append(steady, smp.lat)
			continue
		}
		windows = append(windows, smp.lat)
		perWindow[w] = append(perWindow[w], smp.lat)
	}
	return refreshSlices{offsets: offsets, inRun: inRun, whole: whole, windows: windows, steady: steady, perWindow: perWindow}
}

// Slow log reader (BFF_LOAD_LOGS=slowpipe): a process manager that reads the BFF's stderr pipe
// at about 400 KB/s, far below what the logs produce at full load.
const (
	slowPipeChunk = 4 << 10
	slowPipeEvery = 10 * time.Millisecond
)

// loadLogWriter is where the loaded replica's logs go: "file" (a file, as a process manager
// would collect them), "slowpipe" (an OS pipe read slowly) or "discard". The returned function
// lets a slow reader drain at full speed; call it before the replica stops.
func loadLogWriter(t *testing.T, mode string) (io.Writer, func()) {
	t.Helper()
	switch mode {
	case "file":
		return logFile(t), func() {}
	case "discard":
		return io.Discard, func() {}
	case "slowpipe":
	default:
		t.Fatalf("BFF_LOAD_LOGS=%q: want file, slowpipe or discard", mode)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var fast atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, slowPipeChunk)
		for {
			if _, err := pr.Read(buf); err != nil {
				return
			}
			if !fast.Load() {
				time.Sleep(slowPipeEvery)
			}
		}
	}()
	// Registered before the replica starts, so it runs after the replica has stopped.
	t.Cleanup(func() {
		fast.Store(true)
		pw.Close()
		<-done
		pr.Close()
	})
	return pw, func() { fast.Store(true) }
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

// The refresh mode's setting: Basiq tokens live 30 s and are refreshed in the background once
// they are 10 s old, so a 25 s run crosses a refresh boundary twice (at token age 10 s and,
// for the refreshed token, 10 s later).
const (
	refreshLoadDuration = 25 * time.Second
	refreshTokenTTL     = 30 * time.Second
	refreshAfter        = 10 * time.Second
	refreshL1TTL        = time.Second
	refreshLatency      = 200 * time.Millisecond // Basiq's answer time, on every call
	refreshWindow       = time.Second            // each side of a refresh moment
	refreshPoll         = 5 * time.Millisecond   // how often /token calls are counted
)

// refreshMoment is when the poller saw Basiq's /token count rise, and by how much.
type refreshMoment struct {
	at    time.Time
	calls int
}

// loadRefresh measures GET /client-token while its cached token crosses refresh-ahead
// boundaries. The emulator takes refreshLatency to answer, so a request that waited on Basiq
// takes at least that long; refresh-ahead should mean none does. Each request's start and
// latency are recorded, the moments Basiq is called are taken from the emulator's /token
// count (polled every refreshPoll), and latencies are reported for the whole run, for the
// requests that began within refreshWindow of a refresh moment, and for the rest (steady
// state). It fails on request errors, when no refresh happened during the run, and when a
// request was served a token minted for it (source "upstream"): those make the numbers
// meaningless. It asserts nothing about time.
func loadRefresh(t *testing.T, conns int, dur time.Duration, version string) {
	t.Helper()
	if minDur := refreshAfter + 2*time.Second; dur < minDur {
		t.Fatalf("BFF_LOAD_DURATION=%s: the refresh mode needs at least %s to cross a refresh boundary", dur, minDur)
	}
	h := startHotStackWith(t, stackOptions{
		discardLogs: true,
		emu:         emulator.Options{TokenTTL: refreshTokenTTL},
		extra: fmt.Sprintf("client_token:\n  rate_limit: 1000000000\n  refresh_after: %s\n  min_remaining: 5s\n  l1_ttl: %s\n",
			refreshAfter, refreshL1TTL),
	})
	tg := h.v2
	if version == "v3" {
		tg = h.v3
	}
	requireLoopback(t, tg.url)
	bufs, stamps := newLoadBufs(conns, dur), newLoadBufs(conns, dur)

	// Start the token's clock at a fresh mint: forget every cached token, let L1 forget it
	// too, and have one request mint.
	if err := kvtest.DeletePrefix(h.s.redisURL, h.s.prefix+"tok:"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(refreshL1TTL + 100*time.Millisecond)
	calls := h.s.emu.TokenCalls()
	minted := time.Now()
	lc := newLoadClient(1)
	err := fetch(t.Context(), lc, tg.url, tg.header)
	lc.CloseIdleConnections()
	if err != nil {
		t.Fatalf("%s: %v", tg.name, err)
	}
	if got := h.s.emu.TokenCalls() - calls; got != 1 {
		t.Fatalf("fresh mint: %d /token calls, want 1", got)
	}
	h.s.emu.SetLatency(refreshLatency)
	upstreamBefore := counter(t, h.r, "bff_client_tokens_served_total", `source="upstream"`)
	staleBefore := counter(t, h.r, "bff_client_tokens_served_total", `source="stale"`)
	waitsBefore := counter(t, h.r, "bff_lock_waits_total", `kind="request"`)

	// The poller runs through the warm-up too, so a refresh there would be seen (and its
	// window, if it reaches into the run, honoured).
	stopPoll := pollRefreshes(t.Context(), h.s.emu)
	if w := runPhase(t, tg, conns, loadWarmup, nil, nil); w.errors > 0 {
		t.Errorf("warm-up: %d failed requests, first: %v", w.errors, w.firstErr)
	}
	r := runPhase(t, tg, conns, dur, bufs, stamps)
	moments := stopPoll()
	upstream := counter(t, h.r, "bff_client_tokens_served_total", `source="upstream"`) - upstreamBefore
	stale := counter(t, h.r, "bff_client_tokens_served_total", `source="stale"`) - staleBefore
	waits := counter(t, h.r, "bff_lock_waits_total", `kind="request"`) - waitsBefore

	sl := sliceByRefresh(r, moments)

	var b strings.Builder
	fmt.Fprintf(&b, "\n%s across refresh-ahead boundaries: %d keep-alive connections, %s after a %s warm-up, GOMAXPROCS=%d\n",
		tg.name, conns, dur, loadWarmup, runtime.GOMAXPROCS(0))
	fmt.Fprintf(&b, "Basiq tokens live %s and answer /token in %s; refresh_after %s, min_remaining 5s, l1_ttl %s\n",
		refreshTokenTTL, refreshLatency, refreshAfter, refreshL1TTL)
	fmt.Fprintf(&b, "token age at the run's start %.2fs; %d requests, %d errors, %.0f req/s\n",
		r.start.Sub(minted).Seconds(), r.requests, r.errors, r.rps)
	for i, m := range moments {
		fmt.Fprintf(&b, "refresh %d: %d /token call(s) seen at %+.3fs (token age %.2fs)\n",
			i+1, m.calls, sl.offsets[i].Seconds(), m.at.Sub(minted).Seconds())
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "slice\trequests\tp50\tp99\tmax\t>= %s\t\n", refreshLatency)
	row := func(name string, lat []time.Duration) latencyStats {
		st := newLatencyStats(lat, refreshLatency)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t\n", name, st.n,
			st.p50.Round(time.Microsecond), st.p99.Round(time.Microsecond), st.maxLat.Round(time.Microsecond), st.slow)
		return st
	}
	all := row("whole run", sl.whole)
	for i, lat := range sl.perWindow {
		row(fmt.Sprintf("refresh %d (%+.1fs ±%s)", i+1, sl.offsets[i].Seconds(), refreshWindow), lat)
	}
	win := row("all refresh windows", sl.windows)
	st := row("steady state", sl.steady)
	tw.Flush()
	if win.n > 0 && st.n > 0 {
		fmt.Fprintf(&b, "ratio p99(refresh windows)/p99(steady) = %.2f\n", float64(win.p99)/float64(st.p99))
	}
	fmt.Fprintf(&b, "requests taking >= %s (waited on Basiq): %d (expected 0)\n", refreshLatency, all.slow)
	fmt.Fprintf(&b, "tokens served by source during the run: upstream %.0f, stale %.0f; request lock waits %.0f (all expected 0)\n",
		upstream, stale, waits)
	t.Log(b.String())
	fmt.Print(b.String())

	if r.errors > 0 {
		t.Errorf("%d failed requests, first: %v", r.errors, r.firstErr)
	}
	if r.truncated {
		t.Errorf("a worker filled its latency buffer; results are partial")
	}
	if r.requests == 0 {
		t.Errorf("no successful request")
	}
	if sl.inRun == 0 {
		t.Errorf("no refresh during the run: the numbers do not cover a refresh boundary")
	}
	if upstream > 0 {
		t.Errorf("%.0f requests were served a token minted for them: refresh ahead did not keep them off Basiq", upstream)
	}
}

// latencyStats summarises a set of latencies.
type latencyStats struct {
	n, slow          int // slow: at or above the threshold
	p50, p99, maxLat time.Duration
}

// newLatencyStats computes percentiles as runPhase does, counting latencies >= slowAt.
func newLatencyStats(lat []time.Duration, slowAt time.Duration) latencyStats {
	st := latencyStats{n: len(lat)}
	if len(lat) == 0 {
		return st
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	st.p50 = s[len(s)*50/100]
	st.p99 = s[min(len(s)-1, len(s)*99/100)]
	st.maxLat = s[len(s)-1]
	i, _ := slices.BinarySearch(s, slowAt)
	st.slow = len(s) - i
	return st
}

// newLoadBufs allocates one latency buffer per worker for a phase of dur, touching every page
// now so that the run does not pay for it.
func newLoadBufs(conns int, dur time.Duration) [][]time.Duration {
	perWorker := max(1024, int(dur.Seconds()*loadRecordCeilRPS)/conns*4)
	bufs := make([][]time.Duration, conns)
	for i := range bufs {
		bufs[i] = make([]time.Duration, perWorker)
		clear(bufs[i])
	}
	return bufs
}

// startLoadProfile starts CPU profiling into dir/cpu-hot.pprof (appending rounds as
// cpu-hot-N.pprof) and returns the function that stops it; with dir empty it does nothing.
func startLoadProfile(t *testing.T, dir string) func() {
	t.Helper()
	if dir == "" {
		return func() {}
	}
	name := filepath.Join(dir, "cpu-hot.pprof")
	for n := 2; ; n++ {
		if _, err := os.Stat(name); os.IsNotExist(err) {
			break
		}
		name = filepath.Join(dir, fmt.Sprintf("cpu-hot-%d.pprof", n))
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}
}

// writeAllocsProfile writes the process's allocation profile to dir/allocs.pprof.
func writeAllocsProfile(t *testing.T, dir string) {
	f, err := os.Create(filepath.Join(dir, "allocs.pprof"))
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		t.Error(err)
	}
}

// loadClient is the load generator: BFF_LOAD_CLIENT=wrk or go; by default wrk when it is
// installed (it costs the machine far less per request than a Go client in the same process,
// so the servers get most of the CPU, as in production), else go.
func loadClient(t *testing.T) string {
	t.Helper()
	switch c := os.Getenv("BFF_LOAD_CLIENT"); c {
	case "go":
		return c
	case "wrk":
		if _, err := exec.LookPath("wrk"); err != nil {
			t.Fatalf("BFF_LOAD_CLIENT=wrk: %v (apt-get install wrk)", err)
		}
		return c
	case "":
		if _, err := exec.LookPath("wrk"); err == nil {
			return "wrk"
		}
		return "go"
	default:
		t.Fatalf("BFF_LOAD_CLIENT=%q: want wrk or go", c)
	}
	return ""
}

// runWrk loads tg with wrk (one thread, conns connections) for dur and reads its report.
// The heap allocations counted are the servers' own: wrk is another process. The command line
// carries the session cookie, so it is never printed.
func runWrk(t *testing.T, tg target, conns int, dur time.Duration) loadResult {
	t.Helper()
	requireLoopback(t, tg.url)
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(max(1, int(dur.Round(time.Second).Seconds()))) + "s",
		"--latency", "--timeout", "10s"}
	for k, vs := range tg.header {
		for _, v := range vs {
			args = append(args, "-H", k+": "+v)
		}
	}
	args = append(args, tg.url)
	ctx, cancel := context.WithTimeout(t.Context(), dur+time.Minute)
	defer cancel()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs, cpu := ms.Mallocs, processCPU()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "wrk", args...).Output()
	elapsed := time.Since(start)
	cpu = processCPU() - cpu
	runtime.ReadMemStats(&ms)
	mallocs = ms.Mallocs - mallocs
	r := loadResult{start: start, elapsed: elapsed}
	if err != nil {
		r.errors, r.firstErr = 1, fmt.Errorf("wrk: %w", err)
		return r
	}
	if err := parseWrk(string(out), &r); err != nil {
		r.errors, r.firstErr = 1, err
		return r
	}
	if r.requests > 0 {
		r.allocs = float64(mallocs) / float64(r.requests)
		r.cpu = cpu / time.Duration(r.requests)
	}
	return r
}

// processCPU is the CPU time this process has used so far, user and system. Unlike req/s, CPU
// per request hardly moves when other work on the machine takes turns on the cores.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parseWrk reads requests, req/s, p50, p99, max and errors from wrk's --latency report.
func parseWrk(out string, r *loadResult) error {
	var seen int
	for _, line := range strings.Split(out, "\n") {
		stat, err := parseWrkLine(line, r)
		if err != nil {
			return err
		}
		if stat {
			seen++
		}
	}
	if seen != 5 {
		return fmt.Errorf("wrk: unexpected report:\n%s", out)
	}
	return nil
}

// parseWrkLine reads one line of wrk's report into r. It reports whether the line was one of
// the five statistics every report has: the latency maximum, p50, p99, requests and req/s.
func parseWrkLine(line string, r *loadResult) (bool, error) {
	f := strings.Fields(line)
	switch {
	case len(f) >= 4 && f[0] == "Latency" && !strings.HasSuffix(f[1], "%"):
		d, err := parseWrkDuration(f[3])
		if err != nil {
			return false, err
		}
		r.maxLat = d
		return true, nil
	case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
		d, err := parseWrkDuration(f[1])
		if err != nil {
			return false, err
		}
		if f[0] == "50%" {
			r.p50 = d
		} else {
			r.p99 = d
		}
		return true, nil
	case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
		n, err := strconv.Atoi(f[0])
		if err != nil {
			return false, fmt.Errorf("wrk: requests %q: %w", f[0], err)
		}
		r.requests = n
		return true, nil
	case len(f) == 2 && f[0] == "Requests/sec:":
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return false, fmt.Errorf("wrk: req/s %q: %w", f[1], err)
		}
		r.rps = v
		return true, nil
	case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
		n, _ := strconv.Atoi(f[len(f)-1])
		r.errors += n
		r.firstErr = errors.New("wrk: non-2xx answers")
	case strings.HasPrefix(strings.TrimSpace(line), "Socket errors:"):
		r.errors++
		r.firstErr = fmt.Errorf("wrk: %s", strings.TrimSpace(line))
	}
	return false, nil
}

// parseWrkDuration reads wrk's "635.00us", "3.37ms", "1.02s".
func parseWrkDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"m", time.Minute}, {"s", time.Second}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk: duration %q: %w", s, err)
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("wrk: duration %q", s)
}
