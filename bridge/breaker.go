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
//
// The probe needs a recipient due when the cooldown ends, but a provider
// that is down should not have its whole queue claimed and rescheduled
// every few seconds. So one recipient carries the probe: the call that
// opens the circuit (or the failed probe that keeps it open), or else the
// first one refused while it is open, is retried exactly when the
// cooldown ends; every other one waits out its own backoff, and is made
// due at once when a probe succeeds (Dispatcher.retryNow). The cooldown is
// short (probeMin to probeMax), so a provider's return is noticed within
// seconds, at the cost of one call every few seconds to one that is down.
type breaker struct {
	threshold        int
	minCool, maxCool time.Duration
	changed          func(open bool) // state changes, for metrics

	mu        sync.Mutex
	failures  int
	cool      time.Duration
	openUntil time.Time // zero: closed
	probing   bool      // a half-open probe is under way
	carried   bool      // a recipient is due at openUntil to make the probe
	// notBefore is the latest time the provider asked us to wait until
	// (Retry-After); a failover to this provider waits for it.
	notBefore time.Time

	// closings counts the times the circuit closed. A send that read it
	// before its call can tell afterwards whether the provider came back
	// meanwhile (see sentBatch.missedRecovery).
	closings atomic.Uint64
}

// The cooldown between probes of a provider that is down: from probeMin,
// doubling while probes fail, up to probeMax (both also bounded by
// queue.retry_min and retry_max).
const (
	probeMin = time.Second
	probeMax = 5 * time.Second
)

func newBreaker(threshold int, minCool, maxCool time.Duration, changed func(bool)) *breaker {
	if changed == nil {
		changed = func(bool) {}
	}
	return &breaker{threshold: threshold, minCool: minCool, maxCool: max(minCool, maxCool), cool: minCool, changed: changed}
}

// allow reports whether a call may go out now, and if so whether it is the
// half-open probe (tell record). If not, it says when the next one may,
// and whether the caller is to carry the probe: retry exactly then rather
// than after its own backoff.
func (b *breaker) allow(now time.Time) (ok bool, next time.Time, probeOrCarry bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openUntil.IsZero():
		return true, time.Time{}, false
	case now.Before(b.openUntil) || b.probing:
		at := b.openUntil
		if !at.After(now) {
			at = now.Add(b.minCool) // a probe is out; look again later
		}
		probeOrCarry = !b.carried
		b.carried = true
		return false, at, probeOrCarry
	}
	b.probing = true // half open: this call is the probe
	return true, time.Time{}, true
}

// record notes the outcome of a call that allow let through (probe: allow
// said it was the probe), and the delay the provider asked for
// (Retry-After, 0 if none). If the call opens the circuit or keeps it
// open, the caller carries the next probe: probeAt is when it is to be
// retried; zero otherwise.
func (b *breaker) record(now time.Time, providerDown, probe bool, retryAfter time.Duration) (probeAt time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if retryAfter > 0 && now.Add(retryAfter).After(b.notBefore) {
		b.notBefore = now.Add(retryAfter)
	}
	wasOpen := !b.openUntil.IsZero()
	if probe {
		b.probing = false
	}
	if providerDown && wasOpen && !probe {
		// A call let through before the circuit opened, failing late:
		// it says nothing the circuit does not know.
		return time.Time{}
	}
	if !providerDown {
		b.failures, b.cool, b.openUntil, b.carried, b.probing = 0, b.minCool, time.Time{}, false, false
		if wasOpen {
			b.closings.Add(1)
			b.changed(false)
		}
		return time.Time{}
	}
	b.failures++
	if !wasOpen && b.failures < b.threshold {
		return time.Time{}
	}
	if wasOpen { // the probe failed: wait longer
		b.cool = min(2*b.cool, b.maxCool)
	}
	b.openUntil, b.carried = now.Add(b.cool), true
	if !wasOpen {
		b.changed(true)
	}
	return b.openUntil
}

// uncarry gives back the probe a caller was to carry (its recipient failed
// over, or failed for good): the next recipient refused carries it.
func (b *breaker) uncarry() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.carried = false
}

// readyAt is the earliest time a call to the provider may go out: after its
// circuit's cooldown and the last Retry-After it asked for.
func (b *breaker) readyAt(now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	at := now
	if b.openUntil.After(at) {
		at = b.openUntil
	}
	if b.notBefore.After(at) {
		at = b.notBefore
	}
	return at
}
