package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
)

// SchemaVersion reads the schema version of the database at path, and
// returns it with latest, the version this program's migrations bring a
// database to, without changing anything: it creates no file (a missing
// database is an error wrapping fs.ErrNotExist), applies no migration and
// takes no lock a running daemon would wait for.
func SchemaVersion(ctx context.Context, path string) (version, latest int, err error) {
	ms, err := migrations()
	if err != nil {
		return 0, 0, err
	}
	latest = len(ms)
	if _, err := os.Stat(path); err != nil {
		return 0, latest, err
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "query_only(1)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMillis))
	// With a -wal file (a daemon has the database open, or died with
	// it open), the latest commits may be there only, so it is read.
	// Without one there is nothing pending, and reading the file as
	// immutable keeps SQLite from creating a -wal and a -shm file beside
	// it, which a read-only connection would leave behind.
	if _, err := os.Stat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
		q.Set("immutable", "1")
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return 0, latest, fmt.Errorf("opening %s: %w", path, err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, latest, fmt.Errorf("reading %s: %w", path, err)
	}
	return version, latest, nil
}
