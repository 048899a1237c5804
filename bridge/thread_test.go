package bridge_test

import (
	"slices"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
)

// TestThreadFor: mail to the conversation's writer (however its address
// is capitalised) threads under their mail; mail to anyone else, or about
// a conversation without one, starts its own thread.
func TestThreadFor(t *testing.T) {
	c := &bridge.Conversation{ReplyTo: "alice@example.com", MailMessageID: "<a1@example.com>"}
	for _, to := range []string{"alice@example.com", "Alice@Example.COM"} {
		th := bridge.ThreadFor(c, to)
		if th.InReplyTo != "a1@example.com" || !slices.Equal(th.References, []string{"a1@example.com"}) {
			t.Errorf("ThreadFor(%q) = %+v, want under a1@example.com", to, th)
		}
	}
	for _, tc := range []struct {
		c  *bridge.Conversation
		to string
	}{
		{c, "desk@example.org"},
		{&bridge.Conversation{ReplyTo: "alice@example.com"}, "alice@example.com"},
		{&bridge.Conversation{MailMessageID: "a1@example.com"}, ""},
		{nil, "alice@example.com"},
	} {
		if th := bridge.ThreadFor(tc.c, tc.to); th.InReplyTo != "" || th.References != nil {
			t.Errorf("ThreadFor(%+v, %q) = %+v, want no thread", tc.c, tc.to, th)
		}
	}
	if th := bridge.MessageThread(&bridge.Message{MailMessageID: "<m1@example.com>"}); th.InReplyTo != "m1@example.com" {
		t.Errorf("MessageThread = %+v", th)
	}
}
