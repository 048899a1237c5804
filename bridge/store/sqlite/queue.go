package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Store = (*Store)(nil)

const (
	insertMessage = `INSERT INTO messages (id, channel, account, envelope_from, mail_message_id,
		reply_to, headers, subject, sender, text, template, params, send_at, created, sms_text, encoding, parts,
		envelope_id, dsn_return)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertRecipient = `INSERT INTO recipients (message_id, to_addr, providers, provider, state,
		attempts, next_attempt, provider_id, error, updated, notify, orcpt)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// A recipient claimed as it is stored (EnqueueClaim).
	insertClaimed = `INSERT INTO recipients (message_id, to_addr, providers, provider, state,
		attempts, next_attempt, provider_id, error, updated, notify, orcpt, provider_attempts, claimed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`

	// The index on (state, next_attempt) yields rows in (next_attempt, id)
	// order, so this reads limit index entries, not every due row.
	//
	// The claim selects write their limit as +? and not ?: SQLite plans
	// around a bare bound LIMIT and so expires the prepared statement
	// whenever the value changes, as the claim's quota does from one
	// claim to the next, and every claim parsed and planned the join
	// again. An expression it does not look into keeps one plan.
	selectDue = `SELECT ` + storeutil.RecipientCols + `, ` + storeutil.MessageCols + `
		FROM recipients r JOIN messages m ON m.id = r.message_id
		WHERE r.state = 'queued' AND r.next_attempt <= ?
		ORDER BY r.next_attempt, r.id LIMIT +?`
	// One provider's due recipients, read from recipients_provider_due.
	selectDueFor = `SELECT ` + storeutil.RecipientCols + `, ` + storeutil.MessageCols + `
		FROM recipients r JOIN messages m ON m.id = r.message_id
		WHERE r.state = 'queued' AND r.provider = ? AND r.next_attempt <= ?
		ORDER BY r.next_attempt, r.id LIMIT +?`
	// The due recipients of providers not in a JSON array of names: of
	// each provider queuedProviders finds, but those. CROSS JOIN keeps
	// that order: read by next_attempt first, the recipients of the
	// providers left out would be read to be dropped.
	selectDueExcept = queuedProviders + `SELECT ` + storeutil.RecipientCols + `, ` + storeutil.MessageCols + `
		FROM queued q CROSS JOIN recipients r ON r.state = 'queued' AND r.provider = q.provider AND r.next_attempt <= ?
		JOIN messages m ON m.id = r.message_id
		WHERE q.provider NOT IN (SELECT value FROM json_each(?))
		ORDER BY r.next_attempt, r.id LIMIT +?`
	// The earliest next attempt of the providers not in a JSON array of
	// names, one index lookup each.
	nextDueExcept = queuedProviders + `SELECT min((SELECT min(r.next_attempt) FROM recipients r
			WHERE r.state = 'queued' AND r.provider = q.provider))
		FROM queued q WHERE q.provider IS NOT NULL AND q.provider NOT IN (SELECT value FROM json_each(?))`
	// queuedProviders names each provider with recipients queued, walking
	// recipients_provider_due one provider at a time (a loose index
	// scan): an index lookup per provider, however many recipients each
	// has queued. A filter leaving providers out row by row would read
	// every queued recipient of those it leaves out: the whole backlog of
	// a provider at its quota, at every claim while it is.
	queuedProviders = `WITH RECURSIVE queued(provider) AS (
		SELECT (SELECT min(provider) FROM recipients WHERE state = 'queued')
		UNION ALL
		SELECT (SELECT min(provider) FROM recipients WHERE state = 'queued' AND provider > queued.provider)
			FROM queued WHERE queued.provider IS NOT NULL) `
	updateClaimed = `UPDATE recipients SET attempts = ?, provider_attempts = ?, next_attempt = ?, updated = ?, claimed = 1
		WHERE id = ?`

	// An outcome without a provider keeps the one recorded; one naming
	// another provider (a failover) starts its count of attempts there
	// afresh. (?2 is the outcome's provider again: SQLite numbers the
	// plain ? after it from 3.)
	// One without a cost keeps the cost recorded: a later outcome (a
	// cancellation at the provider) does not unsay what the send was billed.
	outcomeSet = `state = ?, provider = coalesce(nullif(?, ''), provider),
		provider_attempts = CASE WHEN coalesce(nullif(?2, ''), provider) = provider THEN provider_attempts ELSE 0 END,
		provider_id = ?, error = ?, info = ?, next_attempt = ?, updated = ?, claimed = 0,
		cost = coalesce(nullif(?, ''), cost), delay_notified = max(delay_notified, ?),
		notified = trim(notified || ',' || ?, ',')`
	updateOutcome = `UPDATE recipients SET ` + outcomeSet + ` WHERE id = ?`
	// The same, filing the recipient under a conversation.
	updateOutcomeFiled = `UPDATE recipients SET ` + outcomeSet + `, conversation_id = ? WHERE id = ?`
)

// Enqueue stores m and its recipients in one transaction and returns once
// that transaction is on disk. A recipient without a State is stored as
// queued. On success the recipients' IDs and MessageIDs are filled in.
//
// Text fields keep their bytes exactly; Params and Providers are stored as
// JSON, which turns invalid UTF-8 in them into U+FFFD.
func (s *Store) Enqueue(ctx context.Context, m *bridge.Message) error {
	_, err := s.enqueue(ctx, m, time.Time{}, nil)
	return err
}

// EnqueueClaim implements bridge.EnqueueClaimer. A claimed recipient is
// stored claimed, as Claim leaves it, so Recover treats it alike.
func (s *Store) EnqueueClaim(ctx context.Context, m *bridge.Message, now time.Time, t bridge.Taker) (int, error) {
	return s.enqueue(ctx, m, now, t)
}

// enqueue stores m, claiming at now the recipients t takes (t nil: none),
// and returns how many it claimed.
func (s *Store) enqueue(ctx context.Context, m *bridge.Message, now time.Time, t bridge.Taker) (int, error) {
	// Encode here, in the caller's goroutine: the writer is the one
	// thing every caller shares, so it should only run SQL.
	params, providers, err := storeutil.Encoded(m)
	if err != nil {
		return 0, err
	}
	msgArgs := []any{m.ID, string(m.Channel), m.Account, m.EnvelopeFrom, m.MailMessageID, m.ReplyTo,
		m.Headers, m.Subject, m.Sender, m.Text, m.Template, jsonText(params), storeutil.Millis(m.SendAt), storeutil.Millis(m.Created),
		m.SMSText, string(m.Encoding), m.Parts, m.EnvelopeID, string(m.Return)}
	claim := storeutil.NewHandoff(m, now, t)
	queries := make([]string, len(m.Recipients))
	rcptArgs := make([][]any, len(m.Recipients))
	for i := range m.Recipients {
		r, claimed := claim.Take(i)
		queries[i], rcptArgs[i] = insertRecipient, []any{m.ID, r.To, string(providers[i]), r.Provider, string(storeutil.StateOrQueued(r.State)),
			r.Attempts, storeutil.Millis(r.NextAttempt), r.ProviderID, r.Error, storeutil.Millis(r.Updated),
			r.Notify.String(), r.ORCPT}
		if claimed {
			queries[i], rcptArgs[i] = insertClaimed, append(rcptArgs[i], r.ProviderAttempts)
		}
	}

	ids := make([]int64, len(rcptArgs))
	err = s.writes.Do(ctx, &request{answered: claim.Answered, fn: func(ctx context.Context, tx writeTx) error {
		if _, err := tx.exec(ctx, insertMessage, msgArgs...); err != nil {
			return storeErr("inserting message "+m.ID, err)
		}
		if m.IdempotencyKey != "" {
			_, err := tx.exec(ctx, `INSERT INTO idempotency_keys (account, key, message_id, created, request_digest)
				VALUES (?, ?, ?, ?, ?)`, m.Account, m.IdempotencyKey, m.ID, storeutil.Millis(m.Created), m.RequestDigest)
			if isConstraint(err) {
				return bridge.ErrDuplicateKey
			}
			if err != nil {
				return storeErr("inserting idempotency key of "+m.ID, err)
			}
		}
		for i, args := range rcptArgs {
			res, err := tx.exec(ctx, queries[i], args...)
			if err != nil {
				return storeErr("inserting recipient of "+m.ID, err)
			}
			if ids[i], err = res.LastInsertId(); err != nil {
				return storeErr("inserting recipient of "+m.ID, err)
			}
			claim.Stored(i, ids[i])
		}
		return nil
	}})
	if err != nil {
		return 0, err
	}
	n := claim.Apply(m)
	storeutil.Enqueued(m, ids)
	return n, nil
}

// Claim implements bridge.Store. Running in the writer goroutine makes
// the selects and the updates one transaction that no other Claim can
// interleave with, so a recipient is handed out once per lease.
func (s *Store) Claim(ctx context.Context, now time.Time, limit int, quota map[string]int, lease func(attempts int) time.Duration) ([]bridge.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	steps := storeutil.ClaimSteps(limit, quota)
	// Encoded here, in the caller's goroutine (see Enqueue).
	except := make([]string, len(steps))
	for i, st := range steps {
		b, err := json.Marshal(st.Exclude)
		if err != nil {
			return nil, err
		}
		except[i] = string(b)
	}
	var jobs []bridge.Job
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		jobs = nil
		msgs := map[string]*bridge.Message{}
		for i, st := range steps {
			n := min(st.Limit, limit-len(jobs))
			if n <= 0 {
				continue
			}
			query, args := selectDue, []any{storeutil.Millis(now), n}
			switch {
			case !st.Others:
				query, args = selectDueFor, []any{st.Provider, storeutil.Millis(now), n}
			case len(st.Exclude) > 0:
				query, args = selectDueExcept, []any{storeutil.Millis(now), except[i], n}
			}
			var err error
			if jobs, err = s.selectJobs(ctx, tx, jobs, msgs, query, args); err != nil {
				return err
			}
		}
		storeutil.SortJobs(jobs)

		for i := range jobs {
			r := &jobs[i].Recipient
			storeutil.Claimed(r, now, lease)
			if _, err := tx.exec(ctx, updateClaimed, r.Attempts, r.ProviderAttempts, storeutil.Millis(r.NextAttempt),
				storeutil.Millis(r.Updated), r.ID); err != nil {
				return storeErr("claiming recipient", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// selectJobs runs one of Claim's selects and appends what it read to
// jobs; recipients of one message share its *Message through msgs.
func (s *Store) selectJobs(ctx context.Context, tx writeTx, jobs []bridge.Job, msgs map[string]*bridge.Message, query string, args []any) ([]bridge.Job, error) {
	rows, err := tx.query(ctx, query, args...)
	if err != nil {
		return nil, storeErr("selecting due recipients", err)
	}
	defer rows.Close()
	jobs, err = storeutil.AppendJobs(rows, jobs, msgs)
	return jobs, storeErr("reading due recipients", err)
}

// Complete implements bridge.Store. An outcome for an unknown recipient
// fails the whole call with an error wrapping bridge.ErrNotFound.
//
// An outcome's Conversation and Mail are recorded in the same transaction
// (see bridge.Conversations and filing); an outcome without them costs
// what it always did, one statement.
func (s *Store) Complete(ctx context.Context, outcomes []bridge.Outcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	prepared, err := storeutil.Outcomes(outcomes)
	if err != nil {
		return err
	}
	// The arguments are built here, in the caller's goroutine (see
	// Enqueue).
	steps := make([]outcomeStep, len(prepared))
	for i, o := range prepared {
		st := &steps[i]
		st.query, st.args = updateOutcome, []any{string(o.State), o.Provider, o.ProviderID, o.Error, jsonText(o.Info),
			storeutil.Millis(o.NextAttempt), storeutil.Millis(o.At), o.Cost, o.DelayNotified, string(o.Notified)}
		if o.File != nil {
			st.query, st.args = updateOutcomeFiled, append(st.args, o.File.ID)
		}
		st.args = append(st.args, o.RecipientID)
		st.file = o.File
		if o.Mail != nil {
			st.mail = mailArgs(o.Mail)
		}
	}
	return s.submit(ctx, func(ctx context.Context, tx writeTx) error {
		for i, st := range steps {
			res, err := tx.exec(ctx, st.query, st.args...)
			if err != nil {
				return storeErr("recording outcome", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return storeErr("recording outcome", err)
			} else if n == 0 {
				return fmt.Errorf("recipient %d: %w", outcomes[i].RecipientID, bridge.ErrNotFound)
			}
			if st.file != nil {
				if err := file(ctx, tx, st.file); err != nil {
					return err
				}
			}
			if st.mail != nil {
				if _, err := tx.exec(ctx, insertMail, st.mail...); err != nil {
					return storeErr("queueing mail", err)
				}
			}
		}
		return nil
	}, bridge.IsLate(ctx))
}

// outcomeStep is one outcome's statements, their arguments encoded
// before they reach the writer.
type outcomeStep struct {
	query string
	args  []any
	file  *storeutil.Filing // nil: no conversation
	mail  []any             // insertMail's arguments; nil: no mail
}

// Recover implements bridge.Store. A SQLite file has one daemon at a time,
// so every claim still open at start belongs to a run that died mid-send.
func (s *Store) Recover(ctx context.Context, now time.Time) (int, error) {
	return s.releaseClaims(ctx, "recipients", now)
}

// releaseClaims makes every queued row of table (recipients or outbox)
// that is marked claimed due at now and unclaimed.
func (s *Store) releaseClaims(ctx context.Context, table string, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		res, err := tx.exec(ctx, `UPDATE `+table+` SET next_attempt = ?, claimed = 0
			WHERE state = 'queued' AND claimed = 1`, storeutil.Millis(now))
		if err != nil {
			return storeErr("recovering claims in "+table, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err // n is not ours to read: see write
	}
	return int(n), nil
}

// MessageByKey implements bridge.Store.
func (s *Store) MessageByKey(ctx context.Context, account, key string) (*bridge.Message, error) {
	var id, digest string
	err := s.rdb.QueryRowContext(ctx, `SELECT message_id, request_digest FROM idempotency_keys WHERE account = ? AND key = ?`,
		account, key).Scan(&id, &digest)
	if errors.Is(err, sql.ErrNoRows) {
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
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		res, err := tx.exec(ctx, `UPDATE recipients SET state = 'cancelled', error = 'cancelled', updated = ?
			WHERE message_id = ? AND state = 'queued' AND claimed = 0`, storeutil.Millis(at), messageID)
		if err != nil {
			return storeErr("cancelling "+messageID, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err // n is not ours to read: see write
	}
	return int(n), nil
}

// NextDue implements bridge.Store.
func (s *Store) NextDue(ctx context.Context, skip ...string) (time.Time, bool, error) {
	var next sql.NullInt64
	query, args := `SELECT min(next_attempt) FROM recipients WHERE state = 'queued'`, []any(nil)
	if len(skip) > 0 {
		b, err := json.Marshal(skip)
		if err != nil {
			return time.Time{}, false, err
		}
		query, args = nextDueExcept, []any{string(b)}
	}
	ctx, err := uninterrupted(ctx)
	if err == nil {
		err = s.queryRowRead(ctx, query, args...).Scan(&next)
	}
	if err != nil || !next.Valid {
		return time.Time{}, false, storeErr("reading next due time", err)
	}
	return storeutil.FromMillis(next.Int64), true, nil
}

// statsQuery reads the queue depth from the counter the triggers of
// migration 0013 keep, and the oldest queued message through the
// recipients_queued index: two index lookups, whatever the queue holds.
// INDEXED BY makes a plan that would scan the table an error instead.
// "Oldest" is the message of the first recipient still queued, in the
// order they were stored; TestStatsQueryPlan checks the plan.
const statsQuery = `SELECT (SELECT queued FROM queue_stats WHERE id = 1),
	(SELECT m.created FROM messages m WHERE m.id =
		(SELECT r.message_id FROM recipients r WHERE r.id =
			(SELECT min(q.id) FROM recipients q INDEXED BY recipients_queued WHERE q.state = 'queued')))`

// Stats implements bridge.Store.
func (s *Store) Stats(ctx context.Context) (bridge.QueueStats, error) {
	var st bridge.QueueStats
	var oldest sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, statsQuery).Scan(&st.Queued, &oldest); err != nil {
		return bridge.QueueStats{}, storeErr("reading queue stats", err)
	}
	if oldest.Valid {
		st.OldestQueued = storeutil.FromMillis(oldest.Int64)
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
	// One read transaction: the message and its recipients as of one
	// moment, not a recipient list that moved on in between.
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()

	var mr storeutil.MessageRow
	err = tx.QueryRowContext(ctx, `SELECT `+storeutil.MessageCols+` FROM messages m WHERE m.id = ?`, id).Scan(mr.Dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bridge.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	m, err := mr.Message()
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+storeutil.RecipientCols+` FROM recipients r WHERE r.message_id = ? ORDER BY r.id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m.Recipients, err = storeutil.ScanRecipients(rows)
	return m, err
}

// jsonText is encoded JSON for a TEXT column of a STRICT table, which
// refuses a BLOB: nil (SQL NULL) stays nil.
func jsonText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
