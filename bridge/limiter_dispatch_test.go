package bridge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// overloadable answers each call after latency, unless more than capacity
// calls are under way: then it answers 503 at once, as a provider over
// its own limit does.
type overloadable struct {
	name     string
	latency  time.Duration
	capacity int

	mu       sync.Mutex
	inflight int
	peak     int // most calls under way at once
	refused  int // calls answered 503
	sent     map[string]time.Time
}

func (p *overloadable) Name() string { return p.name }

func (p *overloadable) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	p.mu.Lock()
	p.inflight++
	p.peak = max(p.peak, p.inflight)
	if p.inflight > p.capacity {
		p.inflight--
		p.refused++
		p.mu.Unlock()
		return nil, bridge.Temporary(bridge.ReasonProviderDown, nil, "%s: HTTP 503", p.name)
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inflight--
		p.mu.Unlock()
	}()
	select {
	case <-time.After(p.latency):
	case <-ctx.Done():
		return nil, bridge.Temporary(bridge.ReasonProviderDown, ctx.Err(), "%s: timeout", p.name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	res := make([]bridge.Result, len(req.To))
	for i, to := range req.To {
		p.sent[to] = time.Now()
		res[i].ProviderID = p.name + "-" + to
	}
	return res, nil
}

// With no concurrency configured, a provider answering in 50 ms gets 300
// recipients a second with each one's call starting within a round trip
// of its submission: the limit grows from its start of 8 to what the load
// needs. A provider that refuses (503) beyond 12 calls at once cuts the
// limit down to about that, and is refused a few calls, not a fifth. One
// paced at one call at a time never uses half its limit, which stays at 8.
func TestAdaptiveConcurrencyFollowsTheProvider(t *testing.T) {
	for _, c := range []struct {
		name               string
		capacity           int
		rate               bridge.Rate
		minPeak, maxPeak   int           // calls under way at once, at the provider
		maxRefused         int           // 503s
		maxWait            time.Duration // submission to the call, any recipient
		minLimit, maxLimit int           // the limit at the end
	}{
		{"keeps up", 1000, bridge.Rate{}, 12, 32, 0, 50 * time.Millisecond, 16, 64},
		{"refuses beyond 12", 12, bridge.Rate{}, 12, 13, 30, 2 * time.Second, 8, 16},
		{"paced at 10/s", 1000, bridge.Rate{PerSecond: 10, Burst: 1}, 1, 1, 0, 30 * time.Second, 8, 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				p := &overloadable{name: "p", latency: 50 * time.Millisecond, capacity: c.capacity, sent: map[string]time.Time{}}
				var mu sync.Mutex
				var limits []int
				e := newEnv(t, bridge.DispatchOptions{
					Rates:        map[string]bridge.Rate{"p": c.rate},
					LimitChanged: func(_ string, n int) { mu.Lock(); limits = append(limits, n); mu.Unlock() },
				}, route, p)
				submitted := map[string]time.Time{}
				for i := range 300 { // 300 a second, one every 3⅓ ms
					pass(time.Second / 300)
					to := fmt.Sprintf("05%08d", i)
					m := e.submit(t, "x", time.Time{}, to)
					submitted[m.Recipients[0].To] = time.Now()
				}
				for range 300 {
					if o := e.final(t); o.State != bridge.StateSent {
						t.Fatalf("outcome %+v", o)
					}
				}
				p.mu.Lock()
				defer p.mu.Unlock()
				var worst time.Duration
				for to, at := range submitted {
					worst = max(worst, p.sent[to].Add(-p.latency).Sub(at))
				}
				mu.Lock()
				defer mu.Unlock()
				end := limits[len(limits)-1]
				t.Logf("peak %d calls, %d refused, longest wait %v, limit moved %d times, to %d", p.peak, p.refused, worst, len(limits)-1, end)
				if p.peak < c.minPeak || p.peak > c.maxPeak {
					t.Errorf("peak %d calls at once, want %d to %d", p.peak, c.minPeak, c.maxPeak)
				}
				if p.refused > c.maxRefused {
					t.Errorf("%d calls refused, want at most %d", p.refused, c.maxRefused)
				}
				if worst > c.maxWait {
					t.Errorf("a recipient's call started %v after its submission, want at most %v", worst, c.maxWait)
				}
				if end < c.minLimit || end > c.maxLimit || limits[0] != 8 {
					t.Errorf("limit from %d to %d, want from 8 to %d..%d", limits[0], end, c.minLimit, c.maxLimit)
				}
			})
		})
	}
}
