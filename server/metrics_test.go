package main

import (
	"strings"
	"testing"

	"github.com/basiq-bff/bff/server/internal/buildinfo"
)

// metricLines returns the replica's /metrics lines that start with one of the prefixes.
func metricLines(t *testing.T, r *replica, prefixes ...string) []string {
	t.Helper()
	body := string(newClient(t, r.admin).do("GET", "/metrics", "", nil).body)
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// TestOperationalMetrics: build info agrees with --version; the breaker, database pool and
// Redis pool are exported; and the series of removed tenants and keys go away on reload
// (a removed key's purge counter one reload later).
func TestOperationalMetrics(t *testing.T) {
	s, keys := rotationStack(t, "")
	s.addUser("acme", "ann@acme.test", testPassword)
	r := s.start()
	loginMany(t, s, []*replica{r}, "beta", 1)
	ann := newClient(t, r.url)
	ann.mustLogin("acme", "ann@acme.test", testPassword)
	ann.mustToken()

	version, _, err := runCLI(t, nil, "", "--version")
	if err != nil {
		t.Fatal(err)
	}
	bi := buildinfo.Read()
	if want := `bff_build_info{go="` + bi.Go + `",revision="` + bi.Revision + `",version="` + bi.Version + `"} 1`; len(metricLines(t, r, want)) != 1 ||
		strings.TrimSpace(version) != bi.String() {
		t.Errorf("build info: --version %q, metrics %q, want %q", version, metricLines(t, r, "bff_build_info"), want)
	}
	wants := []string{
		`bff_circuit_breaker_state{tenant="beta"} 0`,
		`bff_circuit_breaker_state{tenant="acme"} 0`,
		`go_sql_open_connections{db_name="bff"}`,
		`go_sql_max_open_connections{db_name="bff"}`,
	}
	// The Redis pool's gauges exist only with Redis; the in-process store has no pool.
	redisPool := []string{`bff_redis_pool_connections `, `bff_redis_pool_hits_total `, `bff_redis_pool_timeouts_total `}
	if s.redisURL != "" {
		wants = append(wants, redisPool...)
	} else {
		for _, l := range redisPool {
			if got := metricLines(t, r, l); len(got) != 0 {
				t.Errorf("/metrics has %s without Redis", got)
			}
		}
	}
	for _, want := range wants {
		if len(metricLines(t, r, want)) == 0 {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	has := func(label string) []string {
		var out []string
		for _, l := range metricLines(t, r, "bff_") {
			if strings.Contains(l, label) {
				out = append(out, l)
			}
		}
		return out
	}
	if len(has(`key_id="key-a"`)) == 0 || len(has(`tenant="acme"`)) == 0 {
		t.Fatal("no series of key-a or of acme before the reload")
	}

	// Key A replaced by B, tenant acme removed.
	s.betaKeys = []string{s.keyFile("key-b", keys["b"], false)}
	s.withoutAcme = true
	s.writeConfig(s.extra)
	waitReload(t, []*replica{r}, "applied", 1)
	for _, l := range append(has(`key_id="key-a"`), has(`tenant="acme"`)...) {
		if !strings.HasPrefix(l, "bff_tokens_purged_total") {
			t.Errorf("series left after the reload: %s", l)
		}
	}
	if len(has(`bff_tokens_purged_total{key_id="key-a",tenant="beta"}`)) != 1 {
		t.Errorf("the purge of key-a is not visible: %v", metricLines(t, r, "bff_tokens_purged_total"))
	}

	s.writeConfig(s.extra + "\n# touched\n")
	waitReload(t, []*replica{r}, "applied", 2)
	if left := append(has(`key_id="key-a"`), has(`tenant="acme"`)...); len(left) != 0 {
		t.Errorf("series left one reload later: %v", left)
	}
}
