package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Suppressions = (*Store)(nil)

const insertSuppressionEvent = `INSERT INTO suppression_events (action, phone, our, account, reason, source, author, at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// Suppress implements bridge.Suppressions. The cancel skips recipients an
// instance has claimed (their Claim holds their rows until it commits,
// and sets claimed_by); the dispatcher looks at the list again before it
// sends those (bridge.DispatchOptions.Consent).
func (s *Store) Suppress(ctx context.Context, c bridge.SuppressionChange) (bool, int, error) {
	if err := storeutil.CheckSuppression(c); err != nil {
		return false, 0, err
	}
	var added bool
	var cancelled int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		added, cancelled = false, 0
		tag, err := tx.Exec(ctx, `INSERT INTO suppressions (`+storeutil.SuppressionCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			c.Phone, c.Our, c.Account, c.Reason, c.Source, c.By, storeutil.Millis(c.Created))
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		added = true
		if _, err := tx.Exec(ctx, insertSuppressionEvent, "add", c.Phone, c.Our, c.Account, c.Reason, c.Source, c.By,
			storeutil.Millis(c.At)); err != nil {
			return err
		}
		q := storeutil.Query{Numbered: true, Args: []any{storeutil.CancelError(c), storeutil.Millis(c.At), c.Phone}}
		where := storeutil.CancelWhere(&q, c, "", func(s string) any { return []byte(s) })
		tag, err = tx.Exec(ctx, `UPDATE recipients SET state = 'cancelled', error = $1, updated = $2
			WHERE state = 'queued' AND claimed_by IS NULL AND to_addr = $3
			AND message_id IN (SELECT id FROM messages WHERE `+where+`)`, q.Args...)
		cancelled = tag.RowsAffected()
		return err
	})
	if err != nil {
		return false, 0, storeErr("adding a suppression", err)
	}
	return added, int(cancelled), nil
}

// Unsuppress implements bridge.Suppressions.
func (s *Store) Unsuppress(ctx context.Context, c bridge.SuppressionChange, covering bool) (int, error) {
	if err := storeutil.CheckSuppression(c); err != nil {
		return 0, err
	}
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n = 0
		q := storeutil.Query{Numbered: true}
		where := storeutil.CoveringWhere(&q, c, covering)
		rows, err := tx.Query(ctx, `DELETE FROM suppressions WHERE `+where+` RETURNING phone, our, account`, q.Args...)
		if err != nil {
			return err
		}
		gone, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([3]string, error) {
			var k [3]string
			err := r.Scan(&k[0], &k[1], &k[2])
			return k, err
		})
		if err != nil {
			return err
		}
		for _, k := range gone {
			if _, err := tx.Exec(ctx, insertSuppressionEvent, "remove", k[0], k[1], k[2], c.Reason, c.Source, c.By,
				storeutil.Millis(c.At)); err != nil {
				return err
			}
		}
		n = len(gone)
		return nil
	})
	if err != nil {
		return 0, storeErr("removing a suppression", err)
	}
	return n, nil
}

// Suppressed implements bridge.Suppressions.
func (s *Store) Suppressed(ctx context.Context, account, our string, phones []string) ([]bridge.Suppression, error) {
	if len(phones) == 0 {
		return nil, nil
	}
	q := storeutil.Query{Numbered: true}
	out, err := s.suppressions(ctx, storeutil.SuppressedQuery(&q, phones), q.Args)
	return storeutil.Covering(out, account, our), err
}

// CountSuppressions implements bridge.Suppressions.
func (s *Store) CountSuppressions(ctx context.Context, account string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM suppressions WHERE account = $1 AND source <> 'sms'`, account).Scan(&n)
	return n, storeErr("counting suppressions", err)
}

// ListSuppressions implements bridge.Suppressions.
func (s *Store) ListSuppressions(ctx context.Context, f bridge.SuppressionFilter) ([]bridge.Suppression, error) {
	q := storeutil.Query{Numbered: true}
	where := storeutil.FilterWhere(&q, f)
	return s.suppressions(ctx, `SELECT `+storeutil.SuppressionCols+` FROM suppressions WHERE `+where+
		` ORDER BY created DESC, phone, our, account LIMIT `+q.Arg(storeutil.ListLimit(f.Limit)), q.Args)
}

func (s *Store) suppressions(ctx context.Context, query string, args []any) ([]bridge.Suppression, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, storeErr("reading suppressions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (bridge.Suppression, error) {
		return storeutil.ScanSuppression(r)
	})
	return out, storeErr("reading suppressions", err)
}

// SuppressionHistory implements bridge.Suppressions.
func (s *Store) SuppressionHistory(ctx context.Context, f bridge.SuppressionFilter) ([]bridge.SuppressionEvent, error) {
	q := storeutil.Query{Numbered: true}
	where := storeutil.FilterWhere(&q, f)
	rows, err := s.pool.Query(ctx, `SELECT `+storeutil.SuppressionEventCols+`
		FROM suppression_events WHERE `+where+` ORDER BY id DESC LIMIT `+q.Arg(storeutil.ListLimit(f.Limit)), q.Args...)
	if err != nil {
		return nil, storeErr("reading suppression history", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (bridge.SuppressionEvent, error) {
		return storeutil.ScanSuppressionEvent(r)
	})
	return out, storeErr("reading suppression history", err)
}

// HeldAtProvider implements bridge.Suppressions. The partial index on
// scheduled messages keeps it from reading the whole history.
func (s *Store) HeldAtProvider(ctx context.Context, c bridge.SuppressionChange, now time.Time) ([]bridge.Recipient, error) {
	q := storeutil.Query{Numbered: true}
	where := storeutil.HeldWhere(&q, c, storeutil.Millis(now), func(s string) any { return []byte(s) })
	rows, err := s.pool.Query(ctx, `SELECT `+storeutil.HeldCols+`
		FROM messages m JOIN recipients r ON r.message_id = m.id WHERE `+where+` ORDER BY r.id`, q.Args...)
	if err != nil {
		return nil, storeErr("reading scheduled sends", err)
	}
	defer rows.Close()
	out, err := storeutil.ScanAll(rows, storeutil.ScanHeld)
	return out, storeErr("reading scheduled sends", err)
}

// ImportSuppressions stores the suppressions not stored yet (migrate-store)
// and returns how many it stored.
func (s *Store) ImportSuppressions(ctx context.Context, ss []bridge.Suppression) (int, error) {
	b := &pgx.Batch{}
	for _, x := range ss {
		b.Queue(`INSERT INTO suppressions (`+storeutil.SuppressionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT DO NOTHING`, cleanText(x.Phone), cleanText(x.Our), cleanText(x.Account), cleanText(x.Reason),
			cleanText(x.Source), cleanText(x.By), storeutil.Millis(x.Created))
	}
	return s.importBatch(ctx, "suppressions", b)
}

// ImportSuppressionHistory stores the changes not stored yet, keeping
// their ids (and so their order), and moves the id sequence past them so
// later changes come after.
func (s *Store) ImportSuppressionHistory(ctx context.Context, es []bridge.SuppressionEvent) (int, error) {
	b := &pgx.Batch{}
	for _, e := range es {
		b.Queue(`INSERT INTO suppression_events (id, action, phone, our, account, reason, source, author, at)
			OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
			e.ID, cleanText(e.Action), cleanText(e.Phone), cleanText(e.Our), cleanText(e.Account), cleanText(e.Reason),
			cleanText(e.Source), cleanText(e.By), storeutil.Millis(e.At))
	}
	if b.Len() > 0 {
		b.Queue(`SELECT setval(pg_get_serial_sequence('suppression_events', 'id'),
			(SELECT max(id) FROM suppression_events))`)
	}
	n, err := s.importBatch(ctx, "suppression history", b)
	if n > 0 {
		n-- // the setval's row
	}
	return n, err
}
