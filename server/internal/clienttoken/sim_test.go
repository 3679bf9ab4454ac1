package clienttoken

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/basiq"
	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/clocktest"
	"github.com/basiq-bff/bff/server/internal/derive"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/pseudonym"
	"github.com/basiq-bff/bff/server/internal/tenant"
)

// The simulated day: people of one API 3.0 tenant arrive over simHorizon, their arrival rate
// rising from nothing to a peak at the middle and falling back (half a sine wave), the shape
// of a working-hours surge. Each person loads pages for a while and leaves.
const (
	simHorizon     = 2 * time.Hour
	simBucket      = 10 * time.Minute // demand is reported per bucket of arrival time
	simMeanStay    = 25 * time.Minute // how long a person keeps loading pages (exponential)
	simMaxStay     = 3 * time.Hour
	simMeanGap     = 3 * time.Minute // between two page loads (exponential)
	simMinGap      = 5 * time.Second
	simFullPeople  = 20_000
	simFullBudget  = 1200 // the default client_token.mint_budget
	simSeed        = 20261201
	simRefreshAftr = 30 * time.Minute // the defaults
	simMinRemain   = 10 * time.Minute
)

// simLoad is one page load: a person asks for their token.
type simLoad struct {
	at     time.Duration // since the start of the day
	person int
}

// simDay draws the day's page loads for people arriving over simHorizon, in time order.
func simDay(people int) (loads []simLoad, arrivals []time.Duration) {
	rng := rand.New(rand.NewPCG(simSeed, simSeed))
	exp := func(mean time.Duration) time.Duration { return time.Duration(rng.ExpFloat64() * float64(mean)) }
	arrivals = make([]time.Duration, people)
	for p := range people {
		// Inverse of the half-sine's cumulative share: (1 - cos(pi x)) / 2.
		x := math.Acos(1-2*rng.Float64()) / math.Pi
		at := time.Duration(x * float64(simHorizon))
		arrivals[p] = at
		stay := min(exp(simMeanStay), simMaxStay)
		for t := at; t <= at+stay; t += max(exp(simMeanGap), simMinGap) {
			loads = append(loads, simLoad{at: t, person: p})
		}
	}
	slices.SortStableFunc(loads, func(a, b simLoad) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return a.person - b.person
	})
	return loads, arrivals
}

// simBucketStats is one bucket of arrival time.
type simBucketStats struct {
	arrivals int
	cold     int // loads that found no servable token: a mint was needed
	refused  int // cold loads that got no token (503: the budget was spent)
	stale    int // loads answered with a stale token because no mint was possible
	mints    int // /token calls made in the bucket (cold and background)
	refresh  int // of which background refreshes
}

type simResult struct {
	buckets       []simBucketStats
	maxWindowMint int // the most /token calls in any 5-minute window
	loads         int
}

// handlerTransport sends a client's requests straight to an http.Handler, in process: the
// simulation makes tens of thousands of /token calls and needs no sockets for them.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// runSim plays the day against a real Service on the in-memory kv store and the emulator,
// all on one fake clock. Page loads run one at a time, and each waits for the background
// refresh it started, so a run is deterministic.
func runSim(t *testing.T, loads []simLoad, arrivals []time.Duration, budget int, aware bool) simResult {
	t.Helper()
	start := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clk := clocktest.New(start)
	store := kv.NewMemory(clk.Now)
	t.Cleanup(func() { store.Close() })
	emu := emulator.New(emulator.Options{Now: clk.Now, PerKeyLimit: -1})
	key := emulator.GenerateKey()
	emu.AddKey(key, emulator.KeyOptions{})
	ct := config.Tenant{ID: "acme", Name: "Acme", Basiq: config.Basiq{BaseURL: "http://basiq.sim", Version: "3.0",
		APIKeys: []config.APIKey{{ID: "k1", Secret: config.NewSecret(key)}}}}
	tn, _ := tenant.NewSnapshot([]config.Tenant{ct}, []byte("fp")).Get("acme")
	client := basiq.New(&http.Client{Transport: handlerTransport{emu}}, 5*time.Second)
	s, err := New(store, client, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{
		EncryptionKey: testCacheKey, Now: clk.Now, MintBudget: budget,
		RefreshAfter: simRefreshAftr, MinRemaining: simMinRemain,
		// A generous deadline: the clock stands still while a load runs, and CI is busy.
		Deadline: 30 * time.Second, LockLease: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if !aware {
		// The budget is still enforced on every mint; only the refresh ignores it.
		s.budgetBlind = true
	}

	nb := int((simHorizon + simBucket - 1) / simBucket)
	res := simResult{buckets: make([]simBucketStats, nb+int(simMaxStay/simBucket)+1), loads: len(loads)}
	for _, a := range arrivals {
		res.buckets[int(a/simBucket)].arrivals++
	}
	var mintTimes []time.Duration
	ctx := context.Background()
	for _, l := range loads {
		if d := start.Add(l.at).Sub(clk.Now()); d > 0 {
			clk.Advance(d)
		}
		b := &res.buckets[int(l.at/simBucket)]
		before := emu.TokenCalls()
		tok, err := s.ClientToken(ctx, tn, Principal{UserID: int64(l.person), BasiqUserID: fmt.Sprintf("sim-user-%d", l.person)})
		direct := emu.TokenCalls() - before
		s.wg.Wait() // the background refresh this load started, if any
		background := emu.TokenCalls() - before - direct
		for range direct + background {
			mintTimes = append(mintTimes, l.at)
		}
		b.mints += direct + background
		b.refresh += background
		switch {
		case err != nil:
			if !errors.Is(err, apperr.UpstreamUnavailable) {
				t.Fatalf("load at %s: %v", l.at, err)
			}
			b.cold++
			b.refused++
		case tok.Source == SourceUpstream:
			b.cold++
		case tok.Source == SourceStale:
			b.cold++
			b.stale++
		}
	}
	for i, j := 0, 0; i < len(mintTimes); i++ {
		for mintTimes[i]-mintTimes[j] >= budgetWindow {
			j++
		}
		res.maxWindowMint = max(res.maxWindowMint, i-j+1)
	}
	return res
}

// TestBudgetAwareRefreshSimulation plays 20,000 people of one API 3.0 tenant arriving over two
// hours against the default budget (1,200 /token calls per 5 minutes), once with background
// refresh blind to the budget and once budget-aware, and prints per 10 minutes of arrivals
// how many cold requests (a person waiting for a token that must be minted) were refused.
// Under the race detector the day is scaled down five times, people and budget alike.
func TestBudgetAwareRefreshSimulation(t *testing.T) {
	people, budget := simFullPeople, simFullBudget
	if raceEnabled || testing.Short() {
		people, budget = people/5, budget/5
	}
	loads, arrivals := simDay(people)
	blind := runSim(t, loads, arrivals, budget, false)
	aware := runSim(t, loads, arrivals, budget, true)

	var b strings.Builder
	fmt.Fprintf(&b, "\n%d people of one API 3.0 tenant over %s (%d page loads), mint budget %d per 5 min, refresh_after %s, min_remaining %s\n",
		people, simHorizon, len(loads), budget, simRefreshAftr, simMinRemain)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "minutes\tarrivals/min\tcold (blind)\trefused (blind)\trefreshes (blind)\tcold (aware)\trefused (aware)\trefreshes (aware)\tstale (aware)\t")
	var tot [2]simBucketStats
	for i := range blind.buckets {
		bl, aw := blind.buckets[i], aware.buckets[i]
		if bl.arrivals == 0 && bl.mints == 0 && aw.mints == 0 && bl.cold == 0 && aw.cold == 0 {
			continue
		}
		from := time.Duration(i) * simBucket
		fmt.Fprintf(tw, "%.0f-%.0f\t%.0f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", from.Minutes(), (from + simBucket).Minutes(),
			float64(bl.arrivals)/simBucket.Minutes(), bl.cold, bl.refused, bl.refresh, aw.cold, aw.refused, aw.refresh, aw.stale)
		for k, st := range []simBucketStats{bl, aw} {
			tot[k].cold += st.cold
			tot[k].refused += st.refused
			tot[k].refresh += st.refresh
			tot[k].stale += st.stale
			tot[k].mints += st.mints
		}
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", tot[0].cold, tot[0].refused, tot[0].refresh,
		tot[1].cold, tot[1].refused, tot[1].refresh, tot[1].stale)
	tw.Flush()
	fmt.Fprintf(&b, "/token calls: blind %d (most in 5 min: %d), aware %d (most in 5 min: %d)\n",
		tot[0].mints, blind.maxWindowMint, tot[1].mints, aware.maxWindowMint)
	t.Log(b.String())
	if os.Getenv("BFF_SIM_PRINT") == "1" {
		fmt.Print(b.String())
	}

	for name, r := range map[string]simResult{"blind": blind, "aware": aware} {
		// The budget is a sliding estimate over two fixed windows, so allow its slack: the
		// previous window's calls are weighted down as it ages.
		if limit := budget + budget/4; r.maxWindowMint > limit {
			t.Errorf("%s: %d /token calls in 5 minutes, far past the budget of %d", name, r.maxWindowMint, budget)
		}
	}
	if tot[0].refused == 0 {
		t.Fatalf("the blind run refused nothing: the day does not reach the budget, so it shows nothing")
	}
	if tot[1].refused >= tot[0].refused {
		t.Errorf("budget-aware refresh refused %d cold requests, blind refresh %d: it should refuse fewer", tot[1].refused, tot[0].refused)
	}
	if tot[1].refresh >= tot[0].refresh {
		t.Errorf("budget-aware refresh made %d background refreshes, blind %d: it should make fewer", tot[1].refresh, tot[0].refresh)
	}
}

func TestRefreshAt(t *testing.T) {
	s := &Service{o: Options{RefreshAfter: 30 * time.Minute, MinRemaining: 10 * time.Minute, MintBudget: 1200}}
	hour := entry{IssuedAt: 0, ExpiresAt: time.Hour.Milliseconds()}
	for _, tc := range []struct {
		name  string
		used  float64
		blind bool
		want  time.Duration
	}{
		{name: "idle", used: 0, want: 30 * time.Minute},
		{name: "half used", used: 0.5, want: 30 * time.Minute},
		{name: "70% used: halfway to the end of servable life", used: 0.7, want: 40 * time.Minute},
		{name: "90% used: no background refresh", used: 0.9, want: 50 * time.Minute},
		{name: "over budget", used: 1.2, want: 50 * time.Minute},
		{name: "blind to the budget", used: 0.95, blind: true, want: 30 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.budgetBlind = tc.blind
			if got := s.refreshAt(hour, tc.used).Round(time.Second); got != tc.want {
				t.Errorf("refreshAt(used %.2f) = %s, want %s", tc.used, got, tc.want)
			}
		})
	}
}

// TestRefusedMintsDoNotCount: once the budget is spent, refused calls must not keep it spent.
func TestRefusedMintsDoNotCount(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	store := kv.NewMemory(clk.Now)
	t.Cleanup(func() { store.Close() })
	s := &Service{kv: store, o: Options{MintBudget: 10, Now: clk.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()
	for i := range 10 {
		if err := s.spendBudget(ctx, "acme"); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	for range 100 {
		if err := s.spendBudget(ctx, "acme"); !errors.Is(err, apperr.UpstreamUnavailable) {
			t.Fatalf("past the budget: %v, want UpstreamUnavailable", err)
		}
	}
	if used, _ := s.budgetUse("acme", clk.Now()); used != 1 {
		t.Errorf("budget use = %.2f after 10 calls and 100 refusals, want 1.00", used)
	}
	// Two windows on, the ten calls have aged out, whatever was refused meanwhile.
	clk.Advance(2 * budgetWindow)
	if err := s.spendBudget(ctx, "acme"); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestHashUserCached(t *testing.T) {
	store := kv.NewMemory(nil)
	t.Cleanup(func() { store.Close() })
	s, err := New(store, basiq.New(nil, 0), nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{EncryptionKey: testCacheKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for _, tc := range []struct {
		name   string
		tenant string
		id     int64
	}{
		{"first user", "acme", 1},
		{"same id, other tenant", "beta", 1},
		{"other user", "acme", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, again, direct := s.HashUser(tc.tenant, tc.id), s.HashUser(tc.tenant, tc.id), pseudonym.NewUsers(derive.Key(testCacheKey, "bff log pseudonyms v1")).Of(tc.tenant, tc.id)
			if first != direct || again != direct || len(direct) != 16 {
				t.Errorf("HashUser = %q then %q, computed %q", first, again, direct)
			}
		})
	}
	if s.HashUser("acme", 1) == s.HashUser("beta", 1) || s.HashUser("acme", 1) == s.HashUser("acme", 2) {
		t.Error("two users share a pseudonym")
	}
}
