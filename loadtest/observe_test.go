package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/metrics"
)

// The fake provider checks sends as voip-communications does, notes when
// each referenced message arrived, and Delivery matches them with the
// accepts: arrived, missing, and the latency percentiles.
func TestFakeProviderDelivery(t *testing.T) {
	p, err := StartFakeProvider("127.0.0.1:0", 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	send := func(msg string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, p.URL+"/sms/send",
			strings.NewReader(url.Values{"to": {"972501234567"}, "msg": {msg}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(FakeProviderKey, FakeProviderPassword)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	accepted := time.Now()
	for _, msg := range []string{"ref R-1\r\nhello", "ref R-2 hello", "ref R-1\r\nhello again", "no ref"} {
		if code := send(msg); code != http.StatusOK {
			t.Fatalf("send %q: HTTP %d", msg, code)
		}
	}
	if distinct, other := p.Received(); distinct != 2 || other != 2 {
		t.Errorf("received %d distinct, %d other; want 2, 2", distinct, other)
	}
	d := p.Delivery([]Accept{{"R-1", accepted}, {"R-2", accepted}, {"R-3", accepted}})
	if d.Arrived != 2 || d.Missing != 1 {
		t.Errorf("delivery %+v; want 2 arrived, 1 missing", d)
	}
	// R-2 arrived after R-1 had been answered, 20 ms later at least.
	if d.P50 < 0 || d.Max < 20*time.Millisecond || d.P50 > d.Max {
		t.Errorf("delivery %+v; want 0 <= p50 <= max, max >= 20ms", d)
	}
}

func TestScrapeDepth(t *testing.T) {
	m := metrics.New(func(context.Context) (bridge.QueueStats, error) { return bridge.QueueStats{Queued: 4321}, nil })
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	v, err := ScrapeDepth(t.Context(), srv.Client(), srv.URL)
	if err != nil || v != 4321 {
		t.Fatalf("ScrapeDepth = %v, %v; want 4321", v, err)
	}
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer empty.Close()
	if _, err := ScrapeDepth(t.Context(), empty.Client(), empty.URL); err == nil {
		t.Error("ScrapeDepth of a page without the gauge: no error")
	}
}

// This process's CPU read from /proc agrees with getrusage to a tick.
func TestProcessCPUOf(t *testing.T) {
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	} // burn some CPU so there is something to count
	own := ProcessCPU()
	got, err := ProcessCPUOf(os.Getpid())
	if err != nil {
		t.Skip(err) // no /proc
	}
	if got > ProcessCPU() || got < own-2*clockTick {
		t.Errorf("ProcessCPUOf(self) = %v; getrusage says %v", got, own)
	}
	if srv, err := ServerCPUOf(os.Getpid()); err != nil || srv < got {
		t.Errorf("ServerCPUOf(self) = %v, %v; want at least the process's own %v", srv, err, got)
	}
}
