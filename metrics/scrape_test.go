package metrics

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// gather reads every sample of m's registry, keyed by the series as the
// exposition format writes it: name{label="value",...}.
func gather(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := f.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case s.Gauge != nil:
				out[key] = s.Gauge.GetValue()
			case s.Counter != nil:
				out[key] = s.Counter.GetValue()
			}
		}
	}
	return out
}

func emptyQueue(context.Context) (bridge.QueueStats, error) { return bridge.QueueStats{}, nil }

// The smarthost queue's gauges report what the store says at each scrape,
// and -1 when it cannot be read.
func TestMailQueueGauges(t *testing.T) {
	var st bridge.QueueStats
	var err error
	m := New(emptyQueue)
	m.WatchMailQueue(func(context.Context) (bridge.QueueStats, error) { return st, err })

	if got := gather(t, m); got["smsbridge_mail_queue_depth"] != 0 || got["smsbridge_mail_queue_oldest_age_seconds"] != 0 {
		t.Errorf("empty mail queue: depth %v, age %v; want 0, 0", got["smsbridge_mail_queue_depth"], got["smsbridge_mail_queue_oldest_age_seconds"])
	}
	st = bridge.QueueStats{Queued: 7, OldestQueued: time.Now().Add(-10 * time.Minute)}
	got := gather(t, m)
	if got["smsbridge_mail_queue_depth"] != 7 {
		t.Errorf("smsbridge_mail_queue_depth = %v, want 7", got["smsbridge_mail_queue_depth"])
	}
	if age := got["smsbridge_mail_queue_oldest_age_seconds"]; age < 600 || age > 3600 {
		t.Errorf("smsbridge_mail_queue_oldest_age_seconds = %v, want about 600", age)
	}
	err = errors.New("disk gone")
	if got := gather(t, m); got["smsbridge_mail_queue_depth"] != -1 {
		t.Errorf("unreadable store: smsbridge_mail_queue_depth = %v, want -1", got["smsbridge_mail_queue_depth"])
	}
}

// smsbridge_store_ready follows the store's answer at each scrape.
func TestStoreReadyGauge(t *testing.T) {
	var err error
	m := New(emptyQueue)
	m.WatchStore(func(context.Context) error { return err })
	if got := gather(t, m)["smsbridge_store_ready"]; got != 1 {
		t.Errorf("store ready: smsbridge_store_ready = %v, want 1", got)
	}
	err = errors.New("database is read-only")
	if got := gather(t, m)["smsbridge_store_ready"]; got != 0 {
		t.Errorf("store failing: smsbridge_store_ready = %v, want 0", got)
	}
	err = nil
	if got := gather(t, m)["smsbridge_store_ready"]; got != 1 {
		t.Errorf("store back: smsbridge_store_ready = %v, want 1", got)
	}
}

// A store that hangs costs a scrape scrapeTimeout per read, not forever,
// and shows as not ready with an unknown queue depth.
func TestScrapeOfAHungStoreEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
		m := New(func(ctx context.Context) (bridge.QueueStats, error) { return bridge.QueueStats{}, hang(ctx) })
		m.WatchStore(hang)
		start := time.Now()
		got := gather(t, m)
		if took := time.Since(start); took < scrapeTimeout || took > 2*scrapeTimeout {
			t.Errorf("scrape took %v, want between %v and %v (both reads time out, run in parallel or not)", took, scrapeTimeout, 2*scrapeTimeout)
		}
		if got["smsbridge_store_ready"] != 0 || got["smsbridge_queue_depth"] != -1 {
			t.Errorf("hung store: ready %v, depth %v; want 0, -1", got["smsbridge_store_ready"], got["smsbridge_queue_depth"])
		}
	})
}

// Every configured provider has a closed circuit series from the start;
// an open one stays open when the configuration is reloaded, and a
// provider removed from it loses its series, its concurrency limit's too.
func TestProvidersCircuitSeries(t *testing.T) {
	m := New(emptyQueue)
	m.Providers([]string{"voip", "edge"})
	got := gather(t, m)
	for _, p := range []string{"voip", "edge"} {
		if v, ok := got[`smsbridge_provider_circuit_open{provider="`+p+`"}`]; !ok || v != 0 {
			t.Errorf("circuit of %s = %v (present %v), want 0", p, v, ok)
		}
	}
	m.Circuit("edge", true)
	m.ConcurrencyLimit("voip", 8)
	m.ConcurrencyLimit("edge", 3)
	m.Providers([]string{"edge", "held"})
	got = gather(t, m)
	want := map[string]float64{`smsbridge_provider_circuit_open{provider="edge"}`: 1, `smsbridge_provider_circuit_open{provider="held"}`: 0,
		`smsbridge_provider_concurrency_limit{provider="edge"}`: 3}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if _, ok := got[`smsbridge_provider_circuit_open{provider="voip"}`]; ok {
		t.Error("voip, removed from the configuration, still has a circuit series")
	}
	if _, ok := got[`smsbridge_provider_concurrency_limit{provider="voip"}`]; ok {
		t.Error("voip, removed from the configuration, still has a concurrency limit series")
	}
}
