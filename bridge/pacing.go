package bridge

import (
	"sync"
	"time"
)

// Rate paces the sends of one provider: at most Burst recipients go to it
// in any window of Burst/PerSecond seconds (with Burst = PerSecond, "at
// most PerSecond a second"). The zero Rate is no pacing.
//
// It is counted per recipient, not per call nor per SMS part: a call with
// three recipients takes three, which is how providers count messages
// against an account's limit (a request to many numbers is as many
// messages), and a long text's parts are one message to each.
type Rate struct {
	PerSecond float64
	Burst     int // default: PerSecond rounded down, at least 1
}

// window is how long each send counts against the limit.
func (r Rate) window() time.Duration {
	return time.Duration(float64(r.burst()) / r.PerSecond * float64(time.Second))
}

func (r Rate) burst() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return max(int(r.PerSecond), 1)
}

// pacer enforces a Rate for one provider of one dispatcher. It is a
// sliding window, not a token bucket: a bucket of burst b lets b+r·t
// through in any t seconds (rate 5 would send 9 within one second after
// an idle spell), and a provider that counts "5 a second" refuses the
// excess; the window never lets more than Burst start within one window.
//
// The dispatcher asks it, on the clock its timers run on, how many
// recipients may be claimed now (free), takes that many when a batch
// starts (take), gives back those a batch did not send after all (refund:
// expired, circuit open), and wakes when the next one is free (readyAt).
// Paced recipients thus wait in the store, not in the dispatcher's hands.
type pacer struct {
	rate   Rate
	burst  int
	window time.Duration
	mu     sync.Mutex
	sent   []time.Time // start of each send within the last window, oldest first
}

func newPacer(r Rate) *pacer {
	return &pacer{rate: r, burst: r.burst(), window: r.window()}
}

// trim forgets sends that no longer count at now. p.mu is held.
func (p *pacer) trim(now time.Time) {
	i := 0
	for i < len(p.sent) && !now.Before(p.sent[i].Add(p.window)) {
		i++
	}
	if i > 0 {
		p.sent = append(p.sent[:0], p.sent[i:]...)
	}
}

// free is how many recipients may start now.
func (p *pacer) free(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trim(now)
	return p.burst - len(p.sent)
}

// take counts up to n recipients as starting now and returns how many it
// counted (n, or fewer if fewer are free).
func (p *pacer) take(now time.Time, n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trim(now)
	n = min(n, p.burst-len(p.sent))
	for range n {
		p.sent = append(p.sent, now)
	}
	return max(n, 0)
}

// refund forgets n of the sends take counted at at, if they still count.
func (p *pacer) refund(at time.Time, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.sent) - 1; i >= 0 && n > 0; i-- {
		if p.sent[i].Equal(at) {
			p.sent = append(p.sent[:i], p.sent[i+1:]...)
			n--
		}
	}
}

// readyAt is the earliest time from now at which n recipients are free;
// zero if n is more than the burst, which no wait makes free.
func (p *pacer) readyAt(now time.Time, n int) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n > p.burst {
		return time.Time{}
	}
	p.trim(now)
	k := len(p.sent) - (p.burst - n) // sends that must leave the window first
	if k <= 0 {
		return now
	}
	return p.sent[k-1].Add(p.window)
}

// room is, for each paced provider, how many more of its recipients the
// next claim may take: what its pace lets start now, less the recipients
// already claimed and waiting to start (a slot), which the pace counts
// when they start. Unpaced providers are not in it.
func (d *Dispatcher) room(waiting map[string][]batch, clock time.Time) map[string]int {
	set := d.set.Load()
	if len(set.pacers) == 0 {
		return nil
	}
	room := make(map[string]int, len(set.pacers))
	for p, pc := range set.pacers {
		room[p] = pc.free(clock) - reserved(waiting[p])
	}
	return room
}

func reserved(q []batch) int {
	n := 0
	for _, b := range q {
		n += len(b.jobs)
	}
	return n
}

// paceAt is when the dispatcher must wake for a paced provider, ok false if
// for none: when a batch waiting for its pace may start, and, if claims is
// set (no claim is pending), when there is room for one more claimed
// recipient of a provider that had none at the last claim (full). A
// provider whose waiting batches fill its whole burst waits for them to
// start instead, which a freed slot or the first wake brings.
func (d *Dispatcher) paceAt(waiting map[string][]batch, full []string, claims bool) (at time.Time, ok bool) {
	set := d.set.Load()
	if len(set.pacers) == 0 {
		return at, false
	}
	now := time.Now()
	earliest := func(t time.Time) {
		if !t.IsZero() && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	for p, q := range waiting {
		if pc := set.pacers[p]; pc != nil && len(q) > 0 && pc.free(now) == 0 {
			earliest(pc.readyAt(now, 1))
		}
	}
	if claims {
		for _, p := range full {
			if pc := set.pacers[p]; pc != nil {
				earliest(pc.readyAt(now, reserved(waiting[p])+1))
			}
		}
	}
	return at, ok
}
