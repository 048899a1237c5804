package bridge

import (
	"slices"
	"testing"
	"time"
)

// limiterClock hands out explicit times for limiter tests.
type limiterClock struct{ t time.Time }

func newLimiterClock() *limiterClock {
	return &limiterClock{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *limiterClock) advance(d time.Duration) time.Time { c.t = c.t.Add(d); return c.t }

// fill takes slots until the limiter refuses one, and returns how many it took.
func fill(t *testing.T, l *limiter) int {
	t.Helper()
	n := 0
	for l.acquire(0) {
		n++
		if n > 1000 {
			t.Fatal("the limiter never refuses a slot")
		}
	}
	return n
}

// answer releases one slot with a call that ran from start for took.
func answer(l *limiter, start time.Time, took time.Duration, r callResult) {
	l.release(callSample{start: start, end: start.Add(took), result: r})
}

// A fixed limit lets exactly n calls run, whatever they report; a floor
// above it lets more.
func TestFixedLimiter(t *testing.T) {
	var reported []int
	l := newFixedLimiter(3, func(n int) { reported = append(reported, n) })
	l.announce()
	if n := fill(t, l); n != 3 {
		t.Fatalf("fixed limit 3 let %d calls run", n)
	}
	c := newLimiterClock()
	answer(l, c.t, time.Millisecond, callOK)
	answer(l, c.t, time.Second, callTimedOut)
	if got := l.current(); got != 3 {
		t.Errorf("fixed limit moved to %d", got)
	}
	if n := fill(t, l); n != 2 {
		t.Errorf("after two calls ended, %d more ran, want 2", n)
	}
	if !l.acquire(5) || !l.acquire(5) || l.acquire(5) {
		t.Error("a floor of 5 did not let exactly 5 calls run")
	}
	if !slices.Equal(reported, []int{3}) {
		t.Errorf("reported %v, want [3]", reported)
	}
	if !l.same(3, 0) || l.same(4, 0) || l.same(0, 3) {
		t.Error("same() does not tell a fixed 3 from the others")
	}
}

// While every call is answered quickly and the limit is in use, it
// doubles each round trip (slow start), up to its cap.
func TestAdaptiveLimiterSlowStart(t *testing.T) {
	var reported []int
	l := newAdaptiveLimiter(20, func(n int) { reported = append(reported, n) })
	l.announce()
	c := newLimiterClock()
	if n := fill(t, l); n != initialLimit {
		t.Fatalf("started with %d calls, want %d", n, initialLimit)
	}
	// Each round trip, the calls under way return in 50 ms, and each
	// makes room for another one or two as the limit grows.
	for round, want := range []int{16, 20, 20} {
		start := c.t
		end := c.advance(50 * time.Millisecond)
		for range l.inflightNow() {
			l.release(callSample{start: start, end: end, result: callOK})
			fill(t, l)
		}
		if got, n := l.current(), l.inflightNow(); got != want || n != want {
			t.Fatalf("after round %d: limit %d, %d calls under way, want %d", round+1, got, n, want)
		}
	}
	if !slices.Equal(reported, []int{8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}) {
		t.Errorf("reported %v", reported)
	}
	if !l.same(0, 20) || l.same(0, 0) || l.same(20, 0) {
		t.Error("same() does not tell an adaptive 20 from the others")
	}
}

// A provider that is not busy (fewer than half the limit in use) does not
// raise the limit, however fast it answers.
func TestAdaptiveLimiterIdleHolds(t *testing.T) {
	l := newAdaptiveLimiter(64, nil)
	c := newLimiterClock()
	for range 100 {
		if !l.acquire(0) || !l.acquire(0) || !l.acquire(0) {
			t.Fatal("3 calls of 8 refused")
		}
		for range 3 {
			answer(l, c.t, 10*time.Millisecond, callOK)
		}
		c.advance(10 * time.Millisecond)
	}
	if got := l.current(); got != initialLimit {
		t.Errorf("3 calls at a time raised the limit to %d", got)
	}
}

// A slow answer (more than twice the base latency, plus the slack) holds
// the limit; the base follows a latency that changed for good within two
// windows, and the limit grows again.
func TestAdaptiveLimiterSlowAnswersHold(t *testing.T) {
	l := newAdaptiveLimiter(64, nil)
	c := newLimiterClock()
	fill(t, l)
	answer(l, c.t, 50*time.Millisecond, callOK) // the base: 50 ms
	if got := l.current(); got != 9 {
		t.Fatalf("limit %d after a first answer, want 9", got)
	}
	l.acquire(0)
	answer(l, c.t, 110*time.Millisecond, callOK) // 2 × 50 + 10: still keeping up
	if got := l.current(); got != 10 {
		t.Fatalf("limit %d after an answer within the tolerance, want 10", got)
	}
	fill(t, l)
	for range 10 {
		answer(l, c.t, 111*time.Millisecond, callOK)
		l.acquire(0)
	}
	if got := l.current(); got != 10 {
		t.Errorf("answers over the tolerance raised the limit to %d", got)
	}
	// 200 ms from 2 s on: held for the rest of this window and the next,
	// then (at 60 s) the base is 200 ms.
	for range 29 {
		c.advance(2 * time.Second)
		answer(l, c.t, 200*time.Millisecond, callOK)
		l.acquire(0)
	}
	if got := l.current(); got != 10 {
		t.Fatalf("limit %d within two windows of the change, want 10", got)
	}
	c.advance(2 * time.Second)
	answer(l, c.t, 200*time.Millisecond, callOK)
	if got := l.current(); got != 11 {
		t.Errorf("limit %d two windows after the change, want 11 (the base is 200 ms)", got)
	}
}

// A temporary failure cuts the limit by a tenth, a timeout by half, once
// per round trip: calls that started before the last cut cut nothing.
// After a cut the limit grows by one a round trip; it never goes below 1.
func TestAdaptiveLimiterCuts(t *testing.T) {
	l := newAdaptiveLimiter(64, nil)
	c := newLimiterClock()
	// Slow start to 20.
	for l.current() < 20 {
		fill(t, l)
		answer(l, c.t, 50*time.Millisecond, callOK)
	}
	fill(t, l) // 20 calls under way, all started at t0
	t0 := c.t
	c.advance(time.Second)
	for range 10 {
		answer(l, t0, time.Second, callFailed)
	}
	if got := l.current(); got != 18 {
		t.Fatalf("10 failures of calls started together: limit %d, want 18 (one cut of a tenth)", got)
	}
	answer(l, t0, 2*time.Second, callTimedOut)
	if got := l.current(); got != 18 {
		t.Errorf("a timeout of a call started before the cut: limit %d, want 18", got)
	}
	// Calls started after the cut are under the new limit: their failure
	// cuts again.
	t1 := c.advance(time.Millisecond)
	answer(l, t1, 30*time.Second, callTimedOut)
	if got := l.current(); got != 9 {
		t.Fatalf("a timeout after the cut: limit %d, want 9", got)
	}
	// Now one per round trip: 9 quick answers with the limit in use add 1.
	for range 8 {
		answer(l, c.t, 50*time.Millisecond, callOK)
	}
	for l.inflightNow() < 9 {
		l.acquire(0)
	}
	if got := l.current(); got != 9 {
		t.Fatalf("limit %d after 8 answers past a cut, want 9", got)
	}
	for range 9 {
		answer(l, c.t, 50*time.Millisecond, callOK)
		l.acquire(0)
	}
	if got := l.current(); got != 10 {
		t.Errorf("limit %d after a round trip of answers past a cut, want 10", got)
	}
	// Timeouts, each after the one before: down to 1, never 0.
	for range 10 {
		start := c.advance(time.Millisecond)
		answer(l, start, 30*time.Second, callTimedOut)
		c.advance(30 * time.Second)
		l.acquire(0)
	}
	if got := l.current(); got != 1 {
		t.Errorf("after 10 timeouts in a row: limit %d, want 1", got)
	}
	// A call that was never made says nothing.
	answer(l, c.t, 0, callNone)
	if got := l.current(); got != 1 {
		t.Errorf("limit %d after a call not made, want 1", got)
	}
}

func (l *limiter) inflightNow() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight
}

// A reload keeps a provider's limit, and what it adapted to, while its
// settings are unchanged; new settings start a new one; the hook is told
// each new limit, and nothing more of one the reload replaced.
func TestSetProvidersKeepsLimit(t *testing.T) {
	reported := map[string][]int{}
	provs := []Provider{namedProvider("a"), namedProvider("f")}
	d := NewDispatcher(nil, provs, DispatchOptions{
		Concurrency:    map[string]int{"f": 3},
		MaxConcurrency: map[string]int{"a": 32},
		LimitChanged:   func(p string, n int) { reported[p] = append(reported[p], n) },
	})
	a, f := d.set.Load().limits["a"], d.set.Load().limits["f"]
	if !a.adaptive || a.max != 32 || a.current() != initialLimit || f.adaptive || f.current() != 3 {
		t.Fatalf("a: adaptive %v max %d limit %d; f: adaptive %v limit %d", a.adaptive, a.max, a.current(), f.adaptive, f.current())
	}
	fill(t, a)
	answer(a, time.Now(), time.Millisecond, callOK) // a adapts to 9
	d.SetProviders(provs, Limits{Concurrency: map[string]int{"f": 3}, MaxConcurrency: map[string]int{"a": 32}})
	if set := d.set.Load(); set.limits["a"] != a || set.limits["f"] != f || a.current() != 9 {
		t.Error("a reload with the same settings replaced a limit, or lost what it adapted to")
	}
	d.SetProviders(provs, Limits{Concurrency: map[string]int{"a": 2}})
	set := d.set.Load()
	if set.limits["a"] == a || set.limits["a"].adaptive || set.limits["a"].current() != 2 {
		t.Error("a's new fixed limit 2 was not applied")
	}
	if set.limits["f"] == f || !set.limits["f"].adaptive || set.limits["f"].max != DefaultMaxConcurrency {
		t.Errorf("f (no concurrency any more) is not adaptive up to %d", DefaultMaxConcurrency)
	}
	fill(t, a)
	answer(a, time.Now(), time.Millisecond, callOK) // the replaced a grows to 10, unreported
	if a.current() != 10 {
		t.Fatalf("the replaced limit is %d, want 10", a.current())
	}
	want := map[string][]int{"a": {8, 9, 2}, "f": {3, initialLimit}}
	for p, w := range want {
		if !slices.Equal(reported[p], w) {
			t.Errorf("reported for %s: %v, want %v", p, reported[p], w)
		}
	}
}
