package bridge_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

// countingSuppressed is the real store, counting consent reads.
type countingSuppressed struct {
	*sqlite.Store
	reads atomic.Int32
}

func (s *countingSuppressed) Suppressed(ctx context.Context, account, our string, phones []string) ([]bridge.Suppression, error) {
	s.reads.Add(1)
	return s.Store.Suppressed(ctx, account, our, phones)
}

// TestConsentReadOnce: a recipient let through at RCPT (ResolveTo) is not
// read again by Submit, nor by the dispatcher for the hand-off, while
// that read is fresh and was for the sender the message uses; otherwise
// it is, and a STOP recorded meanwhile refuses the message.
func TestConsentReadOnce(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sender    string        // the message's sender ID ("" the default)
		wait      time.Duration // between RCPT and Submit
		stop      bool          // the phone sends STOP meanwhile
		wantReads int32
	}{
		{name: "at once", wantReads: 1},
		{name: "another sender", sender: "Alerts", wantReads: 2},
		{name: "after a second", wait: 1500 * time.Millisecond, wantReads: 2},
		{name: "STOP after a second", wait: 1500 * time.Millisecond, stop: true, wantReads: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st, log := openStore(t)
				cs := &countingSuppressed{Store: st}
				p := &scripted{name: "p"}
				finals := make(chan bridge.Outcome, 1)
				var b *bridge.Bridge
				d := bridge.NewDispatcher(st, []bridge.Provider{p}, bridge.DispatchOptions{Log: log,
					Consent: func(ctx context.Context, m *bridge.Message, phones []string) (map[string]string, error) {
						return b.HeldBack(ctx, m, phones)
					},
					Final: func(_ context.Context, _ *bridge.Message, o bridge.Outcome) { finals <- o }})
				accounts := []bridge.Account{{Name: "ops", Emails: []string{"*@example.com"}, SenderIDs: []string{"Ops", "Alerts"}}}
				b, err := bridge.New(cs, []bridge.Provider{p}, route, accounts,
					bridge.Options{Region: "IL", Enqueued: d.Wake, Handoff: d.Handoff, Log: log})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() { defer close(done); d.Run(ctx, time.Second) }()
				defer func() { cancel(); <-done }()
				synctest.Wait() // the dispatcher has offered the hand-off its room
				acct, err := b.Account("a@example.com")
				if err != nil {
					t.Fatal(err)
				}

				r, err := b.ResolveTo(t.Context(), acct, "0501111111")
				if err != nil {
					t.Fatal(err)
				}
				pass(tc.wait)
				if tc.stop {
					if _, _, err := st.Suppress(t.Context(), bridge.SuppressionChange{Suppression: bridge.Suppression{
						Phone: r.To, Reason: "SMS STOP", Source: "sms", By: r.To, Created: time.Now()}}); err != nil {
						t.Fatal(err)
					}
				}
				_, err = b.Submit(t.Context(), &bridge.Submission{Account: acct, Channel: bridge.ChannelSMTP,
					Text: "hi", Sender: tc.sender, Recipients: []bridge.Recipient{r}})
				if tc.stop {
					var be *bridge.Error
					if !errors.As(err, &be) || be.Reason != bridge.ReasonOptedOut {
						t.Fatalf("Submit = %v, want refused as opted out", err)
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					if o := <-finals; o.State != bridge.StateSent {
						t.Fatalf("outcome %+v, want sent", o)
					}
				}
				if got := cs.reads.Load(); got != tc.wantReads {
					t.Errorf("consent read %d times, want %d", got, tc.wantReads)
				}
			})
		})
	}
}
