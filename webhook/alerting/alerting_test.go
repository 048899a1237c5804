package alerting_test

import (
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/webhook/alerting"
)

func read(t testing.TB, name string) []byte {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPayloads(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func([]byte) (string, error)
		file string
		want string
	}{
		// The example payload of Grafana's webhook notifier documentation.
		{"grafana", alerting.Grafana, "grafana.json", "[FIRING:2] High memory usage: This alert was triggered for zone us-1 (+1 more)"},
		{"alertmanager firing", alerting.Alertmanager, "alertmanager-firing.json", "[FIRING:2] HighLatency: p99 latency above 2s"},
		{"alertmanager resolved", alerting.Alertmanager, "alertmanager-resolved.json", "[RESOLVED] DiskFull: /var on db-1 is 95% full"},
	} {
		got, err := tc.fn(read(t, tc.file))
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v\nwant %q", tc.name, got, err, tc.want)
		}
	}
}

func TestTruncation(t *testing.T) {
	long := strings.Repeat("שרת ", 200)
	got, err := alerting.Alertmanager([]byte(`{"status":"firing","alerts":[{"status":"firing","labels":{"alertname":"X"},"annotations":{"summary":"` + long + `"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(got); n != alerting.MaxRunes || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
		t.Errorf("%d runes, %q", n, got)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	for body, field := range map[string]string{
		`{`:                                "body",
		`{"status":"firing","alerts":[]}`:  "alerts",
		`{"alerts":[{"status":"firing"}]}`: "status",
	} {
		_, err := alerting.Grafana([]byte(body))
		var be *bridge.Error
		if e, ok := err.(*bridge.Error); ok {
			be = e
		}
		if be == nil || be.Field != field || be.Reason != bridge.ReasonInvalid {
			t.Errorf("%s: %v, want invalid %s", body, err, field)
		}
	}
}

func FuzzAlertmanager(f *testing.F) {
	f.Add(read(f, "alertmanager-firing.json"))
	f.Add(read(f, "grafana.json"))
	f.Add([]byte(`{"status":"x","alerts":[{}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := alerting.Alertmanager(body)
		if err != nil {
			return
		}
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > alerting.MaxRunes || got == "" {
			t.Fatalf("bad text %q", got)
		}
	})
}
