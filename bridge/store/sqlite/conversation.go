package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Conversations = (*Store)(nil)

// A Store is what bridge.New takes: the queue and the conversation log in
// one database.
var _ bridge.ConversationStore = (*Store)(nil)

const (
	// Creates the conversation, or marks it updated; never earlier than it
	// was: outcomes and inbound SMS are recorded out of order. A
	// conversation without a provider (from before they had one, with no
	// SMS sent or received) takes the first one that comes.
	upsertConversation = `INSERT INTO conversations (id, phone, our, provider, created, updated) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET updated = max(updated, excluded.updated),
		provider = CASE WHEN provider = '' THEN excluded.provider ELSE provider END`
	// The person who wrote last gets the replies: a touch older than the
	// routing recorded changes nothing, one as old replaces it (the later
	// writer wins a tie). Their SMS's provider is the one the phone's
	// replies may come through.
	routeConversation = `UPDATE conversations SET account = ?, reply_to = ?, mail_message_id = ?,
		subject = ?, last_out = ?, provider = ? WHERE id = ? AND last_out <= ?`

	// A duplicate dedupe key inserts nothing, and RecordInbound writes
	// nothing else; another conflict (a taken id) is an error.
	insertInbound = `INSERT INTO inbound (id, provider, dedupe_key, conversation_id, from_addr, to_addr,
		text, received, raw, mail_to, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (provider, dedupe_key) DO NOTHING`
	saveCursor = `INSERT INTO cursors (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`

	// provider_id <> '' is recipients_report's condition, stated so that
	// the planner uses the index.
	// A "delivered" notification queued with a report, recorded once.
	markDelivered = `UPDATE recipients SET notified = trim(notified || ',delivered', ',')
		WHERE id = ? AND ',' || notified || ',' NOT LIKE '%,delivered,%'`
	updateReported = `UPDATE recipients SET state = ?, error = ?, updated = ?
		WHERE provider = ? AND provider_id = ? AND provider_id <> ''
		AND state IN ('sent', 'delivered', 'undelivered') AND (? = '' OR to_addr = ?)`
	// Least recently asked first (see bridge.Conversations.Outstanding):
	// all recipients under one id are marked together, min(polled) only
	// lets one sent later under a known id bring it forward.
	selectOutstanding = `SELECT provider_id FROM recipients
		WHERE provider = ? AND state = 'sent' AND updated >= ? AND provider_id <> ''
		GROUP BY provider_id ORDER BY min(polled), min(updated), provider_id LIMIT ?`
	// provider_id <> '' for recipients_report, as in updateReported.
	markPolled = `UPDATE recipients SET polled = ?
		WHERE provider = ? AND provider_id = ? AND provider_id <> '' AND state = 'sent'`

	// Takes the lease if it is free, expired, or the holder's own; the
	// update (and so the count of changed rows) happens only then.
	upsertLease = `INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
		WHERE leases.holder = excluded.holder OR leases.expires <= ?`
)

// file runs the statements of f (see storeutil.Filing).
func file(ctx context.Context, tx writeTx, f *storeutil.Filing) error {
	if _, err := tx.exec(ctx, upsertConversation, f.ID, f.Phone, f.Our, f.Provider, f.At, f.At); err != nil {
		return storeErr("recording conversation", err)
	}
	if r := f.Route; r != nil {
		if _, err := tx.exec(ctx, routeConversation, r.Account, r.ReplyTo, r.MailMessageID, r.Subject, r.LastOut,
			f.Provider, f.ID, r.LastOut); err != nil {
			return storeErr("recording reply routing", err)
		}
	}
	return nil
}

// RecordInbound implements bridge.Conversations. The conversation is
// created with in's From as its phone, To as our sender and Received as
// its creation. The mail is queued as by QueueMail, created at in.Created
// unless it says otherwise. Running in the writer makes the dedupe check and the
// insert one step no other RecordInbound can come between, so of
// concurrent duplicates exactly one is recorded.
func (s *Store) RecordInbound(ctx context.Context, in *bridge.Inbound, mail *bridge.OutMail, cursor *bridge.Cursor) error {
	if err := storeutil.CheckInbound(in); err != nil {
		return err
	}
	received := storeutil.Millis(in.Received)
	inArgs := []any{in.ID, in.Provider, in.DedupeKey, in.Conversation, in.From, in.To, in.Text,
		received, in.Raw, in.MailTo, storeutil.Millis(in.Created)}
	var mArgs []any
	if mail != nil {
		m, err := storeutil.QueuedMail(mail, in.Created)
		if err != nil {
			return err
		}
		mArgs = mailArgs(&m)
	}
	dup := false
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		res, err := tx.exec(ctx, insertInbound, inArgs...)
		if err != nil {
			return storeErr("recording inbound "+in.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return storeErr("recording inbound "+in.ID, err)
		}
		dup = n == 0
		if !dup {
			if err := file(ctx, tx, storeutil.FileInbound(in)); err != nil {
				return fmt.Errorf("inbound %s: %w", in.ID, err)
			}
			if mArgs != nil {
				if _, err := tx.exec(ctx, insertMail, mArgs...); err != nil {
					return storeErr("queueing mail for inbound "+in.ID, err)
				}
			}
		}
		// Saved on a duplicate too: the poller has moved past it.
		if cursor != nil {
			if _, err := tx.exec(ctx, saveCursor, cursor.Name, cursor.Value); err != nil {
				return storeErr("saving cursor "+cursor.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if dup {
		return fmt.Errorf("inbound %s from %s: %w", in.DedupeKey, in.Provider, bridge.ErrDuplicateKey)
	}
	return nil
}

// Conversation implements bridge.Conversations.
func (s *Store) Conversation(ctx context.Context, id string) (*bridge.Conversation, error) {
	c, err := scanConversation(s.rdb.QueryRowContext(ctx, `SELECT `+storeutil.ConversationCols+` FROM conversations c WHERE c.id = ?`, id))
	return c, storeErr("reading conversation "+id, err)
}

// LatestConversation implements bridge.Conversations. With our, it is
// one of the two conversations bridge.ConversationID and
// bridge.ConversationIDVia name, the pair's own first: sender IDs match
// without regard to case, as those ids do.
func (s *Store) LatestConversation(ctx context.Context, phone, our, provider string) (*bridge.Conversation, error) {
	var row *sql.Row
	if our != "" {
		row = s.rdb.QueryRowContext(ctx, `SELECT `+storeutil.ConversationCols+` FROM conversations c
			WHERE c.id IN (?1, ?2) AND c.provider = ?3 ORDER BY c.id = ?1 DESC LIMIT 1`,
			bridge.ConversationID(phone, our), bridge.ConversationIDVia(phone, our, provider), provider)
	} else {
		row = s.rdb.QueryRowContext(ctx, `SELECT `+storeutil.ConversationCols+` FROM conversations c
			WHERE c.phone = ? AND c.provider = ? ORDER BY c.updated DESC, c.id DESC LIMIT 1`, phone, provider)
	}
	c, err := scanConversation(row)
	return c, storeErr("reading conversation of "+phone, err)
}

// ListConversations implements bridge.Conversations. Conversations
// updated at the same instant come in descending id order.
func (s *Store) ListConversations(ctx context.Context, f bridge.ConversationFilter) ([]bridge.Conversation, error) {
	var where []string
	var args []any
	if f.Phone != "" {
		where, args = append(where, "c.phone = ?"), append(args, f.Phone)
	}
	if f.Account != "" {
		where, args = append(where, "c.account = ?"), append(args, f.Account)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "c.updated >= ?"), append(args, storeutil.Millis(f.Since))
	}
	if f.Provider != "" {
		where, args = append(where, "c.provider = ?"), append(args, f.Provider)
	}
	if f.State != "" {
		mine := ""
		if f.Account != "" {
			mine, args = "?", append(args, f.Account)
		}
		where, args = append(where, storeutil.LastState(mine)+" = ?"), append(args, string(f.State))
	}
	switch {
	case !f.Before.IsZero() && f.BeforeID != "":
		where = append(where, "(c.updated < ? OR (c.updated = ? AND c.id < ?))")
		args = append(args, storeutil.Millis(f.Before), storeutil.Millis(f.Before), f.BeforeID)
	case !f.Before.IsZero():
		where, args = append(where, "c.updated < ?"), append(args, storeutil.Millis(f.Before))
	}
	q := `SELECT ` + storeutil.ConversationCols + ` FROM conversations c`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY c.updated DESC, c.id DESC LIMIT ?`
	rows, err := s.rdb.QueryContext(ctx, q, append(args, storeutil.ListLimit(f.Limit))...)
	if err != nil {
		return nil, storeErr("listing conversations", err)
	}
	defer rows.Close()
	list, err := storeutil.ScanAll(rows, storeutil.ScanConversationValue)
	return list, storeErr("listing conversations", err)
}

// ConversationLog implements bridge.Conversations. An unknown
// conversation is bridge.ErrNotFound.
func (s *Store) ConversationLog(ctx context.Context, id string, limit int) ([]bridge.LogEntry, error) {
	log, err := s.conversationLog(ctx, id, storeutil.LogLimit(limit))
	return log, storeErr("reading conversation log "+id, err)
}

func (s *Store) conversationLog(ctx context.Context, id string, limit int) ([]bridge.LogEntry, error) {
	// One read transaction: both directions as of one moment.
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	c, err := scanConversation(tx.QueryRowContext(ctx, `SELECT `+storeutil.ConversationCols+` FROM conversations c WHERE c.id = ?`, id))
	if err != nil {
		return nil, err
	}

	rows, err := tx.QueryContext(ctx, `SELECT `+storeutil.LogOutCols+`
		FROM recipients r JOIN messages m ON m.id = r.message_id
		WHERE r.conversation_id = ? ORDER BY m.created DESC, r.id DESC LIMIT ?`, id, limit)
	if err != nil {
		return nil, err
	}
	out, err := storeutil.ScanLogOut(rows, c)
	rows.Close()
	if err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT `+storeutil.LogInCols+` FROM inbound
		WHERE conversation_id = ? ORDER BY received DESC, id DESC LIMIT ?`, id, limit)
	if err != nil {
		return nil, err
	}
	in, err := storeutil.ScanLogIn(rows, c)
	rows.Close()
	if err != nil {
		return nil, err
	}
	return storeutil.MergeLog(out, in, limit), nil
}

// Report implements bridge.Conversations. The report's Detail becomes the
// Error of recipients it finds undelivered and clears it on the others
// (see storeutil.ReportError). A report of StateSent is no news and
// changes nothing.
func (s *Store) Report(ctx context.Context, r bridge.DeliveryReport) (int, error) {
	if err := storeutil.CheckReport(r); err != nil {
		return 0, err
	}
	if r.State == bridge.StateSent {
		return 0, nil
	}
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		res, err := tx.exec(ctx, updateReported, string(r.State), storeutil.ReportError(r), storeutil.Millis(r.At),
			r.Provider, r.ProviderID, r.To, r.To)
		if err != nil {
			return storeErr("recording delivery report", err)
		}
		for _, id := range r.Delivered {
			if _, err := tx.exec(ctx, markDelivered, id); err != nil {
				return storeErr("recording delivery report", err)
			}
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		// n is not to be read: write returns at the caller's deadline
		// while the writer may still be running the function.
		return 0, err
	}
	return int(n), nil
}

// Outstanding implements bridge.Conversations. Recipients sent without a
// provider id cannot be asked about and are left out. The ids are read
// and marked in one write transaction.
func (s *Store) Outstanding(ctx context.Context, provider string, since, now time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	var ids []string
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		ids = nil
		rows, err := tx.query(ctx, selectOutstanding, provider, storeutil.Millis(since), limit)
		if err != nil {
			return storeErr("reading outstanding reports", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return storeErr("reading outstanding reports", err)
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return storeErr("reading outstanding reports", err)
		}
		rows.Close()
		polled := storeutil.Millis(now)
		for _, id := range ids {
			if _, err := tx.exec(ctx, markPolled, polled, provider, id); err != nil {
				return storeErr("marking reports asked for", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// Cursor implements bridge.Conversations.
func (s *Store) Cursor(ctx context.Context, name string) (string, error) {
	var v string
	err := s.rdb.QueryRowContext(ctx, `SELECT value FROM cursors WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, storeErr("reading cursor "+name, err)
}

// Lease implements bridge.Conversations with one statement in the
// writer. A SQLite file has one daemon at a time, but its pollers still
// take turns through the lease.
func (s *Store) Lease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if err := storeutil.CheckLease(name, holder, ttl); err != nil {
		return false, err
	}
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		res, err := tx.exec(ctx, upsertLease, name, holder, storeutil.Millis(now.Add(ttl)), storeutil.Millis(now))
		if err != nil {
			return storeErr("taking lease "+name, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, err // n is not ours to read: see write
	}
	return n == 1, nil
}

// scanConversation reads one row of storeutil.ConversationCols; no row is
// bridge.ErrNotFound.
func scanConversation(row storeutil.Row) (*bridge.Conversation, error) {
	c, err := storeutil.ScanConversation(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bridge.ErrNotFound
	}
	return c, err
}
