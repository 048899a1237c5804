package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var (
	_ bridge.SenderClaims = (*Store)(nil)
	_ bridge.ClaimPurger  = (*Store)(nil)
)

// claimLockClass is the first key of the transaction-level advisory lock
// pg_advisory_xact_lock(claimLockClass, hashtext(phone)) a sender claim
// takes on each of its phones ("smsc" in ASCII): two instances choosing
// a number for one phone at the same instant take turns, and the second
// sees the first's claim. A row lock could not do it: the first claim of
// a phone has no row to lock. Two phones whose hashes collide only wait
// for each other.
const claimLockClass int32 = 0x736d7363

const (
	deleteDeadClaims = `DELETE FROM sender_claims WHERE phone = $1 AND until < $2`
	// Claims of phones nobody writes to again: each call deletes up to
	// twice as many as it may store (storeutil.DeadClaimsBatch), so they
	// cannot pile up; rows another instance is deleting are skipped, so
	// claims for different phones never wait for each other here.
	deleteSomeDeadClaims = `DELETE FROM sender_claims WHERE ctid IN
		(SELECT ctid FROM sender_claims WHERE until < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`
	upsertClaim = `INSERT INTO sender_claims (phone, our, writer, until) VALUES ($1, $2, $3, $4)
		ON CONFLICT (phone, our, writer) DO UPDATE SET until = greatest(sender_claims.until, excluded.until)`
	selectClaims = `SELECT ` + storeutil.ClaimCols + ` FROM sender_claims WHERE phone = ANY($1) AND until >= $2`
	selectLive   = `SELECT ` + storeutil.ClaimCols + ` FROM sender_claims WHERE phone = $1 AND our = $2 AND until >= $3`
)

// ClaimSenders implements bridge.SenderClaims: under an advisory lock on
// each phone, taken in one order (storeutil.LockOrder) so that claims
// naming several phones never deadlock, it reads the live claims (a
// statement run after the locks are granted sees every claim committed
// before), lets choose decide and stores its claims.
func (s *Store) ClaimSenders(ctx context.Context, phones []string, now time.Time, choose func([]bridge.SenderClaim) ([]bridge.SenderClaim, error)) error {
	if err := storeutil.CheckClaimPhones(phones); err != nil {
		return err
	}
	phones = storeutil.LockOrder(phones)
	for i, p := range phones {
		phones[i] = cleanText(p)
	}
	var chooseErr error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, p := range phones {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, claimLockClass, p); err != nil {
				return storeErr("locking the phone's sender claims", err)
			}
			if _, err := tx.Exec(ctx, deleteDeadClaims, p, storeutil.Millis(now)); err != nil {
				return storeErr("deleting sender claims", err)
			}
		}
		if _, err := tx.Exec(ctx, deleteSomeDeadClaims, storeutil.Millis(now), storeutil.DeadClaimsBatch(len(phones))); err != nil {
			return storeErr("deleting sender claims", err)
		}
		rows, err := tx.Query(ctx, selectClaims, phones, storeutil.Millis(now))
		if err != nil {
			return storeErr("reading sender claims", err)
		}
		live, err := scanClaims(rows)
		if err != nil {
			return storeErr("reading sender claims", err)
		}
		claims, err := choose(live)
		if err == nil {
			err = storeutil.CheckClaims(phones, claims)
		}
		if err != nil {
			chooseErr = err
			return err
		}
		for _, c := range claims {
			if _, err := tx.Exec(ctx, upsertClaim, c.Phone, cleanText(c.Our), cleanText(c.Writer), storeutil.Millis(c.Until)); err != nil {
				return storeErr("storing a sender claim", err)
			}
		}
		return nil
	})
	if chooseErr != nil {
		return chooseErr
	}
	return err
}

// LiveClaims implements bridge.SenderClaims.
func (s *Store) LiveClaims(ctx context.Context, phone, our string, at time.Time) ([]bridge.SenderClaim, error) {
	rows, err := s.pool.Query(ctx, selectLive, cleanText(phone), cleanText(our), storeutil.Millis(at))
	if err != nil {
		return nil, storeErr("reading sender claims", err)
	}
	live, err := scanClaims(rows)
	return live, storeErr("reading sender claims", err)
}

func scanClaims(rows pgx.Rows) ([]bridge.SenderClaim, error) {
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
	tag, err := s.pool.Exec(ctx, deleteSomeDeadClaims, storeutil.Millis(now), limit)
	if err != nil {
		return 0, storeErr("deleting sender claims", err)
	}
	return int(tag.RowsAffected()), nil
}
