package bridge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
	errs   []error // per call, in order; nil (or exhausted) = success
	block  chan struct{}
}

func (p *scripted) Name() string  { return p.name }
func (p *scripted) MaxBatch() int { return p.batch }
func (p *scripted) SchedulesNatively(*bridge.SendRequest) bool {
	return p.native
}

func (p *scripted) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
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

type env struct {
	store  *sqlite.Store
	bridge *bridge.Bridge
	disp   *bridge.Dispatcher
	finals chan bridge.Outcome
	acct   *bridge.Account
}

func newEnv(t *testing.T, opt bridge.DispatchOptions, routes []bridge.Route, provs ...bridge.Provider) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "q.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, finals: make(chan bridge.Outcome, 100)}
	opt.Log = log
	opt.Final = func(_ context.Context, _ *bridge.Message, o bridge.Outcome) { e.finals <- o }
	if opt.RetryMin == 0 {
		opt.RetryMin, opt.RetryMax = 10*time.Millisecond, 40*time.Millisecond
	}
	e.disp = bridge.NewDispatcher(st, provs, opt)
	accounts := []bridge.Account{{Name: "ops", Emails: []string{"*@example.com"}, SenderIDs: []string{"Ops"}}}
	e.bridge, err = bridge.New(st, provs, routes, accounts, bridge.Options{Region: "IL", Enqueued: e.disp.Wake, Log: log})
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

func (e *env) final(t *testing.T) bridge.Outcome {
	t.Helper()
	select {
	case o := <-e.finals:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("no final outcome within 5s")
		return bridge.Outcome{}
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

func TestDispatchSendsAndBatches(t *testing.T) {
	p := &scripted{name: "p", batch: 2}
	e := newEnv(t, bridge.DispatchOptions{}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}}, p)
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
}

func TestDispatchRetriesTemporaryFailures(t *testing.T) {
	p := &scripted{name: "p", errs: []error{
		bridge.Temporary(bridge.ReasonProviderDown, nil, "HTTP 503"),
		bridge.Temporary(bridge.ReasonProviderDown, nil, "timeout"),
	}}
	e := newEnv(t, bridge.DispatchOptions{}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}}, p)
	m := e.submit(t, "hi", time.Time{}, "0501111111")
	if o := e.final(t); o.State != bridge.StateSent {
		t.Fatalf("outcome %+v", o)
	}
	if r := e.recipient(t, m, 0); r.Attempts != 3 {
		t.Errorf("attempts = %d, want 3", r.Attempts)
	}
}

func TestDispatchPermanentFailureIsFinal(t *testing.T) {
	p := &scripted{name: "p", errs: []error{bridge.Permanent(bridge.ReasonProviderRejected, "", "stat_code 2: invalid phone")}}
	e := newEnv(t, bridge.DispatchOptions{}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}}, p)
	m := e.submit(t, "hi", time.Time{}, "0501111111")
	o := e.final(t)
	if o.State != bridge.StateFailed || o.Error != "stat_code 2: invalid phone" {
		t.Fatalf("outcome %+v", o)
	}
	if r := e.recipient(t, m, 0); r.State != bridge.StateFailed || r.Error != o.Error || r.Attempts != 1 {
		t.Errorf("recipient = %+v", r)
	}
}

func TestDispatchFailsOver(t *testing.T) {
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
	if r := e.recipient(t, m, 0); r.Provider != "b" || r.ProviderID != "b-+972501111111" {
		t.Errorf("recipient = %+v", r)
	}

	// A permanent refusal another provider may not share fails over at once.
	a2 := &scripted{name: "a", errs: []error{bridge.Permanent(bridge.ReasonProviderRejected, "", "sender refused")}}
	b2 := &scripted{name: "b"}
	e2 := newEnv(t, bridge.DispatchOptions{}, []bridge.Route{{Prefix: "+", Providers: []string{"a", "b"}}}, a2, b2)
	e2.submit(t, "hi", time.Time{}, "0501111111")
	if o := e2.final(t); o.State != bridge.StateSent || o.Provider != "b" {
		t.Fatalf("outcome %+v, want sent by b", o)
	}
}

func TestDispatchHoldsOnBadCredentials(t *testing.T) {
	p := &scripted{name: "p", errs: []error{&bridge.Error{Reason: bridge.ReasonProviderAuth, Msg: "HTTP 401"}}}
	e := newEnv(t, bridge.DispatchOptions{RetryMin: time.Hour, RetryMax: time.Hour}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}}, p)
	m := e.submit(t, "hi", time.Time{}, "0501111111")
	eventually(t, 5*time.Second, "the attempt", func() bool { return len(p.Calls()) == 1 && e.recipient(t, m, 0).Error != "" })
	r := e.recipient(t, m, 0)
	if r.State != bridge.StateQueued || time.Until(r.NextAttempt) < 50*time.Minute {
		t.Errorf("recipient = %+v: want held about retry_max, not failed", r)
	}
}

func TestDispatchExpires(t *testing.T) {
	down := bridge.Temporary(bridge.ReasonProviderDown, nil, "HTTP 503")
	p := &scripted{name: "p", errs: []error{down, down, down, down, down, down, down, down, down, down}}
	e := newEnv(t, bridge.DispatchOptions{MaxAge: 100 * time.Millisecond}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}}, p)
	e.submit(t, "hi", time.Time{}, "0501111111")
	o := e.final(t)
	if o.State != bridge.StateFailed || !contains(o.Error, "gave up after 100ms") || !contains(o.Error, "HTTP 503") {
		t.Fatalf("outcome %+v", o)
	}
}

func TestDispatchHoldsScheduledUntilDue(t *testing.T) {
	held := &scripted{name: "held"}
	e := newEnv(t, bridge.DispatchOptions{}, []bridge.Route{{Prefix: "+", Providers: []string{"held"}}}, held)
	at := time.Now().Add(300 * time.Millisecond)
	e.submit(t, "later", at, "0501111111")
	o := e.final(t)
	if o.At.Before(at) {
		t.Errorf("sent at %v, before it was due at %v", o.At, at)
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
}

func TestDispatchDrainsOnShutdown(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "q.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := &scripted{name: "p", block: make(chan struct{})}
	d := bridge.NewDispatcher(st, []bridge.Provider{p}, bridge.DispatchOptions{Log: log})
	b, _ := bridge.New(st, []bridge.Provider{p}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}},
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
	time.Sleep(100 * time.Millisecond) // the send is now blocked in flight
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(p.block) // the in-flight send finishes within the grace period
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	got, _ := st.Message(t.Context(), m.ID)
	if got.Recipients[0].State != bridge.StateSent {
		t.Errorf("state = %s: the in-flight send must be recorded", got.Recipients[0].State)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// down fails every call as a provider that is down does: slowly.
type down struct {
	name  string
	delay time.Duration
	mu    sync.Mutex
	calls int
	up    bool
}

func (p *down) Name() string { return p.name }
func (p *down) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	p.mu.Lock()
	p.calls++
	up := p.up
	p.mu.Unlock()
	if up {
		return make([]bridge.Result, len(req.To)), nil
	}
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
	}
	return nil, bridge.Temporary(bridge.ReasonProviderDown, nil, "%s: timeout", p.name)
}

func (p *down) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// A provider that is down neither slows sends through another provider nor
// keeps being called: its circuit opens, and closes when it is back.
func TestDispatchCircuitBreaker(t *testing.T) {
	slow := &down{name: "slow", delay: time.Second}
	fast := &scripted{name: "fast"}
	var mu sync.Mutex
	states := []string{}
	e := newEnv(t, bridge.DispatchOptions{
		SendTimeout: 200 * time.Millisecond, BreakerThreshold: 3,
		RetryMin: 300 * time.Millisecond, RetryMax: 300 * time.Millisecond, MaxAge: time.Hour,
		BreakerChanged: func(p string, open bool) {
			mu.Lock()
			defer mu.Unlock()
			states = append(states, fmt.Sprintf("%s:%v", p, open))
		},
	}, []bridge.Route{{Prefix: "+97250", Providers: []string{"slow"}}, {Prefix: "+97252", Providers: []string{"fast"}}}, slow, fast)

	for i := range 12 {
		e.submit(t, "x", time.Time{}, fmt.Sprintf("050%07d", i))
	}
	start := time.Now()
	for i := range 12 {
		e.submit(t, "y", time.Time{}, fmt.Sprintf("052%07d", i))
	}
	eventually(t, 3*time.Second, "the healthy provider's sends", func() bool { return len(fast.Calls()) == 12 })
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("sends through the healthy provider took %v while the other was down", took)
	}
	time.Sleep(200 * time.Millisecond)
	calls := slow.Calls()
	if calls > 3+4 { // threshold, plus those already in flight when it tripped
		t.Errorf("%d calls to a provider that is down; the circuit should stop them", calls)
	}
	slow.mu.Lock()
	slow.up = true
	slow.mu.Unlock()
	eventually(t, 5*time.Second, "recovery", func() bool {
		st, err := e.store.Stats(t.Context())
		return err == nil && st.Queued == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(states, " ") != "slow:true slow:false" {
		t.Errorf("breaker states = %v, want open then closed", states)
	}
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

// TestDispatchSendsWhileOutcomesWaitForTheStore: a worker that waited for
// its outcomes' commit would hold the dispatcher to Workers sends per
// commit. With one worker and the store's commits held, every message is
// still sent; their outcomes are recorded once the store moves, and a
// shutdown waits for them. An outcome the store refuses leaves only its
// own recipient to be retried.
func TestDispatchSendsWhileOutcomesWaitForTheStore(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "q.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	slow := &slowComplete{Store: st, release: make(chan struct{})}
	p := &scripted{name: "p"}
	d := bridge.NewDispatcher(slow, []bridge.Provider{p}, bridge.DispatchOptions{Log: log})
	b, _ := bridge.New(st, []bridge.Provider{p}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}},
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
	eventually(t, 5*time.Second, "five sends while no outcome is recorded", func() bool { return len(p.Calls()) == 5 })
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned with outcomes not yet recorded")
	case <-time.After(50 * time.Millisecond):
	}
	close(slow.release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
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
}
