package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// promtool returns the path of promtool (Debian's prometheus package), skipping the test when
// it is missing unless BFF_TEST_REQUIRE_SERVICES=1.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("BFF_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("promtool is not on PATH (apt-get install prometheus) and BFF_TEST_REQUIRE_SERVICES=1")
		}
		t.Skip("promtool is not on PATH (apt-get install prometheus)")
	}
	return p
}

func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestAlertRules: the rules pass promtool check rules and their unit tests, every alert has a
// for: and a severity, and every alert has a unit test.
func TestAlertRules(t *testing.T) {
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         *string           `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	strict(t, "prometheus/alerts.yaml", &rules)
	tests, err := os.ReadFile("prometheus/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			t.Run(r.Alert, func(t *testing.T) {
				if r.For == nil || !slices.Contains([]string{"page", "warning"}, r.Labels["severity"]) ||
					r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("needs for:, severity page or warning, summary and description: %+v", r)
				}
				if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
					t.Error("no unit test in alerts_test.yaml")
				}
			})
		}
	}
	runPromtool(t, "prometheus", "check", "rules", "alerts.yaml")
	runPromtool(t, "prometheus", "test", "rules", "alerts_test.yaml")
}

// TestDashboard: the Grafana dashboard is JSON, every query is valid PromQL (checked by
// promtool as recording rules, Grafana's variables filled in), and every bff_ metric it or
// the alerts use is documented in the README.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/bff-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || len(dash.Panels) < 10 {
		t.Fatalf("dashboard %q has %d panels", dash.Title, len(dash.Panels))
	}
	var exprs []string
	var recording strings.Builder
	recording.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for j, tg := range p.Targets {
			e := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*").Replace(tg.Expr)
			exprs = append(exprs, e)
			q, _ := json.Marshal(e)
			fmt.Fprintf(&recording, "      - record: dashboard:panel%d:target%d\n        expr: %s\n", i, j, q)
		}
	}
	alerts, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\bbff_[a-z_]+`).FindAllString(strings.Join(exprs, "\n")+string(alerts), -1)
	for _, n := range names {
		if strings.HasSuffix(n, "_") {
			continue // a family named in prose, such as bff_redis_pool_*
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !strings.Contains(string(readme), "`"+base+"`") && !strings.Contains(string(readme), base+"`") {
			t.Errorf("metric %s is not in the README's metrics table", base)
		}
	}
	var check map[string]any
	if err := yaml.Unmarshal([]byte(recording.String()), &check); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard-rules.yaml"), []byte(recording.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, dir, "check", "rules", "dashboard-rules.yaml")
}
