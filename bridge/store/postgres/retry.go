package postgres

import (
	"context"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Rescheduler = (*Store)(nil)

// RetryNow implements bridge.Rescheduler. Recipients another instance
// holds are left alone: they are being sent; so are those of a message
// scheduled for later: they wait for their time, not for the provider.
func (s *Store) RetryNow(ctx context.Context, provider string, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE recipients SET next_attempt = $1
		WHERE state = 'queued' AND claimed_by IS NULL AND provider = $2 AND next_attempt > $1
		AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = recipients.message_id AND m.send_at > $1)`,
		storeutil.Millis(now), provider)
	if err != nil {
		return 0, storeErr("rescheduling "+provider, err)
	}
	return int(tag.RowsAffected()), nil
}
