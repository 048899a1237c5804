package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// taker is a bridge.Taker that accepts up to room recipients of provider,
// counts what it accepted and was given back, and keeps what it was
// delivered.
type taker struct {
	mu        sync.Mutex
	provider  string
	room      int
	took      int
	untook    int
	delivered []bridge.Job
}

func (k *taker) Deliver(jobs []bridge.Job) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.delivered = append(k.delivered, jobs...)
}

func (k *taker) Take(r bridge.Recipient) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r.Provider != k.provider || k.took-k.untook >= k.room {
		return false
	}
	k.took++
	return true
}

func (k *taker) Untake(bridge.Recipient) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.untook++
}

func (k *taker) Lease(attempts int) time.Duration { return lease(attempts) }

// testEnqueueClaim: EnqueueClaim claims, as it stores them, the due
// recipients the taker accepts, exactly as Claim would have; the others
// are left to Claim, and what it claimed is recovered after a crash like
// anything Claim handed out.
func testEnqueueClaim(t *testing.T, s bridge.Store) {
	ec, ok := s.(bridge.EnqueueClaimer)
	if !ok {
		t.Skip("the store does not claim as it enqueues")
	}
	ctx := context.Background()
	m := newMessage(base, base, "+15550000001", "+15550000002", "+15550000003", "+15550000004")
	m.Recipients[1].Provider, m.Recipients[1].Providers = "p2", []string{"p2"} // not taken: another provider
	m.Recipients[3].NextAttempt = base.Add(time.Hour)                          // not taken: scheduled
	k := &taker{provider: "p1", room: 1}
	n, err := ec.EnqueueClaim(ctx, m, base, k)
	if err != nil {
		t.Fatalf("EnqueueClaim: %v", err)
	}
	jobs := k.delivered
	if n != 1 || len(jobs) != 1 || jobs[0].Recipient.To != "+15550000001" {
		t.Fatalf("EnqueueClaim claimed %d, delivered %+v; want the first recipient alone (room for one of p1)", n, jobs)
	}
	stored := get(t, s, m.ID)
	j := jobs[0]
	want := stored.Recipients[0]
	if j.Recipient.ID != want.ID || j.Recipient.Attempts != 1 || j.Recipient.ProviderAttempts != 1 ||
		!j.Recipient.NextAttempt.Equal(base.Add(lease(1))) || !want.NextAttempt.Equal(base.Add(lease(1))) ||
		want.Attempts != 1 || m.Recipients[0].ID != want.ID {
		t.Errorf("claimed recipient %+v, stored %+v; want attempt 1 recorded, due again after its lease", j.Recipient, want)
	}
	if j.Message.ID != m.ID || j.Message.Text != m.Text || len(j.Message.Recipients) != 0 || !j.Message.Created.Equal(m.Created) {
		t.Errorf("claimed job's message %+v, want the message without recipients", j.Message)
	}
	if k.untook != 0 {
		t.Errorf("%d recipients given back after a commit", k.untook)
	}

	// Claim hands out the two left due, never the one claimed.
	got := claim(t, s, base, 10)
	if ids := recipientIDs(got); len(ids) != 2 || ids[0] != stored.Recipients[1].ID || ids[1] != stored.Recipients[2].ID {
		t.Errorf("Claim after EnqueueClaim = %v, want recipients 2 and 3", ids)
	}

	// A crash: what EnqueueClaim claimed is due again at once.
	if _, err := s.Recover(ctx, base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got = claim(t, s, base.Add(time.Second), 10)
	found := false
	for _, g := range got {
		found = found || g.Recipient.ID == want.ID
	}
	if !found || get(t, s, m.ID).Recipients[0].Attempts != 2 {
		t.Errorf("after Recover, Claim = %v; want the recipient EnqueueClaim claimed, at its second attempt", recipientIDs(got))
	}

	// A message that fails to store gives back everything it took.
	dup := newMessage(base, base, "+15550000005")
	dup.ID = m.ID
	k = &taker{provider: "p1", room: 5}
	if n, err := ec.EnqueueClaim(ctx, dup, base, k); err == nil || n != 0 || len(k.delivered) != 0 {
		t.Fatalf("EnqueueClaim of a taken id = %d, %v, delivered %v; want an error, nothing delivered", n, err, k.delivered)
	}
	if k.took != k.untook {
		t.Errorf("a failed EnqueueClaim took %d and gave back %d", k.took, k.untook)
	}
	keyed := newMessage(base, base, "+15550000006")
	keyed.IdempotencyKey = "k1"
	if _, err := ec.EnqueueClaim(ctx, keyed, base, &taker{provider: "p1", room: 5}); err != nil {
		t.Fatal(err)
	}
	again := newMessage(base, base, "+15550000006")
	again.IdempotencyKey = "k1"
	k = &taker{provider: "p1", room: 5}
	if _, err := ec.EnqueueClaim(ctx, again, base, k); !errors.Is(err, bridge.ErrDuplicateKey) || k.took != k.untook || len(k.delivered) != 0 {
		t.Errorf("EnqueueClaim with a used key = %v, took %d gave back %d; want ErrDuplicateKey, all given back", err, k.took, k.untook)
	}
}
