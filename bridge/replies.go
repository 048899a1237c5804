package bridge

import (
	"context"
	"errors"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// Composer builds the mails the bridge sends people. It lives outside the
// domain (package mailout) so that MIME stays out of it.
type Composer interface {
	// Reply mails in, received in conversation c, to the address to.
	Reply(c *Conversation, in *Inbound, to string) (*OutMail, error)
	// Bounce reports to m's envelope sender that its recipients in
	// failed will never receive it.
	Bounce(m *Message, failed []Failure) (*OutMail, error)
}

// Failure is one recipient of a message that failed for good.
type Failure struct {
	To       string // E.164 or phonebook target
	ORCPT    string // as Recipient.ORCPT
	Notify   Notify // as Recipient.Notify: a bounce goes only for NOTIFY=FAILURE
	Provider string
	Reason   Reason
	Error    string
	At       time.Time
}

// OurKey is how a sender ID or a phone number is compared: numbers in
// E.164 (providers write them international with or without "+", or
// nationally with a leading 0), sender IDs as written. Outbound and
// inbound meet on this key. Digits are not read as a national number
// without that 0: libphonenumber would happily make +972989121234567 of
// an Iranian 989121234567.
func (b *Bridge) OurKey(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	digits := strings.TrimPrefix(s, "+")
	if strings.Trim(digits, "0123456789 -") != "" || len(digits) < 6 {
		return s // an alphanumeric sender ID or a short code
	}
	if !strings.HasPrefix(s, "+") && !strings.HasPrefix(s, "0") {
		s = "+" + s // international digits without the plus
	}
	if n, err := ParseNumber(s, b.opt.Region); err == nil {
		return n
	}
	return s
}

// Touch is the conversation an outcome files its recipient under: called
// by the dispatcher for every outcome it records (DispatchOptions.Touch).
// Phonebook targets belong to no conversation.
func (b *Bridge) Touch(m *Message, r Recipient, o Outcome) *ConversationTouch {
	if !strings.HasPrefix(r.To, "+") || o.State == StateQueued {
		return nil
	}
	our, ok := b.pol().ourKeys[m.Sender]
	if !ok { // a sender ID since removed from the configuration
		our = b.OurKey(m.Sender)
	}
	t := &ConversationTouch{ID: ConversationID(r.To, our), Phone: r.To, Our: our, Provider: o.Provider,
		Account: m.Account, At: m.Created}
	if o.State == StateSent {
		// Only an SMS that went out makes its writer the one replies go to.
		t.ReplyTo = m.ReplyTo
		t.MailMessageID = m.MailMessageID
		t.Subject = m.Subject
		if t.Subject == "" {
			// Stored before messages kept their subject (or the mail
			// had none).
			t.Subject = MailSubject(m.Headers)
		}
	}
	return t
}

// MailSubject reads the decoded Subject from a mail's header block.
func MailSubject(headers string) string {
	if headers == "" {
		return ""
	}
	msg, err := mail.ReadMessage(strings.NewReader(strings.TrimRight(headers, "\r\n") + "\r\n\r\n"))
	if err != nil {
		return ""
	}
	s := msg.Header.Get("Subject")
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		s = d
	}
	return strings.Join(strings.Fields(s), " ")
}

// Bounce builds the delivery-status notification for recipients of m that
// failed in one dispatcher round (DispatchOptions.Bounce). It returns nil
// when nobody is to be told: mail with the null sender (RFC 3464 §2: never
// answer a bounce with a bounce), HTTP submissions (the client polls), or
// no smarthost; and when the envelope sender is not an address of the
// account that sent (see bounceAllowed).
func (b *Bridge) Bounce(m *Message, failed []Failure) *OutMail {
	// NOTIFY=NEVER, or one that names SUCCESS or DELAY without FAILURE:
	// that recipient's failure is not reported.
	asked := failed[:0:0]
	for _, f := range failed {
		if f.Notify.Wants(NotifyFailure) {
			asked = append(asked, f)
		}
	}
	failed = asked
	if b.opt.Composer == nil || m.Channel != ChannelSMTP || m.EnvelopeFrom == "" || len(failed) == 0 {
		return nil
	}
	if !b.bounceAllowed(m) {
		b.opt.Log.Warn("no bounce: the envelope sender is not an address of the account that sent",
			"message", m.ID, "account", m.Account, "failed", len(failed))
		return nil
	}
	mail, err := b.opt.Composer.Bounce(m, failed)
	if err != nil {
		b.opt.Log.Error("building a bounce", "message", m.ID, "err", err)
		return nil
	}
	return mail
}

// bounceAllowed reports whether m's envelope sender is one of its
// account's addresses. The SMTP side lets a session use only its
// account's addresses, so this holds for every message it accepts; it is
// checked again here, where the bounce is queued, so that no path (an
// older message, a reloaded configuration, a front end that forgot) makes
// the bridge mail a stranger. The account is the one configured now: one
// since removed gets no bounce either.
func (b *Bridge) bounceAllowed(m *Message) bool {
	acct := b.pol().accounts.names[m.Account]
	return acct != nil && acct.Owns(m.EnvelopeFrom)
}

// Receive records an SMS from a phone and mails it to whoever the phone is
// answering (see route). It reports dup when the provider had delivered
// the same message before; nothing is recorded or mailed twice.
func (b *Bridge) Receive(ctx context.Context, in *Inbound) (dup bool, err error) {
	return b.receive(ctx, in, nil, false)
}

// receive records in, saving cursor with it; logOnly keeps it from being
// mailed.
func (b *Bridge) receive(ctx context.Context, in *Inbound, cursor *Cursor, logOnly bool) (dup bool, err error) {
	from := strings.Join(strings.Fields(in.From), " ")
	if from == "" {
		return false, Permanent(ReasonInvalid, "from", "inbound SMS without a sender")
	}
	// Providers write the phone international without "+" (or with it);
	// an alphanumeric sender (an operator's notice) is kept as given: it
	// is logged and goes to the catch-all.
	from = b.OurKey(from)
	now := b.opt.Now()
	in.From = from
	in.To = b.OurKey(in.To)
	in.Text = strings.ToValidUTF8(in.Text, "\uFFFD")
	if in.ID == "" {
		in.ID = NewID()
	}
	if in.Received.IsZero() || in.Received.After(now.Add(time.Hour)) {
		in.Received = now // none given, or a provider clock gone astray
	}
	in.Created = now
	if in.DedupeKey == "" {
		return false, Permanent(ReasonInvalid, "id", "inbound SMS without a dedupe key")
	}

	c, err := b.inboundConversation(ctx, in)
	if err != nil {
		return false, err
	}
	in.Conversation = c.ID
	if !logOnly {
		in.Writers = b.replyWriters(ctx, c, in.Received)
		in.MailTo = b.route(c, in.Received, in.Writers)
	}
	// A keyword acts before the SMS is recorded: were the record to
	// fail, the provider's retry acts again, which changes nothing twice.
	k, err := b.consent(ctx, in, c, !logOnly)
	if err != nil {
		return false, err
	}
	in.Note = consentNote(k, in.From, in.To)
	if k == KeywordNone && !logOnly {
		acct, err := b.alertCommand(ctx, in, c)
		if err != nil {
			return false, err
		}
		if to := accountAddress(acct); to != "" {
			// The account's own address hears of what was done to
			// its alerts, whoever last mailed the phone.
			in.MailTo = to
		}
	}

	var out *OutMail
	if in.MailTo != "" && b.opt.Composer != nil {
		if out, err = b.opt.Composer.Reply(c, in, in.MailTo); err != nil {
			// An address the mail cannot be built for (it came from a
			// mail's Reply-To) must not make the provider retry forever:
			// keep the SMS in the log, unmailed.
			b.opt.Log.ErrorContext(ctx, "building the reply mail; the SMS is only logged", "to", in.MailTo, "err", err)
			out = nil
		}
	}
	if out == nil {
		in.MailTo = ""
	}
	err = b.store.RecordInbound(ctx, in, out, cursor)
	if errors.Is(err, ErrDuplicateKey) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	b.opt.Log.InfoContext(ctx, "inbound SMS", "id", in.ID, "provider", in.Provider, "conversation", in.Conversation,
		"mailed", in.MailTo != "")
	if b.opt.Received != nil {
		b.opt.Received(in.Provider)
	}
	if out != nil && b.opt.MailQueued != nil {
		b.opt.MailQueued()
	}
	return false, nil
}

// inboundConversation is the conversation in belongs to: one of in's
// provider's (see Conversations.LatestConversation), or a new one. A new
// one is the pair's own (ConversationID) unless that belongs to another
// provider; then it is one apart (ConversationIDVia), routed to nobody:
// a provider reports only on what went out through it, so what it says
// of another's conversation goes to the catch-all at most.
func (b *Bridge) inboundConversation(ctx context.Context, in *Inbound) (*Conversation, error) {
	if owners := b.pol().numberOwners[in.To]; in.To != "" && len(owners) > 0 && !slices.Contains(owners, in.Provider) {
		// A number of another provider's: not even a phone's first SMS
		// to it may open its conversation (whoever writes from it later
		// would find this one in their thread).
		b.opt.Log.WarnContext(ctx, "inbound SMS to another provider's number; filed apart, not routed",
			"provider", in.Provider, "number_of", strings.Join(owners, ","))
		return &Conversation{ID: ConversationIDVia(in.From, in.To, in.Provider), Phone: in.From, Our: in.To,
			Provider: in.Provider}, nil
	}
	c, err := b.store.LatestConversation(ctx, in.From, in.To, in.Provider)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	c = &Conversation{ID: ConversationID(in.From, in.To), Phone: in.From, Our: in.To, Provider: in.Provider}
	other, err := b.store.Conversation(ctx, c.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		return c, nil // a phone writing first
	case err != nil:
		return nil, err
	case other.Provider != "" && other.Provider != in.Provider:
		b.opt.Log.WarnContext(ctx, "inbound SMS names a conversation of another provider; filed apart, not routed",
			"provider", in.Provider, "conversation_provider", other.Provider, "conversation", other.ID)
		c.ID = ConversationIDVia(in.From, in.To, in.Provider)
	}
	return c, nil
}

// route says who gets a reply received at: the person who last wrote to
// the phone if that was within the reply window and their account (as
// configured now) still lets replies go there, else the catch-all. The
// second condition keeps an address stored before reply_to was checked,
// or dropped from the configuration since, from receiving answers.
//
// A reply that writers (more than one) may be meant for (see
// SenderClaims) goes to the catch-all instead when the policy says so
// (Options.Ambiguous).
func (b *Bridge) route(c *Conversation, at time.Time, writers int) string {
	if writers > 1 && b.opt.Ambiguous == AmbiguousCatchAll {
		return b.opt.CatchAll
	}
	if c.ReplyTo != "" && at.Sub(c.LastOut) <= b.opt.ReplyWindow {
		if acct := b.pol().accounts.names[c.Account]; acct != nil && acct.MayReplyTo(c.ReplyTo) {
			return c.ReplyTo
		}
		b.opt.Log.Warn("reply not mailed to the conversation's writer: no longer an address of its account",
			"conversation", c.ID, "account", c.Account)
	}
	return b.opt.CatchAll
}

// Report applies a provider's delivery report to the log.
func (b *Bridge) Report(ctx context.Context, r DeliveryReport) (int, error) {
	if r.ProviderID == "" {
		return 0, Permanent(ReasonInvalid, "id", "delivery report without the provider's message id")
	}
	switch r.State {
	case StateDelivered, StateUndelivered:
	case StateSent:
		return 0, nil // no news
	default:
		return 0, Permanent(ReasonInvalid, "status", "delivery state %q is neither delivered nor undelivered", r.State)
	}
	if r.To != "" {
		// As in Receive: providers write numbers international, often
		// without the "+".
		to := b.OurKey(r.To)
		if !strings.HasPrefix(to, "+") {
			return 0, Permanent(ReasonBadNumber, "to", "%q is not a phone number", r.To)
		}
		r.To = to
	}
	if r.At.IsZero() {
		r.At = b.opt.Now()
	}
	// Before the report is applied: a crash between the two leaves the
	// recipient sent, the provider's retry of the report applies it, and
	// the notification's id keeps it from going out twice.
	delivered, err := b.deliveredNotice(ctx, r)
	if err != nil {
		return 0, err
	}
	r.Delivered = delivered
	n, err := b.store.Report(ctx, r)
	if err == nil && n > 0 && b.opt.Reported != nil {
		b.opt.Reported(r.Provider, r.State)
	}
	return n, err
}

// ReplySender is the sender ID an answer to one of our reply mails goes
// out from: the number the phone wrote to, found through the conversation
// id in the Message-ID our reply mail had (mailRefs are the answer's
// In-Reply-To and References). It returns "" when the mail answers none of
// ours, when the conversation is another account's, or when acct may not
// use that sender.
func (b *Bridge) ReplySender(ctx context.Context, acct *Account, phone string, mailRefs []string) string {
	for i := len(mailRefs) - 1; i >= 0; i-- { // the nearest ancestor first
		id, ok := ConversationOfMailID(mailRefs[i])
		if !ok {
			continue
		}
		c, err := b.store.Conversation(ctx, id)
		if err != nil || c.Phone != phone {
			continue
		}
		if c.Account != "" && c.Account != acct.Name {
			// Another account's conversation: its replies were mailed to
			// that account, and only it answers from its number.
			return ""
		}
		pol := b.pol()
		for _, s := range acct.SenderIDs {
			if pol.ourKeys[s] == c.Our {
				return s
			}
		}
		return ""
	}
	return ""
}

// ReplyMailID is the Message-ID (without brackets) of the mail that
// carries inbound SMS in: it names the conversation, so an answer to it
// is sent from the number the phone wrote to.
func ReplyMailID(in *Inbound, domain string) string {
	return in.ID + "." + in.Conversation + "@" + domain
}

// ConversationOfMailID reads the conversation id out of a ReplyMailID.
func ConversationOfMailID(id string) (string, bool) {
	id = strings.Trim(strings.TrimSpace(id), "<>")
	local, _, ok := strings.Cut(id, "@")
	if !ok {
		return "", false
	}
	_, conv, ok := strings.Cut(local, ".")
	if !ok || len(conv) != 21 || conv[0] != 'c' {
		return "", false
	}
	return conv, true
}

// Conversations lists the conversations acct may read.
func (b *Bridge) Conversations(ctx context.Context, acct *Account, f ConversationFilter) ([]Conversation, error) {
	if f.Phone != "" {
		var err error
		if f.Phone, err = ParseNumber(f.Phone, b.opt.Region); err != nil {
			return nil, Permanent(ReasonBadNumber, "phone", "%q is not a phone number", f.Phone)
		}
	}
	if f.State != "" && !slices.Contains(ConversationStates, f.State) {
		return nil, Permanent(ReasonInvalid, "state", "%q is not a conversation state (%s)", clipReason(string(f.State)), stateList(ConversationStates))
	}
	if !acct.Admin {
		if f.Account != "" && f.Account != acct.Name {
			return nil, nil // another account's conversations do not exist for you
		}
		f.Account = acct.Name
	}
	if f.State == "" {
		return b.store.ListConversations(ctx, f)
	}
	// The state is each conversation's newest SMS, looked up one by one
	// until a page is full: a state few have reads every conversation
	// the other filters leave (some 10µs each), so it gets a deadline.
	sctx, cancel := context.WithTimeout(ctx, StateListTimeout)
	defer cancel()
	list, err := b.store.ListConversations(sctx, f)
	if err != nil && ctx.Err() == nil && sctx.Err() != nil {
		return nil, Permanent(ReasonInvalid, "state", "listing by state took longer than %v: narrow the search by phone or provider", StateListTimeout)
	}
	return list, err
}

// StateListTimeout bounds a conversation listing by state (see
// Bridge.Conversations).
const StateListTimeout = 5 * time.Second

func stateList(states []State) string {
	s := make([]string, len(states))
	for i, x := range states {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

// ConversationLog returns one conversation and its log, if acct may read it.
func (b *Bridge) ConversationLog(ctx context.Context, acct *Account, id string, limit int) (*Conversation, []LogEntry, error) {
	c, err := b.store.Conversation(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if acct.Admin {
		log, err := b.store.ConversationLog(ctx, id, limit)
		return c, log, err
	}
	if c.Account != acct.Name {
		return nil, nil, ErrNotFound // it does not exist for you (no 403: that would say it does)
	}
	log, err := b.store.ConversationLog(ctx, id, limit)
	if err != nil {
		return nil, nil, err
	}
	// Accounts sharing a one-way sender ID share its conversation with a
	// phone; each sees only the SMS it sent (and the phone's, which are
	// mailed to the account that wrote last).
	own := log[:0]
	for _, e := range log {
		if e.Direction == DirIn || e.Account == acct.Name {
			own = append(own, e)
		}
	}
	return c, own, nil
}
