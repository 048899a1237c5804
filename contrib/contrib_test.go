package contrib

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/internal/promsel"
)

// The dashboard imports into any Grafana: every panel and query reads
// the data source chosen at import (${DS_PROMETHEUS}, an input and a
// variable), every selector is filtered by the instance variable, and
// every graph has a unit.
func TestDashboardIsImportable(t *testing.T) {
	d, err := ReadDashboard()
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v, want the one Prometheus data source DS_PROMETHEUS", d.Inputs)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Datasource != nil && v.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("variable %s reads data source %q, want ${DS_PROMETHEUS}", v.Name, v.Datasource.UID)
		}
	}
	if vars["DS_PROMETHEUS"] != "datasource" || vars["instance"] != "query" {
		t.Errorf("variables %v, want DS_PROMETHEUS (datasource) and instance (query)", vars)
	}
	ids := map[int]bool{}
	graphs := 0
	for _, p := range d.AllPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		graphs++
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: data source %+v, want prometheus ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
		if p.Type != "state-timeline" && p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("panel %q has no unit", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: a query reads data source %+v, want ${DS_PROMETHEUS}", p.Title, tg.Datasource)
			}
			sels, err := promsel.Selectors(tg.Expr)
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
			}
			for _, s := range sels {
				if !strings.Contains(s.Matchers, `instance=~"$instance"`) {
					t.Errorf("panel %q: %s{%s} is not filtered by the instance variable", p.Title, s.Name, s.Matchers)
				}
			}
		}
	}
	if graphs < 15 {
		t.Errorf("%d panels; the issue asks for intake, sends, latency, queue, circuits, inbound, bounces, opt-outs, mail queue and store", graphs)
	}
}

// Each alert the issue asks for is there, pages with a severity after a
// `for:`, and says what to do: a summary, a description and a runbook
// pointing to its section of RUNBOOK.md.
func TestAlertRulesAreComplete(t *testing.T) {
	rules, err := ReadRules()
	if err != nil {
		t.Fatal(err)
	}
	runbook, err := os.ReadFile("prometheus/RUNBOOK.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for line := range strings.Lines(string(runbook)) {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			sections[strings.TrimSpace(h)] = true
		}
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if r.Alert == "" {
			t.Errorf("rule %q: recording rules would name metrics the daemon does not export; the check assumes none", r.Record)
			continue
		}
		seen[r.Alert] = true
		if _, err := time.ParseDuration(r.For); err != nil {
			t.Errorf("%s: for: %q: %v", r.Alert, r.For, err)
		}
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		if want := "RUNBOOK.md#" + strings.ToLower(r.Alert); !strings.Contains(r.Annotations["runbook"], want) {
			t.Errorf("%s: the runbook annotation does not point to %s", r.Alert, want)
		}
		if !sections[r.Alert] {
			t.Errorf("%s: RUNBOOK.md has no section \"## %s\"", r.Alert, r.Alert)
		}
	}
	for _, want := range []string{"SMSBridgeQueueGrowing", "SMSBridgeQueueOldestTooOld", "SMSBridgeProviderCircuitOpen",
		"SMSBridgeProviderFailureRatioHigh", "SMSBridgeSmarthostQueueStuck", "SMSBridgeStoreNotReady"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// grafanaVars stands in for the variables Grafana replaces before a query
// reaches Prometheus.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "6h", "$instance", ".*")

// Every query of the dashboard and the rules parses as PromQL, with
// Prometheus' own parser: promtool's "promql format". scripts/check-rules.sh
// builds promtool and runs this test with PROMTOOL set (CI does); without
// it the test has nothing to run the queries through and skips.
func TestQueriesParse(t *testing.T) {
	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		t.Skip("PROMTOOL is not set: scripts/check-rules.sh builds promtool and runs this test")
	}
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		expr := grafanaVars.Replace(q.Expr)
		if strings.Contains(expr, "$") {
			t.Errorf("%s: a Grafana variable this test does not know: %s", q.Where, q.Expr)
			continue
		}
		out, err := exec.CommandContext(t.Context(), promtool, "--experimental", "promql", "format", expr).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %q does not parse: %v\n%s", q.Where, q.Expr, err, out)
		}
	}
	if len(qs) < 30 {
		t.Errorf("%d queries; reading the dashboard or the rules lost some", len(qs))
	}
}

// Every query names its metrics plainly: promsel finds at least one, and
// no selector leaves the name to a regexp.
func TestQueriesNameTheirMetrics(t *testing.T) {
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		names, err := promsel.Names(q.Expr)
		if err != nil {
			t.Errorf("%s: %q: %v", q.Where, q.Expr, err)
		} else if len(names) == 0 {
			t.Errorf("%s: %q selects no metric", q.Where, q.Expr)
		}
	}
}
