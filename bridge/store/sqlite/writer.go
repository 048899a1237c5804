package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/smsbridge/smsbridge/bridge/store/internal/group"
)

// Every write goes through one goroutine, the writer, which commits the
// requests of concurrent callers together (group): SQLite takes one
// writer at a time anyway, and a commit's fsync is then shared by every
// caller waiting, instead of paid by each.

// maxJoin bounds how long a batch of late writes (the outcomes of sends)
// waits for a write that is not (a message to store) to share its commit:
// at 100 messages a second one comes every 10 ms, and nothing waits on an
// outcome's commit but its sender's place in the dispatcher's accounting.
const maxJoin = 10 * time.Millisecond

// request is one caller's write: fn runs in the writer's transaction.
type request struct {
	fn   func(ctx context.Context, tx writeTx) error
	late bool // see group.Later
	// answered, if set, is told the write's outcome (see group.Answerer).
	answered func(err error)
}

// Late implements group.Later.
func (r *request) Late() bool { return r.late }

// Answered implements group.Answerer.
func (r *request) Answered(err error) {
	if r.answered != nil {
		r.answered(err)
	}
}

// newWriter starts the writer.
func (s *Store) newWriter() *group.Group[*request] {
	return group.New(s.tryBatch, group.Options{MaxJoin: maxJoin, Closed: storeErr("write", errClosed), Log: s.log})
}

// write runs fn in the writer's current transaction and returns once that
// transaction has committed (nil) or failed. fn must not keep tx, and must
// leave its results where the caller reads them only after a nil return.
//
// If ctx ends while the request waits, write returns ctx's error at once;
// fn may then still run and commit. That is harmless for every caller
// (a duplicate message after a client retry, or a lease that expires).
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, tx writeTx) error) error {
	return s.submit(ctx, fn, false)
}

// submit is write; a late write (bridge.Late: the record of sends already
// made, which no client waits on) may wait a little for company.
func (s *Store) submit(ctx context.Context, fn func(ctx context.Context, tx writeTx) error, late bool) error {
	return s.writes.Do(ctx, &request{fn: fn, late: late})
}

// tryBatch runs reqs in one transaction (group.Try). If a request fails on
// its own it rolls back and returns its position and error; otherwise it
// commits and returns failed = -1. err is a failure of the store itself.
// A request's own failure (a constraint, an unknown id) is rare, so the
// batch runs without per-request savepoints (which cost the writer, whom
// every caller waits on, two statements a request).
//
// Statements run under a context of the writer's own, never a caller's:
// cancelling a statement interrupts the connection and would take the
// other callers' work in the transaction down with it.
func (s *Store) tryBatch(reqs []*request) (int, error, error) {
	ctx := context.Background()
	sqlTx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return -1, nil, storeErr("begin", err)
	}
	defer sqlTx.Rollback() // after Commit, a no-op
	tx := writeTx{sqlTx, s.stmts}
	for i, r := range reqs {
		if err := r.fn(ctx, tx); err != nil {
			if fatal(err) {
				return -1, nil, storeErr("write", err)
			}
			return i, err, nil
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return -1, nil, storeErr("commit", err)
	}
	s.commits.Add(1)
	return -1, nil, nil
}

// fatal reports whether err, from a request, means the transaction itself
// is in doubt.
func fatal(err error) bool { return unavailable(err) || storeFailure(err) }

// writeQueries are prepared once, on the writer's connection: parsing
// them anew for every request cost the writer, which every caller waits
// on, about a sixth of its time.
var writeQueries = []string{insertMessage, insertRecipient, insertClaimed, selectDue, selectDueFor, selectDueExcept, updateClaimed, updateOutcome,
	updateOutcomeFiled, upsertConversation, routeConversation, insertMail}

// prepare prepares writeQueries on db.
func prepare(ctx context.Context, db *sql.DB) (map[string]*sql.Stmt, error) {
	stmts := map[string]*sql.Stmt{}
	for _, q := range writeQueries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("preparing %q: %w", q, err)
		}
		stmts[q] = st
	}
	return stmts, nil
}

// writeTx is the writer's transaction, running the prepared statements.
type writeTx struct {
	*sql.Tx
	stmts map[string]*sql.Stmt
}

func (tx writeTx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := tx.stmts[query]; st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

func (tx writeTx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := tx.stmts[query]; st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}
