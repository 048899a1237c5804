package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Full is a store that keeps every contract: the message queue, the
// conversation log and the mail queue.
type Full interface {
	bridge.Store
	bridge.Conversations
	bridge.MailQueue
}

// RunConversations runs the contract suite of bridge.Conversations and
// bridge.MailQueue, and of what Store.Complete records for them. open is
// as for Run.
func RunConversations(t *testing.T, open func(t *testing.T) Full) {
	tests := []struct {
		name string
		fn   func(*testing.T, Full)
	}{
		{"ReplyRouting", testReplyRouting},
		{"FileCaseInsensitiveSender", testFileCaseInsensitiveSender},
		{"CompleteAtomic", testCompleteAtomic},
		{"CompleteWithMail", testCompleteWithMail},
		{"CompleteConcurrentOnePhone", testCompleteConcurrentOnePhone},
		{"CompleteConcurrentSameRecipients", testCompleteConcurrentSameRecipients},
		{"ConversationNotFound", testConversationNotFound},
		{"LatestConversation", testLatestConversation},
		{"ProviderScope", testProviderScope},
		{"ListConversations", testListConversations},
		{"PageSameInstant", testPageSameInstant},
		{"ListConversationsLimit", testListConversationsLimit},
		{"RecordInbound", testRecordInbound},
		{"RecordInboundDuplicate", testRecordInboundDuplicate},
		{"RecordInboundConcurrent", testRecordInboundConcurrent},
		{"RecordInboundInvalid", testRecordInboundInvalid},
		{"ConversationLog", testConversationLog},
		{"ConversationLogLimit", testConversationLogLimit},
		{"Report", testReport},
		{"Outstanding", testOutstanding},
		{"OutstandingFair", testOutstandingFair},
		{"Cursor", testCursor},
		{"Lease", testLease},
		{"LeaseConcurrent", testLeaseConcurrent},
		{"MailRoundTrip", testMailRoundTrip},
		{"ClaimMail", testClaimMail},
		{"ClaimMailConcurrent", testClaimMailConcurrent},
		{"CompleteMail", testCompleteMail},
		{"RecoverMail", testRecoverMail},
		{"MailStats", testMailStats},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

const (
	phone1 = "+972501234567"
	phone2 = "+972507654321"
	our1   = "Clinic"
	our2   = "+972599000001"
)

// touch is the ConversationTouch a dispatcher makes for m's SMS to phone.
func touch(m *bridge.Message, phone string) *bridge.ConversationTouch {
	return &bridge.ConversationTouch{
		ID: bridge.ConversationID(phone, m.Sender), Phone: phone, Our: m.Sender, Provider: "p1",
		Account: m.Account, ReplyTo: m.ReplyTo, MailMessageID: m.MailMessageID,
		Subject: "Subject of " + m.ID, At: m.Created,
	}
}

// converse sends an SMS to phone from our on behalf of replyTo (a mail of
// account's, written at written) and records it sent at at, filed under
// its conversation.
func converse(t *testing.T, s Full, phone, our, account, replyTo string, written, at time.Time) *bridge.Message {
	t.Helper()
	m := newMessage(written, written, phone)
	m.Sender, m.Account, m.ReplyTo = our, account, replyTo
	m.MailMessageID = "<" + m.ID + "@mail.example>"
	enqueue(t, s, m)
	complete(t, s, bridge.Outcome{RecipientID: m.Recipients[0].ID, State: bridge.StateSent, Provider: "p1",
		ProviderID: "pid-" + m.ID, At: at, Conversation: touch(m, phone)})
	return m
}

func conversation(t *testing.T, s Full, id string) bridge.Conversation {
	t.Helper()
	c, err := s.Conversation(context.Background(), id)
	if err != nil {
		t.Fatalf("Conversation(%s): %v", id, err)
	}
	return *c
}

// routed is the conversation of phone and our as m routes it.
func routed(m *bridge.Message, phone string, created, updated time.Time) bridge.Conversation {
	return bridge.Conversation{
		ID: bridge.ConversationID(phone, m.Sender), Phone: phone, Our: m.Sender, Provider: "p1",
		Account: m.Account, ReplyTo: m.ReplyTo, MailMessageID: m.MailMessageID,
		Subject: "Subject of " + m.ID, LastOut: m.Created, Created: created, Updated: updated,
	}
}

func assertConversation(t *testing.T, got, want bridge.Conversation) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conversation:\n got %+v\nwant %+v", got, want)
	}
}

// logIDs is the message ids of a log's outbound entries, and "in:"
// and the inbound id for inbound ones, in order.
func logIDs(log []bridge.LogEntry) []string {
	ids := make([]string, len(log))
	for i, e := range log {
		if e.Direction == bridge.DirIn {
			ids[i] = "in:" + e.InboundID
		} else {
			ids[i] = e.MessageID
		}
	}
	return ids
}

func conversationLog(t *testing.T, s Full, id string, limit int) []bridge.LogEntry {
	t.Helper()
	log, err := s.ConversationLog(context.Background(), id, limit)
	if err != nil {
		t.Fatalf("ConversationLog(%s, %d): %v", id, limit, err)
	}
	return log
}

func testReplyRouting(t *testing.T, s Full) {
	id := bridge.ConversationID(phone1, our1)
	alice := converse(t, s, phone1, our1, "clinic", "alice@clinic.example", base, base.Add(time.Second))
	assertConversation(t, conversation(t, s, id), routed(alice, phone1, base.Add(time.Second), base.Add(time.Second)))

	// Bob writes later: his mail gets the replies.
	bob := converse(t, s, phone1, our1, "clinic", "bob@clinic.example", base.Add(time.Minute), base.Add(61*time.Second))
	assertConversation(t, conversation(t, s, id), routed(bob, phone1, base.Add(time.Second), base.Add(61*time.Second)))

	// Carol wrote before Bob, but her SMS went out after his: Bob keeps
	// the replies; her SMS is filed and the conversation updated.
	carol := converse(t, s, phone1, our1, "frontdesk", "carol@clinic.example", base.Add(30*time.Second), base.Add(2*time.Minute))
	assertConversation(t, conversation(t, s, id), routed(bob, phone1, base.Add(time.Second), base.Add(2*time.Minute)))

	// An SMS on nobody's behalf is filed and routes nothing.
	cron := converse(t, s, phone1, our1, "monitoring", "", base.Add(time.Hour), base.Add(time.Hour))
	assertConversation(t, conversation(t, s, id), routed(bob, phone1, base.Add(time.Second), base.Add(time.Hour)))

	// Dave wrote at the same instant as Bob: the later writer wins. His
	// outcome, recorded late, does not move Updated back.
	dave := converse(t, s, phone1, our1, "clinic", "dave@clinic.example", base.Add(time.Minute), base.Add(10*time.Second))
	assertConversation(t, conversation(t, s, id), routed(dave, phone1, base.Add(time.Second), base.Add(time.Hour)))

	// Every SMS is in the log, in the order they were written.
	want := []string{alice.ID, carol.ID, bob.ID, dave.ID, cron.ID}
	if got := logIDs(conversationLog(t, s, id, 0)); !reflect.DeepEqual(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}

	// A conversation whose first SMS routes nothing has no routing.
	other := converse(t, s, phone2, our1, "monitoring", "", base, base.Add(time.Second))
	assertConversation(t, conversation(t, s, bridge.ConversationID(phone2, our1)), bridge.Conversation{
		ID: bridge.ConversationID(phone2, our1), Phone: phone2, Our: our1, Provider: "p1",
		Created: base.Add(time.Second), Updated: base.Add(time.Second),
	})
	if got := logIDs(conversationLog(t, s, bridge.ConversationID(phone2, our1), 0)); !reflect.DeepEqual(got, []string{other.ID}) {
		t.Errorf("log of the other conversation = %v, want [%s]", got, other.ID)
	}
}

func testFileCaseInsensitiveSender(t *testing.T, s Full) {
	// Sender IDs differ only in case: one conversation (its id says so),
	// which keeps the spelling it was created with.
	first := converse(t, s, phone1, "Clinic", "clinic", "alice@clinic.example", base, base)
	second := converse(t, s, phone1, "CLINIC", "clinic", "bob@clinic.example", base.Add(time.Minute), base.Add(time.Minute))
	id := bridge.ConversationID(phone1, "clinic")
	want := routed(second, phone1, base, base.Add(time.Minute))
	want.Our = "Clinic"
	assertConversation(t, conversation(t, s, id), want)
	if got := logIDs(conversationLog(t, s, id, 0)); !reflect.DeepEqual(got, []string{first.ID, second.ID}) {
		t.Errorf("log = %v", got)
	}
	c, err := s.LatestConversation(context.Background(), phone1, "clinic", "p1")
	if err != nil || c.ID != id {
		t.Errorf("LatestConversation(%s, clinic) = %+v, %v; want %s", phone1, c, err, id)
	}
}

func testCompleteAtomic(t *testing.T, s Full) {
	ctx := context.Background()
	m := newMessage(base, base, phone1)
	m.Sender, m.ReplyTo = our1, "alice@clinic.example"
	enqueue(t, s, m)
	bounce := &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: m.ID, To: "alice@clinic.example", Data: []byte("bounce")}
	// One transaction: with an unknown recipient, neither the filing nor
	// the mail of the known one is kept.
	err := s.Complete(ctx, []bridge.Outcome{
		{RecipientID: m.Recipients[0].ID, State: bridge.StateFailed, Error: "no", At: base,
			Conversation: touch(m, phone1), Mail: bounce},
		{RecipientID: 1 << 40, State: bridge.StateSent, At: base},
	})
	if !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("Complete(unknown recipient) = %v, want ErrNotFound", err)
	}
	if c, err := s.Conversation(ctx, bridge.ConversationID(phone1, our1)); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("conversation of a failed Complete: %+v, %v", c, err)
	}
	if got, err := s.Mail(ctx, bounce.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("mail of a failed Complete: %+v, %v", got, err)
	}
	if r := get(t, s, m.ID).Recipients[0]; r.State != bridge.StateQueued {
		t.Errorf("recipient of a failed Complete is %s", r.State)
	}

	// An outcome's touch must name its conversation.
	err = s.Complete(ctx, []bridge.Outcome{{RecipientID: m.Recipients[0].ID, State: bridge.StateSent, At: base,
		Conversation: &bridge.ConversationTouch{Phone: phone1}}})
	if err == nil || bridge.IsTemporary(err) {
		t.Errorf("Complete with a touch without id = %v, want a permanent error", err)
	}
}

func testCompleteWithMail(t *testing.T, s Full) {
	ctx := context.Background()
	m := enqueue(t, s, newMessage(base, base, phone1, phone2))
	at := base.Add(time.Minute)
	bounce := &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: m.ID, To: "app@example.com",
		Data: []byte("From: <>\r\nSubject: Undelivered\r\n\r\n\x00\xff\r\n")}
	// A mail with times of its own keeps them.
	later := &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: m.ID, From: "postmaster@bridge.example",
		To: "ops@example.com", Data: []byte("x"), Created: base, NextAttempt: base.Add(time.Hour)}
	complete(t, s,
		bridge.Outcome{RecipientID: m.Recipients[0].ID, State: bridge.StateFailed, Error: "bad number", At: at, Mail: bounce},
		bridge.Outcome{RecipientID: m.Recipients[1].ID, State: bridge.StateFailed, Error: "expired", At: at, Mail: later},
	)
	want := *bounce
	want.State, want.Created, want.NextAttempt, want.Updated = bridge.MailQueued, at, at, at
	assertMail(t, s, want)
	want = *later
	want.State, want.Updated = bridge.MailQueued, base
	assertMail(t, s, want)

	// Recorded again (a retry after an unanswered commit): queued once.
	complete(t, s, bridge.Outcome{RecipientID: m.Recipients[0].ID, State: bridge.StateFailed, Error: "bad number",
		At: at.Add(time.Second), Mail: bounce})
	if st, err := s.MailStats(ctx); err != nil || st.Queued != 2 || !st.OldestQueued.Equal(base) {
		t.Errorf("MailStats = %+v, %v; want 2 queued, oldest %v", st, err, base)
	}
	if mails := claimMail(t, s, at, 10); len(mails) != 1 || mails[0].ID != bounce.ID {
		t.Errorf("due at %v: %v, want only the bounce", at, mailIDs(mails))
	}
}

// testCompleteConcurrentOnePhone is many dispatchers recording outcomes
// for one phone at once, as a load of mail to one number makes them: every
// Complete succeeds. Each round files under two conversations that do not
// exist yet (creating one is where concurrent writers meet: the race is
// narrow, hence the rounds), each Complete under both, named in either
// order, and from senders whose case differs (one conversation, see
// bridge.ConversationID).
func testCompleteConcurrentOnePhone(t *testing.T, s Full) {
	ctx := context.Background()
	const writers, rounds = 20, 60
	var wg sync.WaitGroup
	failed := 0
	for round := range rounds {
		phone := fmt.Sprintf("+1555%07d", round)
		ours := []string{"Clinic", "+15559990000"}
		m := newMessage(base, base, slices.Repeat([]string{phone}, 2*writers)...)
		m.ReplyTo = "reception@clinic.example"
		enqueue(t, s, m)
		start := make(chan struct{})
		errs := make([]error, writers)
		for w := range writers {
			at := base.Add(time.Duration(w) * time.Millisecond)
			var outs []bridge.Outcome
			for k, our := range ours {
				if w%2 == 1 {
					our = strings.ToUpper(our)
				}
				c := touch(m, phone)
				c.ID, c.Our = bridge.ConversationID(phone, our), our
				r := m.Recipients[2*w+k]
				outs = append(outs, bridge.Outcome{RecipientID: r.ID, State: bridge.StateSent, Provider: "p1",
					ProviderID: fmt.Sprintf("%s-%d", m.ID, r.ID), At: at, Conversation: c})
			}
			if w%2 == 1 {
				slices.Reverse(outs)
			}
			wg.Go(func() {
				<-start
				errs[w] = s.Complete(ctx, outs)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				failed++
				t.Errorf("round %d: Complete: %v", round, err)
			}
		}
		for _, our := range ours {
			c := conversation(t, s, bridge.ConversationID(phone, our))
			if want := base.Add((writers - 1) * time.Millisecond); !c.Updated.Equal(want) {
				t.Errorf("round %d: conversation with %s updated %v, want %v", round, our, c.Updated, want)
			}
			if n := len(conversationLog(t, s, c.ID, 0)); n != writers {
				t.Errorf("round %d: conversation with %s has %d entries, want %d", round, our, n, writers)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d Completes failed", failed, writers*rounds)
	}
}

// testCompleteConcurrentSameRecipients is Completes racing for the same
// recipients, named in different orders (a late outcome after a lease ran
// out, beside the new claimer's): all succeed, whatever order each names
// them in.
func testCompleteConcurrentSameRecipients(t *testing.T, s Full) {
	ctx := context.Background()
	const writers, rounds, n = 8, 20, 4
	var wg sync.WaitGroup
	for round := range rounds {
		m := enqueue(t, s, newMessage(base, base, slices.Repeat([]string{phone1}, n)...))
		start := make(chan struct{})
		errs := make([]error, writers)
		for w := range writers {
			var outs []bridge.Outcome
			for k := range n {
				r := m.Recipients[(k+w)%n]
				outs = append(outs, bridge.Outcome{RecipientID: r.ID, State: bridge.StateSent, Provider: "p1",
					ProviderID: fmt.Sprintf("w%d", w), At: base, Conversation: touch(m, phone1)})
			}
			if w%2 == 1 {
				slices.Reverse(outs)
			}
			wg.Go(func() {
				<-start
				errs[w] = s.Complete(ctx, outs)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Errorf("round %d: Complete: %v", round, err)
			}
		}
	}
}

func testConversationNotFound(t *testing.T, s Full) {
	ctx := context.Background()
	converse(t, s, phone1, our1, "clinic", "alice@clinic.example", base, base)
	if c, err := s.Conversation(ctx, "cnosuchconversation"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("Conversation(unknown) = %+v, %v; want ErrNotFound", c, err)
	}
	if log, err := s.ConversationLog(ctx, "cnosuchconversation", 10); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("ConversationLog(unknown) = %+v, %v; want ErrNotFound", log, err)
	}
	for _, q := range [][2]string{{phone2, ""}, {phone2, our1}, {phone1, our2}} {
		if c, err := s.LatestConversation(ctx, q[0], q[1], "p1"); !errors.Is(err, bridge.ErrNotFound) {
			t.Errorf("LatestConversation(%q, %q) = %+v, %v; want ErrNotFound", q[0], q[1], c, err)
		}
	}
}

func testLatestConversation(t *testing.T, s Full) {
	ctx := context.Background()
	converse(t, s, phone1, our1, "clinic", "alice@clinic.example", base, base.Add(time.Minute))
	converse(t, s, phone1, our2, "shop", "bob@shop.example", base, base.Add(2*time.Minute))
	converse(t, s, phone2, our1, "clinic", "carol@clinic.example", base, base.Add(3*time.Minute))
	check := func(phone, our, wantID string) {
		t.Helper()
		c, err := s.LatestConversation(ctx, phone, our, "p1")
		if err != nil || c.ID != wantID {
			t.Errorf("LatestConversation(%q, %q) = %+v, %v; want %s", phone, our, c, err, wantID)
		}
	}
	check(phone1, our1, bridge.ConversationID(phone1, our1))
	check(phone1, our2, bridge.ConversationID(phone1, our2))
	check(phone1, "", bridge.ConversationID(phone1, our2))
	// An inbound SMS makes the other conversation the latest.
	recordInbound(t, s, newInbound(phone1, our1, base.Add(5*time.Minute)), nil, nil)
	check(phone1, "", bridge.ConversationID(phone1, our1))
}

func testListConversations(t *testing.T, s Full) {
	ctx := context.Background()
	// Updated: c1 1m, c2 2m, c3 3m, c4 4m.
	converse(t, s, phone1, our1, "clinic", "alice@clinic.example", base, base.Add(time.Minute))
	converse(t, s, phone1, our2, "shop", "bob@shop.example", base, base.Add(2*time.Minute))
	converse(t, s, phone2, our1, "clinic", "carol@clinic.example", base, base.Add(3*time.Minute))
	recordInbound(t, s, newInbound("+972508888888", our2, base.Add(4*time.Minute)), nil, nil)
	c1, c2 := bridge.ConversationID(phone1, our1), bridge.ConversationID(phone1, our2)
	c3, c4 := bridge.ConversationID(phone2, our1), bridge.ConversationID("+972508888888", our2)

	for _, tt := range []struct {
		name string
		f    bridge.ConversationFilter
		want []string
	}{
		{"all", bridge.ConversationFilter{}, []string{c4, c3, c2, c1}},
		{"phone", bridge.ConversationFilter{Phone: phone1}, []string{c2, c1}},
		{"account", bridge.ConversationFilter{Account: "clinic"}, []string{c3, c1}},
		{"since", bridge.ConversationFilter{Since: base.Add(2 * time.Minute)}, []string{c4, c3, c2}},
		{"before", bridge.ConversationFilter{Before: base.Add(3 * time.Minute)}, []string{c2, c1}},
		{"limit", bridge.ConversationFilter{Limit: 2}, []string{c4, c3}},
		{"page 2", bridge.ConversationFilter{Limit: 2, Before: base.Add(3 * time.Minute)}, []string{c2, c1}},
		{"all filters", bridge.ConversationFilter{Phone: phone1, Account: "shop", Since: base, Before: base.Add(time.Hour)}, []string{c2}},
		{"none", bridge.ConversationFilter{Phone: phone1, Account: "nobody"}, nil},
	} {
		list, err := s.ListConversations(ctx, tt.f)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []string
		for _, c := range list {
			got = append(got, c.ID)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ListConversations(%+v) = %v, want %v", tt.name, tt.f, got, tt.want)
		}
	}
	// Conversations come whole.
	list, err := s.ListConversations(ctx, bridge.ConversationFilter{Phone: phone1, Limit: 1})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListConversations = %v, %v", list, err)
	}
	assertConversation(t, list[0], conversation(t, s, c2))
}

func testListConversationsLimit(t *testing.T, s Full) {
	// 501 conversations, from one message to 501 phones.
	const n = 501
	var nums []string
	for i := range n {
		nums = append(nums, fmt.Sprintf("+1555%07d", i))
	}
	m := newMessage(base, base, nums...)
	m.Sender, m.ReplyTo = our1, "alice@clinic.example"
	enqueue(t, s, m)
	outs := make([]bridge.Outcome, n)
	for i, r := range m.Recipients {
		outs[i] = bridge.Outcome{RecipientID: r.ID, State: bridge.StateSent, ProviderID: "x",
			At: base.Add(time.Duration(i) * time.Millisecond), Conversation: touch(m, r.To)}
	}
	complete(t, s, outs...)
	for _, tt := range []struct{ limit, want int }{{0, 50}, {-1, 50}, {7, 7}, {500, 500}, {10000, 500}} {
		list, err := s.ListConversations(context.Background(), bridge.ConversationFilter{Limit: tt.limit})
		if err != nil || len(list) != tt.want {
			t.Errorf("ListConversations(Limit %d) = %d conversations, %v; want %d", tt.limit, len(list), err, tt.want)
			continue
		}
		if newest := bridge.ConversationID(nums[n-1], our1); list[0].ID != newest {
			t.Errorf("Limit %d: first is %s, want the newest, %s", tt.limit, list[0].ID, newest)
		}
	}
}

var inboundSeq struct {
	sync.Mutex
	n int
}

// newInbound is an SMS from phone to our, received at received.
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

func savedCursor(t *testing.T, s Full, name string) string {
	t.Helper()
	v, err := s.Cursor(context.Background(), name)
	if err != nil {
		t.Fatalf("Cursor(%s): %v", name, err)
	}
	return v
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

func testConversationLog(t *testing.T, s Full) {
	id := bridge.ConversationID(phone1, our1)
	// Outbound: m1 written at 1m (and to another phone, another
	// conversation), m2 a template send at 3m that failed; m3 to this
	// phone from another sender of ours. Inbound at 2m, 3m and 4m.
	m1 := newMessage(base.Add(time.Minute), base, phone1, phone2)
	m1.Sender, m1.Account, m1.ReplyTo, m1.Text = our1, "clinic", "alice@clinic.example", "Your appointment is at 10:00 – see you"
	m1.SMSText, m1.Encoding, m1.Parts = "Your appointment is at 10:00 - see you", bridge.GSM7, 1
	enqueue(t, s, m1)
	m2 := newMessage(base.Add(3*time.Minute), base, phone1)
	m2.Sender, m2.Account, m2.Text, m2.Template = our1, "shop", "", "appt-reminder"
	enqueue(t, s, m2)
	m3 := newMessage(base.Add(90*time.Second), base, phone1)
	m3.Sender = our2
	enqueue(t, s, m3)
	complete(t, s,
		bridge.Outcome{RecipientID: m1.Recipients[0].ID, State: bridge.StateSent, ProviderID: "a", Cost: "0.01", At: base.Add(5 * time.Minute),
			Conversation: touch(m1, phone1)},
		bridge.Outcome{RecipientID: m1.Recipients[1].ID, State: bridge.StateSent, ProviderID: "a", At: base.Add(5 * time.Minute),
			Conversation: touch(m1, phone2)},
		bridge.Outcome{RecipientID: m2.Recipients[0].ID, State: bridge.StateFailed, Error: "template rejected",
			At: base.Add(5 * time.Minute), Conversation: touch(m2, phone1)},
		bridge.Outcome{RecipientID: m3.Recipients[0].ID, State: bridge.StateSent, At: base.Add(5 * time.Minute),
			Conversation: touch(m3, phone1)},
	)
	in1 := newInbound(phone1, our1, base.Add(2*time.Minute))
	in1.MailTo = "alice@clinic.example"
	in2 := newInbound(phone1, our1, base.Add(3*time.Minute)) // as m2: the outbound one comes first
	in3 := newInbound(phone1, our1, base.Add(4*time.Minute))
	for _, in := range []*bridge.Inbound{in3, in1, in2} { // recorded out of order
		recordInbound(t, s, in, nil, nil)
	}
	outEntry := func(m *bridge.Message, text string, state bridge.State, errText string) bridge.LogEntry {
		return bridge.LogEntry{At: m.Created, Direction: bridge.DirOut, Phone: phone1, Our: our1, Account: m.Account,
			Text: text, State: state, Error: errText, MessageID: m.ID, RecipientID: m.Recipients[0].ID}
	}
	inEntry := func(in *bridge.Inbound) bridge.LogEntry {
		return bridge.LogEntry{At: in.Received, Direction: bridge.DirIn, Phone: phone1, Our: our1, Text: in.Text,
			InboundID: in.ID, MailTo: in.MailTo, Provider: in.Provider, Raw: in.Raw}
	}
	// The log shows the text as written, with how the text sent went.
	sentM1 := outEntry(m1, m1.Text, bridge.StateSent, "")
	sentM1.Encoding, sentM1.Parts, sentM1.Cost = bridge.GSM7, 1, "0.01"
	want := []bridge.LogEntry{
		sentM1,
		inEntry(in1),
		outEntry(m2, "template appt-reminder", bridge.StateFailed, "template rejected"),
		inEntry(in2),
		inEntry(in3),
	}
	check := func(limit int, want []bridge.LogEntry) {
		t.Helper()
		got := conversationLog(t, s, id, limit)
		if len(got) != len(want) {
			t.Fatalf("ConversationLog(limit %d) = %v, want %v", limit, logIDs(got), logIDs(want))
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("limit %d, entry %d:\n got %+v\nwant %+v", limit, i, got[i], want[i])
			}
		}
	}
	check(0, want)
	check(100, want)
	check(3, want[2:])
	check(1, want[4:])

	// The SMS's state follows the recipient's.
	complete(t, s, bridge.Outcome{RecipientID: m1.Recipients[0].ID, State: bridge.StateDelivered, At: base.Add(6 * time.Minute)})
	want[0].State = bridge.StateDelivered
	check(0, want)
}

func testConversationLogLimit(t *testing.T, s Full) {
	// 101 SMS to one phone (one message, the same number 101 times):
	// without a limit, the newest 100, oldest first.
	const n = 101
	nums := make([]string, n)
	for i := range nums {
		nums[i] = phone1
	}
	m := newMessage(base, base, nums...)
	m.Sender = our1
	enqueue(t, s, m)
	outs := make([]bridge.Outcome, n)
	for i, r := range m.Recipients {
		outs[i] = bridge.Outcome{RecipientID: r.ID, State: bridge.StateSent, At: base, Conversation: touch(m, phone1)}
	}
	complete(t, s, outs...)
	log := conversationLog(t, s, bridge.ConversationID(phone1, our1), 0)
	if len(log) != 100 {
		t.Fatalf("log has %d entries, want 100", len(log))
	}
	for i, e := range log {
		if want := m.Recipients[i+1].ID; e.RecipientID != want {
			t.Fatalf("entry %d is recipient %d, want %d", i, e.RecipientID, want)
		}
	}
}

// sendAll records m's recipients sent through provider, recipient i
// with providerIDs[i] at ats[i].
func sendAll(t *testing.T, s Full, m *bridge.Message, provider string, providerIDs []string, ats []time.Time) {
	t.Helper()
	var outs []bridge.Outcome
	for i, id := range providerIDs {
		outs = append(outs, bridge.Outcome{RecipientID: m.Recipients[i].ID, State: bridge.StateSent, Provider: provider,
			ProviderID: id, At: ats[i]})
	}
	complete(t, s, outs...)
}

func testReport(t *testing.T, s Full) {
	ctx := context.Background()
	// a and b share a provider id (one bulk send); c has its own; d is
	// queued and e failed, both with the provider id of an earlier try;
	// f went through another provider under the same id.
	m := newMessage(base, base, "+15550000001", "+15550000002", "+15550000003", "+15550000004", "+15550000005")
	m.Recipients[3].ProviderID = "bulk-1"
	enqueue(t, s, m)
	f := enqueue(t, s, newMessage(base, base, "+15550000006"))
	sendAll(t, s, m, "p1", []string{"bulk-1", "bulk-1", "c-1"}, []time.Time{base, base, base})
	complete(t, s, bridge.Outcome{RecipientID: m.Recipients[4].ID, State: bridge.StateFailed, Provider: "p1",
		ProviderID: "bulk-1", Error: "rejected", At: base})
	sendAll(t, s, f, "p2", []string{"bulk-1"}, []time.Time{base})

	report := func(r bridge.DeliveryReport, want int) {
		t.Helper()
		n, err := s.Report(ctx, r)
		if err != nil || n != want {
			t.Fatalf("Report(%+v) = %d, %v; want %d", r, n, err, want)
		}
	}
	check := func(states []bridge.State, errs []string, updated []time.Time) {
		t.Helper()
		rs := get(t, s, m.ID).Recipients
		for i, r := range rs {
			if r.State != states[i] || r.Error != errs[i] || !r.Updated.Equal(updated[i]) {
				t.Errorf("recipient %d: %s, %q, updated %v; want %s, %q, %v", i, r.State, r.Error, r.Updated,
					states[i], errs[i], updated[i])
			}
		}
		if r := get(t, s, f.ID).Recipients[0]; r.State != bridge.StateSent {
			t.Errorf("the other provider's recipient is %s", r.State)
		}
	}
	t1, t2, t3 := base.Add(time.Minute), base.Add(2*time.Minute), base.Add(3*time.Minute)

	// For one number of the bulk send.
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "bulk-1", To: "+15550000001",
		State: bridge.StateDelivered, Detail: "DELIVRD", At: t1}, 1)
	check([]bridge.State{bridge.StateDelivered, bridge.StateSent, bridge.StateSent, bridge.StateQueued, bridge.StateFailed},
		[]string{"", "", "", "", "rejected"}, []time.Time{t1, base, base, base, base})

	// For all of it: a later report wins over the first.
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "bulk-1",
		State: bridge.StateUndelivered, Detail: "EXPIRED", At: t2}, 2)
	check([]bridge.State{bridge.StateUndelivered, bridge.StateUndelivered, bridge.StateSent, bridge.StateQueued, bridge.StateFailed},
		[]string{"EXPIRED", "EXPIRED", "", "", "rejected"}, []time.Time{t2, t2, base, base, base})

	// Delivered after all: the reason goes.
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "bulk-1", State: bridge.StateDelivered, At: t3}, 2)
	check([]bridge.State{bridge.StateDelivered, bridge.StateDelivered, bridge.StateSent, bridge.StateQueued, bridge.StateFailed},
		[]string{"", "", "", "", "rejected"}, []time.Time{t3, t3, base, base, base})

	// Undelivered without a reason still says why.
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "c-1", State: bridge.StateUndelivered, At: t3}, 1)
	if r := get(t, s, m.ID).Recipients[2]; r.State != bridge.StateUndelivered || r.Error == "" {
		t.Errorf("undelivered without detail: %s, %q; want undelivered with an error", r.State, r.Error)
	}

	// Unknown ids, numbers and providers change nothing; nor does "no news".
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "nosuchid", State: bridge.StateDelivered, At: t3}, 0)
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "bulk-1", To: "+15559999999", State: bridge.StateUndelivered, At: t3}, 0)
	report(bridge.DeliveryReport{Provider: "p3", ProviderID: "bulk-1", State: bridge.StateUndelivered, At: t3}, 0)
	report(bridge.DeliveryReport{Provider: "p2", ProviderID: "bulk-1", State: bridge.StateSent, At: t3}, 0)
	if r := get(t, s, f.ID).Recipients[0]; r.State != bridge.StateSent || !r.Updated.Equal(base) {
		t.Errorf("a report of no news changed the recipient: %s, %v", r.State, r.Updated)
	}

	for _, r := range []bridge.DeliveryReport{
		{Provider: "p1", ProviderID: "bulk-1", State: bridge.StateFailed, At: t3},
		{Provider: "p1", ProviderID: "bulk-1", State: "", At: t3},
		{Provider: "p1", State: bridge.StateDelivered, At: t3},
		{ProviderID: "bulk-1", State: bridge.StateDelivered, At: t3},
	} {
		if _, err := s.Report(ctx, r); err == nil || bridge.IsTemporary(err) {
			t.Errorf("Report(%+v) = %v, want a permanent error", r, err)
		}
	}
}

func testOutstanding(t *testing.T, s Full) {
	ctx := context.Background()
	sec := func(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }
	m := newMessage(base, base, "+15550000001", "+15550000002", "+15550000003", "+15550000004",
		"+15550000005", "+15550000006", "+15550000007", "+15550000008")
	enqueue(t, s, m)
	// b was sent to two numbers, at 2s and 5s; "old" before since; d
	// reported already; the last two recipients are queued and sent
	// without a provider id.
	sendAll(t, s, m, "p1", []string{"a", "b", "c", "b", "old", "d", ""},
		[]time.Time{sec(1), sec(2), sec(3), sec(5), base.Add(-time.Hour), sec(1), sec(1)})
	other := enqueue(t, s, newMessage(base, base, "+15550000009"))
	sendAll(t, s, other, "p2", []string{"x"}, []time.Time{sec(1)})
	if n, err := s.Report(ctx, bridge.DeliveryReport{Provider: "p1", ProviderID: "d", State: bridge.StateDelivered, At: sec(2)}); err != nil || n != 1 {
		t.Fatalf("Report = %d, %v", n, err)
	}

	check := func(since, now time.Time, limit int, want []string) {
		t.Helper()
		got, err := s.Outstanding(ctx, "p1", since, now, limit)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Outstanding(p1, %v, %v, %d) = %v, %v; want %v", since, now, limit, got, err, want)
		}
	}
	t1, t2, t3, t4 := sec(10), sec(20), sec(30), sec(40)
	check(base, t1, 0, nil)
	check(sec(6), t1, 10, nil)
	// Never asked: oldest send first.
	check(base, t1, 2, []string{"a", "b"})
	// c was never asked about; a and b were, at t1.
	check(sec(1), t2, 10, []string{"c", "a", "b"}) // at or after since
	// All asked at t2: after 2.5s, b's latest send (5s) is newer than c (3s).
	check(base.Add(2500*time.Millisecond), t3, 10, []string{"c", "b"})
	// a, asked at t2, before b and c (t3).
	check(base, t4, 1, []string{"a"})
	check(base, t4, 10, []string{"b", "c", "a"})
	// A new send comes first, before every id asked about already.
	late := enqueue(t, s, newMessage(base, base, "+15550000010"))
	sendAll(t, s, late, "p1", []string{"e"}, []time.Time{sec(7)})
	check(base, t4, 1, []string{"e"})

	if got, err := s.Outstanding(ctx, "p2", base, t1, 10); err != nil || !reflect.DeepEqual(got, []string{"x"}) {
		t.Errorf("Outstanding(p2) = %v, %v; want [x]", got, err)
	}
	// Asking changes nothing a log or a report reads.
	if r := get(t, s, m.ID).Recipients[0]; r.State != bridge.StateSent || !r.Updated.Equal(sec(1)) {
		t.Errorf("recipient asked about: %s, updated %v; want sent, %v", r.State, r.Updated, sec(1))
	}
}

// testOutstandingFair is a poller's view of many sends that never get a
// final report: asking for a page each round, it gets every id within
// ceil(n/page) rounds, and a new send in the next round.
func testOutstandingFair(t *testing.T, s Full) {
	ctx := context.Background()
	const n, page = 250, 100
	var numbers, ids []string
	var ats []time.Time
	for i := range n {
		numbers = append(numbers, fmt.Sprintf("+1555%07d", i))
		ids = append(ids, fmt.Sprintf("stuck-%03d", i))
		ats = append(ats, base.Add(time.Duration(i)*time.Millisecond))
	}
	m := enqueue(t, s, newMessage(base, base, numbers...))
	sendAll(t, s, m, "p1", ids, ats)

	round := base.Add(time.Minute)
	asked := map[string]int{}
	poll := func() []string {
		t.Helper()
		round = round.Add(time.Minute)
		got, err := s.Outstanding(ctx, "p1", base, round, page)
		if err != nil || len(got) != page {
			t.Fatalf("Outstanding at %v = %d ids, %v; want %d", round, len(got), err, page)
		}
		for _, id := range got {
			asked[id]++
		}
		return got
	}
	for range (n + page - 1) / page {
		poll()
	}
	if len(asked) != n {
		t.Errorf("%d of %d ids asked about in %d rounds", len(asked), n, (n+page-1)/page)
	}
	for id, k := range asked {
		if k > 2 {
			t.Errorf("%s asked about %d times in 3 rounds", id, k)
		}
	}

	late := enqueue(t, s, newMessage(base, base, "+15559999999"))
	sendAll(t, s, late, "p1", []string{"late"}, []time.Time{round})
	if got := poll(); got[0] != "late" {
		t.Errorf("a new send waits behind %d sends that never got a report: %v...", n, got[:3])
	}
	// And the rounds go on through all of them: none asked twice before
	// every one was asked again.
	clear(asked)
	for range 3 {
		poll()
	}
	for _, id := range ids {
		if asked[id] == 0 {
			t.Errorf("%s not asked about again in 3 rounds", id)
			break
		}
	}
}

func testCursor(t *testing.T, s Full) {
	if v := savedCursor(t, s, "p1/inbox"); v != "" {
		t.Errorf("cursor never saved = %q, want empty", v)
	}
	recordInbound(t, s, newInbound(phone1, our1, base), nil, &bridge.Cursor{Name: "p1/inbox", Value: "17"})
	recordInbound(t, s, newInbound(phone1, our1, base), nil, &bridge.Cursor{Name: "p2/inbox", Value: "2030-03-14T09:26:53Z"})
	recordInbound(t, s, newInbound(phone1, our1, base), nil, &bridge.Cursor{Name: "p1/inbox", Value: "18"})
	if v := savedCursor(t, s, "p1/inbox"); v != "18" {
		t.Errorf("p1 cursor = %q, want 18", v)
	}
	if v := savedCursor(t, s, "p2/inbox"); v != "2030-03-14T09:26:53Z" {
		t.Errorf("p2 cursor = %q", v)
	}
}

func takeLease(t *testing.T, s Full, name, holder string, now time.Time, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.Lease(context.Background(), name, holder, now, ttl)
	if err != nil {
		t.Fatalf("Lease(%s, %s): %v", name, holder, err)
	}
	return ok
}

func testLease(t *testing.T, s Full) {
	sec := func(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }
	for _, step := range []struct {
		name, holder string
		now          time.Time
		want         bool
	}{
		{"poll", "a", sec(0), true},
		{"poll", "b", sec(30), false},  // a holds it until 60s
		{"poll", "a", sec(50), true},   // renewed until 110s
		{"poll", "b", sec(61), false},  // would have been free without the renewal
		{"poll", "b", sec(110), true},  // run out
		{"poll", "a", sec(111), false}, // b's now
		{"other", "a", sec(111), true}, // another job
		{"poll", "b", sec(112), true},
	} {
		if got := takeLease(t, s, step.name, step.holder, step.now, time.Minute); got != step.want {
			t.Fatalf("Lease(%s, %s, %v) = %v, want %v", step.name, step.holder, step.now.Sub(base), got, step.want)
		}
	}
	if _, err := s.Lease(context.Background(), "poll", "", base, time.Minute); err == nil || bridge.IsTemporary(err) {
		t.Errorf("Lease without holder = %v, want a permanent error", err)
	}
}

func testLeaseConcurrent(t *testing.T, s Full) {
	const n = 8
	for round := range 3 {
		// Each round starts when the last one's lease has run out.
		now := base.Add(time.Duration(round) * time.Hour)
		var wg sync.WaitGroup
		got := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				got[i], errs[i] = s.Lease(context.Background(), "poll", fmt.Sprintf("holder-%d", i), now, time.Minute)
			})
		}
		wg.Wait()
		holders := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Lease: %v", errs[i])
			}
			if got[i] {
				holders++
			}
		}
		if holders != 1 {
			t.Fatalf("round %d: %d holders, want 1", round, holders)
		}
	}
}

func newMail(created, next time.Time) *bridge.OutMail {
	return &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailReply, Ref: "ref", From: "+972501234567@sms.example",
		To: "alice@clinic.example", Data: []byte("Subject: hi\r\n\r\nhi\r\n"), Created: created, NextAttempt: next}
}

func queueMail(t *testing.T, s Full, m *bridge.OutMail) *bridge.OutMail {
	t.Helper()
	if err := s.QueueMail(context.Background(), m); err != nil {
		t.Fatalf("QueueMail(%s): %v", m.ID, err)
	}
	return m
}

func claimMail(t *testing.T, s Full, now time.Time, limit int) []bridge.OutMail {
	t.Helper()
	mails, err := s.ClaimMail(context.Background(), now, limit, time.Minute)
	if err != nil {
		t.Fatalf("ClaimMail(%v, %d): %v", now, limit, err)
	}
	return mails
}

func mailIDs(mails []bridge.OutMail) []string {
	ids := make([]string, len(mails))
	for i, m := range mails {
		ids[i] = m.ID
	}
	return ids
}

// assertMail checks the stored mail want.ID is want. Empty and nil data
// are the same.
func assertMail(t *testing.T, s Full, want bridge.OutMail) {
	t.Helper()
	got, err := s.Mail(context.Background(), want.ID)
	if err != nil {
		t.Fatalf("Mail(%s): %v", want.ID, err)
	}
	if len(got.Data) == 0 && len(want.Data) == 0 {
		got.Data, want.Data = nil, nil
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("mail:\n got %+v\nwant %+v", *got, want)
	}
}

func testMailRoundTrip(t *testing.T, s Full) {
	ctx := context.Background()
	// A bounce: the null sender, bytes as built, due at once.
	m := &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: "msg-1", To: "app@example.com",
		Data: []byte("From: <>\r\nSubject: =?UTF-8?B?16nXnNeV150=?=\r\n\r\n\x00\xff\xfe 😀\r\n"), Created: base}
	queueMail(t, s, m)
	want := *m
	want.State, want.NextAttempt, want.Updated = bridge.MailQueued, base, base
	assertMail(t, s, want)

	// Whatever state it comes in, a mail is queued afresh.
	used := newMail(base, base.Add(time.Hour))
	used.State, used.Attempts, used.Error, used.Data = bridge.MailSent, 3, "old", nil
	queueMail(t, s, used)
	want = *used
	want.State, want.Attempts, want.Error, want.Updated = bridge.MailQueued, 0, "", base
	assertMail(t, s, want)

	// Queued again (a retry): the first is kept.
	again := *m
	again.Data, again.To = []byte("other"), "other@example.com"
	queueMail(t, s, &again)
	want = *m
	want.State, want.NextAttempt, want.Updated = bridge.MailQueued, base, base
	assertMail(t, s, want)

	if got, err := s.Mail(ctx, "nosuchmail"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("Mail(unknown) = %+v, %v; want ErrNotFound", got, err)
	}
	for name, bad := range map[string]*bridge.OutMail{
		"no id": {Kind: bridge.MailReply, To: "a@example.com"},
		"no to": {ID: bridge.NewID(), Kind: bridge.MailReply},
	} {
		if err := s.QueueMail(ctx, bad); err == nil || bridge.IsTemporary(err) {
			t.Errorf("QueueMail(%s) = %v, want a permanent error", name, err)
		}
	}
}

func testClaimMail(t *testing.T, s Full) {
	now := base
	m1 := queueMail(t, s, newMail(base.Add(-20*time.Minute), now.Add(-time.Minute)))
	m2 := queueMail(t, s, newMail(base.Add(-time.Hour), now.Add(-3*time.Minute)))
	// m3 and m4 are due at once; m4 is older.
	m3 := queueMail(t, s, newMail(base.Add(-30*time.Minute), now.Add(-2*time.Minute)))
	m4 := queueMail(t, s, newMail(base.Add(-40*time.Minute), now.Add(-2*time.Minute)))
	future := queueMail(t, s, newMail(base, now.Add(time.Millisecond)))

	got := claimMail(t, s, now, 3)
	if ids, want := mailIDs(got), []string{m2.ID, m4.ID, m3.ID}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("first claim = %v, want %v", ids, want)
	}
	for _, m := range got {
		if m.Attempts != 1 || !m.NextAttempt.Equal(now.Add(time.Minute)) || m.State != bridge.MailQueued {
			t.Errorf("claimed %s: attempts %d, next %v, state %s; want 1, %v, queued", m.ID, m.Attempts, m.NextAttempt, m.State, now.Add(time.Minute))
		}
	}
	// The claim is recorded, the rest of the mail as it was.
	want := *m2
	want.State, want.Attempts, want.NextAttempt, want.Updated = bridge.MailQueued, 1, now.Add(time.Minute), now
	assertMail(t, s, want)
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("claimed mail:\n got %+v\nwant %+v", got[0], want)
	}

	if ids := mailIDs(claimMail(t, s, now, 10)); !reflect.DeepEqual(ids, []string{m1.ID}) {
		t.Fatalf("second claim = %v, want [%s] (not the future one, %s)", ids, m1.ID, future.ID)
	}
	if ids := mailIDs(claimMail(t, s, now.Add(time.Minute-time.Millisecond), 10)); len(ids) != 1 || ids[0] != future.ID {
		t.Fatalf("claim during the leases = %v, want only %s", ids, future.ID)
	}
	// The leases run out: due again, on their second attempt.
	again := claimMail(t, s, now.Add(time.Minute), 2)
	if ids := mailIDs(again); !reflect.DeepEqual(ids, []string{m2.ID, m4.ID}) {
		t.Fatalf("claim after the lease = %v, want [%s %s]", ids, m2.ID, m4.ID)
	}
	if again[0].Attempts != 2 {
		t.Errorf("attempts = %d, want 2", again[0].Attempts)
	}
	if got, err := s.ClaimMail(context.Background(), now.Add(time.Hour), 0, time.Minute); err != nil || len(got) != 0 {
		t.Errorf("ClaimMail with limit 0 = %v, %v; want nothing", mailIDs(got), err)
	}
}

func testClaimMailConcurrent(t *testing.T, s Full) {
	const mails, claimers = 60, 6
	want := map[string]bool{}
	for i := range mails {
		want[queueMail(t, s, newMail(base, base.Add(-time.Duration(i)*time.Second))).ID] = true
	}
	queues := make([]bridge.MailQueue, claimers)
	for i := range queues {
		queues[i] = s
	}
	CheckMailClaimedOnce(t, want, ClaimAllMail(t, base, 4, queues...))
}

// ClaimAllMail claims from every queue concurrently, limit at a time, until
// none hands out more, and counts how often each mail id was handed out.
// Stores test claims across instances with it (one queue per instance).
func ClaimAllMail(t *testing.T, now time.Time, limit int, queues ...bridge.MailQueue) map[string]int {
	t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for _, q := range queues {
		wg.Go(func() {
			for {
				ms, err := q.ClaimMail(context.Background(), now, limit, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					got[m.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got
}

// CheckMailClaimedOnce fails t unless got (from ClaimAllMail) holds every
// id of want exactly once and nothing else.
func CheckMailClaimedOnce(t *testing.T, want map[string]bool, got map[string]int) {
	t.Helper()
	for id, n := range got {
		if n != 1 || !want[id] {
			t.Errorf("mail %s handed out %d times (queued: %v)", id, n, want[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d mails handed out, want %d", len(got), len(want))
	}
}

func testCompleteMail(t *testing.T, s Full) {
	ctx := context.Background()
	sent := queueMail(t, s, newMail(base, base))
	failed := queueMail(t, s, newMail(base, base))
	retry := queueMail(t, s, newMail(base, base))
	if n := len(claimMail(t, s, base, 10)); n != 3 {
		t.Fatalf("claimed %d, want 3", n)
	}
	at, next := base.Add(time.Second), base.Add(10*time.Minute)
	for _, c := range []struct {
		m     *bridge.OutMail
		state bridge.MailState
		err   string
		next  time.Time
	}{
		{sent, bridge.MailSent, "", time.Time{}},
		{failed, bridge.MailFailed, "550 5.1.1 no such user", time.Time{}},
		{retry, bridge.MailQueued, "451 4.3.0 try later", next},
	} {
		if err := s.CompleteMail(ctx, c.m.ID, c.state, c.err, c.next, at); err != nil {
			t.Fatalf("CompleteMail(%s, %s): %v", c.m.ID, c.state, err)
		}
		want := *c.m
		want.State, want.Attempts, want.Error, want.NextAttempt, want.Updated = c.state, 1, c.err, c.next, at
		assertMail(t, s, want)
	}
	// Only the retry is claimed again, at its time.
	if ids := mailIDs(claimMail(t, s, next.Add(-time.Millisecond), 10)); len(ids) != 0 {
		t.Errorf("claimed before the retry time: %v", ids)
	}
	if ids := mailIDs(claimMail(t, s, next.Add(time.Hour), 10)); !reflect.DeepEqual(ids, []string{retry.ID}) {
		t.Errorf("claim after the retry time = %v, want [%s]", ids, retry.ID)
	}
	if err := s.CompleteMail(ctx, "nosuchmail", bridge.MailSent, "", time.Time{}, at); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("CompleteMail(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.CompleteMail(ctx, sent.ID, "delivered", "", time.Time{}, at); err == nil || bridge.IsTemporary(err) {
		t.Errorf("CompleteMail(bad state) = %v, want a permanent error", err)
	}
}

func testMailStats(t *testing.T, s Full) {
	ctx := context.Background()
	check := func(queued int, oldest time.Time) {
		t.Helper()
		st, err := s.MailStats(ctx)
		if err != nil || st.Queued != queued || !st.OldestQueued.Equal(oldest) {
			t.Errorf("MailStats = %+v, %v; want %d queued, oldest %v", st, err, queued, oldest)
		}
	}
	check(0, time.Time{})
	older := queueMail(t, s, newMail(base.Add(-time.Hour), base.Add(time.Hour)))
	queueMail(t, s, newMail(base, base))
	check(2, base.Add(-time.Hour))
	// Claimed mail still waits.
	claimMail(t, s, base.Add(time.Hour), 10)
	check(2, base.Add(-time.Hour))
	if err := s.CompleteMail(ctx, older.ID, bridge.MailSent, "", time.Time{}, base); err != nil {
		t.Fatal(err)
	}
	check(1, base)
}

// testPageSameInstant pages through conversations that one dispatcher
// round updated at the same instant: none is skipped or repeated.
func testPageSameInstant(t *testing.T, s Full) {
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 5 {
		phone := fmt.Sprintf("+97250700000%d", i)
		converse(t, s, phone, our1, "clinic", "alice@clinic.example", base, base.Add(time.Minute))
		want[bridge.ConversationID(phone, our1)] = true
	}
	seen := map[string]bool{}
	f := bridge.ConversationFilter{Limit: 2}
	for page := 0; ; page++ {
		list, err := s.ListConversations(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			if seen[c.ID] {
				t.Errorf("page %d repeats %s", page, c.ID)
			}
			seen[c.ID] = true
		}
		if len(list) < f.Limit || page > 5 {
			break
		}
		last := list[len(list)-1]
		f.Before, f.BeforeID = last.Updated, last.ID
	}
	if len(seen) != len(want) {
		t.Errorf("paged through %d of %d conversations updated at one instant", len(seen), len(want))
	}
}

// testRecoverMail: after a crash, mail that was claimed and never
// completed is due at the restart, on its next attempt; mail completed
// for a retry keeps its time, and delivered mail is left alone.
func testRecoverMail(t *testing.T, s Full) {
	ctx := context.Background()
	sent := queueMail(t, s, newMail(base, base))
	retry := queueMail(t, s, newMail(base.Add(time.Millisecond), base))
	inFlight := queueMail(t, s, newMail(base.Add(2*time.Millisecond), base))
	if n := len(claimMail(t, s, base, 10)); n != 3 {
		t.Fatalf("claimed %d, want 3", n)
	}
	retryAt := base.Add(time.Hour)
	if err := s.CompleteMail(ctx, sent.ID, bridge.MailSent, "", time.Time{}, base); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteMail(ctx, retry.ID, bridge.MailQueued, "451 4.3.0 later", retryAt, base); err != nil {
		t.Fatal(err)
	}
	restart := base.Add(time.Second)
	if n, err := s.RecoverMail(ctx, restart); err != nil || n != 1 {
		t.Fatalf("RecoverMail = %d, %v; want 1 (the mail in flight)", n, err)
	}
	due := claimMail(t, s, restart, 10)
	if ids := mailIDs(due); !reflect.DeepEqual(ids, []string{inFlight.ID}) || due[0].Attempts != 2 {
		t.Fatalf("due after RecoverMail = %v, want [%s] on its 2nd attempt", ids, inFlight.ID)
	}
	got, err := s.Mail(ctx, retry.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.NextAttempt.Equal(retryAt) {
		t.Errorf("a scheduled retry moved to %v", got.NextAttempt)
	}
	// The claim just taken is open again: a second restart releases it.
	if n, err := s.RecoverMail(ctx, restart); err != nil || n != 1 {
		t.Errorf("second RecoverMail = %d, %v; want 1", n, err)
	}
}
