package bridge

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"
)

// Conversation is one phone talking with one of our sender IDs or numbers.
// It remembers who mailed that phone last, so that the phone's replies
// reach that person (within the reply window).
type Conversation struct {
	ID    string // ConversationID(Phone, Our), or ConversationIDVia
	Phone string // the other side, E.164
	Our   string // our sender ID or number; "" when the provider did not say
	// Provider is the provider the phone's SMS in this conversation may
	// come through: the one that carried the SMS of the person replies
	// go to, or the one the phone first wrote through. Receive files SMS
	// from any other provider elsewhere.
	Provider string

	// The person who last wrote to Phone from Our and whose SMS went out:
	// where replies go, and the Message-ID their mail had (for threading).
	Account       string
	ReplyTo       string
	MailMessageID string
	Subject       string    // their mail's Subject, for "Re: ..." on replies
	LastOut       time.Time // when that person wrote (their message's creation)

	Created time.Time
	Updated time.Time // the last message either way
}

// ConversationID is the stable id of the conversation between phone and
// our sender: derived, not allocated, so every instance of the daemon
// files the same pair under the same id without asking the store first.
func ConversationID(phone, our string) string {
	sum := sha256.Sum256([]byte(phone + "\x00" + strings.ToLower(our)))
	return "c" + idEncoding.EncodeToString(sum[:])[:20]
}

// ConversationIDVia is the id of the conversation that holds what
// provider reported of phone and our while the conversation of the pair
// (ConversationID) belongs to another provider: a provider's SMS never
// land in another provider's thread, yet are recorded, once each.
func ConversationIDVia(phone, our, provider string) string {
	sum := sha256.Sum256([]byte(phone + "\x00" + strings.ToLower(our) + "\x00" + provider))
	return "c" + idEncoding.EncodeToString(sum[:])[:20]
}

// ConversationTouch files a recipient under its conversation when its
// outcome is recorded (Outcome.Conversation). With ReplyTo set (an SMS that
// reached the provider on behalf of a person), it also makes that person
// the one replies go to, unless someone wrote later (At is compared with
// the conversation's LastOut).
type ConversationTouch struct {
	ID            string
	Phone         string
	Our           string
	Provider      string // the provider of the outcome (Conversation.Provider)
	Account       string
	ReplyTo       string
	MailMessageID string
	Subject       string
	At            time.Time // the message's creation
}

// Inbound is one SMS received from a phone.
type Inbound struct {
	ID       string // ours (NewID)
	Provider string // the configured provider name it came through
	// DedupeKey identifies the message at the provider (its message id,
	// or a digest of the request when it has none): the same key from the
	// same provider is recorded once, however often the provider retries.
	DedupeKey    string
	From         string // the phone, E.164
	To           string // our number or sender ID as the provider gave it; may be ""
	Text         string
	Received     time.Time // when the provider received it (or we did)
	Raw          string    // the request as received, secrets removed
	Conversation string    // the conversation it belongs to
	// MailTo is where it was mailed ("" when only logged).
	MailTo  string
	Created time.Time
	// Note, not stored, is what the bridge did about the SMS (an opt-out
	// or opt-in keyword, an alert command), told to the person it is
	// mailed to.
	Note string
	// Command, not stored, is the alert command the SMS was ("ACK #3"),
	// when it was one the bridge acted on (Note says how).
	Command string
	// Writers, set by Receive and not stored, is how many writers hold
	// the number it came to with the phone (see SenderClaims): more than
	// one, and the reply mail says that it may be meant for another.
	Writers int
}

// MailKind says why a mail is queued for the smarthost.
type MailKind string

const (
	MailReply  MailKind = "reply"  // an inbound SMS mailed to a person
	MailBounce MailKind = "bounce" // a delivery-status notification
)

// MailState is where one queued mail stands.
type MailState string

const (
	MailQueued MailState = "queued"
	MailSent   MailState = "sent"
	MailFailed MailState = "failed"
)

// OutMail is one mail waiting for (or past) delivery to the smarthost.
// Data is the complete message; it is built before it is queued so that
// a retry sends exactly the same bytes.
type OutMail struct {
	ID          string
	Kind        MailKind
	Ref         string // the inbound or message id it is about
	From        string // envelope sender; "" is the null sender (bounces)
	To          string // one envelope recipient
	Data        []byte
	State       MailState
	Attempts    int
	NextAttempt time.Time
	Error       string
	Created     time.Time
	Updated     time.Time
}

// Direction says which way a logged SMS went.
type Direction string

const (
	DirOut Direction = "out"
	DirIn  Direction = "in"
)

// LogEntry is one SMS in a conversation's log, either way.
type LogEntry struct {
	At        time.Time
	Direction Direction
	Phone     string
	Our       string
	Account   string // out: the account that sent it
	Text      string // out: the text as submitted, or "template <code>" for a template send
	// Encoding and Parts are how the text sent travelled (out; see
	// Message), Cost what the provider reported it cost (out; "" if
	// nothing).
	Encoding Encoding
	Parts    int
	Cost     string
	State    State  // out: the recipient's state; in: "" (received)
	Error    string // out: last error
	// Notified lists the delivery notifications mailed about it (out;
	// Recipient.Notified).
	Notified string

	MessageID   string // out: our message id
	RecipientID int64  // out
	InboundID   string // in: our id
	MailTo      string // in: where the reply mail went
	Provider    string // in: the provider it came through
	Raw         string // in: the provider's request as received (secrets removed)
}

// ConversationFilter selects conversations to list, newest activity first.
type ConversationFilter struct {
	Phone   string    // E.164, or "" for all
	Account string    // the account that last wrote, or ""
	Since   time.Time // updated at or after; zero for all
	// Provider keeps the conversations of one provider (Conversation.
	// Provider: the one the phone's SMS come through), "" all.
	Provider string
	// State keeps the conversations whose newest SMS, either way, is in
	// that state: StateReceived when the phone wrote last, else the
	// state of our SMS (one of ConversationStates). With Account set,
	// only that account's SMS count on our side, as its view of the
	// thread shows only those. "" keeps all.
	State State
	// Before and BeforeID page: only conversations after the last one of
	// the previous page in the list's order (Updated, then ID, both
	// descending); zero for the first page. Without BeforeID, those
	// updated strictly before Before. The ID matters: one dispatcher round
	// updates many conversations at the same instant.
	Before   time.Time
	BeforeID string
	Limit    int
}

// StateReceived is the state of a conversation whose newest SMS is the
// phone's (ConversationFilter.State); no recipient is ever in it.
const StateReceived State = "received"

// ConversationStates are the states a conversation's newest SMS can be
// in, the values ConversationFilter.State takes. StateQueued is not one:
// a recipient is filed under its conversation with its first outcome.
var ConversationStates = []State{StateReceived, StateSent, StateDelivered, StateUndelivered, StateFailed, StateCancelled}

// DeliveryReport is a provider's word on one sent SMS.
type DeliveryReport struct {
	Provider   string
	ProviderID string // the id the provider gave when it accepted the send
	To         string // E.164; "" when the report is for every recipient under ProviderID
	State      State  // StateDelivered or StateUndelivered (StateSent: no news yet)
	Detail     string // the provider's own status word or reason
	At         time.Time
	// Delivered lists recipients whose "delivered" notification is
	// queued: the store adds it to their Notified with the report.
	Delivered []int64
}

// Conversations keeps the conversation log: inbound SMS, the conversations
// they and outbound recipients are filed under, delivery reports, and the
// cursors and leases of pollers. Stores implement it beside Store.
type Conversations interface {
	// RecordInbound stores in, creates its conversation if needed (and
	// marks it updated), queues mail (if not nil) and sets cursor (if not
	// nil), all in one transaction. If an inbound with the same Provider
	// and DedupeKey exists it changes nothing (the cursor is still set)
	// and returns ErrDuplicateKey.
	RecordInbound(ctx context.Context, in *Inbound, mail *OutMail, cursor *Cursor) error

	// Conversation returns one conversation, or ErrNotFound.
	Conversation(ctx context.Context, id string) (*Conversation, error)
	// LatestConversation returns the conversation of phone with our (or
	// with our == "", with any sender, the one updated last) whose
	// Provider is provider: the one ConversationID names, or the one
	// ConversationIDVia does; ErrNotFound if none.
	LatestConversation(ctx context.Context, phone, our, provider string) (*Conversation, error)
	// ListConversations returns conversations matching f, newest first.
	ListConversations(ctx context.Context, f ConversationFilter) ([]Conversation, error)
	// ConversationLog returns the SMS of a conversation both ways, oldest
	// first, at most limit (the newest limit when there are more).
	ConversationLog(ctx context.Context, id string, limit int) ([]LogEntry, error)

	// Report applies a delivery report to the recipients it names that
	// are sent (or already reported: a later report wins), and returns
	// how many it changed.
	Report(ctx context.Context, r DeliveryReport) (int, error)
	// Outstanding returns the distinct provider ids of recipients sent
	// through provider at or after since that still wait for a report, at
	// most limit, and records them as asked about at now. Ids never asked
	// about come first, then those asked least recently; of equals, the
	// oldest send first. A poller asking for limit ids every round so asks
	// about each of n outstanding ids at least every ceil(n/limit) rounds
	// (fewer when new sends take some of each round), however many never
	// get a final report.
	Outstanding(ctx context.Context, provider string, since, now time.Time, limit int) ([]string, error)

	// Cursor returns a poller's saved position, "" when it has none.
	Cursor(ctx context.Context, name string) (string, error)
	// Lease makes holder the only runner of the job called name until
	// now+ttl, if nobody else holds it or their lease has run out; it
	// reports whether holder has it. Holding it already renews it.
	Lease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
}

// Cursor is a poller's position, saved with what it fetched.
type Cursor struct {
	Name  string
	Value string
}

// MailQueue is the durable queue of mail for the smarthost.
type MailQueue interface {
	// QueueMail stores mail (bounces that are not part of an outcome).
	QueueMail(ctx context.Context, mail *OutMail) error
	// ClaimMail returns up to limit queued mails due at now, oldest
	// first, incrementing Attempts and pushing NextAttempt to now+lease
	// in the same transaction (as Store.Claim does for SMS).
	ClaimMail(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]OutMail, error)
	// CompleteMail records one attempt's outcome: MailSent, MailFailed,
	// or MailQueued with NextAttempt for a retry.
	CompleteMail(ctx context.Context, id string, state MailState, errText string, next, at time.Time) error
	// RecoverMail makes mail that was claimed by a run that died (its
	// delivery was in flight) due at now, as Store.Recover does for SMS.
	// It is called at start, before the mail worker runs.
	RecoverMail(ctx context.Context, now time.Time) (int, error)
	// Mail returns one queued or delivered mail, or ErrNotFound.
	Mail(ctx context.Context, id string) (*OutMail, error)
	// MailStats reports how many mails wait and the oldest one's creation.
	MailStats(ctx context.Context) (QueueStats, error)
}
