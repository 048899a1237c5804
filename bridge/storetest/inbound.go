package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

var inboundSeq struct {
	sync.Mutex
	n int
}

// newInbound is an SMS from phone to our, received at received.
func newInbound(phone, our string, received time.Time) *bridge.Inbound {
	inboundSeq.Lock()
	inboundSeq.n++
	n := inboundSeq.n
	inboundSeq.Unlock()
	return &bridge.Inbound{
		ID: bridge.NewID(), Provider: "p1", DedupeKey: fmt.Sprintf("key-%d", n),
		From: phone, To: our, Text: fmt.Sprintf("reply %d: כן, תודה", n), Received: received,
		Raw:          `{"from":"` + phone + `","text":"..."}`,
		Conversation: bridge.ConversationID(phone, our), Created: received.Add(time.Second),
	}
}

func recordInbound(t *testing.T, s Full, in *bridge.Inbound, mail *bridge.OutMail, cursor *bridge.Cursor) {
	t.Helper()
	if err := s.RecordInbound(context.Background(), in, mail, cursor); err != nil {
		t.Fatalf("RecordInbound(%s): %v", in.DedupeKey, err)
	}
}

func replyMail(in *bridge.Inbound, to string) *bridge.OutMail {
	return &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailReply, Ref: in.ID, From: in.From + "@sms.example",
		To: to, Data: []byte("From: <" + in.From + "@sms.example>\r\nSubject: Re: x\r\n\r\n" + in.Text + "\r\n")}
}

func testRecordInbound(t *testing.T, s Full) {
	ctx := context.Background()
	in := newInbound(phone1, our2, base)
	in.MailTo = "alice@clinic.example"
	mail := replyMail(in, in.MailTo)
	recordInbound(t, s, in, mail, &bridge.Cursor{Name: "p1/inbox", Value: "1001"})

	// A new conversation: its phone is the sender, ours the receiver.
	assertConversation(t, conversation(t, s, in.Conversation), bridge.Conversation{
		ID: in.Conversation, Phone: phone1, Our: our2, Provider: "p1", Created: base, Updated: base})
	want := *mail
	want.State, want.Created, want.NextAttempt, want.Updated = bridge.MailQueued, in.Created, in.Created, in.Created
	assertMail(t, s, want)
	if v := savedCursor(t, s, "p1/inbox"); v != "1001" {
		t.Errorf("cursor = %q, want 1001", v)
	}
	log := conversationLog(t, s, in.Conversation, 0)
	wantLog := []bridge.LogEntry{{At: base, Direction: bridge.DirIn, Phone: phone1, Our: our2, Text: in.Text,
		InboundID: in.ID, MailTo: in.MailTo, Provider: in.Provider, Raw: in.Raw}}
	if !reflect.DeepEqual(log, wantLog) {
		t.Errorf("log:\n got %+v\nwant %+v", log, wantLog)
	}

	// Later SMS mark the conversation updated, one received earlier
	// (recorded late) does not; neither takes the reply routing.
	out := converse(t, s, phone1, our2, "clinic", "bob@clinic.example", base.Add(time.Minute), base.Add(time.Minute))
	recordInbound(t, s, newInbound(phone1, our2, base.Add(2*time.Minute)), nil, nil)
	recordInbound(t, s, newInbound(phone1, our2, base.Add(30*time.Second)), nil, nil)
	assertConversation(t, conversation(t, s, in.Conversation), routed(out, phone1, base, base.Add(2*time.Minute)))

	// Without a mail and a cursor, only the SMS is stored.
	if st, err := s.MailStats(ctx); err != nil || st.Queued != 1 {
		t.Errorf("MailStats = %+v, %v; want 1 queued", st, err)
	}
	if n := len(conversationLog(t, s, in.Conversation, 0)); n != 4 {
		t.Errorf("log has %d entries, want 4", n)
	}
}

func testRecordInboundDuplicate(t *testing.T, s Full) {
	ctx := context.Background()
	first := newInbound(phone1, our2, base)
	recordInbound(t, s, first, replyMail(first, "alice@clinic.example"), &bridge.Cursor{Name: "p1/inbox", Value: "1"})

	// The provider sends it again, later, and our poller has moved on.
	again := newInbound(phone1, our2, base.Add(time.Hour))
	again.DedupeKey, again.Text = first.DedupeKey, "the same, again"
	againMail := replyMail(again, "alice@clinic.example")
	err := s.RecordInbound(ctx, again, againMail, &bridge.Cursor{Name: "p1/inbox", Value: "2"})
	if !errors.Is(err, bridge.ErrDuplicateKey) {
		t.Fatalf("RecordInbound(duplicate) = %v, want ErrDuplicateKey", err)
	}
	if v := savedCursor(t, s, "p1/inbox"); v != "2" {
		t.Errorf("cursor after a duplicate = %q, want 2", v)
	}
	if m, err := s.Mail(ctx, againMail.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("mail of a duplicate was queued: %+v, %v", m, err)
	}
	assertConversation(t, conversation(t, s, first.Conversation), bridge.Conversation{
		ID: first.Conversation, Phone: phone1, Our: our2, Provider: "p1", Created: base, Updated: base})
	if got := logIDs(conversationLog(t, s, first.Conversation, 0)); !reflect.DeepEqual(got, []string{"in:" + first.ID}) {
		t.Errorf("log = %v, want only the first", got)
	}
	// Without a cursor: still a duplicate, still nothing written.
	if err := s.RecordInbound(ctx, again, nil, nil); !errors.Is(err, bridge.ErrDuplicateKey) {
		t.Errorf("RecordInbound(duplicate, no cursor) = %v, want ErrDuplicateKey", err)
	}

	// The same key from another provider is another message.
	other := newInbound(phone1, our2, base.Add(time.Minute))
	other.Provider, other.DedupeKey = "p2", first.DedupeKey
	recordInbound(t, s, other, nil, nil)
	if n := len(conversationLog(t, s, first.Conversation, 0)); n != 2 {
		t.Errorf("log has %d entries, want 2", n)
	}
}

func testRecordInboundConcurrent(t *testing.T, s Full) {
	ctx := context.Background()
	const n = 8
	// A provider delivering one SMS n times at once: one is recorded.
	var wg sync.WaitGroup
	errs := make([]error, n)
	key := newInbound(phone1, our1, base).DedupeKey
	for i := range n {
		in := newInbound(phone1, our1, base)
		in.DedupeKey = key
		wg.Go(func() { errs[i] = s.RecordInbound(ctx, in, replyMail(in, "alice@clinic.example"), nil) })
	}
	wg.Wait()
	recorded := 0
	for _, err := range errs {
		switch {
		case err == nil:
			recorded++
		case !errors.Is(err, bridge.ErrDuplicateKey):
			t.Errorf("RecordInbound: %v", err)
		}
	}
	if recorded != 1 {
		t.Errorf("%d of %d duplicates recorded, want 1", recorded, n)
	}
	if st, err := s.MailStats(ctx); err != nil || st.Queued != 1 {
		t.Errorf("MailStats = %+v, %v; want 1 queued", st, err)
	}
	if got := len(conversationLog(t, s, bridge.ConversationID(phone1, our1), 0)); got != 1 {
		t.Errorf("log has %d entries, want 1", got)
	}

	// n different SMS starting one conversation at once: all recorded.
	for i := range n {
		in := newInbound(phone2, our1, base.Add(time.Duration(i)*time.Second))
		wg.Go(func() { errs[i] = s.RecordInbound(ctx, in, nil, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("RecordInbound: %v", err)
		}
	}
	id := bridge.ConversationID(phone2, our1)
	if got := len(conversationLog(t, s, id, 0)); got != n {
		t.Errorf("log has %d entries, want %d", got, n)
	}
	if c := conversation(t, s, id); !c.Updated.Equal(base.Add((n - 1) * time.Second)) {
		t.Errorf("Updated = %v, want %v", c.Updated, base.Add((n-1)*time.Second))
	}
}

func testRecordInboundInvalid(t *testing.T, s Full) {
	ctx := context.Background()
	for name, in := range map[string]*bridge.Inbound{
		"nil":             nil,
		"no id":           {Provider: "p1", DedupeKey: "k", Conversation: "c", From: phone1},
		"no provider":     {ID: bridge.NewID(), DedupeKey: "k", Conversation: "c", From: phone1},
		"no dedupe key":   {ID: bridge.NewID(), Provider: "p1", Conversation: "c", From: phone1},
		"no conversation": {ID: bridge.NewID(), Provider: "p1", DedupeKey: "k", From: phone1},
	} {
		if err := s.RecordInbound(ctx, in, nil, nil); err == nil || bridge.IsTemporary(err) {
			t.Errorf("%s: RecordInbound = %v, want a permanent error", name, err)
		}
	}
	in := newInbound(phone1, our1, base)
	if err := s.RecordInbound(ctx, in, &bridge.OutMail{Kind: bridge.MailReply, To: "a@example.com"}, nil); err == nil || bridge.IsTemporary(err) {
		t.Errorf("RecordInbound with a mail without id = %v, want a permanent error", err)
	}
	// Nothing of a refused call is kept.
	if _, err := s.Conversation(ctx, in.Conversation); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("conversation of a refused inbound: %v", err)
	}
}
