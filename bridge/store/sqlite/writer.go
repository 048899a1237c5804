package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// maxBatch caps the requests committed together: enough to amortise an
// fsync over a burst of SMTP sessions, small enough that one commit does
// not keep the first of them waiting long.
const maxBatch = 128

// request is one write waiting for the writer goroutine.
type request struct {
	ctx context.Context // the caller's: checked before fn runs, never passed to SQL
	fn  func(ctx context.Context, tx writeTx) error
	// done receives the outcome once the transaction that ran fn has
	// committed or failed. Buffered, so the writer never blocks on a
	// caller that stopped waiting.
	done chan error
	// late: the write may wait, up to maxJoin, to share the commit of a
	// write that cannot (see join).
	late bool
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
// made, which no client waits on) may wait a little for company (see join).
func (s *Store) submit(ctx context.Context, fn func(ctx context.Context, tx writeTx) error, late bool) error {
	// A select with several ready cases picks one at random: check first
	// so a cancelled context never reaches the writer.
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{ctx: ctx, fn: fn, done: make(chan error, 1), late: late}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return storeErr("write", errClosed)
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopped:
		// The writer answers before it stops; a request that slipped
		// into the channel after its last look is never run.
		select {
		case err := <-r.done:
			return err
		default:
			return storeErr("write", errClosed)
		}
	}
}

// maxLinger bounds how long the writer waits for a batch to fill (see
// linger): about one fsync, the time a caller waits anyway for a commit.
const maxLinger = time.Millisecond

// lingerFrom is the smallest previous batch that makes the writer linger:
// a store that few callers use at once has little to share a commit with,
// and would only see its latency grow.
const lingerFrom = 4

// run is the writer goroutine. It blocks for one request, takes every
// other one already waiting (up to maxBatch), lingers for a few more, and
// commits them together. Requests that arrive during a commit form the
// next batch: the busier the store, the bigger the batches, the fewer
// fsyncs per message.
func (s *Store) run() {
	defer close(s.stopped)
	batch := make([]*request, 0, maxBatch)
	linger := time.NewTimer(maxLinger)
	linger.Stop() // armed by s.linger
	last := 0     // the previous batch's size
	for {
		batch = batch[:0]
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-s.quit:
			// Finish what callers already handed over, then stop.
			for {
				batch = s.collect(batch[:0])
				if len(batch) == 0 {
					return
				}
				s.commit(batch)
			}
		}
		batch = s.collect(batch)
		batch = s.linger(batch, last, linger)
		batch = s.join(batch, linger)
		last = len(batch)
		s.commit(batch)
	}
}

// linger waits, at most maxLinger, for batch to grow to want requests,
// the size of the previous batch, if that was lingerFrom or more. Most of
// a commit's cost is per page written, not per row: the pages at the end
// of each table and index that every insert touches are written once per
// commit however many rows share them. So under load a batch as big as
// the last one costs the writer, which every caller waits on, less per
// message than committing a few straggling requests now and the rest in
// the next commit; with 20 SMTP sessions it cut the CPU per message by a
// tenth. When the load drops, a smaller batch waits once, and want
// shrinks with it.
func (s *Store) linger(batch []*request, want int, t *time.Timer) []*request {
	want = min(want, maxBatch)
	if want < lingerFrom || len(batch) >= want {
		return batch
	}
	return s.gather(batch, maxLinger, t, func(b []*request) bool { return len(b) >= want })
}

// maxJoin bounds how long a batch of late writes waits for a write that
// cannot wait: at 100 messages a second one comes every 10 ms.
const maxJoin = 10 * time.Millisecond

// join, when every request in batch is late (the outcomes of sends), waits
// at most maxJoin for one that is not (a message to enqueue), and takes it
// and what came with it into the batch: at a low rate each SMS then costs
// one commit, its outcome riding with the next message's enqueue, instead
// of two. An fsync is most of a commit's cost, and nothing waits on an
// outcome's commit but its sender's slot in the dispatcher's accounting.
func (s *Store) join(batch []*request, t *time.Timer) []*request {
	if len(batch) >= maxBatch || onTime(batch) {
		return batch
	}
	return s.collect(s.gather(batch, maxJoin, t, onTime))
}

// onTime reports whether batch holds a request that is not late.
func onTime(batch []*request) bool {
	return slices.ContainsFunc(batch, func(r *request) bool { return !r.late })
}

// gather adds the requests that come within d to batch, until it is full
// or enough says it has what it waits for.
func (s *Store) gather(batch []*request, d time.Duration, t *time.Timer, enough func([]*request) bool) []*request {
	t.Reset(d)
	defer t.Stop()
	for len(batch) < maxBatch && !enough(batch) {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-t.C:
			return batch
		case <-s.quit:
			return batch
		}
	}
	return batch
}

// collect appends the requests waiting in the channel, without blocking.
func (s *Store) collect(batch []*request) []*request {
	for len(batch) < maxBatch {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit runs a batch and answers every request in it.
func (s *Store) commit(batch []*request) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err // its caller has gone: do not write on its behalf
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	errs := make([]error, len(live))
	err := s.runBatch(live, errs)
	switch {
	// Log transitions only: a full disk fails every batch until fixed.
	case err != nil && !s.failing:
		s.log.Error("message store write failed", "requests", len(live), "err", err)
	case err == nil && s.failing:
		s.log.Info("message store writes work again")
	}
	s.failing = err != nil
	for i, r := range live {
		if err != nil {
			errs[i] = err
		}
		r.done <- errs[i]
	}
}

// runBatch runs reqs in one transaction and commits it. A request's own
// failure (a constraint, an unknown id) is rare, so the batch runs
// optimistically without per-request savepoints (which cost the writer,
// whom every caller waits on, two statements a request): when one request
// fails on its own, the transaction is rolled back and run again without
// it, and that request alone gets its error. A failure of the store itself
// (disk full, I/O error) fails the batch: it is returned.
//
// Statements run under a context of the writer's own, never a caller's:
// cancelling a statement interrupts the connection and would take the
// other callers' work in the transaction down with it.
func (s *Store) runBatch(reqs []*request, errs []error) error {
	live := reqs
	index := make([]int, len(reqs)) // position of live[i] in reqs
	for i := range index {
		index[i] = i
	}
	for len(live) > 0 {
		failed, ferr, err := s.tryBatch(live)
		if err != nil {
			return err
		}
		if failed < 0 {
			return nil
		}
		errs[index[failed]] = ferr
		live = append(live[:failed:failed], live[failed+1:]...)
		index = append(index[:failed:failed], index[failed+1:]...)
	}
	return nil
}

// tryBatch runs reqs in one transaction. If a request fails on its own it
// rolls back and returns its position and error; otherwise it commits and
// returns failed = -1. err is a failure of the store itself.
func (s *Store) tryBatch(reqs []*request) (failed int, ferr, err error) {
	ctx := context.Background()
	sqlTx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return -1, nil, storeErr("begin", err)
	}
	defer sqlTx.Rollback() // after Commit, a no-op
	var after []func(committed bool)
	defer func() {
		for _, f := range after {
			f(failed < 0 && ferr == nil && err == nil)
		}
	}()
	tx := writeTx{sqlTx, s.stmts, &after}
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
	after *[]func(committed bool)
}

// afterCommit has the writer call f once the transaction has committed
// (true) or rolled back (false), before any caller in it is answered:
// what a request must do about its outcome whether or not its caller
// still waits (a caller whose context ended does not).
func (tx writeTx) afterCommit(f func(committed bool)) { *tx.after = append(*tx.after, f) }

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
