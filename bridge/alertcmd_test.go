package bridge_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/silence"
)

// fakeSilencer records the calls the bridge makes and answers them with
// errs in order (nil or exhausted: success).
type fakeSilencer struct {
	mu      sync.Mutex
	creates []silence.Silence
	expires []string
	errs    []error
	seq     int
}

func (f *fakeSilencer) next() error {
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

func (f *fakeSilencer) Create(_ context.Context, s silence.Silence) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, s)
	if err := f.next(); err != nil {
		return "", err
	}
	if s.ID != "" {
		return s.ID, nil
	}
	f.seq++
	return fmt.Sprintf("sil-%d", f.seq), nil
}

func (f *fakeSilencer) Expire(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expires = append(f.expires, id)
	return f.next()
}

const alertPhone = "+972501234567"

// alertTwoWay is newTwoWay with account ops silencing its alertmanager
// hook's alerts through sil, told of commands at oncall@example.com, and
// alertPhone paged about DiskFull on db1 (#1).
func alertTwoWay(t *testing.T, sil *fakeSilencer) *twoWay {
	t.Helper()
	w := newTwoWay(t, "")
	accounts := []bridge.Account{{Name: "ops", Emails: []string{"*@example.com", "oncall@example.com"}, SenderIDs: []string{"972500000001"},
		Alerts: bridge.AlertOptions{Sources: map[string]*bridge.AlertSource{"alertmanager": {
			Silencer: sil, DefaultSilence: 2 * time.Hour, MaxSilence: 24 * time.Hour}}}}}
	if err := w.b.Reload([]bridge.Provider{w.prov}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}}, accounts); err != nil {
		t.Fatal(err)
	}
	acct, err := w.b.Account("oncall@example.com")
	if err != nil {
		t.Fatal(err)
	}
	refs, err := w.b.PageAlert(t.Context(), bridge.AlertPage{Account: acct, Source: "alertmanager",
		Labels: map[string]string{"alertname": "DiskFull", "instance": "db1"}}, []string{alertPhone})
	if err != nil || refs[alertPhone] != 1 {
		t.Fatalf("PageAlert = %v, %v; want #1", refs, err)
	}
	return w
}

// answers are the texts the provider was asked to send to alertPhone.
func (w *twoWay) answers() []string {
	w.prov.mu.Lock()
	defer w.prov.mu.Unlock()
	var out []string
	for _, c := range w.prov.calls {
		if slices.Contains(c.To, alertPhone) {
			out = append(out, c.Text)
		}
	}
	return out
}

// A provider delivering the same ACK twice (its retry after a timeout)
// leaves one silence, changed in place the second time, and one answer;
// the account's own address is told.
func TestAlertCommandRetriedCallback(t *testing.T) {
	sil := &fakeSilencer{}
	w := alertTwoWay(t, sil)
	for range 2 {
		in := &bridge.Inbound{Provider: "p", DedupeKey: "k-ack", From: alertPhone, To: "972500000001", Text: "ACK 90m"}
		if _, err := w.b.Receive(t.Context(), in); err != nil {
			t.Fatal(err)
		}
	}
	w.drain(t)
	if len(sil.creates) != 2 || sil.creates[0].ID != "" || sil.creates[1].ID != "sil-1" {
		t.Fatalf("creates %+v; want a new silence, then the same one updated", sil.creates)
	}
	s := sil.creates[0]
	if s.CreatedBy != alertPhone || !s.EndsAt.Equal(w.now.Add(90*time.Minute)) || len(s.Matchers) != 2 ||
		s.Matchers[0] != (silence.Matcher{Name: "alertname", Value: "DiskFull"}) || s.Matchers[1] != (silence.Matcher{Name: "instance", Value: "db1"}) {
		t.Errorf("silence %+v", s)
	}
	if got := w.answers(); len(got) != 1 || got[0] != "Silenced DiskFull on db1 for 1h30m until 11:30 UTC (#1)." {
		t.Errorf("answers %q; want one confirmation", got)
	}
	if w.comp.replies[0] != "oncall@example.com: ACK 90m" {
		t.Errorf("mailed %q; want the account's address told", w.comp.replies)
	}
	if st, err := w.store.MailStats(t.Context()); err != nil || st.Queued != 1 {
		t.Errorf("mail queued: %+v, %v; want one", st, err)
	}
}

// A server that does not answer is said to the phone, and nothing is
// recorded as silenced: UNACK then has nothing to expire. A silence the
// server lost (404 on update) is made anew.
func TestAlertCommandServerFailures(t *testing.T) {
	sil := &fakeSilencer{errs: []error{&silence.Error{Server: "alertmanager http://am:9093", Op: "creating a silence", Detail: "connection refused"}}}
	w := alertTwoWay(t, sil)
	w.receive(t, alertPhone, "972500000001", "ack", "k1")
	w.receive(t, alertPhone, "972500000001", "unack", "k2")
	w.drain(t)
	// Both are due at once: the dispatcher may send them in either order.
	want := []string{"Could not silence DiskFull on db1: alertmanager did not answer.", "No silence of yours is on for DiskFull on db1 (#1)."}
	if got := w.answers(); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Errorf("answers %q, want %q", got, want)
	}
	if len(sil.expires) != 0 {
		t.Errorf("expired %v after a failed silence", sil.expires)
	}

	w.receive(t, alertPhone, "972500000001", "ack", "k3")
	sil.errs = []error{&silence.Error{Server: "alertmanager http://am:9093", Status: 404, Err: silence.ErrNotFound}}
	w.now = w.now.Add(time.Minute)
	w.receive(t, alertPhone, "972500000001", "ack 3h", "k4")
	if n := len(sil.creates); n != 4 || sil.creates[2].ID != "sil-1" || sil.creates[3].ID != "" {
		t.Fatalf("creates %+v; want the lost silence's update refused, then a new one", sil.creates)
	}
	w.receive(t, alertPhone, "972500000001", "UNACK", "k5")
	if !slices.Equal(sil.expires, []string{"sil-2"}) {
		t.Errorf("expired %v; want the new silence", sil.expires)
	}
}

// An answer that is no command, or that is one from a phone the account
// never paged, is an ordinary reply: nothing is asked of the server.
func TestAlertCommandOrdinaryReplies(t *testing.T) {
	sil := &fakeSilencer{}
	w := alertTwoWay(t, sil)
	w.receive(t, alertPhone, "972500000001", "ack, looking at it", "k1")
	w.receive(t, "+972509999999", "972500000001", "ACK", "k2")
	w.drain(t)
	if len(sil.creates) != 0 || len(w.answers()) != 0 {
		t.Errorf("creates %v, answers %q; want none", sil.creates, w.answers())
	}
}
