package bridge

import (
	"sync"
	"time"
)

// Handoff lets a freshly accepted recipient reach the dispatcher without a
// claim of its own: a store that implements EnqueueClaimer claims it in
// the transaction that stores it, when the dispatcher has room for it, and
// the submitter hands the claimed jobs over once that has committed. At a
// low rate this saves each SMS a store write (the claim) and the read
// after it (NextDue); crash recovery is unchanged, since the claim is the
// same record Claim makes.
//
// The dispatcher's Run publishes, on each turn, how many more recipients
// of each provider a claim could take now (its quota); Take spends that
// credit from the store's writer, and Deliver moves what committed into
// Run's inbox. Until Run has started, and after it ends, the credit is
// nothing and every recipient is left to Claim.
type Handoff struct {
	d *Dispatcher

	mu sync.Mutex
	// credit is, by provider, how many recipients Take may still accept
	// (Run's quota less what it has not received yet); reserved, how many
	// Take accepted that were neither given back with Untake nor taken
	// by Run from the inbox.
	credit   map[string]int
	reserved map[string]int
	inbox    []Job
	// ready is signalled when inbox gains jobs, or Untake gives back.
	ready chan struct{}
}

func newHandoff(d *Dispatcher) *Handoff {
	return &Handoff{d: d, reserved: map[string]int{}, ready: make(chan struct{}, 1)}
}

// Take implements Taker: it accepts r if r's provider has room at the
// dispatcher for one more.
func (h *Handoff) Take(r Recipient) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.credit[r.Provider] <= 0 {
		return false
	}
	h.credit[r.Provider]--
	h.reserved[r.Provider]++
	return true
}

// Untake implements Taker: r, accepted by Take, was not claimed after all.
func (h *Handoff) Untake(r Recipient) {
	h.mu.Lock()
	h.reserved[r.Provider]--
	if h.credit != nil {
		h.credit[r.Provider]++
	}
	h.mu.Unlock()
	h.signal() // a stopping Run waits for every Take to be answered
}

// Lease implements Taker: the lease Claim would give.
func (h *Handoff) Lease(attempts int) time.Duration { return h.d.lease(attempts) }

// Deliver implements Taker: it gives the dispatcher the jobs an
// EnqueueClaim claimed through h, once their transaction has committed.
// A stopping Run waits for what Take accepted to be delivered (or given
// back), within its grace period, and releases it with what it claimed
// but never started (see Run); jobs delivered after Run ended stay
// claimed in the store and are tried again after their lease.
func (h *Handoff) Deliver(jobs []Job) {
	if len(jobs) == 0 {
		return
	}
	h.mu.Lock()
	h.inbox = append(h.inbox, jobs...)
	h.mu.Unlock()
	h.signal()
}

// signal wakes Run: the inbox gained jobs, or a Take was given back.
func (h *Handoff) signal() {
	select {
	case h.ready <- struct{}{}:
	default:
	}
}

// take empties the inbox, for Run.
func (h *Handoff) take() []Job {
	h.mu.Lock()
	defer h.mu.Unlock()
	jobs := h.inbox
	h.inbox = nil
	for _, j := range jobs {
		h.reserved[j.Recipient.Provider]--
	}
	return jobs
}

// settled reports whether every recipient Take accepted has been taken
// by Run from the inbox or given back: with the credit withdrawn
// (publish(nil)), nothing more will be delivered.
func (h *Handoff) settled() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.reserved {
		if n != 0 {
			return false
		}
	}
	return true
}

// publish sets the credit from Run's quota (nil: none), less what Take
// accepted that Run has not received yet.
func (h *Handoff) publish(quota map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if quota == nil {
		h.credit = nil
		return
	}
	if h.credit == nil {
		h.credit = make(map[string]int, len(quota))
	}
	clear(h.credit)
	for p, q := range quota {
		h.credit[p] = q - h.reserved[p]
	}
}
