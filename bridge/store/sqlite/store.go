// Package sqlite is the embedded bridge.Store: one SQLite file in WAL mode,
// through the pure-Go modernc.org/sqlite driver.
//
// All writes go through one goroutine that commits whatever requests are
// waiting in a single transaction (group commit), so many concurrent
// Enqueue calls share one fsync instead of queueing for one each. Reads use
// a separate connection pool and, thanks to WAL, never wait for writes.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/smsbridge/smsbridge/bridge/store/internal/group"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// busyTimeoutMillis is how long a connection waits for a lock another
// process holds (say, a CLI inspecting the queue) before giving up with
// "database is locked".
const busyTimeoutMillis = 5000

// readConns bounds the read pool: enough for the HTTP API, the metrics
// scrape and the dispatcher's NextDue to run side by side.
const readConns = 4

// Store is a bridge.Store on one SQLite database file. It is safe for
// concurrent use.
type Store struct {
	wdb *sql.DB // exactly one connection, used only by the writer goroutine
	rdb *sql.DB // read-only pool
	// stmts are prepared on wdb's connection; used only by the writer.
	stmts map[string]*sql.Stmt
	reads readStmts // prepared on rdb, for the hot read queries
	log   *slog.Logger

	writes  *group.Group[*request] // the writer (see write)
	commits atomic.Int64           // transactions committed by the writer

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database at path, brings its schema
// up to date and starts the writer. The caller must Close the store.
func Open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	wdb, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	// One connection that never expires: the writer owns it, and
	// per-connection state (pragmas) stays put.
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	if err := migrate(ctx, wdb, log); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	var mode string
	if err := wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if mode != "wal" {
		// Without WAL, readers block the writer; some file systems
		// (network mounts) cannot do WAL. Refuse rather than degrade.
		wdb.Close()
		return nil, fmt.Errorf("opening %s: journal mode is %q, want wal (is it on a network file system?)", path, mode)
	}

	stmts, err := prepare(ctx, wdb)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}

	rdb, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(readConns)
	rdb.SetMaxIdleConns(readConns)
	if err := rdb.PingContext(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}

	s := &Store{wdb: wdb, rdb: rdb, stmts: stmts, log: log}
	s.writes = s.newWriter()
	return s, nil
}

// dsn builds the driver's connection string. The pragmas go in the DSN so
// that every connection the pools open gets them, not only the first.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMillis))
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		// FULL: in WAL mode NORMAL may lose the last commits on power
		// loss, and an acknowledged message must never be lost.
		q.Add("_pragma", "synchronous(FULL)")
		// Take the write lock at BEGIN, where busy_timeout applies,
		// instead of failing on a lock upgrade mid-transaction.
		q.Set("_txlock", "immediate")
	}
	// A file: URI, so that '?' or '#' in a path cannot be taken for the
	// query; SQLite ignores the driver's underscore parameters.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Close stops the writer, after it has finished the requests already
// handed to it, and closes the database. Calls after the first return nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.writes.Close()
		s.closeErr = errors.Join(s.reads.close(), s.rdb.Close(), s.wdb.Close())
	})
	return s.closeErr
}

// Ping reports whether the store can take writes now: the writer is
// running and can take the database's write lock, and the file is
// readable. It is meant for readiness checks.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write(ctx, func(context.Context, writeTx) error { return nil }); err != nil {
		return err
	}
	var v int
	return storeErr("ping", s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v))
}

// IntegrityCheck runs SQLite's full consistency check of the file and
// returns an error describing the first problems unless it passes.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	rows, err := s.rdb.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return storeErr("integrity check", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return storeErr("integrity check", err)
		}
		problems = append(problems, line)
	}
	if err := rows.Err(); err != nil {
		return storeErr("integrity check", err)
	}
	if len(problems) == 1 && problems[0] == "ok" {
		return nil
	}
	return fmt.Errorf("sqlite integrity check failed: %q", problems)
}
