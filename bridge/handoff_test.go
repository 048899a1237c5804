package bridge_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

// countingClaims is the real store, counting the recipients Claim hands
// out and the NextDue reads.
type countingClaims struct {
	*sqlite.Store
	mu      sync.Mutex
	claimed int
	nextDue int
}

func (s *countingClaims) Claim(ctx context.Context, now time.Time, limit int, quota map[string]int, lease func(int) time.Duration) ([]bridge.Job, error) {
	jobs, err := s.Store.Claim(ctx, now, limit, quota, lease)
	s.mu.Lock()
	s.claimed += len(jobs)
	s.mu.Unlock()
	return jobs, err
}

func (s *countingClaims) NextDue(ctx context.Context, skip ...string) (time.Time, bool, error) {
	s.mu.Lock()
	s.nextDue++
	s.mu.Unlock()
	return s.Store.NextDue(ctx, skip...)
}

func (s *countingClaims) counts() (claimed, nextDue int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claimed, s.nextDue
}

// With the hand-off, a message the dispatcher has room for is claimed as
// it is stored and sent without a claim, nor a wake-up that reads the
// store: one commit before the provider call.
func TestHandoffSendsWithoutClaiming(t *testing.T) {
	bubble(t, func(t *testing.T) {
		p := &scripted{name: "p"}
		var st *countingClaims
		e := newEnvWith(t, func(s *sqlite.Store) bridge.Store {
			st = &countingClaims{Store: s}
			return st
		}, true, bridge.DispatchOptions{}, route, p)
		synctest.Wait() // Run has made its first claim and waits
		claimed0, next0 := st.counts()
		for i := range 3 {
			submitted := time.Now()
			m := e.submit(t, "hi", time.Time{}, "0501111111", "0502222222")
			for range 2 {
				if o := e.final(t); o.State != bridge.StateSent {
					t.Fatalf("message %d: outcome %+v", i, o)
				}
			}
			for k := range 2 {
				if r := e.recipient(t, m, k); r.State != bridge.StateSent || r.Attempts != 1 {
					t.Errorf("message %d recipient %d = %+v, want sent at the first attempt", i, k, r)
				}
			}
			for _, at := range p.Times()[2*i:] {
				if at != submitted {
					t.Errorf("message %d sent %v after it was submitted, want at once", i, at.Sub(submitted))
				}
			}
		}
		claimed, next := st.counts()
		if claimed != claimed0 || next != next0 {
			t.Errorf("Claim handed out %d recipients and NextDue ran %d times during the sends, want none",
				claimed-claimed0, next-next0)
		}
		if n := len(p.Calls()); n != 6 {
			t.Errorf("%d provider calls, want 6", n)
		}
	})
}

// The hand-off takes no more than the dispatcher's quota for a provider
// (backlogPerSlot, 8, per slot); the rest of a large message is claimed as
// slots free up, each recipient sent once.
func TestHandoffKeepsToTheQuota(t *testing.T) {
	bubble(t, func(t *testing.T) {
		p := &scripted{name: "p", block: make(chan struct{})}
		var st *countingClaims
		e := newEnvWith(t, func(s *sqlite.Store) bridge.Store {
			st = &countingClaims{Store: s}
			return st
		}, true, bridge.DispatchOptions{Concurrency: map[string]int{"p": 1}}, route, p)
		synctest.Wait()
		claimed0, _ := st.counts()
		var to []string
		for i := range 20 {
			to = append(to, "05011111"+string(rune('0'+i/10))+string(rune('0'+i%10)))
		}
		m := e.submit(t, "hi", time.Time{}, to...)
		synctest.Wait() // one call in flight, the rest waiting for its slot
		if claimed, _ := st.counts(); claimed != claimed0 {
			t.Errorf("Claim handed out %d recipients while the hand-off filled the quota", claimed-claimed0)
		}
		close(p.block)
		for range 20 {
			if o := e.final(t); o.State != bridge.StateSent {
				t.Fatalf("outcome %+v", o)
			}
		}
		if claimed, _ := st.counts(); claimed-claimed0 != 12 {
			t.Errorf("Claim handed out %d recipients, want the 12 the hand-off had no room for", claimed-claimed0)
		}
		if n := len(p.Calls()); n != 20 {
			t.Errorf("%d provider calls for 20 recipients, want 20", n)
		}
		for k := range 20 {
			if r := e.recipient(t, m, k); r.State != bridge.StateSent || r.Attempts != 1 {
				t.Errorf("recipient %d = %+v, want sent at the first attempt", k, r)
			}
		}
	})
}

// A handed-off batch is sent without reading its recipients' consent
// again when Submit read it a moment before; one that waited for a slot
// longer than that reads it at the send, and a STOP recorded meanwhile
// cancels it.
func TestHandoffConsent(t *testing.T) {
	bubble(t, func(t *testing.T) {
		p := &scripted{name: "p", block: make(chan struct{})}
		var e *env
		var mu sync.Mutex
		reads := 0
		opt := bridge.DispatchOptions{Concurrency: map[string]int{"p": 1},
			Consent: func(ctx context.Context, m *bridge.Message, phones []string) (map[string]string, error) {
				mu.Lock()
				reads++
				mu.Unlock()
				return e.bridge.HeldBack(ctx, m, phones)
			}}
		e = newEnvWith(t, nil, true, opt, route, p)
		synctest.Wait()
		e.submit(t, "first", time.Time{}, "0501111111")  // sent at once, its call held
		e.submit(t, "second", time.Time{}, "0502222222") // waits for the slot
		synctest.Wait()
		pass(2 * time.Second)
		if _, _, err := e.store.Suppress(t.Context(), bridge.SuppressionChange{Suppression: bridge.Suppression{
			Phone: "+972502222222", Reason: "SMS STOP", Source: "sms", By: "+972502222222", Created: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		close(p.block)
		states := map[bridge.State]int{}
		for range 2 {
			states[e.final(t).State]++
		}
		if states[bridge.StateSent] != 1 || states[bridge.StateCancelled] != 1 {
			t.Errorf("outcomes %v, want the first sent and the second cancelled", states)
		}
		for _, c := range p.Calls() {
			if len(c.To) != 1 || c.To[0] != "+972501111111" {
				t.Errorf("provider called for %v, want only the first phone", c.To)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if reads != 1 {
			t.Errorf("consent read %d times at the send, want once (the batch that waited)", reads)
		}
	})
}
