package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// A scrape reads the store once for both queue gauges, and reports what
// it read.
func TestScrapeReadsTheQueueOnce(t *testing.T) {
	calls := 0
	oldest := time.Now().Add(-90 * time.Second)
	m := New(func(context.Context) (bridge.QueueStats, error) {
		calls++
		return bridge.QueueStats{Queued: 1234, OldestQueued: oldest}, nil
	})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("one scrape read the queue stats %d times, want 1", calls)
	}
	if !strings.Contains(string(body), "\nsmsbridge_queue_depth 1234\n") {
		t.Errorf("no smsbridge_queue_depth 1234 in:\n%s", body)
	}
	var age float64
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "smsbridge_queue_oldest_age_seconds "); ok {
			if _, err := fmt.Sscan(v, &age); err != nil {
				t.Fatal(err)
			}
		}
	}
	if age < 90 || age > time.Since(oldest).Seconds() {
		t.Errorf("smsbridge_queue_oldest_age_seconds = %v, want about 90", age)
	}
}

// The last hour's sends are counted per provider and minute: an outcome
// counts for 60 minutes, then drops out.
func TestSendsLastHour(t *testing.T) {
	m := New(func(context.Context) (bridge.QueueStats, error) { return bridge.QueueStats{}, nil })
	now := time.Date(2030, 1, 2, 10, 0, 30, 0, time.UTC)
	m.recent.now = func() time.Time { return now }
	m.Attempt("voip", time.Second, []bridge.Outcome{{State: bridge.StateSent}, {State: bridge.StateSent}, {State: bridge.StateQueued}})
	now = now.Add(30 * time.Minute)
	m.Attempt("voip", time.Second, []bridge.Outcome{{State: bridge.StateFailed}})
	m.Attempt("held", time.Second, []bridge.Outcome{{State: bridge.StateSent}, {State: bridge.StateCancelled}})
	want := map[string]SendCounts{"voip": {Sent: 2, Retried: 1, Failed: 1}, "held": {Sent: 1}}
	if got := m.SendsLastHour(); !reflect.DeepEqual(got, want) {
		t.Fatalf("at +30m: %+v, want %+v", got, want)
	}
	now = now.Add(30 * time.Minute) // the first minute's outcomes are an hour old
	want = map[string]SendCounts{"voip": {Failed: 1}, "held": {Sent: 1}}
	if got := m.SendsLastHour(); !reflect.DeepEqual(got, want) {
		t.Fatalf("at +60m: %+v, want %+v", got, want)
	}
	// A bucket reused an hour later starts from nothing.
	m.Attempt("voip", time.Second, []bridge.Outcome{{State: bridge.StateSent}})
	now = now.Add(30 * time.Minute)
	want = map[string]SendCounts{"voip": {Sent: 1}, "held": {}}
	if got := m.SendsLastHour(); !reflect.DeepEqual(got, want) {
		t.Fatalf("at +90m: %+v, want %+v", got, want)
	}
}

// OpenCircuits reads the circuit gauge the dispatcher sets.
func TestOpenCircuits(t *testing.T) {
	m := New(func(context.Context) (bridge.QueueStats, error) { return bridge.QueueStats{}, nil })
	if got := m.OpenCircuits(); len(got) != 0 {
		t.Fatalf("before any change: %v", got)
	}
	m.Circuit("voip", true)
	m.Circuit("held", true)
	m.Circuit("held", false)
	if got := m.OpenCircuits(); !reflect.DeepEqual(got, map[string]bool{"voip": true}) {
		t.Fatalf("OpenCircuits = %v, want voip only", got)
	}
}
