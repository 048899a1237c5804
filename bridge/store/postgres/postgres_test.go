package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/storetest"
	"github.com/smsbridge/smsbridge/internal/pgtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func serverURL() string { return pgtest.ServerURL() }

func admin(tb testing.TB) *pgx.Conn { return pgtest.Admin(tb) }

func newDatabase(tb testing.TB) (dbURL, name string) { return pgtest.NewDatabase(tb) }

func openTest(tb testing.TB, dbURL string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), dbURL, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bridge.Store {
		u, _ := newDatabase(t)
		return openTest(t, u)
	})
}

func TestConversations(t *testing.T) {
	storetest.RunConversations(t, func(t *testing.T) storetest.Full {
		u, _ := newDatabase(t)
		return openTest(t, u)
	})
}

func message(numbers ...string) *bridge.Message {
	m := &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelSMTP, Account: "acme", Text: "hi",
		Created: time.UnixMilli(1_900_000_000_000)}
	for _, n := range numbers {
		m.Recipients = append(m.Recipients, bridge.Recipient{To: n, Providers: []string{"p1"}, Provider: "p1",
			NextAttempt: m.Created})
	}
	return m
}

// TestClaimTwoInstances is two daemons on one queue, each with eight
// dispatchers: every recipient is handed out exactly once.
func TestClaimTwoInstances(t *testing.T) {
	u, _ := newDatabase(t)
	stores := []*Store{openTest(t, u), openTest(t, u)}
	ctx := context.Background()
	want := map[int64]bool{}
	for i := range 40 {
		m := message()
		for j := range 10 {
			m.Recipients = append(m.Recipients, bridge.Recipient{To: fmt.Sprintf("+1555%03d%04d", i, j),
				NextAttempt: time.UnixMilli(1_900_000_000_000 - int64(i))})
		}
		if err := stores[i%2].Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Recipients {
			want[r.ID] = true
		}
	}
	now := time.UnixMilli(1_900_000_000_000)
	var mu sync.Mutex
	got := map[int64]int{}
	byStore := [2]int{}
	var wg sync.WaitGroup
	for k, s := range stores {
		for range 8 {
			wg.Go(func() {
				for {
					jobs, err := s.Claim(ctx, now, 3, nil, func(int) time.Duration { return time.Hour })
					if err != nil {
						t.Error(err)
						return
					}
					if len(jobs) == 0 {
						return
					}
					mu.Lock()
					for _, j := range jobs {
						got[j.Recipient.ID]++
					}
					byStore[k] += len(jobs)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	for id, n := range got {
		if n != 1 || !want[id] {
			t.Errorf("recipient %d handed out %d times (enqueued: %v)", id, n, want[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d recipients handed out, want %d", len(got), len(want))
	}
	if byStore[0] == 0 || byStore[1] == 0 {
		t.Errorf("claims per instance = %v; want both to have claimed", byStore)
	}
}

// TestOpenConcurrent is four instances starting at once on a new
// database: the advisory lock lets one migrate while the others wait.
func TestOpenConcurrent(t *testing.T) {
	u, _ := newDatabase(t)
	stores := make([]*Store, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(context.Background(), u, quiet) })
	}
	wg.Wait()
	ids := map[int32]bool{}
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Enqueue(context.Background(), message("+15551234567")); err != nil {
			t.Fatalf("Enqueue on store %d: %v", i, err)
		}
		ids[s.instance] = true
	}
	if len(ids) != len(stores) {
		t.Errorf("instance ids %v are not distinct", ids)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var versions, maxVersion int
	err = stores[0].pool.QueryRow(context.Background(),
		`SELECT count(*), max(version) FROM schema_migrations`).Scan(&versions, &maxVersion)
	if err != nil || versions != len(ms) || maxVersion != len(ms) {
		t.Fatalf("schema_migrations: %d rows up to %d, %v; want %d", versions, maxVersion, err, len(ms))
	}
}

// TestRecoverSharedQueue: Recover releases the claims of an instance
// that is gone, and leaves those of a live one to it.
func TestRecoverSharedQueue(t *testing.T) {
	u, _ := newDatabase(t)
	ctx := context.Background()
	live, dead, restarted := openTest(t, u), openTest(t, u), openTest(t, u)
	m := message("+15550000001", "+15550000002")
	if err := live.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	now := m.Created
	lease := func(int) time.Duration { return time.Hour }
	a, err := live.Claim(ctx, now, 1, nil, lease)
	if err != nil || len(a) != 1 {
		t.Fatalf("live Claim = %d jobs, %v", len(a), err)
	}
	b, err := dead.Claim(ctx, now, 1, nil, lease)
	if err != nil || len(b) != 1 {
		t.Fatalf("dead Claim = %d jobs, %v", len(b), err)
	}
	if n, err := restarted.Recover(ctx, now); err != nil || n != 0 {
		t.Fatalf("Recover with both claimers alive = %d, %v; want 0", n, err)
	}
	dead.Close()
	restart := now.Add(time.Second)
	// The server drops a closed session's advisory lock when its backend
	// has exited, a moment after Close returns: wait for that by taking
	// the lock (the server answers when it is free), and let it go.
	waiter, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close(ctx)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := waiter.Exec(wctx, `SELECT pg_advisory_lock($1, $2)`, instanceLockClass, dead.instance); err != nil {
		t.Fatalf("waiting for the dead instance's lock: %v", err)
	}
	if _, err := waiter.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, instanceLockClass, dead.instance); err != nil {
		t.Fatal(err)
	}
	n, err := restarted.Recover(ctx, restart)
	if err != nil || n != 1 {
		t.Fatalf("Recover after one claimer died = %d, %v; want 1", n, err)
	}
	got, err := restarted.Message(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got.Recipients {
		want := now.Add(time.Hour) // the live claim keeps its lease
		if r.ID == b[0].Recipient.ID {
			want = restart
		}
		if !r.NextAttempt.Equal(want) {
			t.Errorf("recipient %d: next attempt %v, want %v", r.ID, r.NextAttempt, want)
		}
	}
	jobs, err := restarted.Claim(ctx, restart, 10, nil, lease)
	if err != nil || len(jobs) != 1 || jobs[0].Recipient.ID != b[0].Recipient.ID {
		t.Fatalf("Claim after Recover = %v, %v; want the dead instance's recipient %d", jobs, err, b[0].Recipient.ID)
	}
}

func assertUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if bridge.ReasonOf(err) != bridge.ReasonStoreUnavailable || !bridge.IsTemporary(err) {
		t.Errorf("%s: error %v (reason %q, temporary %v); want a temporary %s", what, err,
			bridge.ReasonOf(err), bridge.IsTemporary(err), bridge.ReasonStoreUnavailable)
	}
}

func TestClosedStoreUnavailable(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	assertUnavailable(t, "Enqueue", s.Enqueue(ctx, message("+15551234567")))
	_, err := s.Claim(ctx, time.Now(), 1, nil, func(int) time.Duration { return time.Minute })
	assertUnavailable(t, "Claim", err)
	_, err = s.Message(ctx, "x")
	assertUnavailable(t, "Message", err)
	assertUnavailable(t, "Ping", s.Ping(ctx))
}

// TestConnectionsTerminated: an operator (or a failover) kills the
// store's connections. The call that finds its connection dead fails
// temporarily; the next one, on a new connection, works.
func TestConnectionsTerminated(t *testing.T) {
	u, name := newDatabase(t)
	if strings.Contains(u, "?") {
		u += "&pool_max_conns=1"
	} else {
		u += "?pool_max_conns=1"
	}
	s := openTest(t, u)
	ctx := context.Background()
	if err := s.Enqueue(ctx, message("+15551234567")); err != nil {
		t.Fatal(err)
	}
	conn := admin(t)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
		t.Fatal(err)
	}
	for left := 1; left > 0; { // termination is asynchronous
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, name).Scan(&left); err != nil {
			t.Fatal(err)
		}
	}
	// Within a second of its last use the pool hands the dead
	// connection out without pinging it first.
	m := message("+15551234567")
	assertUnavailable(t, "Enqueue on a terminated connection", s.Enqueue(ctx, m))
	if _, err := s.Message(ctx, m.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("message of the failed Enqueue: %v, want ErrNotFound", err)
	}
	if err := s.Enqueue(ctx, message("+15551234567")); err != nil {
		t.Fatalf("Enqueue after reconnecting: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after reconnecting: %v", err)
	}
}

func TestReadOnlyUnavailable(t *testing.T) {
	u, name := newDatabase(t)
	s := openTest(t, u)
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	// As on a standby: every transaction is read-only. New sessions
	// pick the setting up, so drop the pool's idle connections.
	if _, err := admin(t).Exec(ctx, "ALTER DATABASE "+name+" SET default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	s.pool.Reset()
	assertUnavailable(t, "Enqueue", s.Enqueue(ctx, message("+15551234567")))
	assertUnavailable(t, "Ping", s.Ping(ctx))
}

func TestStoreErr(t *testing.T) {
	for _, tt := range []struct {
		code       string
		unavailble bool
	}{
		{"53100", true}, {"53300", true}, {"25006", true}, {"57P01", true}, {"08006", true},
		{"23505", false}, {"42P01", false}, {"22021", false},
	} {
		err := storeErr("op", &pgconn.PgError{Code: tt.code})
		if got := bridge.ReasonOf(err) == bridge.ReasonStoreUnavailable; got != tt.unavailble {
			t.Errorf("SQLSTATE %s: unavailable = %v, want %v (%v)", tt.code, got, tt.unavailble, err)
		}
	}
	if err := storeErr("op", &pgconn.PgError{Code: "22P05"}); bridge.IsTemporary(err) || bridge.ReasonOf(err) != bridge.ReasonInvalid {
		t.Errorf("data exception: %v, want permanent invalid", err)
	}
	if err := storeErr("op", context.Canceled); !errors.Is(err, context.Canceled) || bridge.ReasonOf(err) != "" {
		t.Errorf("cancelled: %v, want the context's error", err)
	}
}

// TestSynchronousCommit: a database set to acknowledge commits before
// they are flushed does not make Enqueue do so.
func TestSynchronousCommit(t *testing.T) {
	u, name := newDatabase(t)
	ctx := context.Background()
	if _, err := admin(t).Exec(ctx, "ALTER DATABASE "+name+" SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, u)
	var setting string
	if err := s.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&setting); err != nil || setting != "on" {
		t.Fatalf("synchronous_commit = %q, %v; want on", setting, err)
	}
}

func TestRetention(t *testing.T) {
	storetest.RunRetention(t, func(t *testing.T) (storetest.Purging, storetest.Counter) {
		u, _ := newDatabase(t)
		s := openTest(t, u)
		return s, func(t *testing.T) map[string]int {
			t.Helper()
			out := map[string]int{}
			for _, table := range []string{"messages", "recipients", "idempotency_keys", "inbound", "outbox", "conversations", "alert_refs"} {
				var n int
				if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
					t.Fatalf("counting %s: %v", table, err)
				}
				out[table] = n
			}
			return out
		}
	})
}

func TestSuppressions(t *testing.T) {
	storetest.RunSuppressions(t, func(t *testing.T) storetest.Suppressing {
		u, _ := newDatabase(t)
		return openTest(t, u)
	})
}
