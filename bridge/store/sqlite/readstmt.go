package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// readStmts are the read pool's prepared statements, by query text, for
// the queries every message runs: its consent check (Suppressed), and
// the dispatcher's NextDue after each claim. Parsing them anew each time took about a quarter of
// the daemon's CPU at 100 msgs/s. database/sql prepares a Stmt on each
// pooled connection the first time it runs there, and keeps it.
type readStmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxReadStmts bounds the cache: a query past it runs unprepared.
// Suppressed's text varies with the number of phones (the recipients of
// one provider call; usually one), listings' with their filters.
const maxReadStmts = 32

// readStmt returns the prepared statement for query, preparing it if there is
// room; nil if there is none, or preparing failed (the caller runs the
// query as it is, and reports what goes wrong then).
func (s *Store) readStmt(ctx context.Context, query string) *sql.Stmt {
	r := &s.reads
	r.mu.Lock()
	st, ok := r.m[query]
	full := len(r.m) >= maxReadStmts
	r.mu.Unlock()
	if ok || full {
		return st
	}
	st, err := s.rdb.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.m[query]; ok { // prepared meanwhile by another caller
		st.Close()
		return prev
	}
	if r.m == nil {
		r.m = map[string]*sql.Stmt{}
	}
	r.m[query] = st
	return st
}

// queryRead runs a read query, prepared once (see readStmts).
func (s *Store) queryRead(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := s.readStmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.rdb.QueryContext(ctx, query, args...)
}

// queryRowRead is queryRead for one row.
func (s *Store) queryRowRead(ctx context.Context, query string, args ...any) *sql.Row {
	if st := s.readStmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.rdb.QueryRowContext(ctx, query, args...)
}

// close closes the prepared statements (before the pool).
func (r *readStmts) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, st := range r.m {
		errs = append(errs, st.Close())
	}
	r.m = nil
	return errors.Join(errs...)
}

// uninterrupted returns ctx without its cancellation, or ctx's error if
// it has ended. The driver watches a cancellable context with a goroutine
// of its own for every statement, which nearly doubled the CPU of these
// reads every message makes (Suppressed, NextDue); they are index lookups
// of a few rows in WAL mode, where a reader never waits for a lock, so
// there is nothing long for a cancel to cut short.
func uninterrupted(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return ctx, err
	}
	return context.WithoutCancel(ctx), nil
}
