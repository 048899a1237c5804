package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/smsbridge/smsbridge/bridge/store/internal/group"
)

// writeTimeout bounds one grouped transaction: a server that stopped
// answering fails the group's callers (store unavailable, try again
// later) instead of holding every later write behind it.
const writeTimeout = 30 * time.Second

// A write is one caller's part of a grouped transaction (see tryWrites).
type write struct {
	stmts []stmt
	// after, if set, runs once every statement of the group has run and
	// before the commit. It may fail its write alone (rolling back what
	// its statements did), or return statements that need what the first
	// ones read, to run with the commit. It costs the group a second
	// round trip, so writes that need none leave it nil.
	after func() ([]stmt, error)
	// fail is the caller's error for a failure of one of its statements
	// on the server (a constraint, data a column cannot hold).
	fail func(err error) error
	// answered, if set, is told the write's outcome (see group.Answerer).
	answered func(err error)
	// late: the dispatcher's record of a send, which may wait for company
	// (see group.Later).
	late bool
}

// Late implements group.Later.
func (w *write) Late() bool { return w.late }

// maxJoin bounds how long a group of late writes waits for one that is
// not, to share its commit (see group.Later): at 100 messages a second one
// comes every 10 ms.
const maxJoin = 10 * time.Millisecond

// Answered implements group.Answerer.
func (w *write) Answered(err error) {
	if w.answered != nil {
		w.answered(err)
	}
}

// A stmt is a statement of a write, with where it goes in the group's
// lock order and, if it reads its result, the function that does.
type stmt struct {
	order lockOrder
	query string
	args  []any
	read  func(br pgx.BatchResults) error // nil: the result is not read
}

// lockOrder places a statement in its group's transaction. A group holds
// the writes of many callers, whose rows another instance's group may
// take too: statements run sorted by phase and then by the key of the
// row they lock, so that two groups lock the rows they share in the same
// order and cannot deadlock (as each Complete already locked its own
// recipients, then conversations, in id order). Within a key, the writes'
// order of arrival, and each write's own order, are kept.
type lockOrder struct {
	phase phase
	id    int64  // a recipient's id (phaseRecipient)
	key   string // a conversation's id (phaseConversation)
}

type phase int

const (
	phaseInsert       phase = iota // new rows (messages, their recipients): nothing to wait for
	phaseRecipient                 // outcomes, by recipient id
	phaseConversation              // filings, by conversation id
	phaseMail                      // outbox mail: new rows
)

func (a lockOrder) compare(b lockOrder) int {
	return cmp.Or(cmp.Compare(a.phase, b.phase), cmp.Compare(a.id, b.id), strings.Compare(a.key, b.key))
}

// newWriter starts the group through which Enqueue and Complete write.
func (s *Store) newWriter() *group.Group[*write] {
	return group.New(s.tryWrites, group.Options{MaxJoin: maxJoin, Closed: storeErr("write", errClosed), Log: s.log})
}

// tryWrites runs ws in one transaction on one pooled connection, their
// statements sent together as one pipelined batch.
//
// If no write has an after, the batch is the transaction: the server
// runs a batch's statements as one implicit transaction, committing it at
// the batch's end, so the group costs one round trip and one commit (one
// WAL flush), however many writes it holds. Otherwise the batch starts
// with BEGIN, and the statements the afters return go in a second batch
// ending with COMMIT: two round trips, still one commit.
//
// A statement that fails on the server rolls the transaction back; its
// write is the one failing on its own (group.Try). A deadlock or
// serialization failure with another instance's transactions may come of
// the grouping: the group then runs each write alone.
func (s *Store) tryWrites(ws []*write) (failed int, ferr, err error) {
	return s.runWrites(context.Background(), ws)
}

// runWrites is tryWrites with the statements under ctx: a group's own
// context, or, for a write run alone (see Claim), its caller's.
func (s *Store) runWrites(ctx context.Context, ws []*write) (failed int, ferr, err error) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return -1, nil, storeErr("writing", err)
	}
	// A connection left in a transaction (a failed ROLLBACK) is closed,
	// not reused.
	defer conn.Release()

	explicit := slices.ContainsFunc(ws, func(w *write) bool { return w.after != nil })
	var sts []owned
	for i, w := range ws {
		for _, st := range w.stmts {
			sts = append(sts, owned{st, i})
		}
	}
	begin := ""
	if explicit {
		begin = "BEGIN"
	}
	if failed, ferr, err := s.sendWrites(ctx, conn, ws, sts, begin, ""); failed >= 0 || err != nil {
		return failed, ferr, err
	}
	if explicit {
		sts = sts[:0]
		for i, w := range ws {
			if w.after == nil {
				continue
			}
			more, err := w.after()
			if err != nil {
				rollback(ctx, conn)
				return i, err, nil
			}
			for _, st := range more {
				sts = append(sts, owned{st, i})
			}
		}
		if failed, ferr, err := s.sendWrites(ctx, conn, ws, sts, "", "COMMIT"); failed >= 0 || err != nil {
			return failed, ferr, err
		}
	}
	s.commits.Add(1)
	return -1, nil, nil
}

// owned is a statement of ws[write].
type owned struct {
	stmt
	write int
}

// sendWrites runs sts, in lock order, as one batch, after first and
// before last if they are set (BEGIN, COMMIT). On failure the explicit
// transaction, if any, is rolled back.
func (s *Store) sendWrites(ctx context.Context, conn *pgxpool.Conn, ws []*write, sts []owned, first, last string) (failed int, ferr, err error) {
	slices.SortStableFunc(sts, func(a, b owned) int { return a.order.compare(b.order) })
	at := -1 // the write whose statement's result is being read
	b := &pgx.Batch{}
	bare := func(query string) {
		b.Queue(query).Fn = func(br pgx.BatchResults) error {
			at = -1
			_, err := br.Exec()
			return err
		}
	}
	if first != "" {
		bare(first)
	}
	for _, st := range sts {
		b.Queue(st.query, st.args...).Fn = func(br pgx.BatchResults) error {
			at = st.write
			if st.read != nil {
				return st.read(br)
			}
			_, err := br.Exec()
			return err
		}
	}
	if last != "" {
		bare(last)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		if first != "" || last != "" {
			rollback(ctx, conn)
		}
		return s.writeFailed(ws, at, err, conn)
	}
	return -1, nil, nil
}

// writeFailed tells what a failed batch of ws means for group.Try: err
// came while reading the result of a statement of ws[at] (at < 0: before
// any was sent).
func (s *Store) writeFailed(ws []*write, at int, err error, conn *pgxpool.Conn) (failed int, ferr, gerr error) {
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") && len(ws) > 1:
		return -1, nil, group.Alone(storeErr("writing", err))
	case errors.As(err, &pe) && !storeFailure(pe.Code) && at >= 0:
		return at, ws[at].fail(err), nil
	case errors.As(err, &pe) || conn.Conn().IsClosed():
		return -1, nil, storeErr("writing", err)
	case at >= 0:
		// Reading a result failed on this side (a value that does not
		// scan): that write's own.
		return at, ws[at].fail(err), nil
	case len(ws) > 1:
		// Nothing was sent: an argument pgx could not encode. Alone,
		// it fails its own write only.
		return -1, nil, group.Alone(storeErr("writing", err))
	}
	return 0, ws[0].fail(err), nil
}

// rollback ends the explicit transaction on conn. If it fails, the
// connection stays in it, and Release closes it.
func rollback(ctx context.Context, conn *pgxpool.Conn) {
	conn.Exec(ctx, "ROLLBACK") //nolint:errcheck // see above
}
