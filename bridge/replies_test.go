package bridge_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

// composer records what the bridge asks to mail, and builds a stand-in
// message (the real one is mailout's; here only the routing is tested).
type composer struct {
	fail    bool // Reply fails, as for an address no mail can be built for
	mu      sync.Mutex
	replies []string // "to: text"
	writers []int    // each reply's Inbound.Writers
	bounces [][]bridge.Failure
}

func (c *composer) Reply(conv *bridge.Conversation, in *bridge.Inbound, to string) (*bridge.OutMail, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return nil, bridge.Permanent(bridge.ReasonInvalid, "to", "%q is not an address", to)
	}
	c.replies = append(c.replies, to+": "+in.Text)
	c.writers = append(c.writers, in.Writers)
	return &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailReply, Ref: in.ID, From: "bridge@sms.example.com", To: to,
		Data: []byte("Subject: reply\r\n\r\n" + in.Text + "\r\n")}, nil
}

func (c *composer) Bounce(m *bridge.Message, failed []bridge.Failure) (*bridge.OutMail, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bounces = append(c.bounces, failed)
	return &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: m.ID, To: m.EnvelopeFrom,
		Data: []byte("Subject: bounce\r\n\r\nfailed\r\n")}, nil
}

type twoWay struct {
	store *sqlite.Store
	b     *bridge.Bridge
	comp  *composer
	now   time.Time
	prov  *scripted
	disp  *bridge.Dispatcher
	// recorded is signalled when the dispatcher has recorded a call's
	// outcomes.
	recorded chan struct{}
}

func newTwoWay(t *testing.T, catchAll string) *twoWay {
	t.Helper()
	st, log := openStore(t)
	var err error
	w := &twoWay{store: st, comp: &composer{}, now: time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC), prov: &scripted{name: "p", batch: 10},
		recorded: make(chan struct{}, 1)}
	accounts := []bridge.Account{
		{Name: "ops", Emails: []string{"*@example.com"}, SenderIDs: []string{"972500000001", "Ops"}},
		{Name: "other", Emails: []string{"*@other.example"}, SenderIDs: []string{"Other"}},
	}
	routes := []bridge.Route{{Prefix: "+", Providers: []string{"p"}}}
	w.b, err = bridge.New(st, []bridge.Provider{w.prov}, routes, accounts, bridge.Options{Region: "IL", Log: log,
		ReplyWindow: 24 * time.Hour, CatchAll: catchAll, Composer: w.comp, Now: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	w.disp = bridge.NewDispatcher(st, []bridge.Provider{w.prov}, bridge.DispatchOptions{Log: log,
		RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond,
		Now: func() time.Time { return w.now }, Touch: w.b.Touch, Bounce: w.b.Bounce,
		Observe: func(string, time.Duration, []bridge.Outcome) {
			select {
			case w.recorded <- struct{}{}:
			default:
			}
		}})
	return w
}

// mail submits a mail from person to phone, as smtpin would, and runs the
// dispatcher until it is sent.
func (w *twoWay) mail(t *testing.T, person, msgID, phone, text string, refs ...string) *bridge.Message {
	t.Helper()
	acct, err := w.b.Account(person)
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.b.Resolve(acct, phone)
	if err != nil {
		t.Fatal(err)
	}
	m, err := w.b.Submit(t.Context(), &bridge.Submission{Account: acct, Channel: bridge.ChannelSMTP, EnvelopeFrom: "bounces+" + person,
		ReplyTo: person, MailMessageID: msgID, MailRefs: refs, Headers: "Subject: =?utf-8?q?Caf=C3=A9?= plans\r\nFrom: " + person + "\r\n",
		Text: text, Recipients: []bridge.Recipient{r}})
	if err != nil {
		t.Fatal(err)
	}
	w.drain(t)
	return m
}

// drain runs the dispatcher until nothing is due.
func (w *twoWay) drain(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.disp.Run(ctx, time.Second); close(done) }()
	defer func() {
		cancel()
		<-done
	}()
	// Checked again after each call's outcomes are recorded: the call
	// that empties the queue is the last to signal.
	for {
		st, err := w.store.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Queued == 0 {
			return
		}
		select {
		case <-w.recorded:
		case <-time.After(10 * time.Second): // a hang, not a speed limit
			t.Fatalf("%d recipients still queued", st.Queued)
		}
	}
}

func (w *twoWay) receive(t *testing.T, from, to, text, key string) *bridge.Inbound {
	t.Helper()
	in := &bridge.Inbound{Provider: "p", DedupeKey: key, From: from, To: to, Text: text, Raw: "raw " + key}
	if _, err := w.b.Receive(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestReplyGoesToTheLastWriterWithinTheWindow(t *testing.T) {
	w := newTwoWay(t, "desk@example.com")
	w.mail(t, "alice@example.com", "a1@example.com", "050-123-4567", "Meeting at 10?")
	w.now = w.now.Add(time.Hour)
	w.mail(t, "bob@example.com", "b1@example.com", "+972501234567", "Actually at 11")

	// The provider writes our number without "+", the phone's nationally.
	w.now = w.now.Add(time.Hour)
	in := w.receive(t, "0501234567", "972500000001", "OK, 11", "m1")
	if in.MailTo != "bob@example.com" {
		t.Errorf("reply mailed to %q, want the last writer bob@example.com", in.MailTo)
	}
	conv, err := w.store.Conversation(t.Context(), in.Conversation)
	if err != nil {
		t.Fatal(err)
	}
	if conv.Phone != "+972501234567" || conv.Our != "+972500000001" || conv.MailMessageID != "b1@example.com" || conv.Subject != "Café plans" {
		t.Errorf("conversation %+v", conv)
	}

	// The same callback again (a provider retry) is recorded once.
	dup, err := w.b.Receive(t.Context(), &bridge.Inbound{Provider: "p", DedupeKey: "m1", From: "0501234567", To: "972500000001", Text: "OK, 11"})
	if err != nil || !dup {
		t.Fatalf("second delivery: dup=%v err=%v, want a duplicate", dup, err)
	}

	// Past the window the catch-all gets it.
	w.now = w.now.Add(25 * time.Hour)
	in2 := w.receive(t, "+972501234567", "+972500000001", "Anyone there?", "m2")
	if in2.MailTo != "desk@example.com" {
		t.Errorf("late reply mailed to %q, want the catch-all", in2.MailTo)
	}
	// Queued for the smarthost: one mail per recorded reply, none for the
	// duplicate.
	mails, err := w.store.ClaimMail(t.Context(), w.now, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mails {
		got = append(got, m.To+": "+strings.TrimSpace(strings.SplitN(string(m.Data), "\r\n\r\n", 2)[1]))
	}
	if len(got) != 2 || got[0] != "bob@example.com: OK, 11" || got[1] != "desk@example.com: Anyone there?" {
		t.Errorf("queued mail %q", got)
	}

	log, err := w.store.ConversationLog(t.Context(), in.Conversation, 0)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range log {
		dirs = append(dirs, string(e.Direction)+":"+e.Text)
	}
	want := "out:Meeting at 10?|out:Actually at 11|in:OK, 11|in:Anyone there?"
	if strings.Join(dirs, "|") != want {
		t.Errorf("log = %q, want %q", strings.Join(dirs, "|"), want)
	}
}

func TestReplyWithoutCatchAllIsOnlyLogged(t *testing.T) {
	w := newTwoWay(t, "")
	in := w.receive(t, "+972507654321", "", "Who is this?", "x1")
	if in.MailTo != "" || len(w.comp.replies) != 0 {
		t.Errorf("a reply nobody waits for was mailed to %q", in.MailTo)
	}
	if in.Conversation == "" {
		t.Fatal("not filed under a conversation")
	}
	log, err := w.store.ConversationLog(t.Context(), in.Conversation, 0)
	if err != nil || len(log) != 1 || log[0].Text != "Who is this?" {
		t.Errorf("log = %+v, %v", log, err)
	}
}

func TestAnswerGoesOutFromTheNumberThePhoneWroteTo(t *testing.T) {
	w := newTwoWay(t, "")
	w.mail(t, "alice@example.com", "a1@example.com", "+972501234567", "Hi")
	in := w.receive(t, "+972501234567", "+972500000001", "Hello back", "r1")
	mailID := bridge.ReplyMailID(in, "sms.example.com")

	// alice's default sender would be the first one as well; make the
	// conversation's number differ from the default by answering as an
	// account whose default is another ID.
	m := w.mail(t, "alice@example.com", "a2@example.com", "+972501234567", "Great", "a1@example.com", mailID)
	if m.Sender != "972500000001" {
		t.Errorf("answer sent from %q, want the conversation's number as the account writes it", m.Sender)
	}

	// Another account may not borrow it: it gets its own default.
	m2 := w.mail(t, "carol@other.example", "c1@other.example", "+972501234567", "Me too", mailID)
	if m2.Sender != "Other" {
		t.Errorf("other account sent from %q, want its default", m2.Sender)
	}
	if id, ok := bridge.ConversationOfMailID("<" + mailID + ">"); !ok || id != in.Conversation {
		t.Errorf("ConversationOfMailID = %q %v, want %q", id, ok, in.Conversation)
	}
}

func TestPermanentFailureQueuesOneBounce(t *testing.T) {
	w := newTwoWay(t, "")
	w.prov.errs = []error{bridge.Permanent(bridge.ReasonProviderRejected, "", "number blacklisted")}
	m := w.mail(t, "alice@example.com", "a1@example.com", "+972501234567", "Hi")
	got, err := w.store.Message(t.Context(), m.ID)
	if err != nil || got.Recipients[0].State != bridge.StateFailed {
		t.Fatalf("recipient %+v, %v", got.Recipients, err)
	}
	if len(w.comp.bounces) != 1 || w.comp.bounces[0][0].To != "+972501234567" || w.comp.bounces[0][0].Reason != bridge.ReasonProviderRejected {
		t.Fatalf("bounces %+v", w.comp.bounces)
	}
	mails, err := w.store.ClaimMail(t.Context(), w.now.Add(time.Minute), 10, time.Minute)
	if err != nil || len(mails) != 1 || mails[0].Kind != bridge.MailBounce || mails[0].To != "bounces+alice@example.com" {
		t.Fatalf("queued mail %+v, %v", mails, err)
	}
	// The failed recipient is in the log, but does not make alice the
	// one replies go to: the phone never got her SMS.
	conv, err := w.store.LatestConversation(t.Context(), "+972501234567", "", "p")
	if err != nil {
		t.Fatal(err)
	}
	if conv.ReplyTo != "" {
		t.Errorf("failed SMS routed replies to %q", conv.ReplyTo)
	}
}

func TestNoBounceForNullSenderOrHTTP(t *testing.T) {
	w := newTwoWay(t, "")
	m := &bridge.Message{ID: "x", Channel: bridge.ChannelSMTP}
	if w.b.Bounce(m, []bridge.Failure{{To: "+972501234567"}}) != nil {
		t.Error("a bounce for mail from the null sender")
	}
	m = &bridge.Message{ID: "y", Channel: bridge.ChannelHTTP, EnvelopeFrom: "a@example.com"}
	if w.b.Bounce(m, []bridge.Failure{{To: "+972501234567"}}) != nil {
		t.Error("a bounce for an HTTP submission")
	}
}

func TestReportMovesSentToDelivered(t *testing.T) {
	w := newTwoWay(t, "")
	m := w.mail(t, "alice@example.com", "a1@example.com", "+972501234567", "Hi")
	n, err := w.b.Report(t.Context(), bridge.DeliveryReport{Provider: "p", ProviderID: "p-+972501234567", State: bridge.StateDelivered})
	if err != nil || n != 1 {
		t.Fatalf("Report = %d, %v; want 1 recipient", n, err)
	}
	got, _ := w.store.Message(t.Context(), m.ID)
	if got.Recipients[0].State != bridge.StateDelivered {
		t.Errorf("state %s, want delivered", got.Recipients[0].State)
	}
	// A report naming the number as providers write it: international,
	// without "+" (not a national number of the default region).
	n, err = w.b.Report(t.Context(), bridge.DeliveryReport{Provider: "p", ProviderID: "p-+972501234567", To: "972501234567", State: bridge.StateUndelivered, Detail: "absent subscriber"})
	if err != nil || n != 1 {
		t.Fatalf("Report with To = %d, %v; want 1 recipient", n, err)
	}
	if _, err := w.b.Report(t.Context(), bridge.DeliveryReport{Provider: "p", ProviderID: "", State: bridge.StateDelivered}); bridge.ReasonOf(err) != bridge.ReasonInvalid {
		t.Errorf("report without id: %v", err)
	}
	var e *bridge.Error
	if _, err := w.b.Report(t.Context(), bridge.DeliveryReport{Provider: "p", ProviderID: "x", State: "maybe"}); !errors.As(err, &e) || e.Field != "status" {
		t.Errorf("unknown state: %v", err)
	}
}

func TestOurKey(t *testing.T) {
	w := newTwoWay(t, "")
	for in, want := range map[string]string{
		"972500000001":  "+972500000001",
		"+972500000001": "+972500000001",
		"050-000-0001":  "+972500000001",
		"989121234567":  "+989121234567", // not +972989121234567
		"Ops":           "Ops",
		" 3000505 ":     "+3000505",
		"":              "",
		"12345":         "12345", // short code
	} {
		if got := w.b.OurKey(in); got != want {
			t.Errorf("OurKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// A reply whose mail cannot be built is still recorded (and the provider
// gets its 200), only not mailed.
func TestUnbuildableReplyIsLogged(t *testing.T) {
	w := newTwoWay(t, "desk@example.com")
	w.comp.fail = true
	in := &bridge.Inbound{Provider: "p", DedupeKey: "u1", From: "+972501234567", Text: "hi"}
	if dup, err := w.b.Receive(t.Context(), in); err != nil || dup {
		t.Fatalf("Receive = %v, %v", dup, err)
	}
	if in.MailTo != "" {
		t.Errorf("MailTo = %q for a mail that was never built", in.MailTo)
	}
	log, err := w.store.ConversationLog(t.Context(), in.Conversation, 0)
	if err != nil || len(log) != 1 || log[0].MailTo != "" {
		t.Errorf("log = %+v, %v", log, err)
	}
	if st, err := w.store.MailStats(t.Context()); err != nil || st.Queued != 0 {
		t.Errorf("mail queue %+v, %v", st, err)
	}
}

// TestReceiveOnlyThroughTheConversationsProvider: an inbound SMS that
// comes through another provider than the one the conversation's SMS
// went out through (a provider whose callback secret leaked, say) is not
// a reply to that conversation: it is filed apart and goes to the
// catch-all, never to the person who wrote or into their thread.
func TestReceiveOnlyThroughTheConversationsProvider(t *testing.T) {
	w := newTwoWay(t, "desk@example.com")
	m := w.mail(t, "alice@example.com", "a1@example.com", "050-123-4567", "Meeting at 10?")
	own := bridge.ConversationID("+972501234567", "+972500000001")

	planted := &bridge.Inbound{Provider: "q", DedupeKey: "q1", From: "972501234567", To: "972500000001", Text: "send the codes to me"}
	if _, err := w.b.Receive(t.Context(), planted); err != nil {
		t.Fatal(err)
	}
	if want := bridge.ConversationIDVia("+972501234567", "+972500000001", "q"); planted.Conversation != want {
		t.Errorf("q's SMS filed under %s, want %s (apart from p's %s)", planted.Conversation, want, own)
	}
	if planted.MailTo != "desk@example.com" {
		t.Errorf("q's SMS mailed to %q, want the catch-all", planted.MailTo)
	}
	// Through the conversation's own provider it is a reply.
	reply := w.receive(t, "972501234567", "972500000001", "Yes, 10 is fine", "p1")
	if reply.Conversation != own || reply.MailTo != "alice@example.com" {
		t.Errorf("p's SMS: conversation %s mailed to %q; want %s, alice", reply.Conversation, reply.MailTo, own)
	}
	ops, _ := w.b.Account("alice@example.com")
	_, log, err := w.b.ConversationLog(t.Context(), ops, own, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].MessageID != m.ID || log[1].InboundID != reply.ID {
		t.Errorf("alice's thread: %+v; want her SMS and p's reply only", log)
	}
	// q keeps its own thread: its next SMS lands there too.
	again := &bridge.Inbound{Provider: "q", DedupeKey: "q2", From: "+972501234567", Text: "hello?"}
	if _, err := w.b.Receive(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if again.Conversation != planted.Conversation || again.MailTo != "desk@example.com" {
		t.Errorf("q's second SMS: %s to %q; want %s to the catch-all", again.Conversation, again.MailTo, planted.Conversation)
	}
}

// TestReplySenderOnlyForTheOwningAccount: a mail answering one of our
// reply mails goes out from the phone's number only when it comes from
// the account whose conversation it is, even if another account may use
// the number too (check-config refuses that; a stale or hand-made
// configuration must still not leak).
func TestReplySenderOnlyForTheOwningAccount(t *testing.T) {
	w := newTwoWay(t, "")
	w.mail(t, "alice@example.com", "a1@example.com", "050-123-4567", "Meeting at 10?")
	in := w.receive(t, "972501234567", "972500000001", "Yes", "p1")
	accounts := []bridge.Account{
		{Name: "ops", Emails: []string{"*@example.com"}, SenderIDs: []string{"972500000001", "Ops"}},
		{Name: "other", Emails: []string{"*@other.example"}, SenderIDs: []string{"972500000001"}},
	}
	if err := w.b.Reload([]bridge.Provider{w.prov}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}}, accounts); err != nil {
		t.Fatal(err)
	}
	refs := []string{"<" + bridge.ReplyMailID(in, "sms.example.com") + ">"}
	ops, _ := w.b.Account("alice@example.com")
	other, _ := w.b.Account("x@other.example")
	if got := w.b.ReplySender(t.Context(), ops, "+972501234567", refs); got != "972500000001" {
		t.Errorf("ops answering its own conversation: sender %q", got)
	}
	if got := w.b.ReplySender(t.Context(), other, "+972501234567", refs); got != "" {
		t.Errorf("other answering ops's conversation got sender %q; want none", got)
	}
}

// A bounce goes only to an address of the account that sent: a message
// whose envelope sender is someone else's (or whose account is gone)
// gets none, wherever it came from.
func TestNoBounceToAStranger(t *testing.T) {
	w := newTwoWay(t, "")
	failed := []bridge.Failure{{To: "+972501234567"}}
	for _, m := range []*bridge.Message{
		{ID: "a", Channel: bridge.ChannelSMTP, Account: "ops", EnvelopeFrom: "victim@elsewhere.example"},
		{ID: "b", Channel: bridge.ChannelSMTP, Account: "ops", EnvelopeFrom: "someone@other.example"},
		{ID: "c", Channel: bridge.ChannelSMTP, Account: "removed", EnvelopeFrom: "x@example.com"},
	} {
		if w.b.Bounce(m, failed) != nil {
			t.Errorf("message %s of %s: a bounce to %s", m.ID, m.Account, m.EnvelopeFrom)
		}
	}
	m := &bridge.Message{ID: "d", Channel: bridge.ChannelSMTP, Account: "ops", EnvelopeFrom: "Bounces@Example.com"}
	if w.b.Bounce(m, failed) == nil {
		t.Error("no bounce to the account's own address")
	}
}

// Submit refuses a reply address the account may not name, with the
// field, whatever the front end.
func TestSubmitReplyToOutsideAccount(t *testing.T) {
	w := newTwoWay(t, "")
	acct, err := w.b.Account("a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.b.Resolve(acct, "+972501234567")
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.b.Submit(t.Context(), &bridge.Submission{Account: acct, Channel: bridge.ChannelHTTP, ReplyTo: "x@other.example",
		Text: "hi", Recipients: []bridge.Recipient{r}})
	var e *bridge.Error
	if !errors.As(err, &e) || e.Field != "reply_to" || e.Temporary() {
		t.Fatalf("Submit = %v, want a permanent error naming reply_to", err)
	}
}

// A conversation whose writer is not (or no longer) an address of its
// account gets its replies at the catch-all, not at that address: the
// routing stored before the check existed is not trusted either.
func TestReplyNotRoutedOutsideAccount(t *testing.T) {
	w := newTwoWay(t, "desk@example.com")
	m := w.mail(t, "alice@example.com", "a1@example.com", "+972501234567", "Hi")
	// Reload with alice's domain no longer the account's.
	accounts := []bridge.Account{{Name: "ops", Emails: []string{"ops@example.org"}, SenderIDs: []string{"972500000001", "Ops"}}}
	if err := w.b.Reload([]bridge.Provider{w.prov}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}}, accounts); err != nil {
		t.Fatal(err)
	}
	in := &bridge.Inbound{Provider: "p", DedupeKey: "k1", From: "972501234567", To: m.Sender, Text: "yes"}
	if _, err := w.b.Receive(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if want := bridge.ConversationID("+972501234567", "+972500000001"); in.Conversation != want {
		t.Fatalf("reply filed under %s, want alice's conversation %s", in.Conversation, want)
	}
	if in.MailTo != "desk@example.com" {
		t.Errorf("reply mailed to %q, want the catch-all", in.MailTo)
	}
}
