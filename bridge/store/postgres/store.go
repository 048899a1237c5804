// Package postgres is a bridge.Store on PostgreSQL, for running several
// smsbridge instances on one shared queue.
//
// Instances coordinate through the database alone. Claim locks the rows it
// hands out (SELECT … FOR UPDATE SKIP LOCKED), so concurrent dispatchers,
// in one process or many, never receive the same recipient during its
// lease. Each open Store holds a session-level advisory lock on its own
// instance id for as long as it lives; a recipient records the id that
// claimed it, and Recover tells a dead instance's claims from a live one's
// by whether that lock is still held.
//
// Enqueue and Complete, the writes every message makes, go through one
// goroutine per Store that gathers the calls made at the same moment and
// sends them to the server as one pipelined transaction (see tryWrites):
// one round trip, one commit and one WAL flush for many messages. The
// server's own group commit shares flushes between transactions but not
// the rest of their cost (a round trip per statement, a transaction's
// start and commit), which is most of the server's work per message.
// The other writes, rare, and reads run on the pool.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/smsbridge/smsbridge/bridge/store/internal/group"
)

// defaultConns is the pool size unless the URL sets pool_max_conns. The
// writer holds one connection at a time; the rest serve reads (the
// consent checks of SMTP sessions, the dashboard, /metrics) and the rare
// writes that run on their own.
const defaultConns = 16

// instanceLockClass is the first key of the session-level advisory lock
// pg_advisory_lock(instanceLockClass, instance id) each Store holds while
// it is open ("smsb" in ASCII). Two-key advisory locks live apart from
// one-key ones such as migrateLockKey.
const instanceLockClass int32 = 0x736d7362

// instanceAlive is an SQL condition: the instance whose id is in column
// col still holds its lock, so its claims are its own business. The
// statement passes instanceLockClass as $3.
func instanceAlive(col string) string {
	return `EXISTS (SELECT 1 FROM pg_locks l
		WHERE l.locktype = 'advisory' AND l.granted
		AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND l.classid = $3::integer::oid AND l.objid = ` + col + `::oid AND l.objsubid = 2)`
}

// keepAliveInterval is how often the instance lock's connection is
// checked, and re-established if it broke.
const keepAliveInterval = 10 * time.Second

// Store is a bridge.Store on a PostgreSQL database. It is safe for
// concurrent use, and any number of Stores, in any number of processes,
// may share one database.
type Store struct {
	pool     *pgxpool.Pool
	connCfg  *pgx.ConnConfig // for the instance lock's connection
	log      *slog.Logger
	instance int32 // this Store's id in recipients.claimed_by

	writes  *group.Group[*write] // Enqueue's and Complete's transactions
	commits atomic.Int64         // transactions committed by writes

	quit chan struct{} // closed by Close
	done chan struct{} // closed when keepAlive has released the instance lock

	closeOnce sync.Once
}

// Open connects to the database at url (a PostgreSQL connection string,
// URL or key=value form; pool_max_conns and the other pgxpool settings
// apply), brings its schema up to date and registers a new instance. The
// caller must Close the store.
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parsing connection string: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultConns
	}
	cfg.AfterConnect = durableCommits
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, storeErr("open", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, storeErr("open", err)
	}
	if err := migrate(ctx, pool, log); err != nil {
		pool.Close()
		return nil, storeErr("migrating schema", err)
	}
	s := &Store{
		pool:    pool,
		connCfg: cfg.ConnConfig.Copy(),
		log:     log,
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	lock, err := s.register(ctx)
	if err != nil {
		pool.Close()
		return nil, storeErr("registering instance", err)
	}
	go s.keepAlive(lock)
	s.writes = s.newWriter()
	return s, nil
}

// durableCommits makes a new session's commits durable when they return,
// which Enqueue promises: a server, database or role configured with
// synchronous_commit = off acknowledges commits before their WAL is
// flushed, and a crash would lose acknowledged messages. Stronger
// settings (remote_write, remote_apply for synchronous standbys) and
// local stay as configured.
func durableCommits(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `SELECT set_config('synchronous_commit', 'on', false)
		WHERE current_setting('synchronous_commit') = 'off'`)
	return err
}

// register opens the connection that holds the instance lock and picks
// an instance id no live Store holds. Ids are random rather than from a
// sequence so that registering needs no table; the lock makes them unique
// among live instances. An id may repeat one of a dead instance: its
// claims are then this Store's to recover, which is what they need.
func (s *Store) register(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return nil, err
	}
	for range 10 {
		id := rand.Int32N(math.MaxInt32) + 1 // positive: pg_locks shows objid as an unsigned oid
		if ok, err := tryLock(ctx, conn, id); err != nil {
			conn.Close(context.Background())
			return nil, err
		} else if ok {
			s.instance = id
			return conn, nil
		}
	}
	conn.Close(context.Background())
	return nil, errors.New("no free instance id after 10 tries")
}

func tryLock(ctx context.Context, conn *pgx.Conn, id int32) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, instanceLockClass, id).Scan(&ok)
	return ok, err
}

// keepAlive owns the instance lock's connection until Close. If the
// connection breaks (a server restart, a network cut), the server drops
// the lock with it, and until it is taken again other instances' Recover
// would count this one as dead and release its claims, sending them a
// second time. So it is checked often and re-taken as soon as possible.
func (s *Store) keepAlive(conn *pgx.Conn) {
	defer close(s.done)
	t := time.NewTicker(keepAliveInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			if conn != nil {
				// Closing the session releases the lock: from now on this
				// instance's remaining claims count as a dead one's.
				conn.Close(context.Background())
			}
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), keepAliveInterval)
		conn = s.relock(ctx, conn)
		cancel()
	}
}

// relock returns conn if it still holds the lock, or a new connection
// holding it again, or nil if that failed for now.
func (s *Store) relock(ctx context.Context, conn *pgx.Conn) *pgx.Conn {
	if conn != nil {
		if err := conn.Ping(ctx); err == nil {
			return conn
		}
		conn.Close(ctx)
		s.log.Warn("postgres instance lock lost; taking it again", "instance", s.instance)
	}
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		s.log.Error("postgres instance lock: cannot connect", "instance", s.instance, "err", err)
		return nil
	}
	ok, err := tryLock(ctx, conn, s.instance)
	if err != nil || !ok {
		// !ok: a new instance drew this id while the lock was free.
		// Vanishingly rare; its claims and ours are then one instance's.
		s.log.Error("postgres instance lock: cannot take it", "instance", s.instance, "taken", !ok, "err", err)
		conn.Close(ctx)
		return nil
	}
	s.log.Info("postgres instance lock taken again", "instance", s.instance)
	return conn
}

// Close commits the writes already handed to the store, closes the pool
// and releases the instance lock, waiting for calls in progress to return
// their connections. Calls after the first return nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.writes.Close()
		close(s.quit)
		<-s.done
		s.pool.Close()
	})
	return nil
}

// Ping reports whether the store can take writes now: the server answers
// and is not read-only (a standby, or default_transaction_read_only). It
// is meant for readiness checks.
func (s *Store) Ping(ctx context.Context) error {
	var readOnly string
	if err := s.pool.QueryRow(ctx, `SELECT current_setting('transaction_read_only')`).Scan(&readOnly); err != nil {
		return storeErr("ping", err)
	}
	if readOnly != "off" {
		return unavailableErr(errors.New("postgres ping: the database is read-only"))
	}
	return nil
}
