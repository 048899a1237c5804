package bridge

import (
	"context"
	"testing"
	"time"
)

// The pacer on explicit times: at most burst within any window of
// burst/rate, a send counts for exactly one window, readyAt says when n
// are free, and refund gives back what a batch did not send.
func TestPacer(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := newPacer(Rate{PerSecond: 5}) // burst 5, window 1 s
	if p.burst != 5 || p.window != time.Second {
		t.Fatalf("burst %d window %v, want 5 and 1s", p.burst, p.window)
	}
	if n := p.take(at(0), 3); n != 3 {
		t.Fatalf("took %d of 3", n)
	}
	if n := p.take(at(400), 4); n != 2 {
		t.Fatalf("took %d of 4 with 2 free", n)
	}
	if f := p.free(at(999)); f != 0 {
		t.Errorf("free at 999ms = %d, want 0", f)
	}
	if r := p.readyAt(at(500), 1); !r.Equal(at(1000)) {
		t.Errorf("one ready at %v, want 1s", r.Sub(t0))
	}
	if r := p.readyAt(at(500), 4); !r.Equal(at(1400)) {
		t.Errorf("four ready at %v, want 1.4s", r.Sub(t0))
	}
	if r := p.readyAt(at(500), 6); !r.IsZero() {
		t.Errorf("six (more than the burst) ready at %v, want never", r)
	}
	if f := p.free(at(1000)); f != 3 {
		t.Errorf("free at 1s = %d, want 3 (the first three left the window)", f)
	}
	p.refund(at(400), 1) // one of the two taken at 400ms was not sent
	if f := p.free(at(1000)); f != 4 {
		t.Errorf("free after a refund = %d, want 4", f)
	}
	p.refund(at(0), 1) // already out of the window: nothing to give back
	if f := p.free(at(1000)); f != 4 {
		t.Errorf("free after a stale refund = %d, want 4", f)
	}
	if r := p.readyAt(at(1000), 2); !r.Equal(at(1000)) {
		t.Errorf("two ready at %v, want now", r.Sub(t0))
	}

	// A fractional rate: one every two seconds.
	slow := newPacer(Rate{PerSecond: 0.5})
	if slow.burst != 1 || slow.window != 2*time.Second {
		t.Errorf("rate 0.5: burst %d window %v, want 1 and 2s", slow.burst, slow.window)
	}
	// An explicit burst widens the window: 10 in any 2 s.
	wide := newPacer(Rate{PerSecond: 5, Burst: 10})
	if wide.burst != 10 || wide.window != 2*time.Second {
		t.Errorf("rate 5 burst 10: burst %d window %v, want 10 and 2s", wide.burst, wide.window)
	}
}

// A reload keeps a provider's pacer, and what it counted, while its rate
// is unchanged; a new rate starts a new one; a provider no longer paced
// has none.
func TestSetProvidersKeepsPacer(t *testing.T) {
	d := NewDispatcher(nil, []Provider{namedProvider("p"), namedProvider("q")}, DispatchOptions{
		Rates: map[string]Rate{"p": {PerSecond: 5}, "q": {PerSecond: 1}}})
	p, q := d.set.Load().pacers["p"], d.set.Load().pacers["q"]
	p.take(time.Now(), 5)
	d.SetProviders([]Provider{namedProvider("p"), namedProvider("q")}, Limits{Rates: map[string]Rate{"p": {PerSecond: 5}, "q": {PerSecond: 2}}})
	set := d.set.Load()
	if set.pacers["p"] != p || set.pacers["p"].free(time.Now()) != 0 {
		t.Error("p's pacer (rate unchanged) was replaced")
	}
	if set.pacers["q"] == q || set.pacers["q"].rate.PerSecond != 2 {
		t.Error("q's pacer kept its old rate")
	}
	d.SetProviders([]Provider{namedProvider("p")}, Limits{})
	if len(d.set.Load().pacers) != 0 {
		t.Error("a provider without a rate is paced")
	}
}

type namedProvider string

func (p namedProvider) Name() string { return string(p) }
func (p namedProvider) Send(context.Context, *SendRequest) ([]Result, error) {
	return nil, nil
}
