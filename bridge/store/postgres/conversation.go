package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Conversations = (*Store)(nil)

// A Store is what bridge.New takes: the queue and the conversation log in
// one database.
var _ bridge.ConversationStore = (*Store)(nil)

const (
	// Creates the conversation, or marks it updated; never earlier than it
	// was: outcomes and inbound SMS are recorded out of order. Two
	// sessions creating the same conversation at once meet on the primary
	// key, the arbiter: the second waits for the first and updates. The
	// primary key must stay the table's only unique index (migration
	// 0005 dropped UNIQUE (phone, our)): a clash on any other is not
	// resolved by ON CONFLICT but raised, or deadlocks, when two sessions
	// create one conversation at once. A conversation without a provider
	// (from before they had one, with no SMS sent or received) takes the
	// first one that comes.
	upsertConversation = `INSERT INTO conversations AS c (id, phone, our, created, updated, provider)
		VALUES ($1, $2, $3, $4, $4, $5)
		ON CONFLICT (id) DO UPDATE SET updated = greatest(c.updated, EXCLUDED.updated),
		provider = CASE WHEN c.provider = '' THEN EXCLUDED.provider ELSE c.provider END`
	// The person who wrote last gets the replies: a touch older than the
	// routing recorded changes nothing, one as old replaces it (the later
	// writer wins a tie). Their SMS's provider is the one the phone's
	// replies may come through.
	routeConversation = `UPDATE conversations SET account = $1, reply_to = $2, mail_message_id = $3,
		subject = $4, last_out = $5, provider = $7 WHERE id = $6 AND last_out <= $5`

	// A duplicate dedupe key inserts nothing (waiting, if another session
	// is inserting it, for that one's outcome), and RecordInbound writes
	// nothing else.
	insertInbound = `INSERT INTO inbound (id, provider, dedupe_key, conversation_id, from_addr, to_addr,
		text, received, raw, mail_to, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (provider, dedupe_key) DO NOTHING`
	saveCursor = `INSERT INTO cursors (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`

	// provider_id <> '' is recipients_report's condition, stated so that
	// the planner can use the index for any $5.
	// A "delivered" notification queued with a report, recorded once.
	markDelivered = `UPDATE recipients SET notified = trim(both ',' from notified || ',delivered')
		WHERE id = ANY($1) AND ',' || notified || ',' NOT LIKE '%,delivered,%'`
	updateReported = `UPDATE recipients SET state = $1, error = $2, updated = $3
		WHERE provider = $4 AND provider_id = $5 AND provider_id <> ''
		AND state IN ('sent', 'delivered', 'undelivered') AND ($6 = '' OR to_addr = $6)`
	// Least recently asked first (see bridge.Conversations.Outstanding):
	// all recipients under one id are marked together, min(polled) only
	// lets one sent later under a known id bring it forward.
	selectOutstanding = `SELECT provider_id FROM recipients
		WHERE provider = $1 AND state = 'sent' AND updated >= $2 AND provider_id <> ''
		GROUP BY provider_id ORDER BY min(polled), min(updated), provider_id LIMIT $3`
	// provider_id <> '' for recipients_report, as in updateReported.
	markPolled = `UPDATE recipients SET polled = $1
		WHERE provider = $2 AND provider_id = ANY($3) AND provider_id <> '' AND state = 'sent'`

	// Takes the lease if it is free, expired, or the holder's own, in one
	// statement: of sessions racing for it, in any number of instances,
	// one inserts or updates the row and the others, after waiting for
	// it, find it taken. Only a taken lease counts as a changed row.
	upsertLease = `INSERT INTO leases AS l (name, holder, expires) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires
		WHERE l.holder = EXCLUDED.holder OR l.expires <= $4`
)

// cleanFiling is f with its text made storable (see cleanText).
func cleanFiling(f *storeutil.Filing) storeutil.Filing {
	c := storeutil.Filing{ID: cleanText(f.ID), Phone: cleanText(f.Phone), Our: cleanText(f.Our),
		Provider: cleanText(f.Provider), At: f.At}
	if r := f.Route; r != nil {
		c.Route = &storeutil.Route{Account: cleanText(r.Account), ReplyTo: cleanText(r.ReplyTo),
			MailMessageID: cleanText(r.MailMessageID), Subject: cleanText(r.Subject), LastOut: r.LastOut}
	}
	return c
}

// queueFiling adds the statements of f, made storable by cleanFiling, to b.
func queueFiling(b *pgx.Batch, f storeutil.Filing) {
	for _, st := range filingStmts(f) {
		b.Queue(st.query, st.args...)
	}
}

// filingStmts are the statements of f, made storable by cleanFiling, for
// a grouped write.
func filingStmts(f storeutil.Filing) []stmt {
	order := lockOrder{phase: phaseConversation, key: f.ID}
	sts := []stmt{{order: order, query: upsertConversation, args: []any{f.ID, f.Phone, f.Our, f.At, f.Provider}}}
	if r := f.Route; r != nil {
		sts = append(sts, stmt{order: order, query: routeConversation,
			args: []any{r.Account, r.ReplyTo, r.MailMessageID, r.Subject, r.LastOut, f.ID, f.Provider}})
	}
	return sts
}

// RecordInbound implements bridge.Conversations. The conversation is
// created with in's From as its phone, To as our sender and Received as
// its creation. The mail is queued as by QueueMail, created at in.Created
// unless it says otherwise. Of concurrent duplicates, in this or other instances,
// the unique (provider, dedupe_key) lets exactly one be recorded. Text
// fields a text column cannot hold are made valid (see cleanText); Raw
// keeps its bytes.
func (s *Store) RecordInbound(ctx context.Context, in *bridge.Inbound, mail *bridge.OutMail, cursor *bridge.Cursor) error {
	if err := storeutil.CheckInbound(in); err != nil {
		return err
	}
	var m *bridge.OutMail
	if mail != nil {
		q, err := storeutil.QueuedMail(mail, in.Created)
		if err != nil {
			return err
		}
		m = &q
	}
	f := cleanFiling(storeutil.FileInbound(in))
	dup := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, insertInbound, cleanText(in.ID), f.Provider, cleanText(in.DedupeKey), f.ID,
			f.Phone, f.Our, cleanText(in.Text), f.At, raw(in.Raw), cleanText(in.MailTo),
			storeutil.Millis(in.Created))
		if err != nil {
			return err
		}
		dup = tag.RowsAffected() == 0
		b := &pgx.Batch{}
		if !dup {
			queueFiling(b, f)
			if m != nil {
				queueMail(b, m)
			}
		}
		// Saved on a duplicate too: the poller has moved past it.
		if cursor != nil {
			b.Queue(saveCursor, cleanText(cursor.Name), cleanText(cursor.Value))
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return storeErr("recording inbound "+in.ID, err)
	}
	if dup {
		return fmt.Errorf("inbound %s from %s: %w", in.DedupeKey, in.Provider, bridge.ErrDuplicateKey)
	}
	return nil
}

// Conversation implements bridge.Conversations.
func (s *Store) Conversation(ctx context.Context, id string) (*bridge.Conversation, error) {
	c, err := scanConversation(s.pool.QueryRow(ctx, `SELECT `+storeutil.ConversationCols+` FROM conversations c WHERE c.id = $1`, id))
	return c, storeErr("reading conversation "+id, err)
}

// LatestConversation implements bridge.Conversations. With our, it is
// one of the two conversations bridge.ConversationID and
// bridge.ConversationIDVia name, the pair's own first: sender IDs match
// without regard to case, as those ids do.
func (s *Store) LatestConversation(ctx context.Context, phone, our, provider string) (*bridge.Conversation, error) {
	var row pgx.Row
	if our != "" {
		row = s.pool.QueryRow(ctx, `SELECT `+storeutil.ConversationCols+` FROM conversations c
			WHERE c.id IN ($1, $2) AND c.provider = $3 ORDER BY c.id = $1 DESC LIMIT 1`,
			bridge.ConversationID(phone, our), bridge.ConversationIDVia(phone, our, provider), provider)
	} else {
		row = s.pool.QueryRow(ctx, `SELECT `+storeutil.ConversationCols+` FROM conversations c
			WHERE c.phone = $1 AND c.provider = $2 ORDER BY c.updated DESC, c.id DESC LIMIT 1`, phone, provider)
	}
	c, err := scanConversation(row)
	return c, storeErr("reading conversation of "+phone, err)
}

// ListConversations implements bridge.Conversations. Conversations
// updated at the same instant come in descending id order.
func (s *Store) ListConversations(ctx context.Context, f bridge.ConversationFilter) ([]bridge.Conversation, error) {
	var where []string
	var args []any
	cond := func(c string, arg any) {
		args = append(args, arg)
		where = append(where, c+" $"+strconv.Itoa(len(args)))
	}
	if f.Phone != "" {
		cond("c.phone =", f.Phone)
	}
	if f.Account != "" {
		cond("c.account =", f.Account)
	}
	if !f.Since.IsZero() {
		cond("c.updated >=", storeutil.Millis(f.Since))
	}
	if f.Provider != "" {
		cond("c.provider =", f.Provider)
	}
	if f.State != "" {
		mine := ""
		if f.Account != "" {
			args = append(args, f.Account)
			mine = "$" + strconv.Itoa(len(args))
		}
		cond(storeutil.LastState(mine)+" =", string(f.State))
	}
	switch {
	case !f.Before.IsZero() && f.BeforeID != "":
		// A row comparison: the (updated, id) order the list is sorted in.
		args = append(args, storeutil.Millis(f.Before), f.BeforeID)
		where = append(where, fmt.Sprintf("(c.updated, c.id) < ($%d, $%d)", len(args)-1, len(args)))
	case !f.Before.IsZero():
		cond("c.updated <", storeutil.Millis(f.Before))
	}
	q := `SELECT ` + storeutil.ConversationCols + ` FROM conversations c`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, storeutil.ListLimit(f.Limit))
	q += ` ORDER BY c.updated DESC, c.id DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.pool.Query(ctx, q, args...)
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
	// REPEATABLE READ: both directions as of one moment.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	c, err := scanConversation(tx.QueryRow(ctx, `SELECT `+storeutil.ConversationCols+` FROM conversations c WHERE c.id = $1`, id))
	if err != nil {
		return nil, err
	}

	rows, err := tx.Query(ctx, `SELECT `+storeutil.LogOutCols+`
		FROM recipients r JOIN messages m ON m.id = r.message_id
		WHERE r.conversation_id = $1 ORDER BY m.created DESC, r.id DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, err
	}
	out, err := storeutil.ScanLogOut(rows, c)
	rows.Close()
	if err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT `+storeutil.LogInCols+` FROM inbound
		WHERE conversation_id = $1 ORDER BY received DESC, id DESC LIMIT $2`, id, limit)
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
	b := &pgx.Batch{}
	var n int64
	b.Queue(updateReported, string(r.State), cleanText(storeutil.ReportError(r)),
		storeutil.Millis(r.At), cleanText(r.Provider), cleanText(r.ProviderID), cleanText(r.To)).
		Exec(func(tag pgconn.CommandTag) error { n = tag.RowsAffected(); return nil })
	if len(r.Delivered) > 0 {
		b.Queue(markDelivered, r.Delivered)
	}
	// A batch runs in one implicit transaction: the report and its
	// notification's mark together.
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return 0, storeErr("recording delivery report", err)
	}
	return int(n), nil
}

// Outstanding implements bridge.Conversations. Recipients sent without a
// provider id cannot be asked about and are left out. The ids are read
// and marked in one transaction; pollers take turns through their lease,
// so no two mark at once.
func (s *Store) Outstanding(ctx context.Context, provider string, since, now time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	var ids []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, selectOutstanding, cleanText(provider), storeutil.Millis(since), limit)
		if err != nil {
			return err
		}
		if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(ids) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, markPolled, storeutil.Millis(now), cleanText(provider), ids)
		return err
	})
	if err != nil {
		return nil, storeErr("reading outstanding reports", err)
	}
	return ids, nil
}

// Cursor implements bridge.Conversations.
func (s *Store) Cursor(ctx context.Context, name string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM cursors WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return v, storeErr("reading cursor "+name, err)
}

// Lease implements bridge.Conversations with one statement (see
// upsertLease), so that across instances one holder at a time has it.
func (s *Store) Lease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if err := storeutil.CheckLease(name, holder, ttl); err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, upsertLease, cleanText(name), cleanText(holder),
		storeutil.Millis(now.Add(ttl)), storeutil.Millis(now))
	if err != nil {
		return false, storeErr("taking lease "+name, err)
	}
	return tag.RowsAffected() == 1, nil
}

// scanConversation reads one row of storeutil.ConversationCols; no row is
// bridge.ErrNotFound.
func scanConversation(row pgx.Row) (*bridge.Conversation, error) {
	c, err := storeutil.ScanConversation(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bridge.ErrNotFound
	}
	return c, err
}
