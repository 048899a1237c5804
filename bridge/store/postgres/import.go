package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
	"github.com/smsbridge/smsbridge/bridge/store/storeexport"
)

// The importers copy what another store holds (`smsbridge migrate-store`)
// as it is: states, attempts, due times and errors included. Each call
// writes its rows in one transaction and skips every row whose key is
// stored already, so an import that stopped halfway can be run again.
// Text columns get the text made valid (see cleanText): PostgreSQL
// refuses bytes that SQLite keeps, and one bad byte must not stop a
// migration.

const (
	importMessage = insertMessage + ` ON CONFLICT (id) DO NOTHING`
	importKey     = insertKey + ` ON CONFLICT DO NOTHING`
	// Recipient ids are this database's own (an identity): the message,
	// not the recipient, is what an import recognises as stored already.
	importRecipient = `INSERT INTO recipients (message_id, to_addr, providers, provider, state,
		attempts, provider_attempts, next_attempt, provider_id, error, info, updated, conversation_id, polled, cost,
		notify, orcpt, delay_notified, notified)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`
	importConversation = `INSERT INTO conversations (id, phone, our, account, reply_to, mail_message_id,
		subject, last_out, created, updated, provider) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT DO NOTHING`
	// Also on (provider, dedupe_key): an SMS recorded already under
	// another id is the same SMS.
	importInbound = `INSERT INTO inbound (id, provider, dedupe_key, conversation_id, from_addr, to_addr,
		text, received, raw, mail_to, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT DO NOTHING`
	importCursor = `INSERT INTO cursors (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`
	// A claim stored already keeps the later end of the two, as
	// ClaimSenders merges a writer's claims; an equal one is left alone,
	// so that a run again stores (and counts) nothing.
	importClaim = `INSERT INTO sender_claims (` + storeutil.ClaimCols + `) VALUES ($1, $2, $3, $4)
		ON CONFLICT (phone, our, writer) DO UPDATE SET until = excluded.until WHERE sender_claims.until < excluded.until`
	// Skipped on any of its keys: id (this database's own, so new),
	// (phone, ref) and (phone, account, source, group_key).
	importAlertRef = `INSERT INTO alert_refs (id, ` + storeutil.AlertRefCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`
)

// ImportMessages stores the messages not stored yet, each with its
// recipients and idempotency key, and returns how many it stored. A
// message stored already is left as it is, recipients and all. A key
// another message holds already stays that message's.
//
// A claimed recipient is stored unclaimed and due at now: its claim was
// the old store's, which only that store's Recover could release, and
// Recover would make it due at once.
func (s *Store) ImportMessages(ctx context.Context, ms []storeexport.Message, now time.Time) (int, error) {
	msgArgs := make([][]any, len(ms))
	for i, mr := range ms {
		m := mr.Message
		if m == nil || m.ID == "" {
			return 0, bridge.Permanent(bridge.ReasonInvalid, "id", "imported message has no id")
		}
		params, err := storeutil.EncodeMap(m.Params)
		if err != nil {
			return 0, fmt.Errorf("encoding params of %s: %w", m.ID, err)
		}
		msgArgs[i] = []any{cleanText(m.ID), cleanText(string(m.Channel)), cleanText(m.Account), raw(m.EnvelopeFrom),
			raw(m.MailMessageID), raw(m.ReplyTo), raw(m.Headers), cleanText(m.Subject), raw(m.Sender), raw(m.Text), cleanText(m.Template),
			params, storeutil.Millis(m.SendAt), storeutil.Millis(m.Created), raw(m.SMSText), cleanText(string(m.Encoding)), m.Parts,
			cleanText(m.EnvelopeID), cleanText(string(m.Return))}
	}
	stored := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Two round trips: the messages, then the recipients and keys of
		// those that were new.
		inserted := make([]bool, len(ms))
		b := &pgx.Batch{}
		for i := range ms {
			b.Queue(importMessage, msgArgs[i]...).Exec(func(tag pgconn.CommandTag) error {
				inserted[i] = tag.RowsAffected() == 1
				return nil
			})
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		stored = 0
		b = &pgx.Batch{}
		for i, mr := range ms {
			if !inserted[i] {
				continue
			}
			stored++
			if err := queueRecipients(b, mr, msgArgs[i][0], now); err != nil {
				return err
			}
		}
		if b.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, storeErr("importing messages", err)
	}
	return stored, nil
}

// queueRecipients adds the key and recipients of mr, whose id as stored
// is id, to b.
func queueRecipients(b *pgx.Batch, mr storeexport.Message, id any, now time.Time) error {
	m := mr.Message
	if m.IdempotencyKey != "" {
		b.Queue(importKey, cleanText(m.Account), cleanText(m.IdempotencyKey), id, storeutil.Millis(m.Created), cleanText(m.RequestDigest))
	}
	for _, r := range mr.Recipients {
		providers, err := json.Marshal(storeutil.NonNil(r.Providers))
		if err != nil {
			return fmt.Errorf("encoding providers of %s: %w", m.ID, err)
		}
		info, err := storeutil.EncodeMap(r.Info)
		if err != nil {
			return fmt.Errorf("encoding info of %s: %w", m.ID, err)
		}
		var conv any // NULL: not filed
		if r.Conversation != "" {
			conv = cleanText(r.Conversation)
		}
		state, next := storeutil.StateOrQueued(r.State), r.NextAttempt
		if r.Claimed && state == bridge.StateQueued {
			next = now
		}
		b.Queue(importRecipient, id, cleanText(r.To), providers, cleanText(r.Provider), cleanText(string(state)),
			r.Attempts, r.ProviderAttempts, storeutil.Millis(next), cleanText(r.ProviderID), cleanText(r.Error), info,
			storeutil.Millis(r.Updated), conv, storeutil.Millis(r.Polled), cleanText(r.Cost),
			r.Notify.String(), cleanText(r.ORCPT), r.DelayNotified, cleanText(r.Notified))
	}
	return nil
}

// ImportConversations stores the conversations not stored yet (by id)
// and returns how many it stored. One stored
// already keeps its routing: it may be newer than the imported one.
func (s *Store) ImportConversations(ctx context.Context, cs []bridge.Conversation) (int, error) {
	b := &pgx.Batch{}
	for _, c := range cs {
		b.Queue(importConversation, cleanText(c.ID), cleanText(c.Phone), cleanText(c.Our), cleanText(c.Account),
			cleanText(c.ReplyTo), cleanText(c.MailMessageID), cleanText(c.Subject), storeutil.Millis(c.LastOut),
			storeutil.Millis(c.Created), storeutil.Millis(c.Updated), cleanText(c.Provider))
	}
	return s.importBatch(ctx, "conversations", b)
}

// ImportInbound stores the received SMS not stored yet (by id, or by
// provider and dedupe key) and returns how many it stored. Their
// conversations are imported apart (ImportConversations); a mail queued
// for one is in the mail queue (ImportMail).
func (s *Store) ImportInbound(ctx context.Context, ins []bridge.Inbound) (int, error) {
	b := &pgx.Batch{}
	for _, in := range ins {
		if err := storeutil.CheckInbound(&in); err != nil {
			return 0, err
		}
		b.Queue(importInbound, cleanText(in.ID), cleanText(in.Provider), cleanText(in.DedupeKey),
			cleanText(in.Conversation), cleanText(in.From), cleanText(in.To), cleanText(in.Text),
			storeutil.Millis(in.Received), raw(in.Raw), cleanText(in.MailTo), storeutil.Millis(in.Created))
	}
	return s.importBatch(ctx, "inbound", b)
}

// ImportMail stores the mails not stored yet (by id), in whatever state
// they are, with their attempts, due time and error, and returns how
// many it stored.
func (s *Store) ImportMail(ctx context.Context, ms []bridge.OutMail) (int, error) {
	b := &pgx.Batch{}
	for i := range ms {
		m := ms[i]
		if m.ID == "" || m.To == "" {
			return 0, bridge.Permanent(bridge.ReasonInvalid, "id", "imported mail %q has no id or recipient", m.ID)
		}
		if err := storeutil.CheckMailState(m.ID, m.State); err != nil {
			return 0, err
		}
		if m.Data == nil {
			m.Data = []byte{} // NOT NULL, and pgx sends nil as NULL
		}
		queueMail(b, &m)
	}
	return s.importBatch(ctx, "mail", b)
}

// ImportCursors stores the poller cursors not stored yet and returns how
// many it stored. A cursor stored already is newer: a poller of this
// database saved it.
func (s *Store) ImportCursors(ctx context.Context, cs []bridge.Cursor) (int, error) {
	b := &pgx.Batch{}
	for _, c := range cs {
		b.Queue(importCursor, cleanText(c.Name), cleanText(c.Value))
	}
	return s.importBatch(ctx, "cursors", b)
}

// ImportSenderClaims stores the sender claims not stored yet (by phone,
// number and writer), their ends as they were, and returns how many it
// stored. Of a claim stored already the later end stays: either writer's
// message promised the phone's replies on that number to them until then.
func (s *Store) ImportSenderClaims(ctx context.Context, cs []bridge.SenderClaim) (int, error) {
	if err := storeutil.CheckImportedClaims(cs); err != nil {
		return 0, err
	}
	b := &pgx.Batch{}
	for _, c := range cs {
		b.Queue(importClaim, cleanText(c.Phone), cleanText(c.Our), cleanText(c.Writer), storeutil.Millis(c.Until))
	}
	return s.importBatch(ctx, "sender claims", b)
}

// ImportAlertRefs stores the alert references not stored yet, each under
// the reference its phone was paged with, its labels, time and silence as
// they were, and returns how many it stored. A phone's reference or group
// stored already stays as it is: it was paged from this database, so it
// is what the phone's latest SMS about it said. A phone's next reference
// (PageAlert) comes after the imported ones.
func (s *Store) ImportAlertRefs(ctx context.Context, rs []bridge.AlertRef) (int, error) {
	b := &pgx.Batch{}
	for _, r := range rs {
		if err := storeutil.CheckImportedAlertRef(r); err != nil {
			return 0, err
		}
		labels, err := storeutil.AlertLabels(r.Labels)
		if err != nil {
			return 0, fmt.Errorf("encoding labels of %s #%d: %w", r.Phone, r.Ref, err)
		}
		b.Queue(importAlertRef, bridge.NewID(), cleanText(r.Phone), r.Ref, cleanText(r.Account), cleanText(r.Source),
			cleanText(r.GroupKey), cleanText(labels), cleanText(r.Title), storeutil.Millis(r.Paged), cleanText(r.SilenceID),
			storeutil.Millis(r.SilencedUntil))
	}
	return s.importBatch(ctx, "alert references", b)
}

// importBatch sends b, whose statements each insert a row or nothing, as
// one transaction (pgx runs a batch outside a transaction as one), and
// returns how many rows were inserted.
func (s *Store) importBatch(ctx context.Context, what string, b *pgx.Batch) (int, error) {
	if b.Len() == 0 {
		return 0, nil
	}
	n := 0
	for _, q := range b.QueuedQueries {
		q.Exec(func(tag pgconn.CommandTag) error {
			n += int(tag.RowsAffected())
			return nil
		})
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return 0, storeErr("importing "+what, err)
	}
	return n, nil
}
