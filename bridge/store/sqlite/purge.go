package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.Purger = (*Store)(nil)

// purgeQueries select a kind's purge candidates: ?1 the cutoff, ?2 and ?3
// the mark (time, id) to continue after, ?4 the limit. Each yields the
// id, the time, and whether the candidate may go; each reads an index in
// its order (migrations 0010 and 0016), so a batch reads limit entries, not the
// table.
var purgeQueries = map[bridge.PurgeKind]struct{ query, table string }{
	// A message goes when no recipient is queued (or claimed, which is
	// queued too) and none changed since the cutoff: a late delivery
	// report keeps it. Its recipients and idempotency key go with it
	// (ON DELETE CASCADE).
	bridge.PurgeMessages: {`SELECT m.id, m.created, NOT EXISTS (SELECT 1 FROM recipients r
		WHERE r.message_id = m.id AND (r.state = 'queued' OR r.updated >= ?1))
		FROM messages m WHERE m.created < ?1 AND (m.created, m.id) > (?2, ?3)
		ORDER BY m.created, m.id LIMIT ?4`, "messages"},
	bridge.PurgeInbound: {`SELECT id, created, 1 FROM inbound
		WHERE created < ?1 AND (created, id) > (?2, ?3) ORDER BY created, id LIMIT ?4`, "inbound"},
	// The condition on state is written as the partial index outbox_done
	// states it, so the planner knows the index holds the rows.
	bridge.PurgeMail: {`SELECT id, updated, 1 FROM outbox
		WHERE state <> 'queued' AND updated < ?1 AND (updated, id) > (?2, ?3) ORDER BY updated, id LIMIT ?4`, "outbox"},
	bridge.PurgeAlertRefs: {`SELECT id, paged, 1 FROM alert_refs
		WHERE paged < ?1 AND (paged, id) > (?2, ?3) ORDER BY paged, id LIMIT ?4`, "alert_refs"},
	bridge.PurgeConversations: {`SELECT id, updated, 1 FROM conversations
		WHERE updated < ?1 AND (updated, id) > (?2, ?3) ORDER BY updated, id LIMIT ?4`, "conversations"},
}

// Purge implements bridge.Purger. The batch is one request to the writer,
// so it commits with whatever else is waiting and holds the writer for as
// long as limit deletions take; the caller pauses between batches.
func (s *Store) Purge(ctx context.Context, kind bridge.PurgeKind, cutoff time.Time, after bridge.PurgeMark, limit int) (bridge.PurgeBatch, error) {
	q, ok := purgeQueries[kind]
	if !ok {
		return bridge.PurgeBatch{}, fmt.Errorf("sqlite: no purge for %q", kind)
	}
	var b bridge.PurgeBatch
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		b = bridge.PurgeBatch{} // the writer may run fn again
		rows, err := tx.query(ctx, q.query, storeutil.Millis(cutoff), storeutil.Millis(after.At), after.ID, limit)
		if err != nil {
			return storeErr("selecting "+string(kind)+" to purge", err)
		}
		var ids []string
		b, ids, err = storeutil.PurgeCandidates(rows)
		rows.Close() // finished reading before deleting what it read
		if err != nil {
			return storeErr("selecting "+string(kind)+" to purge", err)
		}
		for _, id := range ids {
			if _, err := tx.exec(ctx, `DELETE FROM `+q.table+` WHERE id = ?`, id); err != nil {
				return storeErr("purging "+string(kind), err)
			}
		}
		b.Deleted = len(ids)
		return nil
	})
	if err != nil {
		// b is the writer's until write returns nil: a cancelled
		// caller returns while fn may still run.
		return bridge.PurgeBatch{}, err
	}
	return b, nil
}
