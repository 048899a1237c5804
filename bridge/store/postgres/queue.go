package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Store = (*Store)(nil)

const (
	insertMessage = `INSERT INTO messages (id, channel, account, envelope_from, mail_message_id,
		reply_to, headers, subject, sender, text, template, params, send_at, created, sms_text, encoding, parts,
		envelope_id, dsn_return)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`
	insertKey = `INSERT INTO idempotency_keys (account, key, message_id, created, request_digest)
		VALUES ($1, $2, $3, $4, $5)`
	insertRecipient = `INSERT INTO recipients (message_id, to_addr, providers, provider, state,
		attempts, next_attempt, provider_id, error, updated, notify, orcpt)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`
	// A recipient claimed as it is stored (EnqueueClaim).
	insertClaimed = `INSERT INTO recipients (message_id, to_addr, providers, provider, state,
		attempts, next_attempt, provider_id, error, updated, notify, orcpt, provider_attempts, claimed_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`

	// FOR UPDATE OF r locks the recipients only: two dispatchers may
	// claim different recipients of one message. SKIP LOCKED makes a
	// concurrent Claim take the next due rows instead of waiting for
	// these, and under READ COMMITTED a row another Claim updated since
	// this statement's snapshot is re-checked against the WHERE clause,
	// so a recipient claimed a moment ago (its next_attempt now in the
	// future) is not returned again.
	selectDue = `SELECT ` + storeutil.RecipientCols + `, ` + storeutil.MessageCols + `
		FROM recipients r JOIN messages m ON m.id = r.message_id
		WHERE r.state = 'queued' AND r.next_attempt <= $1
		ORDER BY r.next_attempt, r.id LIMIT $2
		FOR UPDATE OF r SKIP LOCKED`
	// One provider's due recipients, read from recipients_provider_due.
	selectDueFor = `SELECT ` + storeutil.RecipientCols + `, ` + storeutil.MessageCols + `
		FROM recipients r JOIN messages m ON m.id = r.message_id
		WHERE r.state = 'queued' AND r.next_attempt <= $1 AND r.provider = $3
		ORDER BY r.next_attempt, r.id LIMIT $2
		FOR UPDATE OF r SKIP LOCKED`
	// The due recipients of providers not in $3: the first $2 of each
	// provider queuedProviders finds, but those, read provider by
	// provider from recipients_provider_due, then the first $2 of them
	// all. Read by next_attempt first, the recipients of the providers
	// left out would be read to be dropped; so "provider = q.provider" is
	// spelled as a range (>= and a row <=), which the planner cannot take
	// for a constant that makes recipients_provider_due's order the same
	// as recipients_due's. (A recipient another instance has locked takes
	// a place in its provider's $2: the next claim finds the ones after.)
	selectDueExcept = queuedProviders + `SELECT ` + storeutil.RecipientCols + `, ` + storeutil.MessageCols + `
		FROM queued q CROSS JOIN LATERAL (SELECT d.id FROM recipients d
			WHERE d.state = 'queued' AND d.provider >= q.provider AND (d.provider, d.next_attempt) <= (q.provider, $1)
			ORDER BY d.provider, d.next_attempt, d.id LIMIT $2) due
		JOIN recipients r ON r.id = due.id
		JOIN messages m ON m.id = r.message_id
		WHERE q.provider <> ALL($3)
		ORDER BY r.next_attempt, r.id LIMIT $2
		FOR UPDATE OF r SKIP LOCKED`
	// The earliest next attempt of the providers not in $1, one index
	// lookup each (the provider's range as in selectDueExcept).
	nextDueExcept = queuedProviders + `SELECT min((SELECT r.next_attempt FROM recipients r
			WHERE r.state = 'queued' AND r.provider >= q.provider AND r.provider <= q.provider
			ORDER BY r.provider, r.next_attempt LIMIT 1))
		FROM queued q WHERE q.provider <> ALL($1)`
	// queuedProviders names each provider with recipients queued, walking
	// recipients_provider_due one provider at a time (a loose index
	// scan): an index lookup per provider, however many recipients each
	// has queued. A filter leaving providers out row by row would read
	// every queued recipient of those it leaves out: the whole backlog of
	// a provider at its quota, at every claim while it is.
	queuedProviders = `WITH RECURSIVE queued(provider) AS (
		(SELECT provider FROM recipients WHERE state = 'queued' ORDER BY provider LIMIT 1)
		UNION ALL
		SELECT (SELECT r.provider FROM recipients r WHERE r.state = 'queued' AND r.provider > q.provider
			ORDER BY r.provider LIMIT 1)
		FROM queued q WHERE q.provider IS NOT NULL) `
	updateClaimed = `UPDATE recipients SET attempts = $1, provider_attempts = $2, next_attempt = $3, updated = $4,
		claimed_by = $5 WHERE id = $6`

	// An outcome without a provider keeps the one recorded; one naming
	// another provider (a failover) starts its count of attempts there
	// afresh.
	// One without a cost keeps the cost recorded: a later outcome (a
	// cancellation at the provider) does not unsay what the send was billed.
	outcomeSet = `state = $1, provider = coalesce(nullif($2, ''), provider),
		provider_attempts = CASE WHEN coalesce(nullif($2, ''), provider) = provider THEN provider_attempts ELSE 0 END,
		provider_id = $3, error = $4, info = $5, next_attempt = $6, updated = $7, claimed_by = NULL,
		cost = coalesce(nullif($8, ''), cost), delay_notified = delay_notified OR $10,
		notified = trim(both ',' from notified || ',' || $11)`
	updateOutcome = `UPDATE recipients SET ` + outcomeSet + ` WHERE id = $9`
	// The same, filing the recipient under a conversation.
	updateOutcomeFiled = `UPDATE recipients SET ` + outcomeSet + `, conversation_id = $12 WHERE id = $9`
)

// Enqueue stores m and its recipients in one transaction and returns once
// it has committed (durable, with the server's default synchronous_commit
// = on). A recipient without a State is stored as queued. On success the
// recipients' IDs and MessageIDs are filled in.
//
// The transaction is shared with the writes of other callers at the same
// moment (see tryWrites); a taken id or idempotency key fails this call
// alone.
//
// The text of the mail (envelope, headers, sender, text) keeps its bytes
// exactly; Params and Providers are stored as JSON, which turns invalid
// UTF-8 in them into U+FFFD.
func (s *Store) Enqueue(ctx context.Context, m *bridge.Message) error {
	_, err := s.enqueue(ctx, m, time.Time{}, nil)
	return err
}

// EnqueueClaim implements bridge.EnqueueClaimer. A claimed recipient is
// stored claimed by this instance, as Claim leaves it, so Recover treats
// it alike.
func (s *Store) EnqueueClaim(ctx context.Context, m *bridge.Message, now time.Time, t bridge.Taker) (int, error) {
	return s.enqueue(ctx, m, now, t)
}

// enqueue stores m, claiming at now the recipients t takes (t nil: none),
// and returns how many it claimed. The statements are built before the
// group runs them, so what t takes is decided once, however many times
// the group's transaction runs; the write's answer delivers or gives back.
func (s *Store) enqueue(ctx context.Context, m *bridge.Message, now time.Time, t bridge.Taker) (int, error) {
	params, providers, err := storeutil.Encoded(m)
	if err != nil {
		return 0, err
	}
	claim := storeutil.NewHandoff(m, now, t)
	ins := lockOrder{phase: phaseInsert}
	w := &write{fail: func(err error) error {
		if uniqueViolationOn(err, "idempotency_keys") {
			return bridge.ErrDuplicateKey
		}
		return storeErr("enqueueing "+m.ID, err)
	}, answered: claim.Answered}
	w.stmts = append(w.stmts, stmt{order: ins, query: insertMessage, args: []any{m.ID, string(m.Channel), m.Account, raw(m.EnvelopeFrom), raw(m.MailMessageID),
		raw(m.ReplyTo), raw(m.Headers), cleanText(m.Subject), raw(m.Sender), raw(m.Text), m.Template, params, storeutil.Millis(m.SendAt), storeutil.Millis(m.Created),
		raw(m.SMSText), string(m.Encoding), m.Parts, cleanText(m.EnvelopeID), string(m.Return)}})
	if m.IdempotencyKey != "" {
		w.stmts = append(w.stmts, stmt{order: ins, query: insertKey,
			args: []any{m.Account, m.IdempotencyKey, m.ID, storeutil.Millis(m.Created), m.RequestDigest}})
	}
	ids := make([]int64, len(m.Recipients))
	for i := range m.Recipients {
		r, claimed := claim.Take(i)
		query, args := insertRecipient, []any{m.ID, r.To, providers[i], r.Provider, string(storeutil.StateOrQueued(r.State)),
			r.Attempts, storeutil.Millis(r.NextAttempt), r.ProviderID, r.Error, storeutil.Millis(r.Updated),
			r.Notify.String(), cleanText(r.ORCPT)}
		if claimed {
			query, args = insertClaimed, append(args, r.ProviderAttempts, s.instance)
		}
		w.stmts = append(w.stmts, stmt{order: ins, query: query, args: args,
			read: func(br pgx.BatchResults) error {
				if err := br.QueryRow().Scan(&ids[i]); err != nil {
					return err
				}
				claim.Stored(i, ids[i])
				return nil
			}})
	}
	if err := s.writes.Do(ctx, w); err != nil {
		return 0, storeErr("enqueueing "+m.ID, err)
	}
	n := claim.Apply(m)
	storeutil.Enqueued(m, ids)
	return n, nil
}

// Claim implements bridge.Store. The rows are locked, read and updated in
// one transaction, with claimed_by set to this Store's instance id.
//
// It runs as a write of its own (see runWrites), not in the writer's
// group: the dispatcher claims one batch at a time, often what a single
// freed slot takes, so its rate follows a claim's latency, which waiting
// for the group in progress and then for its own would double. Alone it
// costs two round trips: BEGIN and the selects of every step together,
// then the updates with the COMMIT. The selects being sent at once, each
// asks for its step's whole limit and what exceeds what is left of limit
// after the steps before it is dropped: the same recipients as asking for
// only what is left, since each step reads in the order it keeps. The
// rows dropped stay locked, unclaimed, until the commit.
func (s *Store) Claim(ctx context.Context, now time.Time, limit int, quota map[string]int, lease func(attempts int) time.Duration) ([]bridge.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	steps := storeutil.ClaimSteps(limit, quota)
	read := make([][]bridge.Job, len(steps)) // what each step read
	msgs := map[string]*bridge.Message{}     // recipients of one message share its *Message
	var jobs []bridge.Job
	w := &write{fail: func(err error) error { return storeErr("claiming recipients", err) }}
	for i, st := range steps {
		query, args := selectDue, []any{storeutil.Millis(now), min(st.Limit, limit)}
		switch {
		case !st.Others:
			query, args = selectDueFor, append(args, st.Provider)
		case len(st.Exclude) > 0:
			query, args = selectDueExcept, append(args, st.Exclude)
		}
		w.stmts = append(w.stmts, stmt{order: lockOrder{phase: phaseInsert}, query: query, args: args,
			read: func(br pgx.BatchResults) error {
				rows, err := br.Query()
				if err != nil {
					return err
				}
				defer rows.Close()
				read[i], err = storeutil.AppendJobs(rows, nil, msgs)
				return err
			}})
	}
	w.after = func() ([]stmt, error) {
		jobs = nil
		for i, st := range steps {
			jobs = append(jobs, read[i][:min(len(read[i]), st.Limit, limit-len(jobs))]...)
		}
		storeutil.SortJobs(jobs)
		var updates []stmt
		for i := range jobs {
			r := &jobs[i].Recipient
			storeutil.Claimed(r, now, lease)
			updates = append(updates, stmt{order: lockOrder{phase: phaseRecipient, id: r.ID}, query: updateClaimed,
				args: []any{r.Attempts, r.ProviderAttempts, storeutil.Millis(r.NextAttempt), storeutil.Millis(r.Updated), s.instance, r.ID}})
		}
		return updates, nil
	}
	failed, ferr, err := s.runWrites(ctx, []*write{w})
	if failed >= 0 {
		err = ferr
	}
	if err != nil {
		return nil, storeErr("claiming recipients", err)
	}
	return jobs, nil
}

// Complete implements bridge.Store. An outcome for an unknown recipient
// fails the whole call with an error wrapping bridge.ErrNotFound.
//
// Error and ProviderID are diagnostics from providers; bytes a text
// column cannot hold (NUL, invalid UTF-8) are replaced rather than let
// the outcome of a send that happened go unrecorded. The same goes for
// the fields of a conversation touch.
//
// An outcome's Conversation and Mail are recorded in the same batch, and
// so the same transaction (see bridge.Conversations and filing); an
// outcome without them costs what it always did, one statement.
func (s *Store) Complete(ctx context.Context, outcomes []bridge.Outcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	// Recipients, like conversations below, are locked in id order: two
	// Completes for the same recipients (one of them late, after a lease
	// ran out and another instance claimed them) cannot deadlock. Stable:
	// of two outcomes for one recipient the later still wins.
	outcomes = slices.SortedStableFunc(slices.Values(outcomes), func(a, b bridge.Outcome) int {
		return cmp.Compare(a.RecipientID, b.RecipientID)
	})
	prepared, err := storeutil.Outcomes(outcomes)
	if err != nil {
		return err
	}
	// Each statement's rows affected, read at every try of the group's
	// transaction: a recipient that is not there fails the call.
	affected := make([]int64, len(prepared))
	w := &write{
		after: func() ([]stmt, error) {
			for i, n := range affected {
				if n == 0 {
					return nil, fmt.Errorf("recipient %d: %w", prepared[i].RecipientID, bridge.ErrNotFound)
				}
			}
			return nil, nil
		},
		fail: func(err error) error { return storeErr("recording outcomes", err) },
		late: bridge.IsLate(ctx),
	}
	var touches []storeutil.Filing
	var mails []*bridge.OutMail
	for i, o := range prepared {
		query, args := updateOutcome, []any{string(o.State), cleanText(o.Provider), cleanText(o.ProviderID), cleanText(o.Error),
			o.Info, storeutil.Millis(o.NextAttempt), storeutil.Millis(o.At), cleanText(o.Cost), o.RecipientID, o.DelayNotified, string(o.Notified)}
		if o.File != nil {
			f := cleanFiling(o.File)
			query, args = updateOutcomeFiled, append(args, f.ID)
			touches = append(touches, f)
		}
		if o.Mail != nil {
			mails = append(mails, o.Mail)
		}
		w.stmts = append(w.stmts, stmt{order: lockOrder{phase: phaseRecipient, id: o.RecipientID}, query: query, args: args,
			read: func(br pgx.BatchResults) error {
				tag, err := br.Exec()
				affected[i] = tag.RowsAffected()
				return err
			}})
	}
	// Conversations are locked in id order, whatever the order of the
	// outcomes (tryWrites sorts them): two Completes filing under the
	// same two conversations then cannot deadlock. The sort is stable, so
	// touches of one conversation keep their order (the later of equal
	// times wins).
	for _, f := range touches {
		w.stmts = append(w.stmts, filingStmts(f)...)
	}
	for _, m := range mails {
		w.stmts = append(w.stmts, mailStmt(m))
	}
	return storeErr("recording outcomes", s.writes.Do(ctx, w))
}

// Recover implements bridge.Store. Unlike a SQLite file, the database is
// shared by instances that are running: a claim is released only if the
// instance that took it is this one or is dead, that is, no session holds
// its advisory lock any longer. Claims of live instances are their sends
// in progress and stay as they are.
//
// This Store's own claims count too because Recover runs at start, before
// the dispatcher: any claim this instance id holds then was taken by an
// earlier, dead holder of the same id.
func (s *Store) Recover(ctx context.Context, now time.Time) (int, error) {
	return s.releaseClaims(ctx, "recipients", now)
}

// releaseClaims makes the queued rows of table (recipients or outbox)
// claimed by this instance id, or by instances whose lock is gone, due at
// now and unclaimed.
func (s *Store) releaseClaims(ctx context.Context, table string, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE `+table+` t SET next_attempt = $1, claimed_by = NULL
		WHERE t.state = 'queued' AND t.claimed_by IS NOT NULL
		AND (t.claimed_by = $2 OR NOT `+instanceAlive("t.claimed_by")+`)`,
		storeutil.Millis(now), s.instance, instanceLockClass)
	if err != nil {
		return 0, storeErr("recovering claims in "+table, err)
	}
	return int(tag.RowsAffected()), nil
}

// MessageByKey implements bridge.Store.
func (s *Store) MessageByKey(ctx context.Context, account, key string) (*bridge.Message, error) {
	var id, digest string
	err := s.pool.QueryRow(ctx, `SELECT message_id, request_digest FROM idempotency_keys WHERE account = $1 AND key = $2`,
		account, key).Scan(&id, &digest)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bridge.ErrNotFound
	}
	if err != nil {
		return nil, storeErr("reading idempotency key", err)
	}
	m, err := s.Message(ctx, id)
	if err != nil {
		return nil, err
	}
	m.IdempotencyKey, m.RequestDigest = key, digest
	return m, nil
}

// Cancel implements bridge.Store. Claimed recipients are in a
// dispatcher's hands (their send may be under way) and are left alone.
func (s *Store) Cancel(ctx context.Context, messageID string, at time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE recipients SET state = 'cancelled', error = 'cancelled', updated = $1
		WHERE message_id = $2 AND state = 'queued' AND claimed_by IS NULL`, storeutil.Millis(at), messageID)
	if err != nil {
		return 0, storeErr("cancelling "+messageID, err)
	}
	return int(tag.RowsAffected()), nil
}

// NextDue implements bridge.Store.
func (s *Store) NextDue(ctx context.Context, skip ...string) (time.Time, bool, error) {
	var next *int64
	query, args := `SELECT min(next_attempt) FROM recipients WHERE state = 'queued'`, []any{}
	if len(skip) > 0 {
		query, args = nextDueExcept, []any{skip}
	}
	err := s.pool.QueryRow(ctx, query, args...).Scan(&next)
	if err != nil || next == nil {
		return time.Time{}, false, storeErr("reading next due time", err)
	}
	return storeutil.FromMillis(*next), true, nil
}

// statsQuery reads the queue depth from the counters the triggers of
// migration 0011 keep (at most 64 rows), and the oldest queued message
// through the recipients_queued index: index lookups, whatever the queue
// holds. "Oldest" is the message of the first recipient still queued, in
// the order they were stored; TestStatsQueryPlan checks the plan.
const statsQuery = `SELECT (SELECT coalesce(sum(queued), 0) FROM queue_stats)::bigint,
	(SELECT m.created FROM messages m WHERE m.id =
		(SELECT r.message_id FROM recipients r WHERE r.state = 'queued' ORDER BY r.id LIMIT 1))`

// Stats implements bridge.Store.
func (s *Store) Stats(ctx context.Context) (bridge.QueueStats, error) {
	var st bridge.QueueStats
	var oldest *int64
	if err := s.pool.QueryRow(ctx, statsQuery).Scan(&st.Queued, &oldest); err != nil {
		return bridge.QueueStats{}, storeErr("reading queue stats", err)
	}
	if oldest != nil {
		st.OldestQueued = storeutil.FromMillis(*oldest)
	}
	return st, nil
}

// Message implements bridge.Store.
func (s *Store) Message(ctx context.Context, id string) (*bridge.Message, error) {
	m, err := s.message(ctx, id)
	if err != nil {
		return nil, storeErr("reading message "+id, err)
	}
	return m, nil
}

func (s *Store) message(ctx context.Context, id string) (*bridge.Message, error) {
	// REPEATABLE READ: the message and its recipients as of one moment,
	// not a recipient list that moved on in between.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	var mr storeutil.MessageRow
	err = tx.QueryRow(ctx, `SELECT `+storeutil.MessageCols+` FROM messages m WHERE m.id = $1`, id).Scan(mr.Dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bridge.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	m, err := mr.Message()
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT `+storeutil.RecipientCols+` FROM recipients r WHERE r.message_id = $1 ORDER BY r.id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m.Recipients, err = storeutil.ScanRecipients(rows)
	return m, err
}

// raw is s for a bytea column. Never nil: pgx sends a nil []byte as NULL.
func raw(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return []byte(s)
}

// cleanText makes s storable in a text column: valid UTF-8 without NUL.
func cleanText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
