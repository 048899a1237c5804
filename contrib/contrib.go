// Package contrib holds what operators install beside the daemon (the
// systemd unit, the Grafana dashboard, the Prometheus alert rules) and
// reads the dashboard and the rules, so tests can check their queries
// against the metrics the daemon exports and against PromQL's grammar.
package contrib

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"

	"go.yaml.in/yaml/v3"
)

var (
	//go:embed grafana/smsbridge.json
	dashboardJSON []byte
	//go:embed prometheus/smsbridge.rules.yml
	rulesYAML []byte
)

// Dashboard is the part of the Grafana dashboard the checks read.
type Dashboard struct {
	Inputs []struct {
		Name     string
		Type     string
		PluginID string
	} `json:"__inputs"`
	Panels     []Panel
	Templating struct {
		List []Variable
	}
}

// Panel is a dashboard panel; a row holds its panels when collapsed.
type Panel struct {
	ID          int
	Title       string
	Type        string
	Datasource  *Datasource
	Targets     []Target
	FieldConfig struct {
		Defaults struct{ Unit string }
	}
	Panels []Panel
}

// Target is one query of a panel.
type Target struct {
	Expr       string
	Datasource *Datasource
}

// Variable is a template variable. Query is a string or, since Grafana
// 10, an object with the query in its "query" field.
type Variable struct {
	Name       string
	Type       string
	Datasource *Datasource
	Query      any
}

// Datasource names a data source by type and uid.
type Datasource struct{ Type, UID string }

// ReadDashboard parses the dashboard.
func ReadDashboard() (Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(dashboardJSON, &d); err != nil {
		return d, fmt.Errorf("grafana/smsbridge.json: %w", err)
	}
	return d, nil
}

// AllPanels lists the panels, those inside collapsed rows included.
func (d Dashboard) AllPanels() []Panel {
	var out []Panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// Rule is an alerting or recording rule.
type Rule struct {
	Alert       string
	Record      string
	Expr        string
	For         string
	Labels      map[string]string
	Annotations map[string]string
}

// ReadRules parses the alert rules.
func ReadRules() ([]Rule, error) {
	var f struct {
		Groups []struct {
			Name  string
			Rules []Rule
		}
	}
	if err := yaml.Unmarshal(rulesYAML, &f); err != nil {
		return nil, fmt.Errorf("prometheus/smsbridge.rules.yml: %w", err)
	}
	var out []Rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// Query is a PromQL expression of the dashboard or the rules, with where
// it is used. Dashboard queries keep their Grafana variables.
type Query struct {
	Where string
	Expr  string
}

// labelValues is Grafana's variable query, which is not PromQL.
var labelValues = regexp.MustCompile(`^label_values\(\s*(.+?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$`)

// Queries returns every query of the dashboard (panels and variables, a
// label_values() variable as the selector it reads) and of the rules.
func Queries() ([]Query, error) {
	d, err := ReadDashboard()
	if err != nil {
		return nil, err
	}
	rules, err := ReadRules()
	if err != nil {
		return nil, err
	}
	var out []Query
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			out = append(out, Query{Where: "dashboard panel " + p.Title, Expr: t.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		if m := labelValues.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		out = append(out, Query{Where: "dashboard variable " + v.Name, Expr: q})
	}
	for _, r := range rules {
		out = append(out, Query{Where: "rule " + r.Alert + r.Record, Expr: r.Expr})
	}
	return out, nil
}
