package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.MailQueue = (*Store)(nil)

const (
	// A mail whose id is stored already is not stored again: a call
	// retried after its commit went unanswered cannot send it twice.
	insertMail = `INSERT INTO outbox (` + storeutil.MailCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (id) DO NOTHING`

	// Locks, reads and updates the due mails in one statement. As in
	// Claim, SKIP LOCKED makes a concurrent claim take the next due mails,
	// and a mail another claim updated meanwhile is re-checked against
	// the WHERE clause and left out. RETURNING comes in no set order, so
	// it also returns each mail's due time, to put them back in order.
	claimMail = `WITH due AS (
			SELECT id, next_attempt FROM outbox
			WHERE state = 'queued' AND next_attempt <= $1
			ORDER BY next_attempt, created, id LIMIT $2
			FOR UPDATE SKIP LOCKED)
		UPDATE outbox o SET attempts = o.attempts + 1, next_attempt = $3, updated = $1, claimed_by = $4
		FROM due WHERE o.id = due.id
		RETURNING o.id, o.kind, o.ref, o.from_addr, o.to_addr, o.data, o.state, o.attempts,
			o.next_attempt, o.error, o.created, o.updated, due.next_attempt`
)

// queueMail adds m, as storeutil.QueuedMail made it, to b. Addresses and
// the error are diagnostics or come from mail headers; see cleanText.
func queueMail(b *pgx.Batch, m *bridge.OutMail) {
	st := mailStmt(m)
	b.Queue(st.query, st.args...)
}

// mailStmt is queueMail's statement, for a grouped write.
func mailStmt(m *bridge.OutMail) stmt {
	return stmt{order: lockOrder{phase: phaseMail}, query: insertMail, args: []any{cleanText(m.ID), cleanText(string(m.Kind)),
		cleanText(m.Ref), cleanText(m.From), cleanText(m.To), m.Data, string(m.State), m.Attempts,
		storeutil.Millis(m.NextAttempt), cleanText(m.Error), storeutil.Millis(m.Created), storeutil.Millis(m.Updated)}}
}

// QueueMail implements bridge.MailQueue. The mail is stored queued, with
// no attempts, due at NextAttempt or else at once.
func (s *Store) QueueMail(ctx context.Context, mail *bridge.OutMail) error {
	m, err := storeutil.QueuedMail(mail, time.Time{})
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	queueMail(b, &m)
	return storeErr("queueing mail "+m.ID, s.pool.SendBatch(ctx, b).Close())
}

// ClaimMail implements bridge.MailQueue (see claimMail).
func (s *Store) ClaimMail(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]bridge.OutMail, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, claimMail, storeutil.Millis(now), limit, storeutil.Millis(now.Add(lease)), s.instance)
	if err != nil {
		return nil, storeErr("claiming mail", err)
	}
	type claimed struct {
		mail *bridge.OutMail
		due  int64
	}
	var got []claimed
	for rows.Next() {
		var c claimed
		var err error
		if c.mail, err = storeutil.ScanMail(rows, &c.due); err != nil {
			rows.Close()
			return nil, storeErr("claiming mail", err)
		}
		got = append(got, c)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("claiming mail", err)
	}
	slices.SortFunc(got, func(a, b claimed) int {
		return cmp.Or(cmp.Compare(a.due, b.due), a.mail.Created.Compare(b.mail.Created), strings.Compare(a.mail.ID, b.mail.ID))
	})
	mails := make([]bridge.OutMail, len(got))
	for i, c := range got {
		mails[i] = *c.mail
	}
	return mails, nil
}

// CompleteMail implements bridge.MailQueue. An unknown id is
// bridge.ErrNotFound.
func (s *Store) CompleteMail(ctx context.Context, id string, state bridge.MailState, errText string, next, at time.Time) error {
	if err := storeutil.CheckMailState(id, state); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE outbox SET state = $1, error = $2, next_attempt = $3, updated = $4, claimed_by = NULL WHERE id = $5`,
		string(state), cleanText(errText), storeutil.Millis(next), storeutil.Millis(at), id)
	if err != nil {
		return storeErr("recording mail outcome", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("mail %s: %w", id, bridge.ErrNotFound)
	}
	return nil
}

// RecoverMail implements bridge.MailQueue, as Recover does for SMS: it
// releases this instance's claims and those of instances whose lock is
// gone, never those of an instance still running.
func (s *Store) RecoverMail(ctx context.Context, now time.Time) (int, error) {
	return s.releaseClaims(ctx, "outbox", now)
}

// Mail implements bridge.MailQueue.
func (s *Store) Mail(ctx context.Context, id string) (*bridge.OutMail, error) {
	m, err := storeutil.ScanMail(s.pool.QueryRow(ctx, `SELECT `+storeutil.MailCols+` FROM outbox WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bridge.ErrNotFound
	}
	if err != nil {
		return nil, storeErr("reading mail "+id, err)
	}
	return m, nil
}

// MailStats implements bridge.MailQueue.
func (s *Store) MailStats(ctx context.Context) (bridge.QueueStats, error) {
	var st bridge.QueueStats
	var oldest *int64
	err := s.pool.QueryRow(ctx, `SELECT count(*), min(created) FROM outbox WHERE state = 'queued'`).
		Scan(&st.Queued, &oldest)
	if err != nil {
		return bridge.QueueStats{}, storeErr("reading mail queue stats", err)
	}
	if oldest != nil {
		st.OldestQueued = storeutil.FromMillis(*oldest)
	}
	return st, nil
}
