package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
