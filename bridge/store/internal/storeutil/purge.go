package storeutil

import "github.com/smsbridge/smsbridge/bridge"

// PurgeCandidates reads the rows of a purge query (each a candidate's id,
// its time, and whether it may go; in the order the purge walks) into the
// batch so far, its Next the last candidate read whether or not it may
// go, and the ids to delete. The caller deletes them, sets Deleted, and
// closes rows.
func PurgeCandidates(rows Rows) (bridge.PurgeBatch, []string, error) {
	var b bridge.PurgeBatch
	var ids []string
	for rows.Next() {
		var (
			id  string
			at  int64
			del bool
		)
		if err := rows.Scan(&id, &at, &del); err != nil {
			return bridge.PurgeBatch{}, nil, err
		}
		b.Scanned++
		b.Next = bridge.PurgeMark{At: FromMillis(at), ID: id}
		if del {
			ids = append(ids, id)
		}
	}
	return b, ids, rows.Err()
}
