package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// testRelease: Release gives back claims still held as they were made,
// due at once, unclaimed, their attempt taken back; it leaves alone a
// recipient since recorded, one claimed again after its lease ran out,
// and one it is not given (a send in flight).
func testRelease(t *testing.T, s bridge.Store) {
	rs, ok := s.(bridge.Releaser)
	if !ok {
		t.Skip("the store does not release claims")
	}
	ctx := context.Background()
	m := enqueue(t, s, newMessage(base, base, "+15550000001", "+15550000002", "+15550000003", "+15550000004"))
	jobs := claim(t, s, base, 4)
	if len(jobs) != 4 {
		t.Fatalf("claimed %d, want 4", len(jobs))
	}
	complete(t, s, bridge.Outcome{RecipientID: jobs[0].Recipient.ID, State: bridge.StateSent, ProviderID: "x", At: base})
	// Recipient 1's lease runs out and it is claimed again: the first
	// claim is stale, the second another dispatcher's.
	again := base.Add(lease(1))
	if j := claim(t, s, again, 1); len(j) != 1 || j[0].Recipient.ID != jobs[1].Recipient.ID {
		t.Fatalf("claim after the lease = %v, want recipient %d", recipientIDs(j), jobs[1].Recipient.ID)
	}
	at := again.Add(time.Second)
	// Recipient 2 twice (one claim, handed over twice): released once.
	n, err := rs.Release(ctx, []bridge.Job{jobs[0], jobs[1], jobs[2], jobs[2]}, at)
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	if n != 1 {
		t.Errorf("Release released %d, want 1 (recipient 2 alone)", n)
	}
	got := get(t, s, m.ID)
	r := got.Recipients
	if r[0].State != bridge.StateSent {
		t.Errorf("recorded recipient: %+v", r[0])
	}
	if r[1].Attempts != 2 || !r[1].NextAttempt.Equal(again.Add(lease(2))) {
		t.Errorf("recipient claimed again: attempts %d, next %v; want its second claim untouched", r[1].Attempts, r[1].NextAttempt)
	}
	if r[2].State != bridge.StateQueued || r[2].Attempts != 0 || r[2].ProviderAttempts != 0 || !r[2].NextAttempt.Equal(at) {
		t.Errorf("released recipient: %+v; want queued, no attempt, due at %v", r[2], at)
	}
	if r[3].Attempts != 1 || !r[3].NextAttempt.Equal(base.Add(lease(1))) {
		t.Errorf("recipient not given to Release: %+v; want its claim untouched", r[3])
	}
	// Only the released recipient is no longer claimed: Cancel takes it
	// alone.
	if n, err := s.Cancel(ctx, m.ID, at); err != nil || n != 1 {
		t.Errorf("Cancel after Release = %d, %v; want 1 (the released recipient)", n, err)
	}
	if got := get(t, s, m.ID).Recipients[2]; got.State != bridge.StateCancelled {
		t.Errorf("released recipient after Cancel: %s", got.State)
	}
	// Nothing is held under those claims any more.
	if n, err := rs.Release(ctx, jobs[:3], at); err != nil || n != 0 {
		t.Errorf("second Release = %d, %v; want 0", n, err)
	}
}
