package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.AlertRefs = (*Store)(nil)

const (
	selectGroupRef = `SELECT ref FROM alert_refs WHERE phone = ? AND account = ? AND source = ? AND group_key = ?`
	updateGroupRef = `UPDATE alert_refs SET labels = ?, title = ?, paged = ? WHERE phone = ? AND ref = ?`
	selectMaxRef   = `SELECT coalesce(max(ref), 0) FROM alert_refs WHERE phone = ?`
	deleteOldest   = `DELETE FROM alert_refs WHERE phone = ? AND ref =
		(SELECT ref FROM alert_refs WHERE phone = ? ORDER BY paged, ref LIMIT 1) RETURNING ref`
	insertRef = `INSERT INTO alert_refs (id, phone, ref, account, source, group_key, labels, title, paged)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// PageAlert implements bridge.AlertRefs in the writer: its transactions
// run one after another, so no two pages hand out one reference.
func (s *Store) PageAlert(ctx context.Context, g bridge.AlertRef, phones []string) (map[string]int, error) {
	if err := storeutil.CheckAlertPage(g, phones); err != nil {
		return nil, err
	}
	labels, err := storeutil.AlertLabels(g.Labels)
	if err != nil {
		return nil, err
	}
	var refs map[string]int
	err = s.write(ctx, func(ctx context.Context, tx writeTx) error {
		refs = map[string]int{}
		for _, p := range storeutil.LockOrder(phones) {
			var ref int
			err := tx.QueryRowContext(ctx, selectGroupRef, p, g.Account, g.Source, g.GroupKey).Scan(&ref)
			switch {
			case err == nil:
				if _, err := tx.exec(ctx, updateGroupRef, labels, g.Title, storeutil.Millis(g.Paged), p, ref); err != nil {
					return storeErr("updating an alert reference", err)
				}
				refs[p] = ref
				continue
			case !errors.Is(err, sql.ErrNoRows):
				return storeErr("reading alert references", err)
			}
			var max int
			if err := tx.QueryRowContext(ctx, selectMaxRef, p).Scan(&max); err != nil {
				return storeErr("reading alert references", err)
			}
			ref, reuse := storeutil.NextAlertRef(max)
			if reuse {
				if err := tx.QueryRowContext(ctx, deleteOldest, p, p).Scan(&ref); err != nil {
					return storeErr("reusing an alert reference", err)
				}
			}
			if _, err := tx.exec(ctx, insertRef, bridge.NewID(), p, ref, g.Account, g.Source, g.GroupKey, labels, g.Title,
				storeutil.Millis(g.Paged)); err != nil {
				return storeErr("storing an alert reference", err)
			}
			refs[p] = ref
		}
		return nil
	})
	if err != nil {
		return nil, err // refs is the writer's until write returns nil
	}
	return refs, nil
}

// AlertRef implements bridge.AlertRefs.
func (s *Store) AlertRef(ctx context.Context, phone, account string, ref int) (*bridge.AlertRef, error) {
	var row *sql.Row
	if ref > 0 {
		row = s.rdb.QueryRowContext(ctx, `SELECT `+storeutil.AlertRefCols+` FROM alert_refs
			WHERE phone = ? AND ref = ? AND account = ?`, phone, ref, account)
	} else {
		row = s.rdb.QueryRowContext(ctx, `SELECT `+storeutil.AlertRefCols+` FROM alert_refs
			WHERE phone = ? AND account = ? ORDER BY paged DESC, ref DESC LIMIT 1`, phone, account)
	}
	r, err := storeutil.ScanAlertRef(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bridge.ErrNotFound
	}
	return r, storeErr("reading an alert reference", err)
}

// SetAlertSilence implements bridge.AlertRefs.
func (s *Store) SetAlertSilence(ctx context.Context, phone string, ref int, id string, until time.Time) error {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		res, err := tx.exec(ctx, `UPDATE alert_refs SET silence_id = ?, silenced_until = ? WHERE phone = ? AND ref = ?`,
			id, storeutil.Millis(until), phone, ref)
		if err != nil {
			return storeErr("recording a silence", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return bridge.ErrNotFound
	}
	return nil
}
