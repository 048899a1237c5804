package bridge

import (
	"sync"
	"sync/atomic"
	"time"
)

// breaker is a per-provider circuit breaker. After threshold consecutive
// calls that failed as a whole with a temporary error (timeouts, 5xx,
// refused connections), the provider is not called for a cooldown that
// doubles (up to a cap) each time it trips again; then one probe call is
// let through, and its success closes the circuit. While open, recipients
// are rescheduled (or fail over) without tying up workers on a provider
// that is down, so other providers' sends are not slowed.
type breaker struct {
	threshold        int
	minCool, maxCool time.Duration
	changed          func(open bool) // state changes, for metrics

	mu        sync.Mutex
	failures  int
	cool      time.Duration
	openUntil time.Time // zero: closed
	probing   bool      // a half-open probe is under way

	// closings counts the times the circuit closed. A send that read it
	// before its call can tell afterwards whether the provider came back
	// meanwhile (see sentBatch.missedRecovery).
	closings atomic.Uint64
}

func newBreaker(threshold int, minCool, maxCool time.Duration, changed func(bool)) *breaker {
	if changed == nil {
		changed = func(bool) {}
	}
	return &breaker{threshold: threshold, minCool: minCool, maxCool: maxCool, cool: minCool, changed: changed}
}

// allow reports whether a call may go out now; if not, it says when the
// next one may.
func (b *breaker) allow(now time.Time) (bool, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openUntil.IsZero():
		return true, time.Time{}
	case now.Before(b.openUntil) || b.probing:
		at := b.openUntil
		if !at.After(now) {
			at = now.Add(b.minCool) // a probe is out; look again later
		}
		return false, at
	}
	b.probing = true // half open: this call is the probe
	return true, time.Time{}
}

// record notes the outcome of a call that allow let through.
func (b *breaker) record(now time.Time, providerDown bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wasOpen := !b.openUntil.IsZero()
	b.probing = false
	if !providerDown {
		b.failures, b.cool, b.openUntil = 0, b.minCool, time.Time{}
		if wasOpen {
			b.closings.Add(1)
			b.changed(false)
		}
		return
	}
	b.failures++
	if !wasOpen && b.failures < b.threshold {
		return
	}
	if wasOpen { // the probe failed: wait longer
		b.cool = min(2*b.cool, b.maxCool)
	}
	b.openUntil = now.Add(b.cool)
	if !wasOpen {
		b.changed(true)
	}
}
