package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Purging is a store that keeps every contract and purges (retention).
type Purging interface {
	Full
	bridge.Purger
}

// Counter returns the number of rows in each of a store's tables; the
// store's own test supplies it, knowing its tables.
type Counter func(t *testing.T) map[string]int

// RunRetention runs the contract suite of bridge.Purger, through the
// shared loop (bridge.Retention) the daemon runs. open is as for Run, and
// also returns the store's Counter.
func RunRetention(t *testing.T, open func(t *testing.T) (Purging, Counter)) {
	tests := []struct {
		name string
		fn   func(*testing.T, Purging, Counter)
	}{
		{"PurgeFinished", testPurgeFinished},
		{"PurgeSteadyLoad", testPurgeSteadyLoad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, count := open(t)
			tt.fn(t, s, count)
		})
	}
}

// retention returns the purge loop over s with keep, at now, in batches
// of batch.
func retention(s bridge.Purger, keep time.Duration, batch int, now *time.Time) *bridge.Retention {
	return &bridge.Retention{Store: s, Keep: keep, Batch: batch, Pause: time.Nanosecond,
		Now: func() time.Time { return *now }}
}

// Only what is finished and older than the retention goes: a message
// with a queued recipient, one whose delivery report came recently,
// queued mail and recent records all stay, whatever their age.
func testPurgeFinished(t *testing.T, s Purging, count Counter) {
	ctx := context.Background()
	now := base.Add(30 * 24 * time.Hour)
	old, recent := base, now.Add(-time.Hour)
	keep := 7 * 24 * time.Hour

	// Finished long ago: sent, failed, cancelled, one with its idempotency key.
	var gone []*bridge.Message
	for i, st := range []bridge.State{bridge.StateSent, bridge.StateFailed, bridge.StateCancelled, bridge.StateDelivered} {
		m := newMessage(old, old, fmt.Sprintf("+97250100000%d", i))
		m.Sender = our1
		if i == 0 {
			m.IdempotencyKey = "k-old"
		}
		enqueue(t, s, m)
		complete(t, s, bridge.Outcome{RecipientID: m.Recipients[0].ID, State: st, Provider: "p1", ProviderID: "pid-" + m.ID,
			At: old.Add(time.Minute), Conversation: touch(m, m.Recipients[0].To)})
		gone = append(gone, m)
	}
	// Old, but not finished: one recipient of two still queued (say, a
	// send scheduled far ahead).
	waiting := enqueue(t, s, newMessage(old, now.Add(24*time.Hour), phone1, phone2))
	complete(t, s, bridge.Outcome{RecipientID: waiting.Recipients[0].ID, State: bridge.StateSent, Provider: "p1", ProviderID: "w1", At: old})
	// Old, sent, with a delivery report an hour ago: recently changed.
	reported := enqueue(t, s, newMessage(old, old, phone1))
	sendAll(t, s, reported, "p1", []string{"rep-1"}, []time.Time{old})
	if _, err := s.Report(ctx, bridge.DeliveryReport{Provider: "p1", ProviderID: "rep-1", State: bridge.StateDelivered, At: recent}); err != nil {
		t.Fatal(err)
	}
	// Recent and finished.
	fresh := enqueue(t, s, newMessage(recent, recent, phone2))
	complete(t, s, bridge.Outcome{RecipientID: fresh.Recipients[0].ID, State: bridge.StateSent, Provider: "p1", ProviderID: "f1", At: recent,
		Conversation: touch(fresh, phone2)})

	// Inbound: one old (with its reply mail delivered), one recent.
	oldIn := newInbound("+972501999999", our2, old)
	oldMail := replyMail(oldIn, "alice@clinic.example")
	recordInbound(t, s, oldIn, oldMail, nil)
	if err := s.CompleteMail(ctx, oldMail.ID, bridge.MailSent, "", time.Time{}, old.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	newIn := newInbound(phone2, fresh.Sender, recent)
	recordInbound(t, s, newIn, nil, nil)
	// Mail: old and given up (goes), old and still queued (stays).
	failedMail := queueMail(t, s, newMail(old, old))
	if err := s.CompleteMail(ctx, failedMail.ID, bridge.MailFailed, "550 no such user", time.Time{}, old.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	stuck := queueMail(t, s, newMail(old, now.Add(time.Hour)))

	// Alert references: one paged long ago (goes), one paged again
	// recently (stays, however old its first page).
	refs := alertRefs(t, s)
	pageAlert(t, refs, alertGroup("Stale", old), phone1)
	pageAlert(t, refs, alertGroup("Flapping", old), phone2)
	pageAlert(t, refs, alertGroup("Flapping", recent), phone2)

	before := count(t)
	// Batches of 2 exercise the marks: the waiting message is passed
	// over, not looked at again and again.
	n, err := retention(s, keep, 2, &now).Purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[bridge.PurgeKind]int{bridge.PurgeMessages: 4, bridge.PurgeInbound: 1, bridge.PurgeMail: 2,
		// The four gone messages' phones and the old inbound's; phone1's
		// conversation with the waiting message was never filed.
		bridge.PurgeConversations: 5, bridge.PurgeAlertRefs: 1}
	if !maps.Equal(n, want) {
		t.Errorf("purged %v, want %v", n, want)
	}
	for _, m := range gone {
		if _, err := s.Message(ctx, m.ID); !errors.Is(err, bridge.ErrNotFound) {
			t.Errorf("finished old message %s: %v, want ErrNotFound", m.ID, err)
		}
		if _, err := s.Conversation(ctx, bridge.ConversationID(m.Recipients[0].To, our1)); !errors.Is(err, bridge.ErrNotFound) {
			t.Errorf("old conversation of %s: %v, want ErrNotFound", m.Recipients[0].To, err)
		}
	}
	if _, err := s.MessageByKey(ctx, "acme", "k-old"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("idempotency key of a purged message: %v, want ErrNotFound", err)
	}
	for _, m := range []*bridge.Message{waiting, reported, fresh} {
		if got, err := s.Message(ctx, m.ID); err != nil || len(got.Recipients) != len(m.Recipients) {
			t.Errorf("message %s: %v, %v; want it kept whole", m.ID, got, err)
		}
	}
	if _, err := s.Mail(ctx, oldMail.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("delivered old mail: %v, want ErrNotFound", err)
	}
	if _, err := s.Mail(ctx, stuck.ID); err != nil {
		t.Errorf("queued old mail: %v, want it kept", err)
	}
	if l, err := s.ConversationLog(ctx, bridge.ConversationID(phone2, fresh.Sender), 0); err != nil || len(l) != 2 {
		t.Errorf("recent conversation log: %d entries, %v; want the SMS and its answer", len(l), err)
	}
	if _, err := refs.AlertRef(ctx, phone1, "acme", 0); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("alert reference paged before the cutoff: %v, want ErrNotFound", err)
	}
	if r, err := refs.AlertRef(ctx, phone2, "acme", 0); err != nil || r.Title != "Flapping on db1" {
		t.Errorf("alert reference paged recently: %+v, %v; want it kept", r, err)
	}
	after := count(t)
	for table, n := range after {
		if n > before[table] {
			t.Errorf("%s: %d rows after the purge, %d before", table, n, before[table])
		}
	}

	// A second run finds nothing more.
	if n, err := retention(s, keep, 2, &now).Purge(ctx); err != nil || total(n) != 0 {
		t.Errorf("second purge: %v, %v; want nothing", n, err)
	}
}

func total(n map[bridge.PurgeKind]int) int {
	s := 0
	for _, v := range n {
		s += v
	}
	return s
}

// Under a steady load the store stops growing once the retention applies:
// with 3 days kept and a purge each day, the row counts after the third
// day stay as they were.
func testPurgeSteadyLoad(t *testing.T, s Purging, count Counter) {
	const perDay, days = 40, 8
	keep := 3 * 24 * time.Hour
	now := base
	r := retention(s, keep, 25, &now)
	var plateau map[string]int
	for day := range days {
		start := base.Add(time.Duration(day) * 24 * time.Hour)
		if err := LoadDay(s, start, perDay); err != nil {
			t.Fatal(err)
		}
		now = start.Add(24 * time.Hour)
		if _, err := r.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := count(t)
		switch {
		case day < 2:
		case day == 2:
			plateau = got
			if got["messages"] != 3*perDay {
				t.Fatalf("day %d: %d messages kept, want %d (three days)", day, got["messages"], 3*perDay)
			}
		case !maps.Equal(got, plateau):
			t.Errorf("day %d: rows %v, want them as on day 2: %v", day, got, plateau)
		}
	}
}

var loadSeq atomic.Int64

// LoadDay is one day of steady two-way traffic from start: n messages
// spread over the day, each to a phone of its own, sent, answered, and
// the answer mailed. Half carry an idempotency key. It runs a few at a
// time, as SMTP sessions would, so that stores that group commits do.
func LoadDay(s Full, start time.Time, n int) error {
	ctx := context.Background()
	step := 24 * time.Hour / time.Duration(n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs <- oneExchange(ctx, s, start.Add(time.Duration(i)*step), i%2 == 0)
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(slicesOf(errs)...)
}

func slicesOf(ch chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

// oneExchange is one SMS out at at and its answer a minute later.
func oneExchange(ctx context.Context, s Full, at time.Time, withKey bool) error {
	seq := loadSeq.Add(1)
	phone := fmt.Sprintf("+9725%08d", seq%100_000_000)
	m := newMessage(at, at, phone)
	m.Sender, m.ReplyTo = our2, "alice@clinic.example"
	m.Text = "Your appointment is tomorrow at 10:00. Reply YES to confirm."
	m.Headers = "From: alice@clinic.example\r\nSubject: Appointment\r\n"
	if withKey {
		m.IdempotencyKey = fmt.Sprintf("load-%d", seq)
	}
	if err := s.Enqueue(ctx, m); err != nil {
		return err
	}
	if err := s.Complete(ctx, []bridge.Outcome{{RecipientID: m.Recipients[0].ID, State: bridge.StateSent, Provider: "p1",
		ProviderID: fmt.Sprintf("pid-%d", seq), At: at, Conversation: touch(m, phone)}}); err != nil {
		return err
	}
	in := newInbound(phone, our2, at.Add(time.Minute))
	in.Created = at.Add(time.Minute)
	mail := replyMail(in, m.ReplyTo)
	mail.Created = in.Created
	if err := s.RecordInbound(ctx, in, mail, nil); err != nil {
		return err
	}
	return s.CompleteMail(ctx, mail.ID, bridge.MailSent, "", time.Time{}, at.Add(time.Minute))
}
