package sqlite

import (
	"context"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var (
	_ bridge.SenderClaims = (*Store)(nil)
	_ bridge.ClaimPurger  = (*Store)(nil)
)

const (
	deleteDeadClaims = `DELETE FROM sender_claims WHERE phone = ? AND until < ?`
	// Claims of phones nobody writes to again: each call deletes up to
	// twice as many as it may store (storeutil.DeadClaimsBatch), so they
	// cannot pile up.
	deleteSomeDeadClaims = `DELETE FROM sender_claims WHERE (phone, our, writer) IN
		(SELECT phone, our, writer FROM sender_claims WHERE until < ? LIMIT ?)`
	upsertClaim = `INSERT INTO sender_claims (phone, our, writer, until) VALUES (?, ?, ?, ?)
		ON CONFLICT (phone, our, writer) DO UPDATE SET until = max(until, excluded.until)`
	selectLiveClaims = `SELECT ` + storeutil.ClaimCols + ` FROM sender_claims
		WHERE phone = ? AND our = ? AND until >= ?`
)

// ClaimSenders implements bridge.SenderClaims in the writer: its
// transactions run one after another, so no other choice overlaps this
// one (a SQLite file has one daemon at a time).
func (s *Store) ClaimSenders(ctx context.Context, phones []string, now time.Time, choose func([]bridge.SenderClaim) ([]bridge.SenderClaim, error)) error {
	if err := storeutil.CheckClaimPhones(phones); err != nil {
		return err
	}
	phones = storeutil.LockOrder(phones)
	return s.write(ctx, func(ctx context.Context, tx writeTx) error {
		args := make([]any, 0, len(phones)+1)
		for _, p := range phones {
			if _, err := tx.ExecContext(ctx, deleteDeadClaims, p, storeutil.Millis(now)); err != nil {
				return storeErr("deleting sender claims", err)
			}
			args = append(args, p)
		}
		if _, err := tx.ExecContext(ctx, deleteSomeDeadClaims, storeutil.Millis(now), storeutil.DeadClaimsBatch(len(phones))); err != nil {
			return storeErr("deleting sender claims", err)
		}
		args = append(args, storeutil.Millis(now))
		rows, err := tx.QueryContext(ctx, `SELECT `+storeutil.ClaimCols+` FROM sender_claims
			WHERE phone IN (?`+strings.Repeat(", ?", len(phones)-1)+`) AND until >= ?`, args...)
		if err != nil {
			return storeErr("reading sender claims", err)
		}
		live, err := scanClaims(rows)
		if err != nil {
			return storeErr("reading sender claims", err)
		}
		claims, err := choose(live)
		if err != nil {
			return err
		}
		if err := storeutil.CheckClaims(phones, claims); err != nil {
			return err
		}
		for _, c := range claims {
			if _, err := tx.ExecContext(ctx, upsertClaim, c.Phone, c.Our, c.Writer, storeutil.Millis(c.Until)); err != nil {
				return storeErr("storing a sender claim", err)
			}
		}
		return nil
	})
}

// LiveClaims implements bridge.SenderClaims.
func (s *Store) LiveClaims(ctx context.Context, phone, our string, at time.Time) ([]bridge.SenderClaim, error) {
	rows, err := s.rdb.QueryContext(ctx, selectLiveClaims, phone, our, storeutil.Millis(at))
	if err != nil {
		return nil, storeErr("reading sender claims", err)
	}
	live, err := scanClaims(rows)
	return live, storeErr("reading sender claims", err)
}

func scanClaims(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) ([]bridge.SenderClaim, error) {
	defer rows.Close()
	var out []bridge.SenderClaim
	for rows.Next() {
		c, err := storeutil.ScanClaim(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PurgeDeadClaims implements bridge.ClaimPurger.
func (s *Store) PurgeDeadClaims(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		res, err := tx.ExecContext(ctx, deleteSomeDeadClaims, storeutil.Millis(now), limit)
		if err != nil {
			return storeErr("deleting sender claims", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err // n may be set by a run after our deadline (see write)
	}
	return int(n), nil
}
