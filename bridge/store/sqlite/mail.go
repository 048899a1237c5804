package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.MailQueue = (*Store)(nil)

const (
	// A mail whose id is stored already is not stored again: a call
	// retried after its commit went unanswered cannot send it twice.
	insertMail = `INSERT INTO outbox (` + storeutil.MailCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	// outbox_due yields rows in this order: limit index entries are read.
	selectDueMail = `SELECT ` + storeutil.MailCols + ` FROM outbox WHERE state = 'queued' AND next_attempt <= ?
		ORDER BY next_attempt, created, id LIMIT ?`
)

// mailArgs is insertMail's arguments for m.
func mailArgs(m *bridge.OutMail) []any {
	return []any{m.ID, string(m.Kind), m.Ref, m.From, m.To, m.Data, string(m.State), m.Attempts,
		storeutil.Millis(m.NextAttempt), m.Error, storeutil.Millis(m.Created), storeutil.Millis(m.Updated)}
}

// QueueMail implements bridge.MailQueue. The mail is stored queued, with
// no attempts, due at NextAttempt or else at once.
func (s *Store) QueueMail(ctx context.Context, mail *bridge.OutMail) error {
	m, err := storeutil.QueuedMail(mail, time.Time{})
	if err != nil {
		return err
	}
	args := mailArgs(&m)
	return s.write(ctx, func(ctx context.Context, tx writeTx) error {
		_, err := tx.exec(ctx, insertMail, args...)
		return storeErr("queueing mail "+m.ID, err)
	})
}

// ClaimMail implements bridge.MailQueue. As Claim, it runs in the writer,
// so no other claim comes between the select and the updates.
func (s *Store) ClaimMail(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]bridge.OutMail, error) {
	if limit <= 0 {
		return nil, nil
	}
	var mails []bridge.OutMail
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		mails = nil
		rows, err := tx.query(ctx, selectDueMail, storeutil.Millis(now), limit)
		if err != nil {
			return storeErr("selecting due mail", err)
		}
		defer rows.Close()
		for rows.Next() {
			m, err := storeutil.ScanMail(rows)
			if err != nil {
				return storeErr("reading due mail", err)
			}
			mails = append(mails, *m)
		}
		if err := rows.Err(); err != nil {
			return storeErr("reading due mail", err)
		}
		rows.Close()

		next, updated := storeutil.Millis(now.Add(lease)), storeutil.Millis(now)
		for i := range mails {
			m := &mails[i]
			m.Attempts++
			if _, err := tx.exec(ctx, `UPDATE outbox SET attempts = ?, next_attempt = ?, updated = ?, claimed = 1 WHERE id = ?`,
				m.Attempts, next, updated, m.ID); err != nil {
				return storeErr("claiming mail", err)
			}
			m.NextAttempt, m.Updated = storeutil.FromMillis(next), storeutil.FromMillis(updated)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mails, nil
}

// CompleteMail implements bridge.MailQueue. An unknown id is
// bridge.ErrNotFound.
func (s *Store) CompleteMail(ctx context.Context, id string, state bridge.MailState, errText string, next, at time.Time) error {
	if err := storeutil.CheckMailState(id, state); err != nil {
		return err
	}
	return s.write(ctx, func(ctx context.Context, tx writeTx) error {
		res, err := tx.exec(ctx, `UPDATE outbox SET state = ?, error = ?, next_attempt = ?, updated = ?, claimed = 0 WHERE id = ?`,
			string(state), errText, storeutil.Millis(next), storeutil.Millis(at), id)
		if err != nil {
			return storeErr("recording mail outcome", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return storeErr("recording mail outcome", err)
		} else if n == 0 {
			return fmt.Errorf("mail %s: %w", id, bridge.ErrNotFound)
		}
		return nil
	})
}

// RecoverMail implements bridge.MailQueue. As with Recover, every claim
// open at start belongs to a run that died mid-delivery.
func (s *Store) RecoverMail(ctx context.Context, now time.Time) (int, error) {
	return s.releaseClaims(ctx, "outbox", now)
}

// Mail implements bridge.MailQueue.
func (s *Store) Mail(ctx context.Context, id string) (*bridge.OutMail, error) {
	m, err := storeutil.ScanMail(s.rdb.QueryRowContext(ctx, `SELECT `+storeutil.MailCols+` FROM outbox WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
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
	var oldest sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*), min(created) FROM outbox WHERE state = 'queued'`).
		Scan(&st.Queued, &oldest)
	if err != nil {
		return bridge.QueueStats{}, storeErr("reading mail queue stats", err)
	}
	if oldest.Valid {
		st.OldestQueued = storeutil.FromMillis(oldest.Int64)
	}
	return st, nil
}
