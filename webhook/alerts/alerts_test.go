package alerts

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
)

// Fixture provenance (testdata/):
//   - alertmanager_firing.json: captured Alertmanager v4 payload shipped as
//     assets/sample-v4-payload.json by the alertmanager-webhook-types crate.
//   - alertmanager_description_only.json: the Alertmanager example payload in
//     gist mobeigi/5a96f326bc06c7d6f283ecb7cb083f2b (no summary annotation).
//   - grafana_firing.json: the example in Grafana's webhook notifier docs
//     (docs/sources/alerting/.../integrations/webhook-notifier.md), verbatim.
//   - alertmanager_resolved.json, alertmanager_group*.json, grafana_resolved.json,
//     grafana_no_annotations.json: the above with status, alerts or annotations
//     edited to cover resolution, groups and missing annotations.

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFixtures(t *testing.T) {
	tests := []struct {
		file  string
		parse func([]byte) (string, error)
		want  string
	}{
		{"alertmanager_firing.json", Alertmanager,
			"[FIRING] ProbeFailure: BlackBox Probe Failure: https://server.example.org"},
		{"alertmanager_resolved.json", Alertmanager,
			"[RESOLVED] ProbeFailure: BlackBox Probe Failure: https://server.example.org"},
		{"alertmanager_description_only.json", Alertmanager,
			"[FIRING] Test: some description"},
		// Two firing alerts plus one resolved one: only the firing ones
		// count, and both fit (the second's name is the first's).
		{"alertmanager_group.json", Alertmanager,
			"[FIRING:2] ProbeFailure: BlackBox Probe Failure: https://server.example.org; BlackBox Probe Failure: https://api.example.org"},
		// A shared summary speaks for the whole group, truncated ones included.
		{"alertmanager_group_common.json", Alertmanager,
			"[FIRING:2] ProbeFailure: BlackBox probes failing for http_checks"},
		{"grafana_firing.json", Grafana,
			"[FIRING:2] High memory usage: This alert was triggered for zone us-1; High CPU usage: This alert was triggered for zone eu-1"},
		{"grafana_resolved.json", Grafana,
			"[RESOLVED] High memory usage: This alert was triggered for zone us-1"},
		{"grafana_no_annotations.json", Grafana,
			"[FIRING] High CPU usage (blue eu-1): CPU above 90%"},
		// Grafana payloads are a superset of Alertmanager's, minus the fallbacks.
		{"grafana_no_annotations.json", Alertmanager, "[FIRING]"},
		{"alertmanager_firing.json", Grafana,
			"[FIRING] ProbeFailure: BlackBox Probe Failure: https://server.example.org"},
	}
	for _, tt := range tests {
		got, err := tt.parse(fixture(t, tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.file, got, tt.want)
		}
	}
}

// edit decodes a fixture into generic JSON, lets fn change it and re-encodes.
func edit(t *testing.T, name string, fn func(p map[string]any)) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(fixture(t, name), &p); err != nil {
		t.Fatal(err)
	}
	fn(p)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func firstAlert(p map[string]any) map[string]any {
	return p["alerts"].([]any)[0].(map[string]any)
}

func TestNameFallbacks(t *testing.T) {
	tests := []struct {
		name string
		fn   func(p map[string]any)
		want string
	}{
		{"group label", func(p map[string]any) {
			delete(firstAlert(p)["labels"].(map[string]any), "alertname")
			p["groupLabels"] = map[string]any{"alertname": "FromGroup"}
		}, "[FIRING] FromGroup: BlackBox Probe Failure: https://server.example.org"},
		{"common label", func(p map[string]any) {
			delete(firstAlert(p)["labels"].(map[string]any), "alertname")
			delete(p, "groupLabels")
			p["commonLabels"] = map[string]any{"alertname": "FromCommon"}
		}, "[FIRING] FromCommon: BlackBox Probe Failure: https://server.example.org"},
		{"no name at all", func(p map[string]any) {
			delete(firstAlert(p), "labels")
			delete(p, "groupLabels")
			delete(p, "commonLabels")
		}, "[FIRING] BlackBox Probe Failure: https://server.example.org"},
		{"no annotations", func(p map[string]any) {
			delete(firstAlert(p), "annotations")
		}, "[FIRING] ProbeFailure"},
		{"whitespace collapsed", func(p map[string]any) {
			firstAlert(p)["annotations"] = map[string]any{"summary": "  disk\n\n full\t on\r\n db-1 \u0000 "}
		}, "[FIRING] ProbeFailure: disk full on db-1"},
		{"status upper-cased as given", func(p map[string]any) {
			p["status"] = " Resolved\n"
			firstAlert(p)["status"] = "resolved"
		}, "[RESOLVED] ProbeFailure: BlackBox Probe Failure: https://server.example.org"},
		{"truncated alerts counted as more", func(p map[string]any) {
			p["truncatedAlerts"] = 4
			delete(p, "commonAnnotations")
		}, "[FIRING] ProbeFailure: BlackBox Probe Failure: https://server.example.org (+4 more)"},
	}
	for _, tt := range tests {
		got, err := Alertmanager(edit(t, "alertmanager_firing.json", tt.fn))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestTruncateHebrew(t *testing.T) {
	// UCS-2: two parts are 134 characters; a cut must not split a rune.
	summary := strings.Repeat("השרת לא מגיב ", 40) // 520 runes
	body := edit(t, "alertmanager_firing.json", func(p map[string]any) {
		firstAlert(p)["annotations"] = map[string]any{"summary": summary}
		firstAlert(p)["labels"].(map[string]any)["alertname"] = "שרת_נפל"
	})
	got, err := Alertmanager(body)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(got) {
		t.Fatalf("invalid UTF-8: %q", got)
	}
	if n := bridge.CountSegments(got).Count; n > DefaultSegments {
		t.Errorf("%d parts, want at most %d", n, DefaultSegments)
	}
	if !strings.HasSuffix(got, "…") {
		t.Errorf("cut text %q does not end with …", got)
	}
	full := "[FIRING] שרת_נפל: " + strings.TrimSpace(summary)
	if prefix := strings.TrimSuffix(got, "…"); !strings.HasPrefix(full, prefix) || utf8.RuneCountInString(prefix) < 120 {
		t.Errorf("got %q, want a prefix of %q filling most of two parts", got, full)
	}
}

// A GSM-7 text cut stays GSM-7: two parts hold 306 characters, not the
// 134 of UCS-2 that a "…" would make it.
func TestCutKeepsGSM7(t *testing.T) {
	body := edit(t, "alertmanager_firing.json", func(p map[string]any) {
		firstAlert(p)["annotations"] = map[string]any{"summary": strings.Repeat("disk full on db1 ", 40)}
	})
	got, err := Alertmanager(body)
	if err != nil {
		t.Fatal(err)
	}
	seg := bridge.CountSegments(got)
	if seg.Encoding != bridge.GSM7 || seg.Count != 2 || len(got) < 290 || !strings.HasSuffix(got, "...") {
		t.Errorf("%q: %d %s parts, %d characters; want two GSM-7 parts nearly full, ending with ...", got, seg.Count, seg.Encoding, len(got))
	}
}

func TestCut(t *testing.T) {
	runes := func(n int) func(string) bool {
		return func(s string) bool { return utf8.RuneCountInString(s) <= n }
	}
	tests := []struct {
		in, tail string
		n        int
		want     string
	}{
		{"short", "", 10, "short"},
		{"exactly10!", "", 10, "exactly10!"},
		{"eleven runes", "", 10, "eleven..."}, // GSM-7 has no "…"
		{"שלום עולם יפה", "", 6, "שלום…"},     // trailing space before the cut is dropped
		{"אבגדהוזחטי", "", 4, "אבג…"},
		{"a long summary", " (+2 more)", 15, "a... (+2 more)"}, // the tail is kept whole
	}
	for _, tt := range tests {
		if got := cut(tt.in, tt.tail, runes(tt.n)); got != tt.want {
			t.Errorf("cut(%q, %q, %d) = %q, want %q", tt.in, tt.tail, tt.n, got, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		field string
	}{
		{"not JSON", []byte("status=firing"), "body"},
		{"truncated JSON", fixture(t, "alertmanager_firing.json")[:100], "body"},
		{"empty body", nil, "body"},
		{"JSON array", []byte(`[]`), "body"},
		{"no alerts", edit(t, "alertmanager_firing.json", func(p map[string]any) { delete(p, "alerts") }), "alerts"},
		{"empty alerts", edit(t, "grafana_firing.json", func(p map[string]any) { p["alerts"] = []any{} }), "alerts"},
		{"no status", edit(t, "grafana_firing.json", func(p map[string]any) { delete(p, "status") }), "status"},
		{"blank status", edit(t, "alertmanager_firing.json", func(p map[string]any) { p["status"] = " " }), "status"},
		{"alerts not a list", []byte(`{"status":"firing","alerts":{"a":1}}`), "alerts"},
		{"label not a string", []byte(`{"status":"firing","alerts":[{"labels":{"alertname":7}}]}`), "alerts.labels"},
	}
	for _, tt := range tests {
		for name, parse := range map[string]func([]byte) (string, error){"Alertmanager": Alertmanager, "Grafana": Grafana} {
			got, err := parse(tt.body)
			var be *bridge.Error
			if !errors.As(err, &be) {
				t.Errorf("%s/%s: got (%q, %v), want a *bridge.Error", name, tt.name, got, err)
				continue
			}
			if be.Reason != bridge.ReasonInvalid || be.Temporary() || be.Field != tt.field {
				t.Errorf("%s/%s: error %+v, want permanent %s on field %q", name, tt.name, be, bridge.ReasonInvalid, tt.field)
			}
			if be.Msg == "" {
				t.Errorf("%s/%s: error has no message", name, tt.name)
			}
		}
	}
}

func fuzzSeeds(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			f.Add(fixture(f, e.Name()))
		}
	}
	f.Add([]byte(`{"status":"firing","alerts":[{}]}`))
	// Invalid UTF-8 bytes and a lone surrogate escape must come out valid.
	f.Add([]byte(`{"status":"\u05e9\ud800","alerts":[{"status":"x","annotations":{"summary":"` + "\xff\xfe" + `"}}],"truncatedAlerts":-5,"title":"[","message":"\n\n"}`))
}

func checkText(t *testing.T, got string, err error) {
	if err != nil {
		var be *bridge.Error
		if !errors.As(err, &be) || be.Field == "" {
			t.Fatalf("error %v (%T) is not a *bridge.Error naming a field", err, err)
		}
		return
	}
	if !utf8.ValidString(got) {
		t.Fatalf("invalid UTF-8: %q", got)
	}
	if n := bridge.CountSegments(got).Count; n > DefaultSegments {
		t.Fatalf("%d parts, want at most %d: %q", n, DefaultSegments, got)
	}
	if !strings.HasPrefix(got, "[") || strings.ContainsAny(got, "\n\r\t") || strings.Contains(got, "  ") {
		t.Fatalf("not one clean line: %q", got)
	}
}

func FuzzAlertmanager(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := Alertmanager(body)
		checkText(t, got, err)
	})
}

func FuzzGrafana(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := Grafana(body)
		checkText(t, got, err)
	})
}
