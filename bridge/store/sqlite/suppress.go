package sqlite

import (
	"context"
	"database/sql"
	"strconv"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Suppressions = (*Store)(nil)

const insertSuppressionEvent = `INSERT INTO suppression_events (action, phone, our, account, reason, source, author, at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// Suppress implements bridge.Suppressions: the row, its event and the
// cancellation are one transaction of the writer, which also runs every
// Claim, so no recipient is claimed between the check and the cancel.
func (s *Store) Suppress(ctx context.Context, c bridge.SuppressionChange) (bool, int, error) {
	if err := storeutil.CheckSuppression(c); err != nil {
		return false, 0, err
	}
	var added bool
	var cancelled int64
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		added, cancelled = false, 0
		res, err := tx.exec(ctx, `INSERT INTO suppressions (`+storeutil.SuppressionCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			c.Phone, c.Our, c.Account, c.Reason, c.Source, c.By, storeutil.Millis(c.Created))
		if err != nil {
			return storeErr("adding a suppression", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		added = true
		if _, err := tx.exec(ctx, insertSuppressionEvent, "add", c.Phone, c.Our, c.Account, c.Reason, c.Source, c.By,
			storeutil.Millis(c.At)); err != nil {
			return storeErr("recording a suppression", err)
		}
		q := storeutil.Query{Args: []any{storeutil.CancelError(c), storeutil.Millis(c.At), c.Phone}}
		where := storeutil.CancelWhere(&q, c, "", func(s string) any { return s })
		res, err = tx.exec(ctx, `UPDATE recipients SET state = 'cancelled', error = ?, updated = ?
			WHERE state = 'queued' AND claimed = 0 AND to_addr = ?
			AND message_id IN (SELECT id FROM messages WHERE `+where+`)`, q.Args...)
		if err != nil {
			return storeErr("cancelling sends to a suppressed phone", err)
		}
		cancelled, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, 0, err // added and cancelled are not ours to read: see write
	}
	return added, int(cancelled), nil
}

// Unsuppress implements bridge.Suppressions.
func (s *Store) Unsuppress(ctx context.Context, c bridge.SuppressionChange, covering bool) (int, error) {
	if err := storeutil.CheckSuppression(c); err != nil {
		return 0, err
	}
	var n int
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		n = 0
		q := storeutil.Query{}
		where := storeutil.CoveringWhere(&q, c, covering)
		rows, err := tx.query(ctx, `DELETE FROM suppressions WHERE `+where+` RETURNING phone, our, account`, q.Args...)
		if err != nil {
			return storeErr("removing a suppression", err)
		}
		var gone [][3]string
		for rows.Next() {
			var k [3]string
			if err := rows.Scan(&k[0], &k[1], &k[2]); err != nil {
				rows.Close()
				return storeErr("removing a suppression", err)
			}
			gone = append(gone, k)
		}
		if err := rows.Close(); err != nil {
			return storeErr("removing a suppression", err)
		}
		for _, k := range gone {
			if _, err := tx.exec(ctx, insertSuppressionEvent, "remove", k[0], k[1], k[2], c.Reason, c.Source, c.By,
				storeutil.Millis(c.At)); err != nil {
				return storeErr("recording a suppression's removal", err)
			}
		}
		n = len(gone)
		return nil
	})
	if err != nil {
		return 0, err // n is not ours to read: see write
	}
	return n, nil
}

// Suppressed implements bridge.Suppressions.
func (s *Store) Suppressed(ctx context.Context, account, our string, phones []string) ([]bridge.Suppression, error) {
	if len(phones) == 0 {
		return nil, nil
	}
	ctx, err := uninterrupted(ctx)
	if err != nil {
		return nil, storeErr("reading suppressions", err)
	}
	q := storeutil.Query{}
	out, err := s.suppressions(ctx, storeutil.SuppressedQuery(&q, phones), q.Args)
	return storeutil.Covering(out, account, our), err
}

// CountSuppressions implements bridge.Suppressions.
func (s *Store) CountSuppressions(ctx context.Context, account string) (int, error) {
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM suppressions WHERE account = ? AND source <> 'sms'`, account).Scan(&n)
	return n, storeErr("counting suppressions", err)
}

// ListSuppressions implements bridge.Suppressions.
func (s *Store) ListSuppressions(ctx context.Context, f bridge.SuppressionFilter) ([]bridge.Suppression, error) {
	q := storeutil.Query{}
	where := storeutil.FilterWhere(&q, f)
	return s.suppressions(ctx, `SELECT `+storeutil.SuppressionCols+` FROM suppressions WHERE `+where+
		` ORDER BY created DESC, phone, our, account LIMIT `+q.Arg(storeutil.ListLimit(f.Limit)), q.Args)
}

func (s *Store) suppressions(ctx context.Context, query string, args []any) ([]bridge.Suppression, error) {
	rows, err := s.queryRead(ctx, query, args...)
	if err != nil {
		return nil, storeErr("reading suppressions", err)
	}
	defer rows.Close()
	out, err := storeutil.ScanAll(rows, storeutil.ScanSuppression)
	return out, storeErr("reading suppressions", err)
}

// SuppressionHistory implements bridge.Suppressions.
func (s *Store) SuppressionHistory(ctx context.Context, f bridge.SuppressionFilter) ([]bridge.SuppressionEvent, error) {
	q := storeutil.Query{}
	where := storeutil.FilterWhere(&q, f)
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+storeutil.SuppressionEventCols+`
		FROM suppression_events WHERE `+where+` ORDER BY id DESC LIMIT `+q.Arg(storeutil.ListLimit(f.Limit)), q.Args...)
	if err != nil {
		return nil, storeErr("reading suppression history", err)
	}
	defer rows.Close()
	out, err := storeutil.ScanAll(rows, storeutil.ScanSuppressionEvent)
	return out, storeErr("reading suppression history", err)
}

// HeldAtProvider implements bridge.Suppressions. The partial index on
// scheduled messages keeps it from reading the whole history.
func (s *Store) HeldAtProvider(ctx context.Context, c bridge.SuppressionChange, now time.Time) ([]bridge.Recipient, error) {
	q := storeutil.Query{Numbered: false}
	where := storeutil.HeldWhere(&q, c, storeutil.Millis(now), func(s string) any { return s })
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+storeutil.HeldCols+`
		FROM messages m JOIN recipients r ON r.message_id = m.id WHERE `+where+` ORDER BY r.id`, q.Args...)
	if err != nil {
		return nil, storeErr("reading scheduled sends", err)
	}
	defer rows.Close()
	out, err := storeutil.ScanAll(rows, storeutil.ScanHeld)
	return out, storeErr("reading scheduled sends", err)
}

// ExportSuppressions calls fn with every suppression, a page at a time,
// in key order (for migrate-store: an opt-out must survive a move).
func (s *Store) ExportSuppressions(ctx context.Context, fn func([]bridge.Suppression) error) error {
	return exportPages(ctx, s.rdb, "suppressions",
		`SELECT `+storeutil.SuppressionCols+` FROM suppressions
		WHERE phone || char(31) || our || char(31) || account > ? ORDER BY phone || char(31) || our || char(31) || account LIMIT ?`,
		func(rows *sql.Rows) (bridge.Suppression, string, error) {
			x, err := storeutil.ScanSuppression(rows)
			return x, x.Phone + "\x1f" + x.Our + "\x1f" + x.Account, err
		}, fn)
}

// ExportSuppressionHistory calls fn with every change of the suppression
// list, a page at a time, oldest first.
func (s *Store) ExportSuppressionHistory(ctx context.Context, fn func([]bridge.SuppressionEvent) error) error {
	return exportPages(ctx, s.rdb, "suppression history",
		`SELECT `+storeutil.SuppressionEventCols+` FROM suppression_events
		WHERE id > CAST(? AS INTEGER) ORDER BY id LIMIT ?`,
		func(rows *sql.Rows) (bridge.SuppressionEvent, string, error) {
			e, err := storeutil.ScanSuppressionEvent(rows)
			return e, strconv.FormatInt(e.ID, 10), err
		}, fn)
}
