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
