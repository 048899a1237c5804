package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
	"github.com/smsbridge/smsbridge/bridge/store/storeexport"
)

// ExportPage is the most rows an export hands to its callback at once.
// Each page is read in a read transaction of its own that ends before the
// callback runs, so a slow target never keeps a read open on the file
// (which would stop WAL checkpoints) and the store may stay in use.
const ExportPage = 256

// Export calls fn with every stored message with its recipients (as
// stored, conversations and polling included) and idempotency key, a page at a time,
// in id order (which is creation order, give or take a millisecond), for
// `smsbridge migrate-store`.
func (s *Store) Export(ctx context.Context, fn func([]storeexport.Message) error) error {
	// The keys are read first, into memory: idempotency_keys has no index
	// by message, and a few dozen bytes per key cost less than scanning
	// the table once per page.
	keys, err := s.idempotencyKeys(ctx)
	if err != nil {
		return storeErr("exporting idempotency keys", err)
	}
	for after := ""; ; {
		page, err := s.messagePage(ctx, after)
		if err != nil {
			return storeErr("exporting messages", err)
		}
		if len(page) == 0 {
			return nil
		}
		for _, m := range page {
			k := keys[m.Message.ID]
			m.Message.IdempotencyKey, m.Message.RequestDigest = k.key, k.digest
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < ExportPage {
			return nil
		}
		after = page[len(page)-1].Message.ID
	}
}

// idempotencyKey is a message's key and the digest of the request that
// used it (what a retry with the same key is compared with).
type idempotencyKey struct{ key, digest string }

// idempotencyKeys returns the message id → key of every idempotency key,
// in one read (no callback runs during it).
func (s *Store) idempotencyKeys(ctx context.Context) (map[string]idempotencyKey, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT message_id, key, request_digest FROM idempotency_keys`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	keys := map[string]idempotencyKey{}
	for rows.Next() {
		var id string
		var k idempotencyKey
		if err := rows.Scan(&id, &k.key, &k.digest); err != nil {
			return nil, err
		}
		keys[id] = k
	}
	return keys, rows.Err()
}

// messagePage reads the messages after the id after, with their
// recipients, in one read transaction.
func (s *Store) messagePage(ctx context.Context, after string) ([]storeexport.Message, error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()

	rows, err := tx.QueryContext(ctx, `SELECT `+storeutil.MessageCols+` FROM messages m
		WHERE m.id > ? ORDER BY m.id LIMIT ?`, after, ExportPage)
	if err != nil {
		return nil, err
	}
	var page []storeexport.Message
	for rows.Next() {
		var mr storeutil.MessageRow
		if err := rows.Scan(mr.Dest()...); err != nil {
			rows.Close()
			return nil, err
		}
		m, err := mr.Message()
		if err != nil {
			rows.Close()
			return nil, err
		}
		page = append(page, storeexport.Message{Message: m})
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(page) == 0 {
		return nil, err
	}
	byID := make(map[string]*storeexport.Message, len(page))
	for i := range page {
		byID[page[i].Message.ID] = &page[i]
	}

	// The page is an id range, which selects its recipients through the
	// messages' primary key and recipients_message.
	rows, err = tx.QueryContext(ctx, `SELECT `+storeutil.RecipientCols+`, r.info, r.conversation_id, r.polled, r.claimed
		FROM messages m JOIN recipients r ON r.message_id = m.id
		WHERE m.id > ? AND m.id <= ? ORDER BY r.id`, after, page[len(page)-1].Message.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var rr storeutil.RecipientRow
		var info, conv sql.NullString
		var polled int64
		var claimed bool
		if err := rows.Scan(append(rr.Dest(), &info, &conv, &polled, &claimed)...); err != nil {
			return nil, err
		}
		r, err := rr.Recipient()
		if err != nil {
			return nil, err
		}
		rec := storeexport.Recipient{Recipient: r, Conversation: conv.String, Polled: storeutil.FromMillis(polled), Claimed: claimed}
		if info.Valid {
			if err := json.Unmarshal([]byte(info.String), &rec.Info); err != nil {
				return nil, fmt.Errorf("recipient %d: decoding info: %w", r.ID, err)
			}
		}
		m := byID[r.MessageID]
		m.Recipients = append(m.Recipients, rec)
	}
	return page, rows.Err()
}

// ExportConversations calls fn with every conversation, a page at a
// time, in id order.
func (s *Store) ExportConversations(ctx context.Context, fn func([]bridge.Conversation) error) error {
	return exportPages(ctx, s.rdb, "conversations",
		`SELECT `+storeutil.ConversationCols+` FROM conversations c WHERE c.id > ? ORDER BY c.id LIMIT ?`,
		func(rows *sql.Rows) (bridge.Conversation, string, error) {
			c, err := scanConversation(rows)
			if err != nil {
				return bridge.Conversation{}, "", err
			}
			return *c, c.ID, nil
		}, fn)
}

// ExportInbound calls fn with every received SMS, a page at a time, in id
// order (which is the order they were recorded in).
func (s *Store) ExportInbound(ctx context.Context, fn func([]bridge.Inbound) error) error {
	return exportPages(ctx, s.rdb, "inbound",
		`SELECT id, provider, dedupe_key, conversation_id, from_addr, to_addr, text, received, raw, mail_to, created
		FROM inbound WHERE id > ? ORDER BY id LIMIT ?`,
		func(rows *sql.Rows) (bridge.Inbound, string, error) {
			var in bridge.Inbound
			var received, created int64
			err := rows.Scan(&in.ID, &in.Provider, &in.DedupeKey, &in.Conversation, &in.From, &in.To, &in.Text,
				&received, &in.Raw, &in.MailTo, &created)
			in.Received, in.Created = storeutil.FromMillis(received), storeutil.FromMillis(created)
			return in, in.ID, err
		}, fn)
}

// ExportMail calls fn with every mail of the mail queue, whatever its
// state, with its attempts and next attempt, a page at a time, in id
// order.
func (s *Store) ExportMail(ctx context.Context, fn func([]bridge.OutMail) error) error {
	return exportPages(ctx, s.rdb, "mail",
		`SELECT `+storeutil.MailCols+` FROM outbox WHERE id > ? ORDER BY id LIMIT ?`,
		func(rows *sql.Rows) (bridge.OutMail, string, error) {
			m, err := storeutil.ScanMail(rows)
			if err != nil {
				return bridge.OutMail{}, "", err
			}
			return *m, m.ID, nil
		}, fn)
}

// ExportCursors calls fn with the saved positions of every poller, a page
// at a time, in name order. Leases are not exported: they belong to the
// daemon instances running now.
func (s *Store) ExportCursors(ctx context.Context, fn func([]bridge.Cursor) error) error {
	return exportPages(ctx, s.rdb, "cursors",
		`SELECT name, value FROM cursors WHERE name > ? ORDER BY name LIMIT ?`,
		func(rows *sql.Rows) (bridge.Cursor, string, error) {
			var c bridge.Cursor
			err := rows.Scan(&c.Name, &c.Value)
			return c, c.Name, err
		}, fn)
}

// exportPages reads a table in pages of ExportPage rows, each in a read
// transaction of its own, and calls fn with each. query takes the key of
// the last row of the previous page ("" for the first) and the page size;
// scan reads a row and returns its key.
func exportPages[T any](ctx context.Context, db *sql.DB, what, query string,
	scan func(*sql.Rows) (T, string, error), fn func([]T) error) error {
	for after := ""; ; {
		page, last, err := readPage(ctx, db, query, after, scan)
		if err != nil {
			return storeErr("exporting "+what, err)
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < ExportPage {
			return nil
		}
		after = last
	}
}

func readPage[T any](ctx context.Context, db *sql.DB, query, after string,
	scan func(*sql.Rows) (T, string, error)) (page []T, last string, err error) {
	rows, err := db.QueryContext(ctx, query, after, ExportPage)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	for rows.Next() {
		v, key, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		page, last = append(page, v), key
	}
	return page, last, rows.Err()
}

// ExportSenderClaims calls fn with every sender claim, a page at a time,
// in key order: who holds which pool number with which phone, until when,
// so that a phone's reply after the move reaches the writer it answers.
// Claims that ran out are exported too: as in this store, they are no
// longer live, and the target deletes them as it makes new ones.
func (s *Store) ExportSenderClaims(ctx context.Context, fn func([]bridge.SenderClaim) error) error {
	return exportPages(ctx, s.rdb, "sender claims",
		`SELECT `+storeutil.ClaimCols+` FROM sender_claims
		WHERE phone || char(31) || our || char(31) || writer > ?
		ORDER BY phone || char(31) || our || char(31) || writer LIMIT ?`,
		func(rows *sql.Rows) (bridge.SenderClaim, string, error) {
			c, err := storeutil.ScanClaim(rows)
			return c, c.Phone + "\x1f" + c.Our + "\x1f" + c.Writer, err
		}, fn)
}

// ExportAlertRefs calls fn with every alert reference, silence included,
// a page at a time, in id order, so that a phone's answer to an alert
// paged before the move ("#3 silence 2h") still finds its group. The id
// only pages the export: it is this store's own, as recipient ids are.
func (s *Store) ExportAlertRefs(ctx context.Context, fn func([]bridge.AlertRef) error) error {
	return exportPages(ctx, s.rdb, "alert references",
		`SELECT `+storeutil.AlertRefCols+`, id FROM alert_refs WHERE id > ? ORDER BY id LIMIT ?`,
		func(rows *sql.Rows) (bridge.AlertRef, string, error) {
			var id string
			r, err := storeutil.ScanAlertRef(rows, &id)
			if err != nil {
				return bridge.AlertRef{}, "", err
			}
			return *r, id, nil
		}, fn)
}
