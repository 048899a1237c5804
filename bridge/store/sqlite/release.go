package sqlite

import (
	"context"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Releaser = (*Store)(nil)

// releaseClaim undoes one claim (see storeutil.Release): only while the
// row is still queued, claimed, and holds the attempts and lease the
// claim recorded.
const releaseClaim = `UPDATE recipients SET next_attempt = ?, claimed = 0,
	attempts = attempts - 1, provider_attempts = max(provider_attempts - 1, 0)
	WHERE id = ? AND state = 'queued' AND claimed = 1 AND attempts = ? AND next_attempt = ?`

// Release implements bridge.Releaser, in one write transaction. A SQLite
// file has one daemon at a time, whose next start's Recover would release
// these claims as well; releasing them at the shutdown leaves the queue
// as it is (due, cancellable) for the tools that read it meanwhile, and
// keeps the attempts that were never made out of the count.
func (s *Store) Release(ctx context.Context, jobs []bridge.Job, now time.Time) (int, error) {
	rel := storeutil.Releases(jobs)
	if len(rel) == 0 {
		return 0, nil
	}
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		n = 0
		for _, r := range rel {
			res, err := tx.exec(ctx, releaseClaim, storeutil.Millis(now), r.ID, r.Attempts, r.NextAttempt)
			if err != nil {
				return storeErr("releasing claims", err)
			}
			k, err := res.RowsAffected()
			if err != nil {
				return storeErr("releasing claims", err)
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, err // n is not ours to read: see write
	}
	return int(n), nil
}
