package bridge

import (
	"sync"
	"time"
)

// DefaultMaxConcurrency caps an adaptive concurrency limit when the
// provider's configuration names no max_concurrency.
const DefaultMaxConcurrency = 64

// The adaptive limit's settings (see limiter).
const (
	// initialLimit is where an adaptive limit starts: a provider that
	// keeps up doubles it each round trip, so a burst at start-up waits
	// a few round trips, not a few seconds, for the limit to fit it.
	initialLimit = 8
	// A call that succeeded within latencyTolerance times the provider's
	// base latency, plus latencySlack, kept up; a slower one holds the
	// limit where it is. The slack keeps a provider answering in a few
	// milliseconds from looking slow on every scheduling hiccup.
	latencyTolerance = 2
	latencySlack     = 10 * time.Millisecond
	// baseWindow is how long a base latency is remembered: the base is
	// the least latency of the last one or two windows, so a provider
	// that became slower for good is measured afresh within two.
	baseWindow = 30 * time.Second
	// The cuts: a temporary failure takes a tenth off the limit, a call
	// that timed out half of it.
	failureCut = 0.9
	timeoutCut = 0.5
)

// callResult is what a provider call says about its provider's load.
type callResult int

const (
	callNone     callResult = iota // no call was made (circuit open, pace): says nothing
	callCutOff                     // made, but cut off by our shutdown: says nothing either
	callOK                         // the provider answered (success, or a refusal of its own)
	callFailed                     // failed as a whole with a temporary error (5xx, 429, refused connection)
	callTimedOut                   // no answer within the send timeout
)

// callSample is one call's report to its provider's limiter.
type callSample struct {
	start, end time.Time
	result     callResult
}

// limiter is one provider's concurrency limit and the calls under way
// against it. A fixed limit (the provider's `concurrency`) never moves.
// An adaptive one (additive increase, multiplicative decrease, as TCP's
// congestion window) follows how the provider answers, between 1 and max:
//
//   - A call that failed as a whole with a temporary error cuts the limit
//     by a tenth (failureCut), one that timed out by half (timeoutCut).
//     The cut is once per round trip: a call that started before the last
//     cut was made under the limit before it, so its failure cuts nothing
//     more (64 calls timing out together halve the limit once).
//   - A call answered within latencyTolerance times the provider's base
//     latency (the least seen lately) while at least half the limit was
//     in use raises it: by one until the first cut (slow start: it
//     doubles each round trip), by 1/limit after (one per round trip).
//     A slow answer holds the limit; so does a provider that is not busy,
//     or that its pace holds back: the limit grows only where it is what
//     keeps calls waiting.
//
// A refusal (4xx other than 429: a bad number, wrong credentials) is an
// answer like any other: it neither cuts nor, being quick, says much; it
// raises the limit like a success.
type limiter struct {
	adaptive bool
	max      int
	// changed, if set, is told the limit when it comes into use
	// (announce) and whenever its whole part moves (for metrics), with mu
	// held so that the reports come in order.
	changed func(limit int)

	mu       sync.Mutex
	inflight int
	limit    float64
	// thresh is the limit after the last cut: below it the limit grows
	// by one a call (slow start), above it by one a round trip.
	thresh float64
	cutAt  time.Time // when the limit was last cut
	// base[1] is the least latency of an answer since baseFrom, base[0]
	// of the window of baseWindow before it.
	base     [2]latency
	baseFrom time.Time
}

// newFixedLimiter is a limit of n calls at a time.
func newFixedLimiter(n int, changed func(int)) *limiter {
	return &limiter{max: n, limit: float64(n), changed: changed}
}

// newAdaptiveLimiter is a limit that adapts between 1 and max calls at a
// time, starting at initialLimit (or max, if lower).
func newAdaptiveLimiter(max int, changed func(int)) *limiter {
	if max <= 0 {
		max = DefaultMaxConcurrency
	}
	return &limiter{adaptive: true, max: max, limit: float64(min(initialLimit, max)), thresh: float64(max), changed: changed}
}

// same reports whether l is the limit a provider with fixed n (0:
// adaptive) and cap max would get, so a reload can keep it.
func (l *limiter) same(n, max int) bool {
	if n > 0 {
		return !l.adaptive && l.max == n
	}
	if max <= 0 {
		max = DefaultMaxConcurrency
	}
	return l.adaptive && l.max == max
}

// current is the limit now: how many calls may be under way.
func (l *limiter) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.whole()
}

// whole is the limit's whole part, at least 1. l.mu is held.
func (l *limiter) whole() int {
	return max(int(l.limit), 1)
}

// acquire takes a slot if fewer calls than the limit, or than floor if it
// is higher, are under way. The dispatcher passes as floor the limit under
// which recipients it still holds were claimed (see Dispatcher.lease).
func (l *limiter) acquire(floor int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight >= max(l.whole(), floor) {
		return false
	}
	l.inflight++
	return true
}

// release gives back a slot, and adapts the limit to what the call said.
func (l *limiter) release(s callSample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	busy := l.inflight*2 >= l.whole() // this call included
	l.inflight--
	if !l.adaptive || s.result == callNone || s.result == callCutOff {
		return
	}
	before := l.whole()
	switch s.result {
	case callTimedOut:
		l.cut(s.start, s.end, timeoutCut)
	case callFailed:
		l.cut(s.start, s.end, failureCut)
	case callOK:
		if l.keptUp(s.end, s.end.Sub(s.start)) && busy {
			if l.limit < l.thresh {
				l.limit++
			} else {
				l.limit += 1 / l.limit
			}
			l.limit = min(l.limit, float64(l.max))
		}
	}
	if l.whole() != before {
		l.report()
	}
}

// cut multiplies the limit by factor, unless the call started before the
// last cut. l.mu is held.
func (l *limiter) cut(start, now time.Time, factor float64) {
	if !l.cutAt.IsZero() && start.Before(l.cutAt) {
		return
	}
	l.limit = max(l.limit*factor, 1)
	l.thresh, l.cutAt = l.limit, now
}

// keptUp notes the latency of a call the provider answered at now, and
// reports whether it was within the tolerance of the base latency (which
// the first answer sets). l.mu is held.
func (l *limiter) keptUp(now time.Time, took time.Duration) bool {
	if since := now.Sub(l.baseFrom); since >= baseWindow {
		if since >= 2*baseWindow {
			l.base[1] = latency{} // nothing answered in the window before now
		}
		l.base[0], l.base[1], l.baseFrom = l.base[1], latency{}, now
	}
	base := l.base[0].least(l.base[1])
	l.base[1] = l.base[1].least(latency{took, true})
	return !base.ok || took <= latencyTolerance*base.d+latencySlack
}

// latency is the least latency seen in a window, if any was.
type latency struct {
	d  time.Duration
	ok bool
}

func (a latency) least(b latency) latency {
	if !a.ok || (b.ok && b.d < a.d) {
		return b
	}
	return a
}

// announce tells changed the limit as it stands.
func (l *limiter) announce() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.report()
}

// report tells changed the limit. l.mu is held.
func (l *limiter) report() {
	if l.changed != nil {
		l.changed(l.whole())
	}
}
