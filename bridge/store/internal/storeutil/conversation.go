package storeutil

import (
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Limits of the conversation queries when the caller gives none (or too
// large a one): a page of a web view, and what one request may read.
const (
	DefaultLogLimit  = 100
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// LogLimit is the number of entries ConversationLog returns for limit.
func LogLimit(limit int) int {
	if limit <= 0 {
		return DefaultLogLimit
	}
	return limit
}

// ListLimit is the number of conversations ListConversations returns for
// limit.
func ListLimit(limit int) int {
	if limit <= 0 {
		return DefaultListLimit
	}
	return min(limit, MaxListLimit)
}

// LastState is the SQL of the state of conversation c's newest SMS
// either way (bridge.ConversationFilter.State), in both dialects: the
// state of our newest recipient filed under it, unless an inbound SMS is
// as new or newer (MergeLog's order), then 'received'; NULL for a
// conversation with neither. account, if not "", is the placeholder of
// the account whose recipients alone count.
func LastState(account string) string {
	mine := ""
	if account != "" {
		mine = " AND m.account = " + account
	}
	return `coalesce(
		(SELECT CASE WHEN EXISTS (SELECT 1 FROM inbound i WHERE i.conversation_id = c.id AND i.received >= m.created)
			THEN 'received' ELSE r.state END
			FROM recipients r JOIN messages m ON m.id = r.message_id
			WHERE r.conversation_id = c.id` + mine + `
			ORDER BY m.created DESC, r.id DESC LIMIT 1),
		CASE WHEN EXISTS (SELECT 1 FROM inbound i WHERE i.conversation_id = c.id) THEN 'received' END)`
}

// LogText is what the log shows as the text of an outbound message: a
// template send without an explicit text is named by its template.
func LogText(text, template string) string {
	if text == "" && template != "" {
		return "template " + template
	}
	return text
}

// MergeLog merges the outbound and inbound entries of a conversation, each
// newest first (as the stores read them, limit of each), into the newest
// limit entries, oldest first. Of an outbound and an inbound SMS at the
// same instant the outbound one counts as older: a reply does not come
// before what it answers.
func MergeLog(out, in []bridge.LogEntry, limit int) []bridge.LogEntry {
	n := min(limit, len(out)+len(in))
	log := make([]bridge.LogEntry, n)
	for k := n - 1; k >= 0; k-- {
		if len(in) > 0 && (len(out) == 0 || !out[0].At.After(in[0].At)) {
			log[k], in = in[0], in[1:]
		} else {
			log[k], out = out[0], out[1:]
		}
	}
	return log
}

// CheckInbound refuses an inbound SMS a store could not file.
func CheckInbound(in *bridge.Inbound) error {
	switch {
	case in == nil:
		return bridge.Permanent(bridge.ReasonInvalid, "inbound", "no inbound message")
	case in.ID == "":
		return bridge.Permanent(bridge.ReasonInvalid, "id", "inbound message has no id")
	case in.Provider == "" || in.DedupeKey == "":
		return bridge.Permanent(bridge.ReasonInvalid, "dedupe_key", "inbound message %s has no provider or dedupe key", in.ID)
	case in.Conversation == "":
		return bridge.Permanent(bridge.ReasonInvalid, "conversation", "inbound message %s has no conversation", in.ID)
	}
	return nil
}

// QueuedMail is m as it is stored when queued at at: a fresh mail (queued,
// no attempts, no error), created at at unless it says otherwise, and due
// at its creation unless it names a time.
func QueuedMail(m *bridge.OutMail, at time.Time) (bridge.OutMail, error) {
	if m.ID == "" {
		return bridge.OutMail{}, bridge.Permanent(bridge.ReasonInvalid, "id", "mail has no id")
	}
	if m.To == "" {
		return bridge.OutMail{}, bridge.Permanent(bridge.ReasonInvalid, "to", "mail %s has no recipient", m.ID)
	}
	q := *m
	if q.Created.IsZero() {
		q.Created = at
	}
	if q.NextAttempt.IsZero() {
		q.NextAttempt = q.Created
	}
	if q.Data == nil {
		q.Data = []byte{} // the column is NOT NULL, and drivers send nil as NULL
	}
	q.State, q.Attempts, q.Error, q.Updated = bridge.MailQueued, 0, "", q.Created
	return q, nil
}

// CheckMailState refuses a state CompleteMail cannot record.
func CheckMailState(id string, state bridge.MailState) error {
	switch state {
	case bridge.MailQueued, bridge.MailSent, bridge.MailFailed:
		return nil
	}
	return bridge.Permanent(bridge.ReasonInvalid, "state", "mail %s: unknown state %q", id, state)
}

// CheckReport refuses a delivery report that names no SMS or no state a
// report can set.
func CheckReport(r bridge.DeliveryReport) error {
	if r.Provider == "" || r.ProviderID == "" {
		return bridge.Permanent(bridge.ReasonInvalid, "provider_id", "delivery report without provider or provider id")
	}
	switch r.State {
	case bridge.StateSent, bridge.StateDelivered, bridge.StateUndelivered:
		return nil
	}
	return bridge.Permanent(bridge.ReasonInvalid, "state", "delivery report with state %q", r.State)
}

// ReportError is the Error a delivery report leaves on a recipient: the
// provider's reason when the SMS never arrived (what the log and any
// bounce show), nothing when it did, so that an earlier report's reason
// does not linger.
func ReportError(r bridge.DeliveryReport) string {
	if r.State != bridge.StateUndelivered {
		return ""
	}
	if r.Detail == "" {
		return string(bridge.StateUndelivered)
	}
	return r.Detail
}

// CheckTouch refuses a conversation touch that names no conversation.
func CheckTouch(recipientID int64, c *bridge.ConversationTouch) error {
	if c.ID == "" {
		return bridge.Permanent(bridge.ReasonInvalid, "conversation", "outcome for recipient %d names no conversation", recipientID)
	}
	return nil
}

// CheckLease refuses a lease request that names no job or holder, or
// would run out before it is granted.
func CheckLease(name, holder string, ttl time.Duration) error {
	if name == "" || holder == "" {
		return bridge.Permanent(bridge.ReasonInvalid, "lease", "lease without a name or holder")
	}
	if ttl <= 0 {
		return bridge.Permanent(bridge.ReasonInvalid, "lease", "lease %s for %v", name, ttl)
	}
	return nil
}
