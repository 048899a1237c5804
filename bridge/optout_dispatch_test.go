package bridge_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// A recipient claimed before its phone opted out (so Suppress left it to
// the dispatcher) is cancelled at the dispatcher's last look, not sent;
// the others of its message go.
func TestDispatcherHoldsBackOptedOut(t *testing.T) {
	p := &scripted{name: "p1", batch: 10}
	var e *env
	opt := bridge.DispatchOptions{Consent: func(ctx context.Context, m *bridge.Message, phones []string) (map[string]string, error) {
		return e.bridge.HeldBack(ctx, m, phones)
	}}
	e = newEnv(t, opt, []bridge.Route{{Prefix: "+972", Providers: []string{"p1"}}}, p)

	// A scheduled send still in the queue is cancelled by the store, in
	// the transaction that records the suppression.
	tomorrow := time.Now().Add(time.Hour)
	m := e.submit(t, "hello", tomorrow, "0501111111", "0502222222")
	if _, _, err := e.store.Suppress(t.Context(), bridge.SuppressionChange{Suppression: bridge.Suppression{
		Phone: "+972501111111", Reason: "SMS STOP", Source: "sms", By: "+972501111111", Created: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.Message(t.Context(), m.ID)
	if got.Recipients[0].State != bridge.StateCancelled {
		t.Fatalf("queued recipient after Suppress: %s, want cancelled by the store", got.Recipients[0].State)
	}
	// One already handed to the dispatcher: the last look finds it.
	m2 := e.submit(t, "later", time.Time{}, "0503333333", "0502222222")
	held, err := e.bridge.HeldBack(t.Context(), m2, []string{"+972503333333", "+972502222222"})
	if err != nil || len(held) != 0 {
		t.Fatalf("HeldBack before any opt-out = %v, %v", held, err)
	}
	for range 2 {
		if o := e.final(t); o.State != bridge.StateSent {
			t.Fatalf("outcome %+v", o)
		}
	}
	if _, _, err := e.store.Suppress(t.Context(), bridge.SuppressionChange{Suppression: bridge.Suppression{
		Phone: "+972503333333", Reason: "SMS STOP", Source: "sms", By: "+972503333333", Created: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	held, err = e.bridge.HeldBack(t.Context(), m2, []string{"+972503333333", "+972502222222"})
	if err != nil || len(held) != 1 || held["+972503333333"] == "" {
		t.Fatalf("HeldBack after the opt-out = %v, %v; want the one phone with why", held, err)
	}
	// The bridge's own answers (a STOP's confirmation) are never held back.
	answer := *m2
	answer.Channel = bridge.ChannelConsent
	if held, err := e.bridge.HeldBack(t.Context(), &answer, []string{"+972503333333"}); err != nil || len(held) != 0 {
		t.Errorf("HeldBack of a confirmation = %v, %v; want none", held, err)
	}
}

// The dispatcher acts on its last look: held-back recipients are
// cancelled with the reason and never reach the provider.
func TestDispatcherConsentLastLook(t *testing.T) {
	p := &scripted{name: "p1", batch: 10}
	opt := bridge.DispatchOptions{Consent: func(_ context.Context, _ *bridge.Message, phones []string) (map[string]string, error) {
		return map[string]string{"+972501111111": "+972501111111 opted out"}, nil
	}}
	e := newEnv(t, opt, []bridge.Route{{Prefix: "+972", Providers: []string{"p1"}}}, p)
	e.submit(t, "hello", time.Time{}, "0501111111", "0502222222")
	states := map[bridge.State]int{}
	for range 2 {
		o := e.final(t)
		states[o.State]++
		if o.State == bridge.StateCancelled && o.Error != "+972501111111 opted out" {
			t.Errorf("cancelled with %q", o.Error)
		}
	}
	if states[bridge.StateSent] != 1 || states[bridge.StateCancelled] != 1 {
		t.Errorf("outcomes %v, want one sent, one cancelled", states)
	}
	for _, c := range p.Calls() {
		for _, to := range c.To {
			if to == "+972501111111" {
				t.Errorf("the opted-out phone reached the provider")
			}
		}
	}
}

// cancelling is a provider that schedules natively and can cancel.
type cancelling struct {
	*scripted
	mu        sync.Mutex
	cancelled []string
}

func (p *cancelling) Cancel(_ context.Context, providerID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cancelled = append(p.cancelled, providerID)
	return nil
}

// A scheduled send a provider already holds is recalled when the phone
// is suppressed, where the provider can cancel it, and recorded so.
func TestSuppressRecallsScheduledAtProvider(t *testing.T) {
	p := &cancelling{scripted: &scripted{name: "p1", batch: 10, native: true}}
	e := newEnv(t, bridge.DispatchOptions{}, []bridge.Route{{Prefix: "+972", Providers: []string{"p1"}}}, p)
	m := e.submit(t, "tomorrow", time.Now().Add(24*time.Hour), "0501111111", "0502222222")
	for range 2 {
		if o := e.final(t); o.State != bridge.StateSent {
			t.Fatalf("outcome %+v, want handed to the provider (sent)", o)
		}
	}
	s, n, err := e.bridge.Suppress(t.Context(), e.acct, "", "050-111-1111", "", "asked by phone", "api")
	if err != nil {
		t.Fatal(err)
	}
	if s.Account != "ops" || s.Our != "" || n != 1 {
		t.Errorf("Suppress = %+v, %d cancelled; want the account's, 1 recalled", s, n)
	}
	p.mu.Lock()
	cancelled := append([]string(nil), p.cancelled...)
	p.mu.Unlock()
	if len(cancelled) != 1 || cancelled[0] != "p1-+972501111111" {
		t.Errorf("provider asked to cancel %v", cancelled)
	}
	got, err := e.store.Message(t.Context(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got.Recipients {
		want := bridge.StateSent
		if r.To == "+972501111111" {
			want = bridge.StateCancelled
		}
		if r.State != want {
			t.Errorf("%s: %s, want %s", r.To, r.State, want)
		}
	}
}
