// Package bridge is the domain of smsbridge: messages and their recipients,
// number parsing, routing, account and sender-ID policy, the durable queue
// and its dispatcher. It depends on no transport; the SMTP and HTTP front
// ends, the providers and the stores depend on it.
package bridge

import (
	"strings"
	"time"
)

// State is where one recipient of a message stands.
type State string

const (
	StateQueued      State = "queued"      // waiting for its (next) attempt
	StateSent        State = "sent"        // accepted by the provider
	StateDelivered   State = "delivered"   // delivery report: on the phone
	StateUndelivered State = "undelivered" // delivery report: never arrived
	StateFailed      State = "failed"      // permanent failure or expired
	StateCancelled   State = "cancelled"   // cancelled before it was sent
)

// Final reports whether no further send attempt will be made.
func (s State) Final() bool { return s != StateQueued }

// Channel names the front end a message came in through.
type Channel string

const (
	ChannelSMTP Channel = "smtp"
	ChannelHTTP Channel = "http"
)

// Message is one submission: one text (or template) to one or more recipients.
type Message struct {
	ID      string
	Channel Channel
	Account string // the configured account that sent it
	// EnvelopeFrom is the SMTP MAIL FROM (empty for the null sender and for
	// HTTP submissions); permanent failures are reported to it.
	EnvelopeFrom string
	// MailMessageID is the Message-ID header of the mail, kept to thread replies.
	MailMessageID string
	// ReplyTo is the address the phone's replies are mailed to: the mail's
	// Reply-To or From (not the envelope sender, which may be a bounce
	// address), or what an HTTP client named. "" means replies are not
	// routed to anyone for this message.
	ReplyTo string
	// Headers is the original mail header block, attached to bounces.
	Headers string
	// EnvelopeID and Return are the RFC 3461 ENVID and RET given at MAIL
	// FROM: echoed in, and deciding the attachment of, the delivery
	// notifications of this message.
	EnvelopeID string
	Return     DSNReturn
	// Subject is the mail's decoded Subject, filed with the conversation
	// (replies are "Re: " it).
	Subject string
	// IdempotencyKey, if set, is unique per account: enqueueing a second
	// message with the same key fails with ErrDuplicateKey.
	IdempotencyKey string
	// RequestDigest identifies the request that came with IdempotencyKey
	// (a front end's digest of it), stored with the key: the same key with
	// another request is a client error, not a retry. "" for keys stored
	// before digests were, which match any request.
	RequestDigest string

	Sender string // SMS sender ID or number; "" means the provider default
	Text   string // the SMS text as submitted; with a template, an explicit override
	// SMSText is the text sent when it differs from Text: smart encoding
	// replaced its look-alikes, or the length policy cut it. Text stays
	// as submitted, for the conversation log. "" sends Text.
	SMSText string
	// Encoding and Parts are how the text sent travels: its alphabet and
	// its SMS parts per recipient. "" and 0 for a template without text
	// (the provider fills it in) and for messages stored before they were
	// recorded.
	Encoding Encoding
	Parts    int
	Template string            // provider template / pattern code, or ""
	Params   map[string]string // template parameters
	SendAt   time.Time         // zero: as soon as possible
	Created  time.Time

	Recipients []Recipient

	// Replayed is set by Submit, never stored, when the message is one
	// an earlier submission with the same IdempotencyKey stored: nothing
	// new was accepted (metrics must not count it again).
	Replayed bool

	// consentAt is when the oldest consent read that let its recipients
	// through was made (see consentFresh); never stored.
	consentAt time.Time
}

// Recipient is one destination of a message and the state of its delivery.
type Recipient struct {
	ID        int64
	MessageID string
	// To is an E.164 number ("+972501234567") or a phonebook target
	// (see Phonebook).
	To string
	// Providers is the route for this recipient: the first is tried first,
	// the rest are fallbacks. Provider is the one currently in use.
	Providers []string
	Provider  string

	State    State
	Attempts int // claims, at every provider
	// ProviderAttempts counts the claims at Provider since the recipient
	// moved to it: failover to the next provider of the route is decided
	// on it, not on Attempts.
	ProviderAttempts int
	NextAttempt      time.Time
	ProviderID       string // the provider's id for the sent SMS
	// Cost is what the provider reported the SMS cost, a decimal in its
	// account's currency ("0.01"); "" if it reported nothing.
	Cost    string
	Error   string // last error, kept for the log and for bounces
	Updated time.Time

	// Notify is which delivery notifications were asked for (RFC 3461
	// NOTIFY, or the account's default); ORCPT the original recipient
	// given at RCPT ("rfc822;alice@example.com"), echoed in them.
	// DelayNotified is set once its NOTIFY=DELAY notification is queued:
	// there is one per recipient.
	Notify        Notify
	ORCPT         string
	DelayNotified bool
	// Notified lists the notifications mailed about the recipient
	// (Action words, comma-separated, oldest first; "failed" for a
	// bounce), for the conversation log.
	Notified string

	// consent is the consent read that let this recipient through at
	// RCPT (ResolveTo), if any, so Submit need not read it again.
	consent consentRead
}

// SendText is the text the SMS carries (SMSText, else Text).
func (m *Message) SendText() string {
	if m.SMSText != "" {
		return m.SMSText
	}
	return m.Text
}

// Phonebook is a provider-side list of numbers used as a single recipient.
// As a Recipient.To it is written "phonebook:<id>" for the whole book or
// "phonebook:<id>:<number id>,<number id>" for some of its entries.
type Phonebook struct {
	ID        string
	NumberIDs []string
}

// String is the Recipient.To form of p.
func (p Phonebook) String() string {
	if len(p.NumberIDs) == 0 {
		return "phonebook:" + p.ID
	}
	return "phonebook:" + p.ID + ":" + strings.Join(p.NumberIDs, ",")
}

// ParsePhonebook reads a Recipient.To written by Phonebook.String.
func ParsePhonebook(to string) (Phonebook, bool) {
	rest, ok := strings.CutPrefix(to, "phonebook:")
	if !ok || rest == "" {
		return Phonebook{}, false
	}
	id, ids, detail := strings.Cut(rest, ":")
	if id == "" {
		return Phonebook{}, false
	}
	p := Phonebook{ID: id}
	if detail {
		for _, n := range strings.Split(ids, ",") {
			if n != "" {
				p.NumberIDs = append(p.NumberIDs, n)
			}
		}
		if len(p.NumberIDs) == 0 {
			return Phonebook{}, false
		}
	}
	return p, true
}
