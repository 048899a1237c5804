package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Purger = (*Store)(nil)

// purgeQueries select a kind's purge candidates: $1 the cutoff, $2 and $3
// the mark (time, id) to continue after, $4 the limit. Each yields the
// id, the time, and whether the candidate may go; each reads an index in
// its order (migrations 0008 and 0014), so a batch reads limit entries, not the
// table. They lock what they select, skipping rows locked already, so
// that instances purging at the same moment share the work instead of
// queueing behind one another.
var purgeQueries = map[bridge.PurgeKind]struct{ query, table string }{
	// A message goes when no recipient is queued (or claimed, which is
	// queued too) and none changed since the cutoff: a late delivery
	// report keeps it. Its recipients and idempotency key go with it
	// (ON DELETE CASCADE).
	bridge.PurgeMessages: {`SELECT m.id, m.created, NOT EXISTS (SELECT 1 FROM recipients r
		WHERE r.message_id = m.id AND (r.state = 'queued' OR r.updated >= $1))
		FROM messages m WHERE m.created < $1 AND (m.created, m.id) > ($2, $3)
		ORDER BY m.created, m.id LIMIT $4 FOR UPDATE SKIP LOCKED`, "messages"},
	bridge.PurgeInbound: {`SELECT id, created, true FROM inbound
		WHERE created < $1 AND (created, id) > ($2, $3) ORDER BY created, id LIMIT $4 FOR UPDATE SKIP LOCKED`, "inbound"},
	// The condition on state is written as the partial index outbox_done
	// states it, so the planner knows the index holds the rows.
	bridge.PurgeMail: {`SELECT id, updated, true FROM outbox
		WHERE state <> 'queued' AND updated < $1 AND (updated, id) > ($2, $3) ORDER BY updated, id LIMIT $4 FOR UPDATE SKIP LOCKED`, "outbox"},
	bridge.PurgeAlertRefs: {`SELECT id, paged, true FROM alert_refs
		WHERE paged < $1 AND (paged, id) > ($2, $3) ORDER BY paged, id LIMIT $4 FOR UPDATE SKIP LOCKED`, "alert_refs"},
	bridge.PurgeConversations: {`SELECT id, updated, true FROM conversations
		WHERE updated < $1 AND (updated, id) > ($2, $3) ORDER BY updated, id LIMIT $4 FOR UPDATE SKIP LOCKED`, "conversations"},
}

// Purge implements bridge.Purger, in one transaction of its own.
func (s *Store) Purge(ctx context.Context, kind bridge.PurgeKind, cutoff time.Time, after bridge.PurgeMark, limit int) (bridge.PurgeBatch, error) {
	q, ok := purgeQueries[kind]
	if !ok {
		return bridge.PurgeBatch{}, fmt.Errorf("postgres: no purge for %q", kind)
	}
	var b bridge.PurgeBatch
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b = bridge.PurgeBatch{}
		rows, err := tx.Query(ctx, q.query, storeutil.Millis(cutoff), storeutil.Millis(after.At), after.ID, limit)
		if err != nil {
			return err
		}
		var ids []string
		b, ids, err = storeutil.PurgeCandidates(rows)
		rows.Close()
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM `+q.table+` WHERE id = ANY($1)`, ids); err != nil {
				return err
			}
		}
		b.Deleted = len(ids)
		return nil
	})
	return b, storeErr("purging "+string(kind), err)
}
