package bridge_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

// reporter is a provider whose delivery reports are polled. Ids starting
// with "stuck" never get a final report, "bad" is an id the provider
// refuses to answer for, and every other id is delivered.
type reporter struct {
	mu    sync.Mutex
	asked map[string]int
	at    []time.Time // when each PollReports was called
	down  bool        // every call fails, temporarily
	polls chan time.Time
}

func (p *reporter) Name() string { return "p" }

func (p *reporter) Send(context.Context, *bridge.SendRequest) ([]bridge.Result, error) {
	return nil, bridge.Permanent(bridge.ReasonInvalid, "", "this provider only reports")
}

func (p *reporter) PollReports(_ context.Context, id string) ([]bridge.DeliveryReport, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at = append(p.at, time.Now())
	if p.polls != nil {
		p.polls <- time.Now()
	}
	if p.down {
		return nil, bridge.Temporary(bridge.ReasonProviderDown, nil, "provider unavailable")
	}
	p.asked[id]++
	switch {
	case id == "bad":
		return nil, bridge.Permanent(bridge.ReasonInvalid, "id", "unknown message id %q", id)
	case len(id) > 5 && id[:5] == "stuck":
		return []bridge.DeliveryReport{{State: bridge.StateSent, Detail: "ENROUTE"}}, nil
	}
	return []bridge.DeliveryReport{{State: bridge.StateDelivered, Detail: "DELIVRD"}}, nil
}

func (p *reporter) reset() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	asked := p.asked
	p.asked = map[string]int{}
	return asked
}

type pollSetup struct {
	store *sqlite.Store
	b     *bridge.Bridge
	prov  *reporter
}

func newPollSetup(t *testing.T, now func() time.Time) *pollSetup {
	t.Helper()
	st, log := openStore(t)
	var err error
	s := &pollSetup{store: st, prov: &reporter{asked: map[string]int{}}}
	s.b, err = bridge.New(st, []bridge.Provider{s.prov}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}},
		[]bridge.Account{{Name: "ops", Emails: []string{"*@example.com"}}},
		bridge.Options{Region: "IL", Log: log, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sent stores one message whose recipients p accepted at at, recipient i
// under ids[i].
func (s *pollSetup) sent(t *testing.T, at time.Time, ids ...string) *bridge.Message {
	t.Helper()
	m := &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelHTTP, Account: "ops", Text: "hi", Created: at}
	for i := range ids {
		m.Recipients = append(m.Recipients, bridge.Recipient{To: fmt.Sprintf("+1555%07d", i), Providers: []string{"p"},
			Provider: "p", NextAttempt: at, Updated: at})
	}
	if err := s.store.Enqueue(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	var outs []bridge.Outcome
	for i, id := range ids {
		outs = append(outs, bridge.Outcome{RecipientID: m.Recipients[i].ID, State: bridge.StateSent, Provider: "p",
			ProviderID: id, At: at})
	}
	if err := s.store.Complete(context.Background(), outs); err != nil {
		t.Fatal(err)
	}
	return m
}

func (s *pollSetup) state(t *testing.T, m *bridge.Message) bridge.State {
	t.Helper()
	got, err := s.store.Message(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got.Recipients[0].State
}

// TestPollReportsFair: sends that never get a final report, however
// many, neither starve a newer send nor each other, and an id the provider
// refuses does not stop the round; after ReportsFor nothing is asked.
func TestPollReportsFair(t *testing.T) {
	now := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	s := newPollSetup(t, func() time.Time { return now })
	const stuck = 250 // two and a half rounds' worth
	ids := []string{"bad"}
	for i := range stuck {
		ids = append(ids, fmt.Sprintf("stuck-%03d", i))
	}
	s.sent(t, now, ids...)
	p, err := s.b.NewPoller("p", bridge.PollOptions{Interval: time.Minute, Holder: "test", ReportsFor: time.Hour,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	round := func() {
		now = now.Add(time.Minute)
		p.Poll(t.Context())
	}

	for range 3 {
		round()
	}
	if asked := s.prov.reset(); len(asked) != len(ids) {
		t.Errorf("3 rounds of 100 asked about %d of %d sends", len(asked), len(ids))
	}

	fresh := s.sent(t, now, "fresh")
	round()
	if asked := s.prov.reset(); asked["fresh"] != 1 {
		t.Errorf("a new send was not asked about in the next round, behind %d that never get a report", stuck)
	}
	if st := s.state(t, fresh); st != bridge.StateDelivered {
		t.Errorf("new send is %s after its report, want delivered", st)
	}

	// The provider down: a round ends at its first error.
	s.prov.down = true
	round()
	if n := len(s.prov.at); n != 3*100+100+1 {
		t.Errorf("%d calls; want one in the round the provider was down", n-400)
	}
	s.prov.down = false

	// Past ReportsFor, nobody waits for a report any more.
	now = now.Add(time.Hour)
	round()
	if asked := s.prov.reset(); len(asked) != 0 {
		t.Errorf("asked about %d sends older than ReportsFor", len(asked))
	}
}

// TestPollerRun: under a fake clock, Run polls at once and then every
// interval exactly, and returns when its context ends.
func TestPollerRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPollSetup(t, time.Now)
		s.prov.polls = make(chan time.Time)
		start := time.Now()
		s.sent(t, start, "stuck-1")
		p, err := s.b.NewPoller("p", bridge.PollOptions{Interval: 30 * time.Second, Holder: "test"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		for i := range 4 {
			if at := <-s.prov.polls; at.Sub(start) != time.Duration(i)*30*time.Second {
				t.Errorf("poll %d at +%v, want +%v", i, at.Sub(start), time.Duration(i)*30*time.Second)
			}
		}
		cancel()
		<-done
	})
}

// TestPollerStatus: Status says when the last round ended and why it
// failed, and that another instance polls while it holds the lease.
func TestPollerStatus(t *testing.T) {
	now := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	s := newPollSetup(t, func() time.Time { return now })
	s.sent(t, now, "stuck-1")
	clock := func() time.Time { return now }
	rounds := 0
	p, err := s.b.NewPoller("p", bridge.PollOptions{Interval: time.Minute, Holder: "a", Now: clock, Ran: func() { rounds++ }})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st != (bridge.PollStatus{Provider: "p", Interval: time.Minute}) {
		t.Fatalf("before the first round: %+v", st)
	}
	now = now.Add(time.Minute)
	p.Poll(t.Context())
	if st := p.Status(); !st.Ran.Equal(now) || st.Err != "" || st.Elsewhere || rounds != 1 {
		t.Fatalf("after a good round at %v: %+v, Ran called %d times", now, st, rounds)
	}

	s.prov.down = true
	now = now.Add(time.Minute)
	p.Poll(t.Context())
	if st := p.Status(); !st.Ran.Equal(now) || !strings.Contains(st.Err, "delivery reports: provider unavailable") {
		t.Fatalf("after a round with the provider down: %+v", st)
	}
	s.prov.down = false

	// Another instance, while a holds the lease, does not poll.
	b, err := s.b.NewPoller("p", bridge.PollOptions{Interval: time.Minute, Holder: "b", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	calls := len(s.prov.at)
	b.Poll(t.Context())
	if st := b.Status(); !st.Elsewhere || st.Err != "" || !st.Ran.Equal(now) || len(s.prov.at) != calls {
		t.Fatalf("instance b while a holds the lease: %+v, %d calls", st, len(s.prov.at)-calls)
	}
}
