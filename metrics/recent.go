package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/smsbridge/smsbridge/bridge"
)

// Recent is the window SendsLastHour counts over.
const Recent = time.Hour

// SendCounts are one provider's send outcomes over the last hour.
type SendCounts struct {
	Sent    int // accepted by the provider
	Retried int // failed for now, tried again later (or elsewhere)
	Failed  int // failed for good (and expired)
}

// recent counts send outcomes per provider in minute buckets, so the
// console can show the last hour without a Prometheus server to take
// rates of the counters. Memory is 60 buckets a provider.
type recent struct {
	now func() time.Time

	mu        sync.Mutex
	providers map[string]*[60]bucket
}

type bucket struct {
	minute int64 // Unix minute the counts are of
	SendCounts
}

func newRecent() *recent { return &recent{now: time.Now, providers: map[string]*[60]bucket{}} }

func (r *recent) add(provider string, outcomes []bridge.Outcome) {
	minute := r.now().Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	ring := r.providers[provider]
	if ring == nil {
		ring = new([60]bucket)
		r.providers[provider] = ring
	}
	b := &ring[minute%60]
	if b.minute != minute {
		*b = bucket{minute: minute}
	}
	for _, o := range outcomes {
		switch o.State {
		case bridge.StateSent:
			b.Sent++
		case bridge.StateQueued:
			b.Retried++
		case bridge.StateFailed:
			b.Failed++
		}
	}
}

// lastHour sums the buckets of the last 60 minutes, this one included.
func (r *recent) lastHour() map[string]SendCounts {
	minute := r.now().Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]SendCounts, len(r.providers))
	for name, ring := range r.providers {
		var c SendCounts
		for _, b := range ring {
			if b.minute > minute-60 && b.minute <= minute {
				c.Sent += b.Sent
				c.Retried += b.Retried
				c.Failed += b.Failed
			}
		}
		out[name] = c
	}
	return out
}

// SendsLastHour returns each provider's send outcomes over the last hour
// (Recent) in this process, from the same calls as smsbridge_sends_total.
func (m *Metrics) SendsLastHour() map[string]SendCounts { return m.recent.lastHour() }

// OpenCircuits returns the providers whose circuit breaker is open, read
// from the smsbridge_provider_circuit_open gauge.
func (m *Metrics) OpenCircuits() map[string]bool {
	ch := make(chan prometheus.Metric)
	go func() {
		m.circuit.Collect(ch)
		close(ch)
	}()
	open := map[string]bool{}
	for pm := range ch {
		var d dto.Metric
		if err := pm.Write(&d); err != nil || d.GetGauge().GetValue() == 0 {
			continue
		}
		for _, l := range d.GetLabel() {
			if l.GetName() == "provider" {
				open[l.GetValue()] = true
			}
		}
	}
	return open
}
