package alerts

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
)

// group builds an Alertmanager payload of alerts given as
// "name/severity/summary", firing unless the status says otherwise.
func group(t *testing.T, status string, truncated int, alerts ...string) *Notification {
	t.Helper()
	var as []map[string]any
	for _, a := range alerts {
		f := strings.SplitN(a, "/", 3)
		labels := map[string]string{"alertname": f[0], "instance": strings.ToLower(f[0])}
		if f[1] != "" {
			labels["severity"] = f[1]
		}
		as = append(as, map[string]any{"status": status, "labels": labels, "annotations": map[string]string{"summary": f[2]}})
	}
	b, _ := json.Marshal(map[string]any{"status": status, "alerts": as, "truncatedAlerts": truncated,
		"groupLabels": map[string]string{"job": "node"}})
	n, err := Parse(b, false)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The most severe alert comes first, whatever order the payload has;
// alerts without a severity come last; equals keep their order.
func TestSummaryMostSevereFirst(t *testing.T) {
	n := group(t, "firing", 0, "Slow//p99 2s", "DiskFull/warning/db 91%", "Down/critical/db unreachable", "DiskFull/warning/db 93%")
	want := "[FIRING:4] Down: db unreachable; DiskFull: db 91%; db 93%; Slow: p99 2s"
	if got := n.Text(Format{}); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// Alerts are listed while they fit in the parts allowed, the rest counted
// as "+N more" (alerts Alertmanager truncated included), never over the
// budget; with a reference, the budget counts it too.
func TestSummaryWithinBudget(t *testing.T) {
	var alerts []string
	for i := range 30 {
		alerts = append(alerts, fmt.Sprintf("DiskFull/critical/disk %d almost full on a long host name", i))
	}
	n := group(t, "firing", 5, alerts...)
	for _, f := range []Format{{MaxSegments: 1}, {MaxSegments: 2}, {MaxSegments: 3, Ref: 12}, {MaxSegments: 10}} {
		got := n.Text(f)
		seg := bridge.CountSegments(got)
		if seg.Count > f.MaxSegments {
			t.Errorf("%+v: %d parts: %q", f, seg.Count, got)
		}
		listed := strings.Count(got, "almost full")
		wantMore := fmt.Sprintf(" (+%d more)", 30+5-listed)
		if listed < 1 || !strings.HasSuffix(got, wantMore) || !strings.HasPrefix(got, "[FIRING:30] DiskFull: disk 0 ") && f.Ref == 0 {
			t.Errorf("%+v: %q; want %d listed then %q", f, got, listed, wantMore)
		}
		if f.Ref != 0 && !strings.HasPrefix(got, "#12 [FIRING:30] DiskFull: disk 0 ") {
			t.Errorf("%+v: %q; want the reference first", f, got)
		}
		// One more alert would not have fitted: the budget is used.
		if listed < 30 {
			if next := strings.TrimSuffix(got, wantMore) + fmt.Sprintf("; disk %d almost full on a long host name", listed) +
				fmt.Sprintf(" (+%d more)", 30+5-listed-1); bridge.CountSegments(next).Count <= f.MaxSegments {
				t.Errorf("%+v: %q stopped early; %q fits", f, got, next)
			}
		}
	}
	if a, b := n.Text(Format{MaxSegments: 1}), n.Text(Format{MaxSegments: 3}); strings.Count(a, ";") >= strings.Count(b, ";") {
		t.Errorf("three parts list no more than one:\n%q\n%q", a, b)
	}
}

func TestFingerprintAndResolved(t *testing.T) {
	a := group(t, "firing", 0, "DiskFull/warning/db 91%", "Down/critical/x")
	same := group(t, "firing", 0, "Down/critical/x", "DiskFull/warning/db 95% now")
	other := group(t, "firing", 0, "DiskFull/warning/db 91%")
	resolved := group(t, "resolved", 0, "DiskFull/warning/db 91%", "Down/critical/x")
	if a.Fingerprint() != same.Fingerprint() {
		t.Error("the same alerts in another order, with other annotations, are a different fingerprint")
	}
	if a.Fingerprint() == other.Fingerprint() || a.Fingerprint() == resolved.Fingerprint() {
		t.Error("an alert fewer, or resolved, is the same fingerprint")
	}
	if a.Resolved() || !resolved.Resolved() {
		t.Errorf("Resolved: firing %v, resolved %v", a.Resolved(), resolved.Resolved())
	}
}
