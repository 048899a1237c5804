package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/smsbridge/smsbridge/bridge"
)

// Export calls fn with every stored message, oldest first, with its
// recipients (states, attempts, provider ids and errors as stored) and its
// idempotency key, for `smsbridge migrate-store`. Messages are read one at
// a time, so the store may be in use meanwhile.
func (s *Store) Export(ctx context.Context, fn func(*bridge.Message) error) error {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id FROM messages ORDER BY created, id`)
	if err != nil {
		return storeErr("listing messages", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return storeErr("listing messages", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return storeErr("listing messages", err)
	}
	for _, id := range ids {
		m, err := s.Message(ctx, id)
		if err != nil {
			return err
		}
		err = s.rdb.QueryRowContext(ctx, `SELECT key FROM idempotency_keys WHERE message_id = ?`, id).Scan(&m.IdempotencyKey)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return storeErr("reading idempotency key", err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}
