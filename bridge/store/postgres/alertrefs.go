package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.AlertRefs = (*Store)(nil)

// alertLockClass is the first key of the transaction-level advisory lock
// pg_advisory_xact_lock(alertLockClass, hashtext(phone)) PageAlert takes
// on each phone ("smsa" in ASCII): two instances giving one phone its
// next reference at the same instant take turns, and the second sees the
// first's. As for sender claims, a phone's first reference has no row to
// lock.
const alertLockClass int32 = 0x736d7361

const (
	selectGroupRef = `SELECT ref FROM alert_refs WHERE phone = $1 AND account = $2 AND source = $3 AND group_key = $4`
	updateGroupRef = `UPDATE alert_refs SET labels = $1, title = $2, paged = $3 WHERE phone = $4 AND ref = $5`
	selectMaxRef   = `SELECT coalesce(max(ref), 0) FROM alert_refs WHERE phone = $1`
	deleteOldest   = `DELETE FROM alert_refs WHERE phone = $1 AND ref =
		(SELECT ref FROM alert_refs WHERE phone = $1 ORDER BY paged, ref LIMIT 1) RETURNING ref`
	insertRef = `INSERT INTO alert_refs (id, phone, ref, account, source, group_key, labels, title, paged)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
)

// PageAlert implements bridge.AlertRefs under an advisory lock on each
// phone, taken in one order (storeutil.LockOrder) so that pages naming
// several phones never deadlock.
func (s *Store) PageAlert(ctx context.Context, g bridge.AlertRef, phones []string) (map[string]int, error) {
	if err := storeutil.CheckAlertPage(g, phones); err != nil {
		return nil, err
	}
	labels, err := storeutil.AlertLabels(g.Labels)
	if err != nil {
		return nil, err
	}
	account, source, title := cleanText(g.Account), cleanText(g.Source), cleanText(g.Title)
	labels = cleanText(labels)
	refs := map[string]int{}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		clear(refs)
		for _, p := range storeutil.LockOrder(phones) {
			p = cleanText(p)
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, alertLockClass, p); err != nil {
				return err
			}
			var ref int
			err := tx.QueryRow(ctx, selectGroupRef, p, account, source, g.GroupKey).Scan(&ref)
			switch {
			case err == nil:
				if _, err := tx.Exec(ctx, updateGroupRef, labels, title, storeutil.Millis(g.Paged), p, ref); err != nil {
					return err
				}
				refs[p] = ref
				continue
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
			var max int
			if err := tx.QueryRow(ctx, selectMaxRef, p).Scan(&max); err != nil {
				return err
			}
			ref, reuse := storeutil.NextAlertRef(max)
			if reuse {
				if err := tx.QueryRow(ctx, deleteOldest, p).Scan(&ref); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, insertRef, bridge.NewID(), p, ref, account, source, g.GroupKey, labels, title,
				storeutil.Millis(g.Paged)); err != nil {
				return err
			}
			refs[p] = ref
		}
		return nil
	})
	if err != nil {
		return nil, storeErr("paging an alert", err)
	}
	return refs, nil
}

// AlertRef implements bridge.AlertRefs.
func (s *Store) AlertRef(ctx context.Context, phone, account string, ref int) (*bridge.AlertRef, error) {
	var row pgx.Row
	if ref > 0 {
		row = s.pool.QueryRow(ctx, `SELECT `+storeutil.AlertRefCols+` FROM alert_refs
			WHERE phone = $1 AND ref = $2 AND account = $3`, cleanText(phone), ref, cleanText(account))
	} else {
		row = s.pool.QueryRow(ctx, `SELECT `+storeutil.AlertRefCols+` FROM alert_refs
			WHERE phone = $1 AND account = $2 ORDER BY paged DESC, ref DESC LIMIT 1`, cleanText(phone), cleanText(account))
	}
	r, err := storeutil.ScanAlertRef(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bridge.ErrNotFound
	}
	return r, storeErr("reading an alert reference", err)
}

// SetAlertSilence implements bridge.AlertRefs.
func (s *Store) SetAlertSilence(ctx context.Context, phone string, ref int, id string, until time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE alert_refs SET silence_id = $1, silenced_until = $2 WHERE phone = $3 AND ref = $4`,
		cleanText(id), storeutil.Millis(until), cleanText(phone), ref)
	if err != nil {
		return storeErr("recording a silence", err)
	}
	if tag.RowsAffected() == 0 {
		return bridge.ErrNotFound
	}
	return nil
}
