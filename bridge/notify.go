package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Notify is which delivery notifications (RFC 3461 NOTIFY) a recipient
// asked for. The zero value is "not said": the account's default applies
// at submission, and a recipient stored before NOTIFY was kept gets what
// it always got, a bounce on failure.
type Notify uint8

const (
	NotifySuccess Notify = 1 << iota
	NotifyFailure
	NotifyDelay
	// NotifyNever is NOTIFY=NEVER: no notification at all, not even of a
	// failure. It is a bit of its own so that it differs from "not said".
	NotifyNever
)

// Wants reports whether n asks for the notification what. Unset means
// failures only (RFC 3461 §4.1: what a server does without NOTIFY).
func (n Notify) Wants(what Notify) bool {
	if n == 0 {
		n = NotifyFailure
	}
	return n&NotifyNever == 0 && n&what != 0
}

var notifyNames = []struct {
	n    Notify
	name string
}{{NotifySuccess, "success"}, {NotifyFailure, "failure"}, {NotifyDelay, "delay"}, {NotifyNever, "never"}}

// String is n as stored and configured: "success,delay", "never", or ""
// when unset.
func (n Notify) String() string {
	var names []string
	for _, v := range notifyNames {
		if n&v.n != 0 {
			names = append(names, v.name)
		}
	}
	return strings.Join(names, ",")
}

// ParseNotify reads the keywords of NOTIFY (or the per-account default):
// "never" alone, or any of "success", "failure", "delay", each at most
// once, case aside. "" is unset.
func ParseNotify(words []string) (Notify, error) {
	var n Notify
	for _, w := range words {
		var v Notify
		for _, nn := range notifyNames {
			if strings.EqualFold(strings.TrimSpace(w), nn.name) {
				v = nn.n
			}
		}
		switch {
		case v == 0:
			return 0, fmt.Errorf("%q is not one of success, failure, delay, never", w)
		case n&v != 0:
			return 0, fmt.Errorf("%q given twice", w)
		}
		n |= v
	}
	if n&NotifyNever != 0 && n != NotifyNever {
		return 0, errors.New(`"never" cannot be combined with other values`)
	}
	return n, nil
}

// DSNReturn is what a notification attaches of the original (RFC 3461
// RET): its headers, or the full message. The bridge keeps only the
// (capped) headers and the text, so FULL attaches those, reconstructed,
// and says so (see mailout.BuildNotice).
type DSNReturn string

const (
	ReturnHeaders DSNReturn = "HDRS"
	ReturnFull    DSNReturn = "FULL"
)

// Limits of the DSN parameters a client may set (RFC 3461 §4.4: ENVID at
// most 100 characters; ORCPT's 500 is the length RFC 3461 §4.2 gives the
// whole parameter).
const (
	MaxEnvelopeID = 100
	MaxORCPT      = 500
)

// Action is what a notification reports of a recipient (RFC 3464 §2.3.3).
type Action string

const (
	ActionDelivered Action = "delivered" // the carrier reported the SMS on the phone
	ActionRelayed   Action = "relayed"   // the provider took it and reports nothing more
	ActionDelayed   Action = "delayed"   // still trying after delay_warning
)

// Notice is one recipient a success or delay notification reports.
type Notice struct {
	RecipientID int64
	To          string // E.164 or phonebook target
	ORCPT       string // the ORCPT given at RCPT ("rfc822;alice@example.com"), or ""
	Provider    string
	ProviderID  string // the provider's message id
	Detail      string // the provider's own word (delivered), or the last error (delayed)
	At          time.Time
	// WillRetryUntil is when a delayed recipient expires.
	WillRetryUntil time.Time
}

// NoticeComposer is implemented by composers that build success and delay
// notifications (mailout.Composer does).
type NoticeComposer interface {
	Notice(m *Message, action Action, ns []Notice) (*OutMail, error)
}

// ReportsDelivery is implemented by providers that say whether they
// report delivery. One that does not (MindCRM) has done all it will when
// it accepts an SMS: NOTIFY=SUCCESS is answered then, with "relayed".
// Providers that do not implement it are taken to report delivery.
type ReportsDelivery interface {
	ReportsDelivery() bool
}

func reportsDelivery(p Provider) bool {
	r, ok := p.(ReportsDelivery)
	return !ok || r.ReportsDelivery()
}

// Notice builds the notification of action for ns, recipients of m that
// asked for it, or returns nil when nobody is to be told: the same gate as
// Bounce (an SMTP message whose envelope sender is one of its account's
// own addresses, and a smarthost to send through).
func (b *Bridge) Notice(m *Message, action Action, ns []Notice) *OutMail {
	nc, ok := b.opt.Composer.(NoticeComposer)
	if !ok || m.Channel != ChannelSMTP || m.EnvelopeFrom == "" || len(ns) == 0 {
		return nil
	}
	if !b.bounceAllowed(m) {
		b.opt.Log.Warn("no delivery notification: the envelope sender is not an address of the account that sent",
			"message", m.ID, "account", m.Account, "action", action)
		return nil
	}
	mail, err := nc.Notice(m, action, ns)
	if err != nil {
		b.opt.Log.Error("building a delivery notification", "message", m.ID, "action", action, "err", err)
		return nil
	}
	return mail
}

// ReportJobs is an optional Conversations method: the recipients (with
// their messages) that a delivery report names, sent or already reported.
type ReportJobs interface {
	ReportJobs(ctx context.Context, provider, providerID, to string) ([]Job, error)
}

// deliveredNotice queues the NOTIFY=SUCCESS notification for the
// recipients r reports delivered. It runs before the report is applied,
// and its mail's id is derived from the recipient, so a report repeated
// (the provider's retry after we crashed between the two, or a second
// report) never mails twice: the second insert is a duplicate.
//
// It returns the recipients newly notified, for the report to record in
// their Notified.
func (b *Bridge) deliveredNotice(ctx context.Context, r DeliveryReport) (delivered []int64, err error) {
	rj, ok := b.store.(ReportJobs)
	if !ok || r.State != StateDelivered {
		return nil, nil
	}
	mq, ok := b.store.(MailQueue)
	if !ok {
		return nil, nil
	}
	jobs, err := rj.ReportJobs(ctx, r.Provider, r.ProviderID, r.To)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		if !j.Recipient.Notify.Wants(NotifySuccess) {
			continue
		}
		rc := j.Recipient
		mail := b.Notice(j.Message, ActionDelivered, []Notice{{RecipientID: rc.ID, To: rc.To, ORCPT: rc.ORCPT,
			Provider: r.Provider, ProviderID: r.ProviderID, Detail: r.Detail, At: r.At}})
		if mail == nil {
			continue
		}
		// Queueing a mail whose id is stored already changes nothing.
		mail.ID = fmt.Sprintf("dsn-delivered-%d", rc.ID)
		if err := mq.QueueMail(ctx, mail); err != nil {
			return nil, err
		}
		if !slices.Contains(strings.Split(rc.Notified, ","), string(ActionDelivered)) {
			delivered = append(delivered, rc.ID)
		}
	}
	if len(delivered) > 0 && b.opt.MailQueued != nil {
		b.opt.MailQueued()
	}
	return delivered, nil
}
