package bridge_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

// stopping is a dispatcher over a real SQLite store, with one blocking
// provider "p" of one slot, that the test stops itself.
type stopping struct {
	store  *sqlite.Store
	disp   *bridge.Dispatcher
	bridge *bridge.Bridge
	acct   *bridge.Account
	p      *scripted
	cancel context.CancelFunc
	done   chan struct{}
}

// newStopping starts it; submissions go through submitTo (the store
// itself if nil) and are handed off to the dispatcher if handoff is set.
func newStopping(t *testing.T, submitTo func(*sqlite.Store) bridge.ConversationStore, handoff bool) *stopping {
	t.Helper()
	st, log := openStore(t)
	var err error
	s := &stopping{store: st, p: &scripted{name: "p", block: make(chan struct{}), started: make(chan *bridge.SendRequest, 16)},
		done: make(chan struct{})}
	s.disp = bridge.NewDispatcher(st, []bridge.Provider{s.p}, bridge.DispatchOptions{Log: log, Concurrency: map[string]int{"p": 1}})
	var sub bridge.ConversationStore = st
	if submitTo != nil {
		sub = submitTo(st)
	}
	bopt := bridge.Options{Region: "IL", Enqueued: s.disp.Wake, Log: log}
	if handoff {
		bopt.Handoff = s.disp.Handoff
	}
	s.bridge, err = bridge.New(sub, []bridge.Provider{s.p}, route,
		[]bridge.Account{{Name: "a", Emails: []string{"*@x.com"}, SenderIDs: []string{"A"}}}, bopt)
	if err != nil {
		t.Fatal(err)
	}
	s.acct, _ = s.bridge.Account("a@x.com")
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.disp.Run(ctx, 5*time.Second); close(s.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.p.block:
		default:
			close(s.p.block)
		}
		<-s.done
	})
	return s
}

func (s *stopping) submit(t *testing.T, to ...string) *bridge.Message {
	t.Helper()
	sub := &bridge.Submission{Account: s.acct, Text: "x"}
	for _, n := range to {
		r, err := s.bridge.Resolve(s.acct, n)
		if err != nil {
			t.Fatal(err)
		}
		sub.Recipients = append(sub.Recipients, r)
	}
	m, err := s.bridge.Submit(t.Context(), sub)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// stored returns the recipients of m as stored, and the one sent to
// inFlight.
func (s *stopping) stored(t *testing.T, m *bridge.Message, inFlight string) (waited []bridge.Recipient, flying bridge.Recipient) {
	t.Helper()
	got, err := s.store.Message(t.Context(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got.Recipients {
		if r.To == inFlight {
			flying = r
		} else {
			waited = append(waited, r)
		}
	}
	return waited, flying
}

// A graceful stop gives back at once what the dispatcher claimed and was
// still waiting for its provider's slot: due now, unclaimed, its attempt
// (never made) taken back, so another instance can claim it without
// waiting for its lease. The send in flight is not given back: it keeps
// its claim, finishes within the grace period and is recorded.
func TestDispatchReleasesUnstartedOnShutdown(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s := newStopping(t, nil, false)
		m := s.submit(t, "0501111111", "0502222222", "0503333333")
		req := <-s.p.started // one call in flight, two waiting for its slot
		synctest.Wait()
		flyingTo := req.To[0]
		if waited, flying := s.stored(t, m, flyingTo); flying.Attempts != 1 || len(waited) != 2 ||
			waited[0].Attempts != 1 || waited[1].Attempts != 1 {
			t.Fatalf("before the stop: in flight %+v, waiting %+v; want all three claimed", flying, waited)
		}
		s.cancel()
		synctest.Wait()
		select {
		case <-s.done:
			t.Fatal("Run returned with a send in flight")
		default:
		}
		now := time.Now()
		waited, flying := s.stored(t, m, flyingTo)
		for _, r := range waited {
			if r.State != bridge.StateQueued || r.Attempts != 0 || r.ProviderAttempts != 0 || r.NextAttempt.After(now) {
				t.Errorf("waiting recipient after the stop: %+v; want queued, no attempt, due now", r)
			}
		}
		if flying.State != bridge.StateQueued || flying.Attempts != 1 || !flying.NextAttempt.After(now) {
			t.Errorf("recipient in flight after the stop: %+v; want still claimed", flying)
		}
		// Another claimer gets the two that waited, and not the one in
		// flight.
		jobs, err := s.store.Claim(t.Context(), now, 10, nil, func(int) time.Duration { return time.Hour })
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, j := range jobs {
			got = append(got, j.Recipient.To)
		}
		slices.Sort(got)
		want := []string{waited[0].To, waited[1].To}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("claimed %v after the stop, want %v (those that waited)", got, want)
		}
		close(s.p.block) // the send in flight finishes within the grace period
		<-s.done
		if _, flying := s.stored(t, m, flyingTo); flying.State != bridge.StateSent || flying.Attempts != 1 {
			t.Errorf("recipient in flight: %+v; want sent, recorded", flying)
		}
		if n := len(s.p.Calls()); n != 1 {
			t.Errorf("%d provider calls, want 1", n)
		}
	})
}

// heldDelivery is the store for submissions, whose hand-off deliveries
// wait until the test lets them go: a submission claimed in its
// transaction while the dispatcher stops.
type heldDelivery struct {
	*sqlite.Store
	delivering chan struct{}
	hold       chan struct{}
}

func (s *heldDelivery) EnqueueClaim(ctx context.Context, m *bridge.Message, now time.Time, t bridge.Taker) (int, error) {
	return s.Store.EnqueueClaim(ctx, m, now, heldTaker{t, s})
}

type heldTaker struct {
	bridge.Taker
	s *heldDelivery
}

func (k heldTaker) Deliver(jobs []bridge.Job) {
	k.s.delivering <- struct{}{}
	<-k.s.hold
	k.Taker.Deliver(jobs)
}

// A recipient claimed through the hand-off while the dispatcher stops,
// its transaction not yet answered, is waited for and given back with the
// rest: it does not stay claimed until its lease.
func TestDispatchReleasesHandoffInFlightOnShutdown(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var held *heldDelivery
		s := newStopping(t, func(st *sqlite.Store) bridge.ConversationStore {
			held = &heldDelivery{Store: st, delivering: make(chan struct{}, 1), hold: make(chan struct{})}
			return held
		}, true)
		synctest.Wait() // Run has offered the hand-off its quota
		close(held.hold)
		first := s.submit(t, "0501111111")
		<-held.delivering
		<-s.p.started // in flight, holding p's only slot
		held.hold = make(chan struct{})
		submitted := make(chan *bridge.Message)
		go func() { submitted <- s.submit(t, "0502222222") }()
		<-held.delivering // claimed and committed, not yet delivered
		s.cancel()
		synctest.Wait() // Run has stopped claiming, and waits for the delivery
		close(held.hold)
		second := <-submitted
		synctest.Wait()
		now := time.Now()
		if r, _ := s.stored(t, second, ""); r[0].State != bridge.StateQueued || r[0].Attempts != 0 || r[0].NextAttempt.After(now) {
			t.Errorf("recipient handed off during the stop: %+v; want released, due now", r[0])
		}
		if _, flying := s.stored(t, first, "+972501111111"); flying.Attempts != 1 || !flying.NextAttempt.After(now) {
			t.Errorf("recipient in flight: %+v; want still claimed", flying)
		}
		close(s.p.block)
		<-s.done
		if _, flying := s.stored(t, first, "+972501111111"); flying.State != bridge.StateSent {
			t.Errorf("recipient in flight: %+v; want sent", flying)
		}
	})
}
