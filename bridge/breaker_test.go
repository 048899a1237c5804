package bridge

import (
	"testing"
	"time"
)

// The breaker on explicit times: it opens after threshold failures, the
// call that opens it carries the probe, the cooldown doubles up to its cap
// while probes fail, one recipient refused meanwhile carries the next
// probe if none does, and a success closes it.
func TestBreaker(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var changes []bool
	b := newBreaker(2, time.Second, 4*time.Second, func(open bool) { changes = append(changes, open) })
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	if ok, _, _ := b.allow(t0); !ok {
		t.Fatal("closed breaker refused a call")
	}
	if p := b.record(t0, true, false, 0); !p.IsZero() {
		t.Fatalf("one failure of two opened it: probe at %v", p)
	}
	if p := b.record(t0, true, false, 0); !p.Equal(at(time.Second)) {
		t.Fatalf("probe at %v, want after the first cooldown (1s)", p)
	}
	// Refused while open; the opening call carries the probe already.
	if ok, next, carry := b.allow(at(500 * time.Millisecond)); ok || !next.Equal(at(time.Second)) || carry {
		t.Fatalf("allow while open = %v, %v, carry %v; want refused until 1s, not carrying", ok, next, carry)
	}
	// A late failure of a call let through before it opened changes nothing.
	if p := b.record(at(600*time.Millisecond), true, false, 0); !p.IsZero() {
		t.Fatalf("late failure moved the probe to %v", p)
	}
	cool := []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second} // doubling, capped
	now := time.Second
	for _, c := range cool {
		ok, _, probe := b.allow(at(now))
		if !ok || !probe {
			t.Fatalf("at %v: allow = %v, probe %v; want the probe", now, ok, probe)
		}
		if ok, _, _ := b.allow(at(now)); ok {
			t.Fatal("a second call went out during the probe")
		}
		p := b.record(at(now), true, true, 0)
		if !p.Equal(at(now + c)) {
			t.Fatalf("failed probe at %v: next probe at %v, want %v later", now, p.Sub(t0), c)
		}
		now += c
	}
	// The carrier failed over: the next refused caller carries the probe.
	b.uncarry()
	if _, _, carry := b.allow(at(now - time.Second)); !carry {
		t.Error("no caller carries the probe after uncarry")
	}
	if _, _, carry := b.allow(at(now - time.Second)); carry {
		t.Error("two callers carry the probe")
	}
	ok, _, probe := b.allow(at(now))
	if !ok || !probe {
		t.Fatal("no probe when the cooldown ended")
	}
	if p := b.record(at(now), false, true, 0); !p.IsZero() {
		t.Fatalf("success left a probe at %v", p)
	}
	if ok, _, _ := b.allow(at(now)); !ok {
		t.Fatal("closed breaker refused a call")
	}
	if len(changes) != 2 || !changes[0] || changes[1] {
		t.Errorf("changes = %v, want open then closed", changes)
	}
	if b.closings.Load() != 1 {
		t.Errorf("closings = %d, want 1", b.closings.Load())
	}
}

// readyAt is when a failover to the provider may call it: after its
// cooldown and after the last Retry-After it sent.
func TestBreakerReadyAt(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newBreaker(1, time.Second, 5*time.Second, nil)
	if got := b.readyAt(t0); !got.Equal(t0) {
		t.Errorf("readyAt = %v, want now", got)
	}
	b.record(t0, false, false, 30*time.Second) // a 429 for one message, say
	if got := b.readyAt(t0); !got.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("after Retry-After 30s: readyAt = %v", got.Sub(t0))
	}
	b2 := newBreaker(1, time.Second, 5*time.Second, nil)
	b2.record(t0, true, false, 0)
	if got := b2.readyAt(t0); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("open circuit: readyAt = %v, want its cooldown", got.Sub(t0))
	}
}
