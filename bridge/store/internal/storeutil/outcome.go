package storeutil

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Outcome is a bridge.Outcome checked and made ready for a store's
// statements: what Complete records, whatever the SQL. A store binds its
// fields to its own statements (and may add columns: the field set grows
// here, once, for both stores).
type Outcome struct {
	bridge.Outcome
	Info []byte          // Outcome.Info as a JSON object; nil (SQL NULL) when empty
	File *Filing         // the filing under its conversation; nil: none
	Mail *bridge.OutMail // Outcome.Mail as queued (see QueuedMail); nil: none
}

// Outcomes checks every outcome before anything is written, so that one
// bad outcome fails the whole Complete with nothing recorded, and
// prepares them, in the order given.
func Outcomes(outcomes []bridge.Outcome) ([]Outcome, error) {
	prepared := make([]Outcome, len(outcomes))
	for i, o := range outcomes {
		if o.State == "" {
			return nil, bridge.Permanent(bridge.ReasonInvalid, "state", "outcome for recipient %d has no state", o.RecipientID)
		}
		p := Outcome{Outcome: o}
		var err error
		if p.Info, err = EncodeMap(o.Info); err != nil {
			return nil, fmt.Errorf("encoding info of recipient %d: %w", o.RecipientID, err)
		}
		if c := o.Conversation; c != nil {
			if err := CheckTouch(o.RecipientID, c); err != nil {
				return nil, err
			}
			p.File = File(c, o.At)
		}
		if o.Mail != nil {
			m, err := QueuedMail(o.Mail, o.At)
			if err != nil {
				return nil, err
			}
			p.Mail = &m
		}
		prepared[i] = p
	}
	return prepared, nil
}

// EncodeMap returns m as a JSON object, or nil (to be stored as SQL NULL)
// when it is empty.
func EncodeMap(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

// Filing is what filing a recipient's outcome, or an inbound SMS, under
// its conversation writes: the conversation, created if new and marked
// updated at At (never earlier than it was: outcomes and inbound SMS are
// recorded out of order; a conversation without a provider takes
// Provider), and, with Route, who gets the replies.
type Filing struct {
	ID, Phone, Our, Provider string
	At                       int64  // Millis of the outcome's (or the SMS's) time
	Route                    *Route // nil: the touch routes no replies
}

// Route is the reply routing a touch records, with Filing.Provider as the
// provider the phone's replies may come through. The person who wrote
// last gets the replies: a route older than the one recorded changes
// nothing, one as old replaces it (the later writer wins a tie).
type Route struct {
	Account, ReplyTo, MailMessageID, Subject string
	LastOut                                  int64 // Millis of the message's creation
}

// File is the filing of an outcome at at under c. Only a touch with a
// ReplyTo routes replies (see bridge.ConversationTouch): an SMS sent on
// behalf of nobody leaves them with whoever wrote before.
func File(c *bridge.ConversationTouch, at time.Time) *Filing {
	f := &Filing{ID: c.ID, Phone: c.Phone, Our: c.Our, Provider: c.Provider, At: Millis(at)}
	if c.ReplyTo != "" {
		f.Route = &Route{Account: c.Account, ReplyTo: c.ReplyTo, MailMessageID: c.MailMessageID,
			Subject: c.Subject, LastOut: Millis(c.At)}
	}
	return f
}

// FileInbound is the filing of a received SMS: its conversation, with the
// phone it came from, the number or sender ID it was sent to, and its
// provider, marked updated when it was received. It routes no replies.
func FileInbound(in *bridge.Inbound) *Filing {
	return &Filing{ID: in.Conversation, Phone: in.From, Our: in.To, Provider: in.Provider, At: Millis(in.Received)}
}
