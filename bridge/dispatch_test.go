package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

// scripted is a provider whose answers the test decides, recording calls.
type scripted struct {
	name   string
	batch  int
	native bool
	mu     sync.Mutex
	calls  []*bridge.SendRequest
	at     []time.Time // when each call was answered
	errs   []error     // per call, in order; nil (or exhausted) = success
	block  chan struct{}
	// started, if set, receives each request as it arrives.
	started chan *bridge.SendRequest
}

func (p *scripted) Name() string  { return p.name }
func (p *scripted) MaxBatch() int { return p.batch }
func (p *scripted) SchedulesNatively(*bridge.SendRequest) bool {
	return p.native
}

func (p *scripted) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	if p.started != nil {
		p.started <- req
	}
	if p.block != nil {
		select {
		case <-p.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cp := *req
	cp.To = append([]string(nil), req.To...)
	p.calls = append(p.calls, &cp)
	p.at = append(p.at, time.Now())
	if n := len(p.calls) - 1; n < len(p.errs) && p.errs[n] != nil {
		return nil, p.errs[n]
	}
	res := make([]bridge.Result, len(req.To))
	for i := range res {
		res[i].ProviderID = p.name + "-" + req.To[i]
	}
	return res, nil
}

func (p *scripted) Calls() []*bridge.SendRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*bridge.SendRequest(nil), p.calls...)
}

func (p *scripted) Times() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.at...)
}

// hanging is a provider whose calls never answer: each ends when the
// dispatcher's send timeout cuts it off.
type hanging struct {
	name  string
	mu    sync.Mutex
	calls int
}

func (p *hanging) Name() string { return p.name }
func (p *hanging) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	<-ctx.Done()
	return nil, bridge.Temporary(bridge.ReasonProviderDown, ctx.Err(), "%s: timeout", p.name)
}

func (p *hanging) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

type env struct {
	store  *sqlite.Store
	bridge *bridge.Bridge
	disp   *bridge.Dispatcher
	finals chan bridge.Outcome
	acct   *bridge.Account
	// early holds final outcomes finalFor read while waiting for another.
	early map[int64]bridge.Outcome
}

// bubble runs f in a synctest bubble: the dispatcher, the real SQLite
// store's goroutines and the providers all run on its fake clock, which
// moves only when every one of them waits. A test waits on events (an
// outcome, a provider call) and reads the fake clock to say when they
// happened; nothing real sleeps.
func bubble(t *testing.T, f func(t *testing.T)) {
	synctest.Test(t, f)
}

// openStore opens a real SQLite store in t's temporary directory, closed
// when t ends, and a logger that discards.
func openStore(t *testing.T) (*sqlite.Store, *slog.Logger) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "q.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, log
}

func newEnv(t *testing.T, opt bridge.DispatchOptions, routes []bridge.Route, provs ...bridge.Provider) *env {
	t.Helper()
	return newEnvOn(t, nil, opt, routes, provs...)
}

// newEnvOn is newEnv with the dispatcher over wrap(store), if wrap is set.
func newEnvOn(t *testing.T, wrap func(*sqlite.Store) bridge.Store, opt bridge.DispatchOptions, routes []bridge.Route, provs ...bridge.Provider) *env {
	t.Helper()
	return newEnvWith(t, wrap, false, opt, routes, provs...)
}

// newEnvWith is newEnvOn, with submissions handing what they claim as
// they are stored to the dispatcher if handoff is set.
func newEnvWith(t *testing.T, wrap func(*sqlite.Store) bridge.Store, handoff bool, opt bridge.DispatchOptions, routes []bridge.Route, provs ...bridge.Provider) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "q.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, finals: make(chan bridge.Outcome, 1000), early: map[int64]bridge.Outcome{}}
	opt.Log = log
	opt.Final = func(_ context.Context, _ *bridge.Message, o bridge.Outcome) { e.finals <- o }
	if opt.RetryMin == 0 {
		opt.RetryMin, opt.RetryMax = 10*time.Millisecond, 40*time.Millisecond
	}
	var ds bridge.Store = st
	if wrap != nil {
		ds = wrap(st)
	}
	e.disp = bridge.NewDispatcher(ds, provs, opt)
	accounts := []bridge.Account{{Name: "ops", Emails: []string{"*@example.com"}, SenderIDs: []string{"Ops"}}}
	bopt := bridge.Options{Region: "IL", Enqueued: e.disp.Wake, Log: log}
	if handoff {
		bopt.Handoff = e.disp.Handoff
	}
	e.bridge, err = bridge.New(st, provs, routes, accounts, bopt)
	if err != nil {
		t.Fatal(err)
	}
	e.acct, _ = e.bridge.Account("a@example.com")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.disp.Run(ctx, time.Second); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	return e
}

func (e *env) submit(t *testing.T, text string, sendAt time.Time, to ...string) *bridge.Message {
	t.Helper()
	sub := &bridge.Submission{Account: e.acct, Channel: bridge.ChannelHTTP, Text: text, SendAt: sendAt}
	for _, n := range to {
		r, err := e.bridge.Resolve(e.acct, n)
		if err != nil {
			t.Fatalf("resolve %s: %v", n, err)
		}
		sub.Recipients = append(sub.Recipients, r)
	}
	m, err := e.bridge.Submit(t.Context(), sub)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// final waits for the next final outcome, for at most a minute of the
// bubble's clock.
func (e *env) final(t *testing.T) bridge.Outcome {
	t.Helper()
	select {
	case o := <-e.finals:
		return o
	case <-time.After(time.Minute):
		t.Fatal("no final outcome within a minute")
		return bridge.Outcome{}
	}
}

// finalFor waits for the final outcome of recipient id, skipping others.
func (e *env) finalFor(t *testing.T, id int64, within time.Duration) bridge.Outcome {
	t.Helper()
	if o, ok := e.early[id]; ok {
		delete(e.early, id)
		return o
	}
	deadline := time.After(within)
	for {
		select {
		case o := <-e.finals:
			if o.RecipientID == id {
				return o
			}
			e.early[o.RecipientID] = o
		case <-deadline:
			t.Fatalf("no final outcome for recipient %d within %v", id, within)
			return bridge.Outcome{}
		}
	}
}

func (e *env) recipient(t *testing.T, m *bridge.Message, i int) bridge.Recipient {
	t.Helper()
	got, err := e.store.Message(t.Context(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got.Recipients[i]
}

// recorded waits, for at most a minute of the bubble's clock, until the
// outcome of recipient i's first attempt is in the store (a send's outcome
// may wait a little to share a commit), and returns the recipient.
func (e *env) recorded(t *testing.T, m *bridge.Message, i int) bridge.Recipient {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r := e.recipient(t, m, i)
		if r.State != bridge.StateQueued || r.Error != "" || time.Now().After(deadline) {
			return r
		}
		pass(time.Millisecond)
	}
}

// pass lets d of the bubble's fake clock go by, so that what is due
// within it happens (or is seen not to): it blocks on a timer of the fake
// clock, which moves as soon as everything else waits.
func pass(d time.Duration) { <-time.After(d) }

var route = []bridge.Route{{Prefix: "+", Providers: []string{"p"}}}

func TestDispatchSendsAndBatches(t *testing.T) {
	bubble(t, func(t *testing.T) {
		p := &scripted{name: "p", batch: 2}
		e := newEnv(t, bridge.DispatchOptions{}, route, p)
		m := e.submit(t, "hello", time.Time{}, "0501111111", "0502222222", "0503333333")
		for range 3 {
			if o := e.final(t); o.State != bridge.StateSent {
				t.Fatalf("outcome %+v", o)
			}
		}
		calls := p.Calls()
		if len(calls) != 2 || len(calls[0].To)+len(calls[1].To) != 3 || len(calls[0].To) > 2 {
			t.Fatalf("calls = %d, want 2 batches of at most 2", len(calls))
		}
		if calls[0].Sender != "Ops" || calls[0].Text != "hello" || calls[0].MessageID != m.ID {
			t.Errorf("request = %+v", calls[0])
		}
		r := e.recipient(t, m, 0)
		if r.State != bridge.StateSent || r.ProviderID != "p-"+r.To || r.Attempts != 1 {
			t.Errorf("recipient = %+v", r)
		}
	})
}

func TestDispatchRetriesTemporaryFailures(t *testing.T) {
	bubble(t, func(t *testing.T) {
		p := &scripted{name: "p", errs: []error{
			bridge.Temporary(bridge.ReasonProviderDown, nil, "HTTP 503"),
			bridge.Temporary(bridge.ReasonProviderDown, nil, "timeout"),
		}}
		e := newEnv(t, bridge.DispatchOptions{RetryMin: time.Second, RetryMax: time.Second}, route, p)
		m := e.submit(t, "hi", time.Time{}, "0501111111")
		if o := e.final(t); o.State != bridge.StateSent {
			t.Fatalf("outcome %+v", o)
		}
		if r := e.recipient(t, m, 0); r.Attempts != 3 {
			t.Errorf("attempts = %d, want 3", r.Attempts)
		}
		// Each retry after exactly the backoff (retry_min = retry_max),
		// give or take the claim gap.
		at := p.Times()
		for i := 1; i < len(at); i++ {
			if gap := at[i].Sub(at[i-1]); gap < time.Second || gap > time.Second+50*time.Millisecond {
				t.Errorf("retry %d after %v, want 1s", i, gap)
			}
		}
	})
}

func TestDispatchPermanentFailureIsFinal(t *testing.T) {
	bubble(t, func(t *testing.T) {
		p := &scripted{name: "p", errs: []error{bridge.Permanent(bridge.ReasonProviderRejected, "", "stat_code 2: invalid phone")}}
		e := newEnv(t, bridge.DispatchOptions{}, route, p)
		m := e.submit(t, "hi", time.Time{}, "0501111111")
		o := e.final(t)
		if o.State != bridge.StateFailed || o.Error != "stat_code 2: invalid phone" {
			t.Fatalf("outcome %+v", o)
		}
		if r := e.recipient(t, m, 0); r.State != bridge.StateFailed || r.Error != o.Error || r.Attempts != 1 {
			t.Errorf("recipient = %+v", r)
		}
	})
}

func TestDispatchFailsOver(t *testing.T) {
	bubble(t, func(t *testing.T) {
		down := bridge.Temporary(bridge.ReasonProviderDown, nil, "HTTP 502")
		a := &scripted{name: "a", errs: []error{down, down, down, down}}
		b := &scripted{name: "b"}
		e := newEnv(t, bridge.DispatchOptions{FailoverAfter: 2}, []bridge.Route{{Prefix: "+", Providers: []string{"a", "b"}}}, a, b)
		m := e.submit(t, "hi", time.Time{}, "0501111111")
		o := e.final(t)
		if o.State != bridge.StateSent || o.Provider != "b" {
			t.Fatalf("outcome %+v, want sent by b", o)
		}
		if n := len(a.Calls()); n != 2 {
			t.Errorf("a called %d times, want 2 before failing over", n)
		}
		if r := e.recipient(t, m, 0); r.Provider != "b" || r.ProviderID != "b-+972501111111" || r.ProviderAttempts != 1 {
			t.Errorf("recipient = %+v", r)
		}

		// A permanent refusal another provider may not share fails over at once.
		a2 := &scripted{name: "a", errs: []error{bridge.Permanent(bridge.ReasonProviderRejected, "", "sender refused")}}
		b2 := &scripted{name: "b"}
		e2 := newEnv(t, bridge.DispatchOptions{}, []bridge.Route{{Prefix: "+", Providers: []string{"a", "b"}}}, a2, b2)
		start := time.Now()
		e2.submit(t, "hi", time.Time{}, "0501111111")
		if o := e2.final(t); o.State != bridge.StateSent || o.Provider != "b" {
			t.Fatalf("outcome %+v, want sent by b", o)
		}
		if took := time.Since(start); took > 50*time.Millisecond {
			t.Errorf("failover took %v; b was free, it should go at once", took)
		}
	})
}

// The README: "after three temporary failures at one provider ... the
// recipient moves to the next one". With a refusing at once, b is called
// three times, not five (the threshold counted every attempt the
// recipient ever had), and then c.
func TestDispatchFailoverCountsAttemptsPerProvider(t *testing.T) {
	bubble(t, func(t *testing.T) {
		down := bridge.Temporary(bridge.ReasonProviderDown, nil, "HTTP 503")
		a := &scripted{name: "a", errs: []error{bridge.Permanent(bridge.ReasonProviderRejected, "", "sender refused")}}
		b := &scripted{name: "b", errs: []error{down, down, down, down, down, down}}
		c := &scripted{name: "c"}
		e := newEnv(t, bridge.DispatchOptions{BreakerThreshold: 100}, []bridge.Route{{Prefix: "+", Providers: []string{"a", "b", "c"}}}, a, b, c)
		m := e.submit(t, "hi", time.Time{}, "0501111111")
		if o := e.final(t); o.State != bridge.StateSent || o.Provider != "c" {
			t.Fatalf("outcome %+v, want sent by c", o)
		}
		if na, nb, nc := len(a.Calls()), len(b.Calls()), len(c.Calls()); na != 1 || nb != 3 || nc != 1 {
			t.Errorf("calls a, b, c = %d, %d, %d; want 1, 3, 1", na, nb, nc)
		}
		if r := e.recipient(t, m, 0); r.Attempts != 5 || r.ProviderAttempts != 1 {
			t.Errorf("attempts %d, at c %d; want 5, 1", r.Attempts, r.ProviderAttempts)
		}
	})
}

// A failover waits for the next provider: until the end of the Retry-After
// it sent, and of its circuit's cooldown; not at once.
func TestDispatchFailoverWaitsForNextProvider(t *testing.T) {
	bubble(t, func(t *testing.T) {
		limited := &bridge.Error{Reason: bridge.ReasonProviderDown, Temp: true, RetryAfter: 30 * time.Second, Msg: "HTTP 429"}
		a := &scripted{name: "a", errs: []error{bridge.Permanent(bridge.ReasonProviderRejected, "", "sender refused")}}
		b := &scripted{name: "b", errs: []error{limited}}
		e := newEnv(t, bridge.DispatchOptions{RetryMin: time.Second, RetryMax: time.Minute},
			[]bridge.Route{{Prefix: "+97252", Providers: []string{"b"}}, {Prefix: "+", Providers: []string{"a", "b"}}}, a, b)
		first := e.submit(t, "x", time.Time{}, "0521111111") // to b alone: 429, Retry-After 30s
		limitedAt := time.Now()
		synctest.Wait()
		if n := len(b.Calls()); n != 1 {
			t.Fatalf("b called %d times, want 1", n)
		}
		m := e.submit(t, "y", time.Time{}, "0501111111") // a refuses: over to b
		o := e.finalFor(t, m.Recipients[0].ID, time.Minute)
		if o.State != bridge.StateSent || o.Provider != "b" {
			t.Fatalf("outcome %+v, want sent by b", o)
		}
		if at := b.Times()[1]; at.Before(limitedAt.Add(30 * time.Second)) {
			t.Errorf("b called %v after its 429 with Retry-After 30s", at.Sub(limitedAt))
		}
		if o := e.finalFor(t, first.Recipients[0].ID, time.Minute); o.State != bridge.StateSent {
			t.Errorf("first: %+v", o)
		}
	})
}

// A route stored with a provider twice (configuration now refuses it)
// does not send the queue round in circles: failover only moves forward.
func TestDispatchRouteNamingProviderTwiceEnds(t *testing.T) {
	bubble(t, func(t *testing.T) {
		p := &scripted{name: "p", errs: []error{bridge.Permanent(bridge.ReasonProviderRejected, "", "sender refused"),
			bridge.Permanent(bridge.ReasonProviderRejected, "", "sender refused")}}
		e := newEnv(t, bridge.DispatchOptions{}, []bridge.Route{{Prefix: "+", Providers: []string{"p", "p"}}}, p)
		e.submit(t, "hi", time.Time{}, "0501111111")
		o := e.final(t)
		if o.State != bridge.StateFailed {
			t.Fatalf("outcome %+v, want failed", o)
		}
		if n := len(p.Calls()); n != 1 {
			t.Errorf("p called %d times, want 1", n)
		}
	})
}

func TestDispatchHoldsOnBadCredentials(t *testing.T) {
	bubble(t, func(t *testing.T) {
		p := &scripted{name: "p", errs: []error{&bridge.Error{Reason: bridge.ReasonProviderAuth, Msg: "HTTP 401"}}}
		e := newEnv(t, bridge.DispatchOptions{RetryMin: time.Hour, RetryMax: time.Hour}, route, p)
		m := e.submit(t, "hi", time.Time{}, "0501111111")
		r := e.recorded(t, m, 0)
		if len(p.Calls()) != 1 || r.State != bridge.StateQueued || r.Error == "" || r.NextAttempt.Sub(p.Times()[0]) != time.Hour {
			t.Errorf("calls %d, recipient = %+v: want held for retry_max, not failed", len(p.Calls()), r)
		}
	})
}

func TestDispatchExpires(t *testing.T) {
	bubble(t, func(t *testing.T) {
		down := bridge.Temporary(bridge.ReasonProviderDown, nil, "HTTP 503")
		p := &scripted{name: "p", errs: []error{down, down, down, down, down, down, down, down, down, down}}
		e := newEnv(t, bridge.DispatchOptions{MaxAge: 100 * time.Millisecond, BreakerThreshold: 100}, route, p)
		e.submit(t, "hi", time.Time{}, "0501111111")
		o := e.final(t)
		if o.State != bridge.StateFailed || !contains(o.Error, "gave up after 100ms") || !contains(o.Error, "HTTP 503") {
			t.Fatalf("outcome %+v", o)
		}
	})
}

func TestDispatchHoldsScheduledUntilDue(t *testing.T) {
	bubble(t, func(t *testing.T) {
		held := &scripted{name: "held"}
		e := newEnv(t, bridge.DispatchOptions{}, []bridge.Route{{Prefix: "+", Providers: []string{"held"}}}, held)
		at := time.Now().Add(3 * time.Second)
		e.submit(t, "later", at, "0501111111")
		o := e.final(t)
		if o.At.Before(at) || o.At.After(at.Add(50*time.Millisecond)) {
			t.Errorf("sent at %v, want when due at %v", o.At, at)
		}
		if c := held.Calls(); len(c) != 1 || !c[0].SendAt.IsZero() {
			t.Errorf("calls = %+v: a held send goes out without SendAt", c)
		}

		native := &scripted{name: "native", native: true}
		e2 := newEnv(t, bridge.DispatchOptions{}, []bridge.Route{{Prefix: "+", Providers: []string{"native"}}}, native)
		at2 := time.Now().Add(time.Hour).Truncate(time.Second)
		e2.submit(t, "later", at2, "0501111111")
		e2.final(t)
		if c := native.Calls(); len(c) != 1 || !c[0].SendAt.Equal(at2) {
			t.Errorf("calls = %+v: a native scheduler gets SendAt at once", c)
		}
	})
}

func TestDispatchDrainsOnShutdown(t *testing.T) {
	bubble(t, func(t *testing.T) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "q.db"), log)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		p := &scripted{name: "p", block: make(chan struct{}), started: make(chan *bridge.SendRequest, 1)}
		d := bridge.NewDispatcher(st, []bridge.Provider{p}, bridge.DispatchOptions{Log: log})
		b, _ := bridge.New(st, []bridge.Provider{p}, route,
			[]bridge.Account{{Name: "a", Emails: []string{"*@x.com"}, SenderIDs: []string{"A"}}}, bridge.Options{Region: "IL", Enqueued: d.Wake})
		acct, _ := b.Account("a@x.com")
		r, _ := b.Resolve(acct, "0501111111")
		m, err := b.Submit(t.Context(), &bridge.Submission{Account: acct, Text: "x", Recipients: []bridge.Recipient{r}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx, 5*time.Second); close(done) }()
		<-p.started // the send is in flight
		cancel()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("Run returned with a send in flight")
		default:
		}
		close(p.block) // the in-flight send finishes within the grace period
		<-done
		got, _ := st.Message(t.Context(), m.ID)
		if got.Recipients[0].State != bridge.StateSent {
			t.Errorf("state = %s: the in-flight send must be recorded", got.Recipients[0].State)
		}
	})
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// Two providers on their own prefixes: "+97250" to the first, "+97252" to
// the second.
func twoRoutes(a, b string) []bridge.Route {
	return []bridge.Route{{Prefix: "+97250", Providers: []string{a}}, {Prefix: "+97252", Providers: []string{b}}}
}

// A provider that hangs at its concurrency limit holds nothing another
// provider needs: with every slot of a hanging provider taken (8 of them,
// as many as the workers the dispatcher used to share among providers),
// or a backlog of a hundred behind its one slot (more than the 64 the
// dispatcher used to hold claimed in all), a mail to another provider
// goes out within the claim gap.
func TestDispatchNoStallBehindHangingProvider(t *testing.T) {
	for _, c := range []struct {
		name    string
		slots   int
		backlog int
	}{
		{"every worker", 8, 8},
		{"claim capacity", 1, 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				hang := &hanging{name: "hang"}
				fast := &scripted{name: "fast"}
				e := newEnv(t, bridge.DispatchOptions{SendTimeout: 20 * time.Second, BreakerThreshold: 1000,
					Concurrency: map[string]int{"hang": c.slots}}, twoRoutes("hang", "fast"), hang, fast)
				for i := range c.backlog {
					e.submit(t, "x", time.Time{}, fmt.Sprintf("050%07d", i))
				}
				synctest.Wait()
				if n := hang.Calls(); n != c.slots {
					t.Fatalf("%d calls hang, want %d (its slots)", n, c.slots)
				}
				start := time.Now()
				m := e.submit(t, "y", time.Time{}, "0521111111")
				o := e.finalFor(t, m.Recipients[0].ID, time.Minute)
				if o.State != bridge.StateSent {
					t.Fatalf("outcome %+v", o)
				}
				if took := o.At.Sub(start); took > 50*time.Millisecond {
					t.Errorf("a mail to a healthy provider took %v while another hung", took)
				}
			})
		})
	}
}

// While a batch waits for its provider's slot, the dispatcher still wakes
// for due work: a 503 retry for another provider goes out when due, not
// when the hanging call ends; so does a scheduled send.
func TestDispatchNoticesDueWorkWhileBatchesWait(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hang := &hanging{name: "hang"}
		fast := &scripted{name: "fast", errs: []error{bridge.Temporary(bridge.ReasonProviderDown, nil, "HTTP 503")}}
		e := newEnv(t, bridge.DispatchOptions{SendTimeout: 20 * time.Second, RetryMin: time.Second, RetryMax: time.Second,
			Concurrency: map[string]int{"hang": 1}}, twoRoutes("hang", "fast"), hang, fast)
		e.submit(t, "x", time.Time{}, "0501111111")
		e.submit(t, "x", time.Time{}, "0501111112") // waits for hang's only slot
		synctest.Wait()
		start := time.Now()
		retried := e.submit(t, "y", time.Time{}, "0521111111")
		scheduled := e.submit(t, "z", start.Add(3*time.Second), "0521111112")
		o := e.finalFor(t, retried.Recipients[0].ID, time.Minute)
		if took := o.At.Sub(start); o.State != bridge.StateSent || took > time.Second+50*time.Millisecond {
			t.Errorf("retry sent %v after the 503 (due after 1s): %+v", took, o)
		}
		o = e.finalFor(t, scheduled.Recipients[0].ID, time.Minute)
		if late := o.At.Sub(start.Add(3 * time.Second)); o.State != bridge.StateSent || late < 0 || late > 50*time.Millisecond {
			t.Errorf("scheduled send %v after due: %+v", late, o)
		}
		if n := hang.Calls(); n != 1 {
			t.Errorf("%d calls to hang, want 1 (the other still waits for it)", n)
		}
	})
}

// down fails every call as a provider that is down does, until up.
type down struct {
	name  string
	mu    sync.Mutex
	calls []time.Time
	up    bool
}

func (p *down) Name() string { return p.name }
func (p *down) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, time.Now())
	if p.up {
		return make([]bridge.Result, len(req.To)), nil
	}
	return nil, bridge.Temporary(bridge.ReasonProviderDown, nil, "%s: HTTP 503", p.name)
}

func (p *down) Calls() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.calls...)
}

func (p *down) setUp() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = true
}

// A provider that is down neither slows sends through another provider nor
// keeps being called: its circuit opens, one recipient probes it every few
// seconds, and when it answers again everything waiting for it goes at
// once: within seconds of its return, with queue.retry_min at 30s and
// retry_max at an hour (the breaker's cooldown was retry_min, so the first
// send after a return waited up to half a minute).
func TestDispatchCircuitBreaker(t *testing.T) {
	bubble(t, func(t *testing.T) {
		slow := &down{name: "slow"}
		fast := &scripted{name: "fast"}
		var mu sync.Mutex
		states := []string{}
		e := newEnv(t, bridge.DispatchOptions{
			SendTimeout: 10 * time.Second, BreakerThreshold: 3,
			RetryMin: 30 * time.Second, RetryMax: time.Hour, MaxAge: 24 * time.Hour,
			Concurrency: map[string]int{"slow": 1},
			BreakerChanged: func(p string, open bool) {
				mu.Lock()
				defer mu.Unlock()
				states = append(states, fmt.Sprintf("%s:%v", p, open))
			},
		}, twoRoutes("slow", "fast"), slow, fast)

		var waiting []*bridge.Message
		for i := range 12 {
			waiting = append(waiting, e.submit(t, "x", time.Time{}, fmt.Sprintf("050%07d", i)))
		}
		start := time.Now()
		for i := range 12 {
			e.submit(t, "y", time.Time{}, fmt.Sprintf("052%07d", i))
		}
		for range 12 {
			if o := e.final(t); o.Provider != "fast" || o.State != bridge.StateSent {
				t.Fatalf("outcome %+v, want sent by fast", o)
			}
		}
		if took := time.Since(start); took > 50*time.Millisecond {
			t.Errorf("sends through the healthy provider took %v while the other was down", took)
		}

		// A minute down: the circuit opened after 3 failures; then one
		// probe every 5 s at most, not a call per waiting recipient.
		pass(time.Minute)
		calls := slow.Calls()
		if len(calls) > 3+1+60/5 {
			t.Errorf("%d calls in a minute to a provider that is down; the circuit should stop them", len(calls))
		}
		slow.setUp()
		back := time.Now()
		for _, m := range waiting {
			o := e.finalFor(t, m.Recipients[0].ID, time.Hour)
			if o.State != bridge.StateSent {
				t.Fatalf("outcome %+v", o)
			}
			if took := o.At.Sub(back); took > 6*time.Second {
				t.Errorf("sent %v after the provider came back, want within seconds", took)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if strings.Join(states, " ") != "slow:true slow:false" {
			t.Errorf("breaker states = %v, want open then closed", states)
		}
	})
}

// flakyComplete is the real store whose Complete fails (as a PostgreSQL
// deadlock does) the first fail times.
type flakyComplete struct {
	*sqlite.Store
	mu    sync.Mutex
	fail  int
	tries int
}

func (s *flakyComplete) Complete(ctx context.Context, o []bridge.Outcome) error {
	s.mu.Lock()
	s.tries++
	failing := s.tries <= s.fail
	s.mu.Unlock()
	if failing {
		return bridge.Temporary(bridge.ReasonStoreUnavailable, errors.New("deadlock detected"), "recording outcome")
	}
	return s.Store.Complete(ctx, o)
}

// An outcome the store fails to record is recorded on a later try, not
// left to its lease: the SMS that was sent is not sent again.
func TestDispatchRetriesRecordingOutcome(t *testing.T) {
	bubble(t, func(t *testing.T) {
		p := &scripted{name: "p"}
		var flaky *flakyComplete
		e := newEnvOn(t, func(st *sqlite.Store) bridge.Store {
			flaky = &flakyComplete{Store: st, fail: 3}
			return flaky
		}, bridge.DispatchOptions{SendTimeout: time.Second}, route, p)
		m := e.submit(t, "hi", time.Time{}, "0501111111")
		if o := e.final(t); o.State != bridge.StateSent {
			t.Fatalf("outcome %+v", o)
		}
		pass(time.Minute) // four leases (9 send timeouts and 5s each)
		if n := len(p.Calls()); n != 1 {
			t.Errorf("sent %d times, want once", n)
		}
		if r := e.recipient(t, m, 0); r.State != bridge.StateSent {
			t.Errorf("recipient = %+v", r)
		}
	})
}

// slowComplete is the real store with Complete held until release is
// closed, as a commit is held up when the store is busy.
type slowComplete struct {
	*sqlite.Store
	release chan struct{}
	refuse  int64 // a recipient whose outcome fails the whole call, as one deleted meanwhile would
}

func (s *slowComplete) Complete(ctx context.Context, o []bridge.Outcome) error {
	<-s.release
	for _, x := range o {
		if x.RecipientID == s.refuse {
			return fmt.Errorf("recipient %d: %w", x.RecipientID, bridge.ErrNotFound)
		}
	}
	return s.Store.Complete(ctx, o)
}

// TestDispatchSendsWhileOutcomesWaitForTheStore: a send that waited for
// its outcomes' commit would hold its provider's slot for the commit.
// With one slot and the store's commits held, every message is still
// sent; their outcomes are recorded once the store moves, and a shutdown
// waits for them. An outcome the store refuses leaves only its own
// recipient to be retried.
func TestDispatchSendsWhileOutcomesWaitForTheStore(t *testing.T) {
	bubble(t, func(t *testing.T) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "q.db"), log)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		slow := &slowComplete{Store: st, release: make(chan struct{})}
		p := &scripted{name: "p"}
		d := bridge.NewDispatcher(slow, []bridge.Provider{p}, bridge.DispatchOptions{Log: log, Concurrency: map[string]int{"p": 1}})
		b, _ := bridge.New(st, []bridge.Provider{p}, route,
			[]bridge.Account{{Name: "a", Emails: []string{"*@x.com"}, SenderIDs: []string{"A"}}}, bridge.Options{Region: "IL", Enqueued: d.Wake})
		acct, _ := b.Account("a@x.com")
		var ids []string
		for i := range 5 {
			r, err := b.Resolve(acct, fmt.Sprintf("050111111%d", i))
			if err != nil {
				t.Fatal(err)
			}
			m, err := b.Submit(t.Context(), &bridge.Submission{Account: acct, Text: "x", Recipients: []bridge.Recipient{r}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
			if i == 3 {
				slow.refuse = m.Recipients[0].ID
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx, 5*time.Second); close(done) }()
		synctest.Wait()
		if n := len(p.Calls()); n != 5 {
			t.Fatalf("%d sends while no outcome is recorded, want 5", n)
		}
		cancel()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("Run returned with outcomes not yet recorded")
		default:
		}
		close(slow.release)
		<-done
		for _, id := range ids {
			got, err := st.Message(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			r := got.Recipients[0]
			want := bridge.StateSent
			if r.ID == slow.refuse {
				want = bridge.StateQueued // its attempt stays recorded: retried after the lease
			}
			if r.State != want {
				t.Errorf("%s to %s: state = %s, want %s", id, r.To, r.State, want)
			}
		}
	})
}
