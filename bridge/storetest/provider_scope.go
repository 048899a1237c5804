package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// testProviderScope: a provider finds only its own conversations (those
// whose SMS went out through it, or that a phone began through it), and
// what it reports of another provider's is filed apart; a delivery report
// changes only what went out through its provider.
func testProviderScope(t *testing.T, s Full) {
	ctx := context.Background()
	id, via := bridge.ConversationID(phone1, our2), bridge.ConversationIDVia(phone1, our2, "p2")
	alice := converse(t, s, phone1, our2, "clinic", "alice@clinic.example", base, base.Add(time.Minute))
	for _, our := range []string{our2, ""} {
		if c, err := s.LatestConversation(ctx, phone1, our, "p2"); !errors.Is(err, bridge.ErrNotFound) {
			t.Errorf("LatestConversation(%q, %q, p2) = %+v, %v; want ErrNotFound: the SMS went out through p1", phone1, our, c, err)
		}
		if c, err := s.LatestConversation(ctx, phone1, our, "p1"); err != nil || c.ID != id || c.Provider != "p1" {
			t.Errorf("LatestConversation(%q, %q, p1) = %+v, %v; want %s", phone1, our, c, err, id)
		}
	}

	// What p2 says of the pair is filed apart: its own conversation, no
	// routing, and not in the log of p1's.
	in := newInbound(phone1, our2, base.Add(2*time.Minute))
	in.Provider, in.Conversation = "p2", via
	recordInbound(t, s, in, nil, nil)
	assertConversation(t, conversation(t, s, via), bridge.Conversation{ID: via, Phone: phone1, Our: our2, Provider: "p2",
		Created: in.Received, Updated: in.Received})
	for _, our := range []string{our2, ""} {
		if c, err := s.LatestConversation(ctx, phone1, our, "p2"); err != nil || c.ID != via {
			t.Errorf("LatestConversation(%q, %q, p2) = %+v, %v; want %s", phone1, our, c, err, via)
		}
	}
	if c, err := s.LatestConversation(ctx, phone1, our2, "p1"); err != nil || c.ID != id {
		t.Errorf("LatestConversation(%q, %q, p1) = %+v, %v; want %s", phone1, our2, c, err, id)
	}
	if got := logIDs(conversationLog(t, s, id, 0)); !reflect.DeepEqual(got, []string{alice.ID}) {
		t.Errorf("log of p1's conversation = %v, want only [%s]", got, alice.ID)
	}
	assertConversation(t, conversation(t, s, id), routed(alice, phone1, base.Add(time.Minute), base.Add(time.Minute)))

	// When the person replies go to wrote through p2 (a failover), the
	// pair's own conversation is p2's and comes first.
	bob := newMessage(base.Add(time.Hour), base.Add(time.Hour), phone1)
	bob.Sender, bob.Account, bob.ReplyTo = our2, "clinic", "bob@clinic.example"
	enqueue(t, s, bob)
	tc := touch(bob, phone1)
	tc.Provider = "p2"
	complete(t, s, bridge.Outcome{RecipientID: bob.Recipients[0].ID, State: bridge.StateSent, Provider: "p2",
		ProviderID: "pid-" + bob.ID, At: base.Add(time.Hour), Conversation: tc})
	if c, err := s.LatestConversation(ctx, phone1, our2, "p2"); err != nil || c.ID != id || c.ReplyTo != "bob@clinic.example" {
		t.Errorf("after bob via p2: LatestConversation(p2) = %+v, %v; want %s routed to bob", c, err, id)
	}
	if c, err := s.LatestConversation(ctx, phone1, our2, "p1"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("after bob via p2: LatestConversation(p1) = %+v, %v; want ErrNotFound", c, err)
	}

	// p2's report of p1's provider id changes nothing.
	n, err := s.Report(ctx, bridge.DeliveryReport{Provider: "p2", ProviderID: "pid-" + alice.ID, State: bridge.StateUndelivered, At: base.Add(2 * time.Hour)})
	if err != nil || n != 0 {
		t.Errorf("Report through p2 of p1's SMS = %d, %v; want 0", n, err)
	}
	if r := get(t, s, alice.ID).Recipients[0]; r.State != bridge.StateSent {
		t.Errorf("p1's SMS is %s after p2's report", r.State)
	}
}
