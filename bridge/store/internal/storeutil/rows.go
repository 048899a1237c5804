package storeutil

import (
	"encoding/json"
	"fmt"

	"github.com/smsbridge/smsbridge/bridge"
)

// Row is a row to scan: *sql.Row and *sql.Rows of the SQLite store, and
// pgx.Row and pgx.Rows of the PostgreSQL one.
type Row interface{ Scan(dest ...any) error }

// The columns the scanners below read, in their order; the same SQL in
// both stores, so kept beside the code that depends on their order.
const (
	RecipientCols = `r.id, r.message_id, r.to_addr, r.providers, r.provider, r.state,
		r.attempts, r.provider_attempts, r.next_attempt, r.provider_id, r.error, r.updated, r.cost,
		r.notify, r.orcpt, r.delay_notified, r.notified`
	ConversationCols = `c.id, c.phone, c.our, c.provider, c.account, c.reply_to, c.mail_message_id, c.subject,
		c.last_out, c.created, c.updated`
	MailCols = `id, kind, ref, from_addr, to_addr, data, state, attempts, next_attempt, error, created, updated`
)

// RecipientRow is a row of RecipientCols as scanned, before decoding.
type RecipientRow struct {
	r                    bridge.Recipient
	providers            []byte
	state, notify        string
	nextAttempt, updated int64
}

// Dest is what Scan fills.
func (r *RecipientRow) Dest() []any {
	return []any{&r.r.ID, &r.r.MessageID, &r.r.To, &r.providers, &r.r.Provider, &r.state,
		&r.r.Attempts, &r.r.ProviderAttempts, &r.nextAttempt, &r.r.ProviderID, &r.r.Error, &r.updated, &r.r.Cost,
		&r.notify, &r.r.ORCPT, &r.r.DelayNotified, &r.r.Notified}
}

// Recipient decodes the row: its state, times and JSON-encoded route.
func (r *RecipientRow) Recipient() (bridge.Recipient, error) {
	rc := r.r
	rc.State = bridge.State(r.state)
	rc.Notify = Notify(r.notify)
	rc.NextAttempt, rc.Updated = FromMillis(r.nextAttempt), FromMillis(r.updated)
	if err := json.Unmarshal(r.providers, &rc.Providers); err != nil {
		return rc, fmt.Errorf("recipient %d: decoding providers: %w", rc.ID, err)
	}
	if len(rc.Providers) == 0 {
		rc.Providers = nil
	}
	return rc, nil
}

// ScanConversation reads a row of ConversationCols and then extra. The
// driver's error for no row is returned as it is: each store knows its
// own.
func ScanConversation(row Row, extra ...any) (*bridge.Conversation, error) {
	var c bridge.Conversation
	var lastOut, created, updated int64
	dest := []any{&c.ID, &c.Phone, &c.Our, &c.Provider, &c.Account, &c.ReplyTo, &c.MailMessageID, &c.Subject,
		&lastOut, &created, &updated}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	c.LastOut, c.Created, c.Updated = FromMillis(lastOut), FromMillis(created), FromMillis(updated)
	return &c, nil
}

// ScanConversationValue is ScanConversation for ScanAll.
func ScanConversationValue(row Row) (bridge.Conversation, error) {
	c, err := ScanConversation(row)
	if err != nil {
		return bridge.Conversation{}, err
	}
	return *c, nil
}

// ScanMail reads a row of MailCols and then extra. The driver's error for
// no row is returned as it is.
func ScanMail(row Row, extra ...any) (*bridge.OutMail, error) {
	var m bridge.OutMail
	var kind, state string
	var next, created, updated int64
	dest := []any{&m.ID, &kind, &m.Ref, &m.From, &m.To, &m.Data, &state, &m.Attempts, &next, &m.Error, &created, &updated}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	m.Kind, m.State = bridge.MailKind(kind), bridge.MailState(state)
	m.NextAttempt, m.Created, m.Updated = FromMillis(next), FromMillis(created), FromMillis(updated)
	return &m, nil
}

// Rows is a result set: *sql.Rows of the SQLite store, pgx.Rows of the
// PostgreSQL one. The caller closes it.
type Rows interface {
	Row
	Next() bool
	Err() error
}

// MessageCols are the columns MessageRow reads, in its order.
const MessageCols = `m.id, m.channel, m.account, m.envelope_from, m.mail_message_id, m.reply_to, m.headers,
		m.subject, m.sender, m.text, m.template, m.params, m.send_at, m.created, m.sms_text, m.encoding, m.parts,
		m.envelope_id, m.dsn_return`

// MessageRow is a row of MessageCols as scanned, before decoding. The
// mail's own text is scanned as bytes: PostgreSQL keeps it in bytea
// columns (the bytes exactly as received), SQLite in TEXT ones, which
// database/sql hands over as bytes as well.
type MessageRow struct {
	m                                                           bridge.Message
	channel                                                     string
	envelopeFrom, mailMessageID, replyTo, headers, sender, text []byte
	smsText                                                     []byte
	encoding, ret                                               string
	params                                                      []byte // nil: SQL NULL
	sendAt, created                                             int64
}

// Dest is what Scan fills.
func (r *MessageRow) Dest() []any {
	return []any{&r.m.ID, &r.channel, &r.m.Account, &r.envelopeFrom, &r.mailMessageID, &r.replyTo, &r.headers,
		&r.m.Subject, &r.sender, &r.text, &r.m.Template, &r.params, &r.sendAt, &r.created, &r.smsText, &r.encoding, &r.m.Parts,
		&r.m.EnvelopeID, &r.ret}
}

// Message decodes the row.
func (r *MessageRow) Message() (*bridge.Message, error) {
	m := r.m
	m.Channel = bridge.Channel(r.channel)
	m.EnvelopeFrom, m.MailMessageID, m.ReplyTo = string(r.envelopeFrom), string(r.mailMessageID), string(r.replyTo)
	m.Headers = string(r.headers)
	m.Sender, m.Text, m.SMSText = string(r.sender), string(r.text), string(r.smsText)
	m.Encoding = bridge.Encoding(r.encoding)
	m.Return = bridge.DSNReturn(r.ret)
	m.SendAt, m.Created = FromMillis(r.sendAt), FromMillis(r.created)
	if r.params != nil {
		if err := json.Unmarshal(r.params, &m.Params); err != nil {
			return nil, fmt.Errorf("message %s: decoding params: %w", m.ID, err)
		}
	}
	return &m, nil
}

// ScanRecipients reads every row of rows, each of RecipientCols.
func ScanRecipients(rows Rows) ([]bridge.Recipient, error) {
	var rs []bridge.Recipient
	for rows.Next() {
		var rr RecipientRow
		if err := rows.Scan(rr.Dest()...); err != nil {
			return nil, err
		}
		r, err := rr.Recipient()
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, rows.Err()
}

// AppendJobs reads every row of rows, each of RecipientCols then
// MessageCols (a due recipient and its message), and appends them to
// jobs. Recipients of one message share its *Message through msgs, which
// the caller keeps across the queries of one Claim.
func AppendJobs(rows Rows, jobs []bridge.Job, msgs map[string]*bridge.Message) ([]bridge.Job, error) {
	for rows.Next() {
		var rr RecipientRow
		var mr MessageRow
		if err := rows.Scan(append(rr.Dest(), mr.Dest()...)...); err != nil {
			return nil, err
		}
		r, err := rr.Recipient()
		if err != nil {
			return nil, err
		}
		m := msgs[r.MessageID]
		if m == nil {
			if m, err = mr.Message(); err != nil {
				return nil, err
			}
			msgs[r.MessageID] = m
		}
		jobs = append(jobs, bridge.Job{Message: m, Recipient: r})
	}
	return jobs, rows.Err()
}

// ScanAll reads every row of rows with scan.
func ScanAll[T any](rows Rows, scan func(Row) (T, error)) ([]T, error) {
	var list []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	return list, rows.Err()
}

// The columns of a conversation log's entries: outbound from recipients r
// joined with their messages m, inbound from the inbound table.
const (
	LogOutCols = `m.created, m.text, m.template, m.account, r.state, r.error, m.id, r.id,
		m.encoding, m.parts, r.cost, r.notified`
	LogInCols = `received, text, id, mail_to, provider, raw`
)

// ScanLogOut reads the outbound entries of c, rows of LogOutCols. The
// text is scanned as bytes, as in MessageRow.
func ScanLogOut(rows Rows, c *bridge.Conversation) ([]bridge.LogEntry, error) {
	return ScanAll(rows, func(row Row) (bridge.LogEntry, error) {
		e := bridge.LogEntry{Direction: bridge.DirOut, Phone: c.Phone, Our: c.Our}
		var at int64
		var text []byte
		var template, state, encoding string
		if err := row.Scan(&at, &text, &template, &e.Account, &state, &e.Error, &e.MessageID, &e.RecipientID,
			&encoding, &e.Parts, &e.Cost, &e.Notified); err != nil {
			return e, err
		}
		e.At, e.Text, e.State = FromMillis(at), LogText(string(text), template), bridge.State(state)
		e.Encoding = bridge.Encoding(encoding)
		return e, nil
	})
}

// ScanLogIn reads the inbound entries of c, rows of LogInCols. The raw
// request is scanned as bytes (PostgreSQL keeps it in bytea).
func ScanLogIn(rows Rows, c *bridge.Conversation) ([]bridge.LogEntry, error) {
	return ScanAll(rows, func(row Row) (bridge.LogEntry, error) {
		e := bridge.LogEntry{Direction: bridge.DirIn, Phone: c.Phone, Our: c.Our}
		var at int64
		var raw []byte
		if err := row.Scan(&at, &e.Text, &e.InboundID, &e.MailTo, &e.Provider, &raw); err != nil {
			return e, err
		}
		e.At, e.Raw = FromMillis(at), string(raw)
		return e, nil
	})
}
