package sqlite

import (
	"context"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Rescheduler = (*Store)(nil)

// RetryNow implements bridge.Rescheduler. Recipients of a message
// scheduled for later are left alone: they wait for their time, not for
// the provider.
func (s *Store) RetryNow(ctx context.Context, provider string, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		res, err := tx.exec(ctx, `UPDATE recipients SET next_attempt = ?
			WHERE state = 'queued' AND claimed = 0 AND provider = ? AND next_attempt > ?
			AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = recipients.message_id AND m.send_at > ?)`,
			storeutil.Millis(now), provider, storeutil.Millis(now), storeutil.Millis(now))
		if err != nil {
			return storeErr("rescheduling "+provider, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err // n is not ours to read: see write
	}
	return int(n), nil
}
