package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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
//
// Each contract's cases are in a file of their own: this one the filing
// of conversations and their log; complete.go what Complete files with
// an outcome; inbound.go RecordInbound and its dedupe; provider_scope.go
// what one provider may see and change; reports.go delivery reports and
// the ids still outstanding; conversation_filters.go the list's provider
// and state filters; cursors_leases.go pollers' cursors and
// leases; outbox.go the mail queue; sender_claims.go sticky senders' claims. A new case is a function there (or
// in a new file) and a row in the table below.
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
		{"ListConversationsByProviderAndState", testListConversationsByProviderAndState},
		{"RecordInbound", testRecordInbound},
		{"RecordInboundDuplicate", testRecordInboundDuplicate},
		{"RecordInboundConcurrent", testRecordInboundConcurrent},
		{"RecordInboundInvalid", testRecordInboundInvalid},
		{"ConversationLog", testConversationLog},
		{"ConversationLogLimit", testConversationLogLimit},
		{"Report", testReport},
		{"DSN", testDSN},
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
		{"SenderClaims", testSenderClaims},
		{"SenderClaimsConcurrent", testSenderClaimsConcurrent},
		{"AlertRefs", testAlertRefs},
		{"AlertRefsConcurrent", testAlertRefsConcurrent},
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
		wantListed(ctx, t, s, tt.name, tt.f, tt.want)
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

// wantListed checks that ListConversations(f) lists exactly the
// conversations want, in that order.
func wantListed(ctx context.Context, t *testing.T, s Full, name string, f bridge.ConversationFilter, want []string) {
	t.Helper()
	list, err := s.ListConversations(ctx, f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var got []string
	for _, c := range list {
		got = append(got, c.ID)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: ListConversations(%+v) = %v, want %v", name, f, got, want)
	}
}
