package storeutil

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Encoded is a message checked and its JSON columns encoded for Enqueue:
// its Params (nil, SQL NULL, when empty) and each recipient's route, in
// the order of m.Recipients.
func Encoded(m *bridge.Message) (params []byte, providers [][]byte, err error) {
	if m.ID == "" {
		return nil, nil, bridge.Permanent(bridge.ReasonInvalid, "id", "message has no id")
	}
	if params, err = EncodeMap(m.Params); err != nil {
		return nil, nil, fmt.Errorf("encoding params of %s: %w", m.ID, err)
	}
	providers = make([][]byte, len(m.Recipients))
	for i, r := range m.Recipients {
		if providers[i], err = json.Marshal(NonNil(r.Providers)); err != nil {
			return nil, nil, fmt.Errorf("encoding providers of %s: %w", m.ID, err)
		}
	}
	return params, providers, nil
}

// Enqueued fills in what Enqueue promises once m is stored: each
// recipient's id as the store gave it (ids, in order), its message, and
// its state (queued unless it had one).
func Enqueued(m *bridge.Message, ids []int64) {
	for i := range m.Recipients {
		r := &m.Recipients[i]
		r.ID, r.MessageID, r.State = ids[i], m.ID, StateOrQueued(r.State)
	}
}

// Claimed records a claim at now on r as Claim returns it: one attempt
// more, on its provider too, and due again (invisible to Claim) when
// lease(attempts) has passed. The times are as the store keeps them, to
// the millisecond.
func Claimed(r *bridge.Recipient, now time.Time, lease func(attempts int) time.Duration) {
	r.Attempts++
	r.ProviderAttempts++
	r.NextAttempt = FromMillis(Millis(now.Add(lease(r.Attempts))))
	r.Updated = FromMillis(Millis(now))
}

// claimable reports whether EnqueueClaim may claim r at now: queued and
// due (a scheduled send waits in the store).
func claimable(r *bridge.Recipient, now time.Time) bool {
	return StateOrQueued(r.State) == bridge.StateQueued && !r.NextAttempt.After(now)
}

// Handoff is EnqueueClaim's bookkeeping, the same in every store: which
// of m's recipients its taker accepted, decided once before the write is
// handed to the store's group (however many times the group's
// transaction then runs), and, when the write is answered, the jobs to
// deliver or the recipients to give back. With a nil taker it claims
// nothing.
type Handoff struct {
	m      *bridge.Message
	now    time.Time
	t      bridge.Taker
	msg    bridge.Message     // m as Claim reads it back: no recipients, times to the millisecond
	claims []bridge.Recipient // by position in m.Recipients, as claimed
	taken  []int              // positions taken
}

// NewHandoff returns the bookkeeping of storing m and claiming at now
// what t takes (t nil: nothing).
func NewHandoff(m *bridge.Message, now time.Time, t bridge.Taker) *Handoff {
	h := &Handoff{m: m, now: now, t: t}
	if t != nil {
		h.msg = *m
		h.msg.Recipients, h.msg.IdempotencyKey, h.msg.RequestDigest = nil, "", ""
		h.msg.Created, h.msg.SendAt = FromMillis(Millis(m.Created)), FromMillis(Millis(m.SendAt))
		h.claims = make([]bridge.Recipient, len(m.Recipients))
	}
	return h
}

// Take returns recipient i as it is to be stored: claimed (true) if it is
// queued, due and the taker accepts it, as it is otherwise.
func (h *Handoff) Take(i int) (bridge.Recipient, bool) {
	r := h.m.Recipients[i]
	if h.t == nil || !claimable(&r, h.now) || !h.t.Take(r) {
		return r, false
	}
	Claimed(&r, h.now, h.t.Lease)
	r.MessageID, r.State = h.m.ID, bridge.StateQueued
	h.claims[i] = r
	h.taken = append(h.taken, i)
	return r, true
}

// Stored records the id recipient i was stored under.
func (h *Handoff) Stored(i int, id int64) {
	if h.t != nil {
		h.claims[i].ID = id
	}
}

// Answered is told the write's outcome (group.Answerer) once: it
// delivers what was claimed if the write committed (err nil), gives it
// back to the taker if not.
func (h *Handoff) Answered(err error) {
	if h.t == nil || len(h.taken) == 0 {
		return
	}
	if err != nil {
		for _, i := range h.taken {
			h.t.Untake(h.m.Recipients[i])
		}
		return
	}
	jobs := make([]bridge.Job, len(h.taken))
	for k, i := range h.taken {
		jobs[k] = bridge.Job{Message: &h.msg, Recipient: h.claims[i]}
	}
	h.t.Deliver(jobs)
}

// Apply, once the transaction has committed, writes the claims into m's
// recipients and returns how many there were.
func (h *Handoff) Apply(m *bridge.Message) int {
	for _, i := range h.taken {
		m.Recipients[i] = h.claims[i]
	}
	return len(h.taken)
}
