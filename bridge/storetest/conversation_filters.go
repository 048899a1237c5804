package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// outcome records m's SMS to its first recipient as ending in state
// through provider at at, filed under its conversation.
func outcome(t *testing.T, s Full, m *bridge.Message, provider string, state bridge.State, at time.Time) {
	t.Helper()
	c := touch(m, m.Recipients[0].To)
	c.Provider = provider
	o := bridge.Outcome{RecipientID: m.Recipients[0].ID, State: state, Provider: provider, At: at, Conversation: c}
	if state == bridge.StateSent {
		o.ProviderID = "pid-" + m.ID
	} else {
		o.Error = "no luck"
	}
	complete(t, s, o)
}

// sms enqueues account's SMS from our to phone, written at written, on
// behalf of replyTo ("": nobody, so it routes no replies).
func sms(t *testing.T, s Full, phone, our, account, replyTo string, written time.Time) *bridge.Message {
	t.Helper()
	m := newMessage(written, written, phone)
	m.Sender, m.Account, m.ReplyTo = our, account, replyTo
	return enqueue(t, s, m)
}

// testListConversationsByProviderAndState filters by the conversation's
// provider and by the state of its newest SMS either way.
func testListConversationsByProviderAndState(t *testing.T, s Full) {
	ctx := context.Background()
	const phone3, phone4, phone5, phone6 = "+972503333333", "+972504444444", "+972505555555", "+972506666666"
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }

	// delivered: the phone wrote first, our answer was delivered.
	recordInbound(t, s, newInbound(phone1, our1, at(0)), nil, nil)
	m := sms(t, s, phone1, our1, "clinic", "alice@clinic.example", at(1))
	outcome(t, s, m, "p1", bridge.StateSent, at(1))
	if n, err := s.Report(ctx, bridge.DeliveryReport{Provider: "p1", ProviderID: "pid-" + m.ID, State: bridge.StateDelivered, At: at(2)}); err != nil || n != 1 {
		t.Fatalf("Report = %d, %v", n, err)
	}
	delivered := bridge.ConversationID(phone1, our1)
	// failed, through p2.
	outcome(t, s, sms(t, s, phone2, our1, "clinic", "alice@clinic.example", at(2)), "p2", bridge.StateFailed, at(3))
	failed := bridge.ConversationID(phone2, our1)
	// received: our SMS went out, then the phone answered.
	outcome(t, s, sms(t, s, phone1, our2, "shop", "bob@shop.example", at(1)), "p1", bridge.StateSent, at(1))
	recordInbound(t, s, newInbound(phone1, our2, at(4)), nil, nil)
	answered := bridge.ConversationID(phone1, our2)
	// received: the phone wrote and nobody has answered.
	recordInbound(t, s, newInbound(phone3, our2, at(5)), nil, nil)
	unanswered := bridge.ConversationID(phone3, our2)
	// received: an SMS in at the instant ours was written comes after it
	// in the log, so it is the newest.
	outcome(t, s, sms(t, s, phone4, our2, "shop", "bob@shop.example", at(6)), "p1", bridge.StateSent, at(6))
	recordInbound(t, s, newInbound(phone4, our2, at(6)), nil, nil)
	tie := bridge.ConversationID(phone4, our2)
	// cancelled (an opt-out held it back), through p2.
	outcome(t, s, sms(t, s, phone5, our1, "clinic", "alice@clinic.example", at(7)), "p2", bridge.StateCancelled, at(7))
	cancelled := bridge.ConversationID(phone5, our1)
	// shared: clinic's SMS was sent; then shop, sharing the sender ID
	// but mailing nobody (the replies stay with clinic), failed.
	outcome(t, s, sms(t, s, phone6, our1, "clinic", "alice@clinic.example", at(8)), "p1", bridge.StateSent, at(8))
	outcome(t, s, sms(t, s, phone6, our1, "shop", "", at(9)), "p1", bridge.StateFailed, at(9))
	shared := bridge.ConversationID(phone6, our1)

	for _, tt := range []struct {
		name string
		f    bridge.ConversationFilter
		want []string
	}{
		{"provider p1", bridge.ConversationFilter{Provider: "p1"}, []string{shared, tie, unanswered, answered, delivered}},
		{"provider p2", bridge.ConversationFilter{Provider: "p2"}, []string{cancelled, failed}},
		{"provider unknown", bridge.ConversationFilter{Provider: "p9"}, nil},
		{"delivered", bridge.ConversationFilter{State: bridge.StateDelivered}, []string{delivered}},
		{"failed", bridge.ConversationFilter{State: bridge.StateFailed}, []string{shared, failed}},
		{"received", bridge.ConversationFilter{State: bridge.StateReceived}, []string{tie, unanswered, answered}},
		{"cancelled", bridge.ConversationFilter{State: bridge.StateCancelled}, []string{cancelled}},
		{"sent", bridge.ConversationFilter{State: bridge.StateSent}, nil},
		{"queued", bridge.ConversationFilter{State: bridge.StateQueued}, nil},
		// clinic's own view of the shared thread: its SMS was sent.
		{"clinic sent", bridge.ConversationFilter{Account: "clinic", State: bridge.StateSent}, []string{shared}},
		{"clinic failed", bridge.ConversationFilter{Account: "clinic", State: bridge.StateFailed}, []string{failed}},
		{"p2 failed", bridge.ConversationFilter{Provider: "p2", State: bridge.StateFailed}, []string{failed}},
		{"p1 failed", bridge.ConversationFilter{Provider: "p1", State: bridge.StateFailed}, []string{shared}},
		{"received, phone", bridge.ConversationFilter{Phone: phone1, State: bridge.StateReceived}, []string{answered}},
		{"received, page 2", bridge.ConversationFilter{State: bridge.StateReceived, Limit: 1, Before: at(6), BeforeID: tie}, []string{unanswered}},
	} {
		wantListed(ctx, t, s, tt.name, tt.f, tt.want)
	}
}
