package bridge

import "strings"

// Thread is where a mail about a conversation goes in its writer's
// mailbox: In-Reply-To and References (msg-ids without brackets, oldest
// first), so that a mail client shows the writer's mail, the phone's
// replies, notifications about the SMS and notes about the phone as one
// thread. The zero Thread starts a thread of its own.
type Thread struct {
	InReplyTo  string
	References []string
}

// ThreadFor is the one rule every mail about conversation c follows
// (replies, delivery notifications, opt-out notes): a mail to the
// conversation's writer threads under the mail they wrote to the phone;
// a mail to anyone else (the catch-all, a writer whose reply the
// conversation no longer routes to them) threads under nothing, since
// they never had that mail. The mail the writer wrote last is the one:
// their answers to our replies carry the thread's References, so it is
// in the thread their first mail began.
func ThreadFor(c *Conversation, to string) Thread {
	if c == nil || c.MailMessageID == "" || c.ReplyTo == "" || !strings.EqualFold(strings.TrimSpace(to), c.ReplyTo) {
		return Thread{}
	}
	id := strings.Trim(strings.TrimSpace(c.MailMessageID), "<>")
	if id == "" {
		return Thread{}
	}
	return Thread{InReplyTo: id, References: []string{id}}
}

// MessageThread is where a mail about one message (a delivery
// notification or a bounce) goes in its envelope sender's mailbox: under
// the mail that submitted it, which its client has.
func MessageThread(m *Message) Thread {
	id := strings.Trim(strings.TrimSpace(m.MailMessageID), "<>")
	if id == "" {
		return Thread{}
	}
	return Thread{InReplyTo: id, References: []string{id}}
}
