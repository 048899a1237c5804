package mailout_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
)

// The real queue and client fit the worker.
var (
	_ mailout.Queue  = bridge.MailQueue(nil)
	_ mailout.Sender = (*mailout.Client)(nil)
)

// memQueue is an in-memory mailout.Queue that keeps every completion.
type memQueue struct {
	t       *testing.T
	mu      sync.Mutex
	mails   map[string]*bridge.OutMail
	done    []completion
	claims  int           // ClaimMail calls
	changed chan struct{} // closed and replaced on every call
	// hang is how long waitFor waits before it fails the test (default
	// 10 seconds); under synctest, a time on the bubble's clock.
	hang time.Duration
}

type completion struct {
	id    string
	state bridge.MailState
	err   string
	next  time.Time
	at    time.Time
}

func newQueue(t *testing.T) *memQueue {
	return &memQueue{t: t, mails: map[string]*bridge.OutMail{}, changed: make(chan struct{})}
}

// signal tells waitFor that the queue was used; q.mu is held.
func (q *memQueue) signal() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// waitFor waits until cond holds, checking it again after each claim or
// completion; it fails the test after q.hang (a hang, not a speed limit).
func (q *memQueue) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	hang := q.hang
	if hang == 0 {
		hang = 10 * time.Second
	}
	timeout := time.NewTimer(hang)
	defer timeout.Stop()
	for {
		q.mu.Lock()
		changed := q.changed
		q.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (q *memQueue) claimed() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.claims
}

func (q *memQueue) add(m bridge.OutMail) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m.State = bridge.MailQueued
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	q.mails[m.ID] = &m
}

func (q *memQueue) ClaimMail(_ context.Context, now time.Time, limit int, lease time.Duration) ([]bridge.OutMail, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.claims++
	defer q.signal()
	var due []*bridge.OutMail
	for _, m := range q.mails {
		if m.State == bridge.MailQueued && !m.NextAttempt.After(now) {
			due = append(due, m)
		}
	}
	slices.SortFunc(due, func(a, b *bridge.OutMail) int { return a.Created.Compare(b.Created) })
	var out []bridge.OutMail
	for _, m := range due[:min(limit, len(due))] {
		m.Attempts++
		m.NextAttempt = now.Add(lease)
		out = append(out, *m)
	}
	return out, nil
}

func (q *memQueue) CompleteMail(ctx context.Context, id string, state bridge.MailState, errText string, next, at time.Time) error {
	if ctx.Err() != nil {
		q.t.Errorf("completing %s with a dead context: %v", id, ctx.Err())
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.mails[id]
	if m.State != bridge.MailQueued {
		q.t.Errorf("completing %s in state %s", id, m.State)
	}
	m.State, m.Error, m.NextAttempt, m.Updated = state, errText, next, at
	q.done = append(q.done, completion{id, state, errText, next, at})
	q.signal()
	return nil
}

func (q *memQueue) mail(id string) bridge.OutMail {
	q.mu.Lock()
	defer q.mu.Unlock()
	return *q.mails[id]
}

func (q *memQueue) completions() []completion {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.done)
}

// observed counts Observe calls.
type observed struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *observed) observe(kind bridge.MailKind, state bridge.MailState) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[string(kind)+"/"+string(state)]++
}

func (o *observed) snapshot() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.n)
}

func (o *observed) get(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[key]
}

// run starts w and returns a function that stops it and waits for Run to
// return.
func run(t *testing.T, w *mailout.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func fastOptions() mailout.Options {
	return mailout.Options{
		RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, Lease: 20 * time.Second, Log: quietLog(),
	}
}

func mailFor(t *testing.T, id string) bridge.OutMail {
	t.Helper()
	r := reply()
	r.MessageID = id + "@sms.example.com"
	data, err := mailout.BuildReply(r)
	if err != nil {
		t.Fatal(err)
	}
	return bridge.OutMail{ID: id, Kind: bridge.MailReply, From: r.From, To: r.To, Data: data}
}

func TestWorkerDeliversOnceTheSmarthostIsBack(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{STARTTLS: true})
	srv.Down()
	q := newQueue(t)
	q.add(mailFor(t, "m1"))
	var obs observed
	opt := fastOptions()
	opt.Observe = obs.observe
	w := mailout.NewWorker(q, newClient(t, mailout.Config{Addr: srv.Addr(), TLSConfig: srv.ClientTLS()}), opt)
	run(t, w)
	w.Wake()

	// Recorded failures, not claims: a third claim's attempt may still be
	// under way, and would meet the smarthost up.
	q.waitFor(t, "three failed attempts", func() bool { return len(q.completions()) >= 3 })
	srv.Up()
	// Observe is told after the outcome is recorded: wait for both. (The
	// worker claims again after the send has ended, so the change that
	// wakes this check comes.)
	q.waitFor(t, "the mail sent and observed", func() bool {
		return q.mail("m1").State == bridge.MailSent && obs.get("reply/sent") == 1
	})

	msgs := srv.Messages()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].To[0] != "dana@example.com" {
		t.Fatalf("the smarthost got %d messages: want exactly one, over TLS", len(msgs))
	}
	if got := body(t, readMail(t, msgs[0].Data)); got != reply().Text {
		t.Errorf("text %q", got)
	}
	m := q.mail("m1")
	cs := q.completions()
	retries := cs[:len(cs)-1]
	if len(retries) < 3 || len(retries) != m.Attempts-1 {
		t.Fatalf("%d completions for %d attempts", len(cs), m.Attempts)
	}
	for _, c := range retries {
		if c.state != bridge.MailQueued || !strings.Contains(c.err, "connecting") || c.next.IsZero() {
			t.Errorf("retry recorded as %+v", c)
		}
	}
	if m.Error != "" || !m.NextAttempt.IsZero() {
		t.Errorf("sent mail keeps error %q, next attempt %v", m.Error, m.NextAttempt)
	}
	if obs.get("reply/queued") != len(retries) || obs.get("reply/sent") != 1 {
		t.Errorf("observed %v", obs.snapshot())
	}
}

func TestWorkerFailsRefusedMailWithoutRetrying(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	srv.FailNext(1, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	q := newQueue(t)
	m := mailFor(t, "m1")
	m.Kind, m.From = bridge.MailBounce, ""
	q.add(m)
	var obs observed
	opt := fastOptions()
	opt.Observe = obs.observe
	w := mailout.NewWorker(q, newClient(t, mailout.Config{Addr: srv.Addr()}), opt)
	run(t, w)
	w.Wake()

	q.waitFor(t, "the mail failed", func() bool { return q.mail("m1").State == bridge.MailFailed })
	// Five polls later, nothing has been tried again.
	polls := q.claimed() + 5
	q.waitFor(t, "five more polls", func() bool { return q.claimed() >= polls })
	got := q.mail("m1")
	if got.Attempts != 1 || srv.Refused() != 1 || len(srv.Messages()) != 0 {
		t.Errorf("%d attempts, %d refused, %d accepted: want one refused attempt", got.Attempts, srv.Refused(), len(srv.Messages()))
	}
	if !strings.Contains(got.Error, "550 5.1.1 no such user") {
		t.Errorf("error %q: want the smarthost's reply", got.Error)
	}
	if obs.get("bounce/failed") != 1 {
		t.Errorf("observed %v", obs.snapshot())
	}
}

func TestWorkerRetriesTemporaryRefusals(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	srv.FailNext(2, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "greylisted"})
	q := newQueue(t)
	q.add(mailFor(t, "m1"))
	w := mailout.NewWorker(q, newClient(t, mailout.Config{Addr: srv.Addr()}), fastOptions())
	run(t, w)
	w.Wake()
	q.waitFor(t, "the mail sent", func() bool { return q.mail("m1").State == bridge.MailSent })
	if m := q.mail("m1"); m.Attempts != 3 || len(srv.Messages()) != 1 || srv.Refused() != 2 {
		t.Errorf("%d attempts, %d accepted, %d refused", m.Attempts, len(srv.Messages()), srv.Refused())
	}
	for _, c := range q.completions()[:2] {
		if c.state != bridge.MailQueued || !strings.Contains(c.err, "451 4.3.0 greylisted") {
			t.Errorf("retry recorded as %+v", c)
		}
	}
}

// clock is a settable Now.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time                         { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration)                { c.offset.Add(int64(d)) }
func (c *clock) opts(o mailout.Options) mailout.Options { o.Now = c.now; return o }

func TestWorkerExpiresOldMail(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	srv.Down()
	var clk clock
	q := newQueue(t)
	old := mailFor(t, "old")
	old.Created = time.Now().Add(-6 * 24 * time.Hour) // past the default MaxAge of 5 days
	q.add(old)
	young := mailFor(t, "young")
	young.Created = time.Now()
	q.add(young)
	opt := clk.opts(fastOptions())
	opt.MaxAge = 0 // the default
	opt.RetryMin, opt.RetryMax = time.Hour, 2*time.Hour
	w := mailout.NewWorker(q, newClient(t, mailout.Config{Addr: srv.Addr()}), opt)
	run(t, w)
	w.Wake()

	q.waitFor(t, "the old mail failed", func() bool { return q.mail("old").State == bridge.MailFailed })
	if m := q.mail("old"); m.Attempts != 1 || !strings.Contains(m.Error, "gave up after 120h0m0s") || !strings.Contains(m.Error, "connecting") {
		t.Errorf("old mail: %d attempts, error %q", m.Attempts, m.Error)
	}
	q.waitFor(t, "the young mail deferred", func() bool { return q.mail("young").Error != "" })
	if m := q.mail("young"); m.State != bridge.MailQueued || m.NextAttempt.Sub(clk.now()) < 50*time.Minute {
		t.Errorf("young mail: %s, next attempt in %v: want queued for the backoff", m.State, m.NextAttempt.Sub(clk.now()))
	}

	// Five days later it is due again, fails again, and expires.
	clk.advance(5*24*time.Hour - time.Minute)
	w.Wake()
	q.waitFor(t, "the young mail failed", func() bool { return q.mail("young").State == bridge.MailFailed })
	if m := q.mail("young"); m.Attempts != 2 || !strings.Contains(m.Error, "gave up") {
		t.Errorf("young mail: %d attempts, error %q", m.Attempts, m.Error)
	}
}

func TestWorkerSendsOldMailWhenItCan(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	q := newQueue(t)
	old := mailFor(t, "old")
	old.Created = time.Now().Add(-6 * 24 * time.Hour)
	q.add(old)
	w := mailout.NewWorker(q, newClient(t, mailout.Config{Addr: srv.Addr()}), fastOptions())
	run(t, w)
	w.Wake()
	// Late is better than never: MaxAge limits retrying, not trying.
	q.waitFor(t, "the old mail sent", func() bool { return q.mail("old").State == bridge.MailSent })
}

func TestWorkerDeliversManyConcurrently(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{STARTTLS: true})
	q := newQueue(t)
	const n = 12
	for i := range n {
		q.add(mailFor(t, fmt.Sprintf("m%02d", i)))
	}
	opt := fastOptions()
	opt.Concurrency, opt.Batch = 3, 2
	w := mailout.NewWorker(q, newClient(t, mailout.Config{Addr: srv.Addr(), TLSConfig: srv.ClientTLS()}), opt)
	run(t, w)
	w.Wake()
	msgs := wait(t, srv, n)
	q.waitFor(t, "all sent", func() bool {
		for i := range n {
			if q.mail(fmt.Sprintf("m%02d", i)).State != bridge.MailSent {
				return false
			}
		}
		return true
	})
	seen := map[string]bool{}
	for _, m := range msgs {
		id := readMail(t, m.Data).Header.Get("Message-Id")
		if seen[id] {
			t.Errorf("%s delivered twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n || len(srv.Messages()) != n {
		t.Errorf("%d distinct of %d delivered", len(seen), len(srv.Messages()))
	}
}

// fakeSender is a Sender without a network, for tests in a synctest
// bubble (where the clock moves only when every goroutine waits). Send i
// fails with errs[i] (nil or past the end: success); with hold set, each
// Send announces itself on started and waits for hold to close or its
// context to end.
type fakeSender struct {
	mu      sync.Mutex
	errs    []error
	at      []time.Time // when each Send began
	hold    chan struct{}
	started chan struct{}
}

func (s *fakeSender) Send(ctx context.Context, from, to string, data []byte) error {
	s.mu.Lock()
	i := len(s.at)
	s.at = append(s.at, time.Now())
	var err error
	if i < len(s.errs) {
		err = s.errs[i]
	}
	s.mu.Unlock()
	if s.hold != nil {
		s.started <- struct{}{}
		select {
		case <-s.hold:
		case <-ctx.Done():
			return bridge.Temporary(bridge.ReasonProviderDown, ctx.Err(), "sending mail")
		}
	}
	return err
}

func (s *fakeSender) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.at)
}

func newHeld() *fakeSender {
	return &fakeSender{hold: make(chan struct{}), started: make(chan struct{}, 16)}
}

// TestWorkerRetriesWhenDue: under a fake clock, each retry goes out at
// the time its failure recorded, or at most a poll interval later, never
// before; the backoff grows within RetryMin and RetryMax.
func TestWorkerRetriesWhenDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		q.hang = time.Hour
		q.add(mailFor(t, "m1"))
		greylisted := bridge.Temporary(bridge.ReasonProviderDown, nil, "451 4.3.0 greylisted")
		sender := &fakeSender{errs: []error{greylisted, greylisted, greylisted, greylisted}}
		opt := fastOptions()
		opt.RetryMin, opt.RetryMax, opt.PollInterval = time.Minute, 4*time.Minute, 5*time.Second
		w := mailout.NewWorker(q, sender, opt)
		run(t, w)
		start := time.Now()
		w.Wake()
		q.waitFor(t, "the mail sent", func() bool { return q.mail("m1").State == bridge.MailSent })

		at, cs := sender.times(), q.completions()
		if len(at) != 5 || len(cs) != 5 {
			t.Fatalf("%d sends, %d completions; want 5 of each", len(at), len(cs))
		}
		if !at[0].Equal(start) {
			t.Errorf("first send at +%v, want at once", at[0].Sub(start))
		}
		for i, c := range cs[:4] {
			delay := c.next.Sub(c.at)
			if delay < opt.RetryMin || delay > opt.RetryMax {
				t.Errorf("retry %d after %v, want within [%v, %v]", i+1, delay, opt.RetryMin, opt.RetryMax)
			}
			if late := at[i+1].Sub(c.next); late < 0 || late > opt.PollInterval {
				t.Errorf("retry %d sent %v after it was due, want within [0, %v]", i+1, late, opt.PollInterval)
			}
		}
	})
}

// tracked is a Sender that counts sends under way.
type tracked struct {
	mailout.Sender
	inflight atomic.Int32
}

func (s *tracked) Send(ctx context.Context, from, to string, data []byte) error {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	return s.Sender.Send(ctx, from, to, data)
}

func TestWorkerShutdownWaitsForSendsUnderWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		q.add(mailFor(t, "m1"))
		held := newHeld()
		sender := &tracked{Sender: held}
		opt := fastOptions()
		opt.Grace = 20 * time.Second
		w := mailout.NewWorker(q, sender, opt)
		stop := run(t, w)
		w.Wake()
		<-held.started

		stopped := make(chan struct{})
		go func() { stop(); close(stopped) }()
		synctest.Wait() // everything waits: the send, and Run for it
		select {
		case <-stopped:
			t.Fatal("Run returned with a send under way")
		default:
		}
		close(held.hold)
		<-stopped
		if n := sender.inflight.Load(); n != 0 {
			t.Errorf("%d sends still running after Run returned", n)
		}
		if m := q.mail("m1"); m.State != bridge.MailSent {
			t.Errorf("mail %s: want it sent and recorded", m.State)
		}
	})
}

func TestWorkerShutdownCutsOffSendsAfterGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		q.add(mailFor(t, "m1"))
		held := newHeld()
		sender := &tracked{Sender: held}
		opt := fastOptions()
		opt.Grace = 7 * time.Second
		w := mailout.NewWorker(q, sender, opt)
		stop := run(t, w)
		w.Wake()
		<-held.started

		start := time.Now()
		stop()
		if took := time.Since(start); took != opt.Grace {
			t.Errorf("shutdown took %v with a grace of %v", took, opt.Grace)
		}
		if n := sender.inflight.Load(); n != 0 {
			t.Errorf("%d sends still running after Run returned", n)
		}
		// Cut off, recorded, and due again at once for the next run.
		m := q.mail("m1")
		if m.State != bridge.MailQueued || !strings.Contains(m.Error, "shutdown") || m.NextAttempt.After(time.Now()) {
			t.Errorf("mail %s, error %q, next %v: want queued and due", m.State, m.Error, m.NextAttempt)
		}
		if cs := q.completions(); len(cs) != 1 {
			t.Errorf("%d completions, want 1", len(cs))
		}
	})
}

func TestWorkerStopsWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		w := mailout.NewWorker(q, &fakeSender{}, mailout.Options{Log: quietLog()}) // default 5s poll
		stop := run(t, w)
		synctest.Wait()
		start := time.Now()
		stop()
		if took := time.Since(start); took != 0 {
			t.Errorf("an idle worker took %v to stop", took)
		}
	})
}
