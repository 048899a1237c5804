package sqlite

import (
	"context"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Rescheduler = (*Store)(nil)

// RetryNow implements bridge.Rescheduler.
func (s *Store) RetryNow(ctx context.Context, provider string, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		res, err := tx.exec(ctx, `UPDATE recipients SET next_attempt = ?
			WHERE state = 'queued' AND claimed = 0 AND provider = ? AND next_attempt > ?`,
			storeutil.Millis(now), provider, storeutil.Millis(now))
		if err != nil {
			return storeErr("rescheduling "+provider, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
