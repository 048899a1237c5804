package storeutil

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/smsbridge/smsbridge/bridge"
)

// The suppression list's SQL is the same in both stores but for the
// placeholders ("?" or "$n") and how a sender is passed (TEXT or bytea);
// Query builds it with the store's own.

// SuppressionCols are the columns a Suppression is read from, in the
// order ScanSuppression's destinations take them.
const SuppressionCols = `phone, our, account, reason, source, author, created`

// ScanSuppression reads a row of SuppressionCols.
func ScanSuppression(row Row) (bridge.Suppression, error) {
	var x bridge.Suppression
	var created int64
	err := row.Scan(&x.Phone, &x.Our, &x.Account, &x.Reason, &x.Source, &x.By, &created)
	x.Created = FromMillis(created)
	return x, err
}

// SuppressionEventCols are the columns of suppression_events that
// ScanSuppressionEvent reads, in its order.
const SuppressionEventCols = `id, action, phone, our, account, reason, source, author, at`

// ScanSuppressionEvent reads a row of SuppressionEventCols. A change's
// Created is its time: the history is never edited.
func ScanSuppressionEvent(row Row) (bridge.SuppressionEvent, error) {
	var e bridge.SuppressionEvent
	var at int64
	err := row.Scan(&e.ID, &e.Action, &e.Phone, &e.Our, &e.Account, &e.Reason, &e.Source, &e.By, &at)
	e.At = FromMillis(at)
	e.Created = e.At
	return e, err
}

// HeldCols are the columns of a recipient r that ScanHeld reads.
const HeldCols = `r.id, r.message_id, r.to_addr, r.provider, r.provider_id`

// ScanHeld reads a row of HeldCols: a send the provider holds (scheduled
// there), so sent as far as the store knows.
func ScanHeld(row Row) (bridge.Recipient, error) {
	r := bridge.Recipient{State: bridge.StateSent}
	err := row.Scan(&r.ID, &r.MessageID, &r.To, &r.Provider, &r.ProviderID)
	return r, err
}

// Query accumulates a statement's arguments, writing each placeholder in
// the store's dialect.
type Query struct {
	Args     []any
	Numbered bool // "$1" rather than "?"
}

// Arg adds v and returns its placeholder.
func (q *Query) Arg(v any) string {
	q.Args = append(q.Args, v)
	if q.Numbered {
		return fmt.Sprintf("$%d", len(q.Args))
	}
	return "?"
}

// List adds vs and returns their placeholders, comma-separated.
func List[T any](q *Query, vs []T) string {
	ph := make([]string, len(vs))
	for i, v := range vs {
		ph[i] = q.Arg(v)
	}
	return strings.Join(ph, ", ")
}

// CheckSuppression refuses a change no store should record.
func CheckSuppression(c bridge.SuppressionChange) error {
	if !strings.HasPrefix(c.Phone, "+") {
		return bridge.Permanent(bridge.ReasonBadNumber, "phone", "suppression of %q, not an E.164 number", c.Phone)
	}
	if c.Source == "" || c.By == "" {
		return bridge.Permanent(bridge.ReasonInvalid, "source", "a suppression change must say its source and author")
	}
	return nil
}

// SuppressedQuery is the query of Suppressed: every suppression of
// phones, whatever its number and account, for Covering to pick from. It
// is a plain lookup on the primary key's first column: with the number
// and account as IN lists and the order in SQL, SQLite built temporary
// tables and a sort for every consent check, a third of its cost.
func SuppressedQuery(q *Query, phones []string) string {
	if len(phones) == 1 {
		return `SELECT ` + SuppressionCols + ` FROM suppressions WHERE phone = ` + q.Arg(phones[0])
	}
	return `SELECT ` + SuppressionCols + ` FROM suppressions WHERE phone IN (` + List(q, phones) + `)`
}

// Covering returns, of a phone's suppressions ss (as SuppressedQuery
// reads them), the first per phone that stops sends from our by account,
// in the order of created, phone, our, account: what SuppressedWhere
// selects, so ordered.
func Covering(ss []bridge.Suppression, account, our string) []bridge.Suppression {
	out := ss[:0]
	for _, s := range ss {
		if (s.Our == "" || s.Our == our) && (s.Account == "" || s.Account == account) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b bridge.Suppression) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Phone, b.Phone),
			cmp.Compare(a.Our, b.Our), cmp.Compare(a.Account, b.Account))
	})
	return FirstPerPhone(out)
}

// SuppressedWhere is the condition on suppressions that stop sends from
// our by account to one of phones.
func SuppressedWhere(q *Query, account, our string, phones []string) string {
	return `phone IN (` + List(q, phones) + `) AND our IN ('', ` + q.Arg(our) + `) AND account IN ('', ` + q.Arg(account) + `)`
}

// CoveringWhere is the condition on suppressions that stop c's sends
// (covering) or is c's own row.
func CoveringWhere(q *Query, c bridge.SuppressionChange, covering bool) string {
	if covering {
		return SuppressedWhere(q, c.Account, c.Our, []string{c.Phone})
	}
	return `phone = ` + q.Arg(c.Phone) + ` AND our = ` + q.Arg(c.Our) + ` AND account = ` + q.Arg(c.Account)
}

// FilterWhere is the condition on suppressions or events that f selects
// ("TRUE" for all).
func FilterWhere(q *Query, f bridge.SuppressionFilter) string {
	var conds []string
	if f.Phone != "" {
		conds = append(conds, `phone = `+q.Arg(f.Phone))
	}
	if f.Account != "" {
		ours := append([]string{""}, f.Ours...)
		conds = append(conds, `(account = `+q.Arg(f.Account)+` OR (account = '' AND our IN (`+List(q, ours)+`)))`)
	}
	if len(conds) == 0 {
		return "1 = 1"
	}
	return strings.Join(conds, " AND ")
}

// CancelWhere is the condition on the messages (their columns prefixed
// with m, "m." or "") whose queued recipients to c.Phone c's suppression
// stops: every message, an account's, those from c's senders, or an
// account's from them. sender turns a sender ID into the argument the
// store compares messages.sender with.
func CancelWhere(q *Query, c bridge.SuppressionChange, m string, sender func(string) any) string {
	conds := []string{"1 = 1"}
	if c.Account != "" {
		conds = append(conds, m+`account = `+q.Arg(c.Account))
	}
	if c.Our != "" {
		senders := c.Senders
		if len(senders) == 0 {
			senders = []string{c.Our}
		}
		ph := make([]string, len(senders))
		for i, s := range senders {
			ph[i] = q.Arg(sender(s))
		}
		conds = append(conds, m+`sender IN (`+strings.Join(ph, ", ")+`)`)
	}
	return strings.Join(conds, " AND ")
}

// CancelError is what a recipient cancelled by a suppression records.
func CancelError(c bridge.SuppressionChange) string {
	return "cancelled: " + c.Phone + " opted out (" + c.Reason + ")"
}

// FirstPerPhone keeps the first suppression of each phone.
func FirstPerPhone(ss []bridge.Suppression) []bridge.Suppression {
	seen := map[string]bool{}
	out := ss[:0]
	for _, s := range ss {
		if !seen[s.Phone] {
			seen[s.Phone] = true
			out = append(out, s)
		}
	}
	return out
}

// HeldWhere is the condition on recipients (r, of messages m) that
// HeldAtProvider returns.
func HeldWhere(q *Query, c bridge.SuppressionChange, now int64, sender func(string) any) string {
	return `r.to_addr = ` + q.Arg(c.Phone) + ` AND r.state = 'sent' AND m.send_at > ` + q.Arg(now) +
		` AND ` + CancelWhere(q, c, "m.", sender)
}
