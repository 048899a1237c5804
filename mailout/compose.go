package mailout

import (
	"fmt"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Composer builds the bridge's reply and bounce mails (bridge.Composer).
type Composer struct {
	// Domain is the replies' sender domain (<phone>@Domain): one of the
	// bridge's own, so that answering a reply comes back as SMS.
	Domain string
	// Subject is used when the conversation has no subject to answer;
	// {phone} and {to} are replaced.
	Subject string
	// Hostname names this host in bounces (Reporting-MTA).
	Hostname string
	Now      func() time.Time
}

var _ bridge.Composer = (*Composer)(nil)

func (c *Composer) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Reply mails an SMS from a phone. Its Message-ID names the conversation
// (bridge.ReplyMailID), so an answer to it goes out from the number the
// phone wrote to; it threads under the mail of the person it answers.
func (c *Composer) Reply(conv *bridge.Conversation, in *bridge.Inbound, to string) (*bridge.OutMail, error) {
	from := in.From + "@" + c.Domain
	r := Reply{
		From:      from,
		FromName:  in.From,
		To:        to,
		Subject:   c.subject(conv, in, to),
		Text:      in.Text,
		MessageID: bridge.ReplyMailID(in, c.Domain),
		Date:      in.Received,
		Extra: []Field{
			{Key: "X-SMS-From", Value: in.From},
			{Key: "X-SMS-To", Value: in.To},
			{Key: "X-SMS-Conversation", Value: conv.ID},
			{Key: "X-SMS-Provider", Value: in.Provider},
		},
	}
	if in.Note != "" {
		// An opt-out, or an alert command, the reader must know of:
		// said under the SMS, and in a field a mail filter can match.
		r.Text = in.Text + "\n\n[" + in.Note + "]"
		if in.Command != "" {
			r.Extra = append(r.Extra, Field{Key: "X-SMS-Alert-Command", Value: in.Command})
		} else {
			r.Extra = append(r.Extra, Field{Key: "X-SMS-Consent", Value: in.Note})
		}
	}
	th := bridge.ThreadFor(conv, to)
	r.InReplyTo, r.References = th.InReplyTo, th.References
	if in.Writers > 1 {
		// More than one writer holds the number with the phone (see
		// bridge.SenderClaims): whoever gets it must know that it may
		// answer someone else.
		r.Extra = append(r.Extra, Field{Key: "X-SMS-Ambiguous", Value: fmt.Sprintf("%d writers", in.Writers)})
		r.Text = AmbiguityNote(in) + "\n\n" + r.Text
	}
	data, err := BuildReply(r)
	if err != nil {
		return nil, err
	}
	// The envelope sender is the reply's own address: a smarthost's bounce
	// for it comes back to the bridge, which refuses it (no account sends
	// from <>), so nothing loops.
	return &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailReply, Ref: in.ID, From: from, To: to,
		Data: data, State: bridge.MailQueued, Created: c.now()}, nil
}

// AmbiguityNote is the line above the text of a reply that more than one
// writer may be meant for.
func AmbiguityNote(in *bridge.Inbound) string {
	return fmt.Sprintf("[This reply may be meant for someone else: %d people texted %s from %s within the reply window.]",
		in.Writers, in.From, in.To)
}

func (c *Composer) subject(conv *bridge.Conversation, in *bridge.Inbound, to string) string {
	if conv.Subject != "" && to == conv.ReplyTo {
		if len(conv.Subject) >= 3 && strings.EqualFold(conv.Subject[:3], "re:") {
			return conv.Subject
		}
		return "Re: " + conv.Subject
	}
	s := c.Subject
	if s == "" {
		s = "SMS from {phone}"
	}
	return strings.NewReplacer("{phone}", in.From, "{to}", in.To).Replace(s)
}

// Bounce reports failed recipients of m to its envelope sender, from the
// null sender (RFC 3464 §2: a notification is never answered by another).
func (c *Composer) Bounce(m *bridge.Message, failed []bridge.Failure) (*bridge.OutMail, error) {
	b := Bounce{
		From:               "MAILER-DAEMON@" + c.Domain,
		To:                 m.EnvelopeFrom,
		ReportingMTA:       c.Hostname,
		MessageID:          bridge.NewID() + ".dsn@" + c.Domain,
		Date:               c.now(),
		Subject:            bridge.MailSubject(m.Headers),
		OriginalMessageID:  bridge.MessageThread(m).InReplyTo, // the thread rule of bridge/thread.go
		OriginalEnvelopeID: envelopeID(m),
		ArrivalDate:        m.Created,
		OriginalHeaders:    m.Headers,
		Return:             m.Return,
		OriginalText:       m.Text,
	}
	for _, f := range failed {
		b.Recipients = append(b.Recipients, FailedRecipient{Address: c.address(f.To), ORCPT: f.ORCPT, Status: StatusFor(f.Reason),
			Reason: f.Reason, Diagnostic: f.Error, LastAttempt: f.At})
	}
	data, err := BuildBounce(b)
	if err != nil {
		return nil, err
	}
	return &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: m.ID, From: "", To: m.EnvelopeFrom,
		Data: data, State: bridge.MailQueued, Created: c.now()}, nil
}

// address is a recipient as the sender wrote it: a number at our domain,
// or a phonebook under a name of its own there.
func (c *Composer) address(to string) string {
	if strings.HasPrefix(to, "+") {
		return to + "@" + c.Domain
	}
	if pb, ok := bridge.ParsePhonebook(to); ok {
		return "phonebook-" + pb.ID + "@" + c.Domain
	}
	return to
}

// envelopeID is the Original-Envelope-Id of m's notifications: the ENVID
// its sender gave, else (as bounces always had) our message id.
func envelopeID(m *bridge.Message) string {
	if m.EnvelopeID != "" {
		return m.EnvelopeID
	}
	return m.ID
}

// Notice builds the success or delay notification of ns, recipients of m,
// to m's envelope sender, from the null sender as a bounce is.
func (c *Composer) Notice(m *bridge.Message, action bridge.Action, ns []bridge.Notice) (*bridge.OutMail, error) {
	n := Notice{
		Action:             action,
		From:               "MAILER-DAEMON@" + c.Domain,
		To:                 m.EnvelopeFrom,
		ReportingMTA:       c.Hostname,
		MessageID:          bridge.NewID() + ".dsn@" + c.Domain,
		Date:               c.now(),
		Subject:            bridge.MailSubject(m.Headers),
		OriginalMessageID:  bridge.MessageThread(m).InReplyTo, // the thread rule of bridge/thread.go
		OriginalEnvelopeID: envelopeID(m),
		ArrivalDate:        m.Created,
		OriginalHeaders:    m.Headers,
	}
	for _, x := range ns {
		n.Recipients = append(n.Recipients, NoticeRecipient{Address: c.address(x.To), ORCPT: x.ORCPT, Provider: x.Provider,
			ProviderID: x.ProviderID, Detail: x.Detail, At: x.At, WillRetryUntil: x.WillRetryUntil})
	}
	data, err := BuildNotice(n)
	if err != nil {
		return nil, err
	}
	return &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: m.ID, From: "", To: m.EnvelopeFrom,
		Data: data, State: bridge.MailQueued, Created: c.now()}, nil
}
