package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// blocking is a provider whose calls wait until block is closed, telling
// started of each.
type blocking struct {
	started chan *bridge.SendRequest
	block   chan struct{}
}

func (p *blocking) Name() string { return "p1" }
func (p *blocking) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	p.started <- req
	select {
	case <-p.block:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res := make([]bridge.Result, len(req.To))
	for i := range res {
		res[i].ProviderID = "id-" + req.To[i]
	}
	return res, nil
}

// releaseTold is the store, telling released what each Release gave back.
type releaseTold struct {
	*Store
	released chan int
}

func (s *releaseTold) Release(ctx context.Context, jobs []bridge.Job, now time.Time) (int, error) {
	n, err := s.Store.Release(ctx, jobs, now)
	if err != nil {
		n = -1
	}
	s.released <- n
	return n, err
}

// TestReleaseOnShutdownTwoInstances: instance A's dispatcher holds three
// recipients claimed, one in a provider call and two waiting for the
// provider's only slot. A stops gracefully: while its call is still in
// flight, and its instance lock still held, instance B's Claim gets the
// two that waited, not waiting for their lease nor for A to be gone, and
// not the one in flight, which A records as sent.
func TestReleaseOnShutdownTwoInstances(t *testing.T) {
	u, _ := newDatabase(t)
	a, b := openTest(t, u), openTest(t, u)
	ctx := context.Background()
	m := message("+15550000001", "+15550000002", "+15550000003")
	if err := a.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	now := m.Created // the dispatcher's clock stands still: no lease runs out
	p := &blocking{started: make(chan *bridge.SendRequest, 3), block: make(chan struct{})}
	told := &releaseTold{Store: a, released: make(chan int, 1)}
	d := bridge.NewDispatcher(told, []bridge.Provider{p}, bridge.DispatchOptions{Log: quiet,
		Concurrency: map[string]int{"p1": 1}, Now: func() time.Time { return now }})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.Run(runCtx, time.Minute); close(done) }()
	defer func() {
		stop()
		select {
		case <-p.block:
		default:
			close(p.block)
		}
		<-done
	}()

	req := <-p.started // A's first claim took all three: one in flight, two waiting
	flying := req.To[0]
	lease := func(int) time.Duration { return time.Hour }
	if jobs, err := b.Claim(ctx, now, 10, nil, lease); err != nil || len(jobs) != 0 {
		t.Fatalf("B's Claim while A runs = %d jobs, %v; want none (A holds them)", len(jobs), err)
	}

	stop()
	select {
	case n := <-told.released:
		if n != 2 {
			t.Fatalf("A released %d at its stop, want 2", n)
		}
	case <-time.After(time.Minute): // a failsafe, not a wait: it answers in milliseconds
		t.Fatal("A released nothing at its stop")
	}
	select {
	case <-done:
		t.Fatal("A's dispatcher returned with a send in flight")
	default:
	}
	// A is alive: its call in flight stays its own, even to a Recover
	// (B's, as if it had just started).
	if n, err := b.Recover(ctx, now); err != nil || n != 0 {
		t.Errorf("B's Recover while A's call is in flight = %d, %v; want 0", n, err)
	}
	jobs, err := b.Claim(ctx, now, 10, nil, lease)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range jobs {
		got = append(got, j.Recipient.To)
		if j.Recipient.Attempts != 1 {
			t.Errorf("B's claim of %s: attempt %d, want 1 (A's was never made)", j.Recipient.To, j.Recipient.Attempts)
		}
	}
	slices.Sort(got)
	var want []string
	for _, r := range m.Recipients {
		if r.To != flying {
			want = append(want, r.To)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("B claimed %v after A's stop, want %v (not %s, in flight at A)", got, want, flying)
	}

	close(p.block)
	<-done
	stored, err := a.Message(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range stored.Recipients {
		if r.To == flying && (r.State != bridge.StateSent || r.Attempts != 1 || r.ProviderID != "id-"+flying) {
			t.Errorf("recipient in flight at A's stop: %+v; want sent once, recorded", r)
		}
	}
}
