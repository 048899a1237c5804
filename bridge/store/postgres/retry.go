package postgres

import (
	"context"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Rescheduler = (*Store)(nil)

// RetryNow implements bridge.Rescheduler. Recipients another instance
// holds are left alone: they are being sent.
func (s *Store) RetryNow(ctx context.Context, provider string, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE recipients SET next_attempt = $1
		WHERE state = 'queued' AND claimed_by IS NULL AND provider = $2 AND next_attempt > $1`,
		storeutil.Millis(now), provider)
	if err != nil {
		return 0, storeErr("rescheduling "+provider, err)
	}
	return int(tag.RowsAffected()), nil
}
