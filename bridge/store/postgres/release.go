package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Releaser = (*Store)(nil)

// releaseClaim undoes one claim (see storeutil.Release): only while the
// row is still queued, claimed by this instance, and holds the attempts
// and lease the claim recorded. $5 is this Store's instance id.
const releaseClaim = `UPDATE recipients SET next_attempt = $1, claimed_by = NULL,
	attempts = attempts - 1, provider_attempts = greatest(provider_attempts - 1, 0)
	WHERE id = $2 AND state = 'queued' AND claimed_by = $5 AND attempts = $3 AND next_attempt = $4`

// Release implements bridge.Releaser: one write of the writer's group,
// its statements in the group's lock order (recipients by id, as Complete
// locks them), so it cannot deadlock with another instance's writes. The
// instance lock is still held: until the store closes, its other claims
// (the sends still in flight) stay its own.
func (s *Store) Release(ctx context.Context, jobs []bridge.Job, now time.Time) (int, error) {
	rel := storeutil.Releases(jobs)
	if len(rel) == 0 {
		return 0, nil
	}
	affected := make([]int64, len(rel)) // read at every try of the group's transaction
	w := &write{fail: func(err error) error { return storeErr("releasing claims", err) }}
	for i, r := range rel {
		w.stmts = append(w.stmts, stmt{order: lockOrder{phase: phaseRecipient, id: r.ID}, query: releaseClaim,
			args: []any{storeutil.Millis(now), r.ID, r.Attempts, r.NextAttempt, s.instance},
			read: func(br pgx.BatchResults) error {
				tag, err := br.Exec()
				affected[i] = tag.RowsAffected()
				return err
			}})
	}
	if err := s.writes.Do(ctx, w); err != nil {
		return 0, storeErr("releasing claims", err)
	}
	var n int64
	for _, k := range affected {
		n += k
	}
	return int(n), nil
}
