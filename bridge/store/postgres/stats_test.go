package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smsbridge/smsbridge/bridge"
)

// fillQueue inserts queued recipients (one message each) and as many
// finished ones directly, and refreshes the planner's statistics.
func fillQueue(tb testing.TB, s *Store, queued, finished int, created int64) {
	tb.Helper()
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `INSERT INTO messages (id, channel, account, created)
		SELECT 'm' || i, 'smtp', 'acme', $2::bigint + i FROM generate_series(1, $1::int) i`, queued+finished, created); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO recipients (message_id, to_addr, provider, state, next_attempt)
		SELECT 'm' || i, '+972501234567', 'p', CASE WHEN i > $1::int THEN 'queued' ELSE 'sent' END, $2::bigint + i
		FROM generate_series(1, $1::int + $3::int) i`, finished, created, queued); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE messages, recipients, queue_stats`); err != nil {
		tb.Fatal(err)
	}
}

// The metrics scrape (Stats) must not read the queue: no table is read
// sequentially, and the oldest queued recipient is found at
// recipients_queued's edge rather than by walking the queue or the
// finished recipients before it.
func TestStatsQueryPlan(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	fillQueue(t, s, 20_000, 20_000, 1_900_000_000_000)
	var plan []string
	rows, err := s.pool.Query(context.Background(), "EXPLAIN "+statsQuery)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	for _, table := range []string{"recipients", "messages"} {
		if strings.Contains(text, "Seq Scan on "+table) {
			t.Errorf("Stats reads %s sequentially; plan:\n%s", table, text)
		}
	}
	if !strings.Contains(text, "recipients_queued") {
		t.Errorf("Stats does not use recipients_queued; plan:\n%s", text)
	}
	st, err := s.Stats(context.Background())
	if err != nil || st.Queued != 20_000 || st.OldestQueued.UnixMilli() != 1_900_000_000_000+20_001 {
		t.Errorf("Stats = %+v, %v; want 20000 queued, the oldest created at %d", st, err, 1_900_000_000_000+20_001)
	}
}

// The counters behind Stats follow every way a recipient enters or
// leaves the queue, including a message's deletion cascading to its
// recipients.
func TestStatsCounterFollowsTheQueue(t *testing.T) {
	ctx := context.Background()
	u, _ := newDatabase(t)
	s := openTest(t, u)
	counted := func() (counter, actual int) {
		t.Helper()
		if err := s.pool.QueryRow(ctx, `SELECT (SELECT sum(queued) FROM queue_stats)::int,
			(SELECT count(*) FROM recipients WHERE state = 'queued')::int`).Scan(&counter, &actual); err != nil {
			t.Fatal(err)
		}
		return counter, actual
	}
	a, b := message("+15550000001"), message("+15550000002", "+15550000003")
	for _, m := range []*bridge.Message{a, b} {
		if err := s.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if c, n := counted(); c != 3 || n != 3 {
		t.Fatalf("after enqueueing 3 recipients: counter %d, queued %d", c, n)
	}
	if err := s.Complete(ctx, []bridge.Outcome{{RecipientID: b.Recipients[0].ID, State: bridge.StateSent,
		ProviderID: "x", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Cancel(ctx, a.ID, time.Now()); err != nil || n != 1 {
		t.Fatalf("Cancel = %d, %v", n, err)
	}
	if c, n := counted(); c != 1 || n != 1 {
		t.Fatalf("after one sent and one cancelled: counter %d, queued %d", c, n)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM messages WHERE id = $1`, b.ID); err != nil {
		t.Fatal(err)
	}
	if c, n := counted(); c != 0 || n != 0 {
		t.Fatalf("after deleting the message: counter %d, queued %d", c, n)
	}
	if st, err := s.Stats(ctx); err != nil || st != (bridge.QueueStats{}) {
		t.Fatalf("Stats = %+v, %v; want zero", st, err)
	}
}

// BenchmarkStats1M is a metrics scrape's store read with 1,000,000
// recipients queued (one message each, inserted directly): it must not
// grow with the queue.
func BenchmarkStats1M(b *testing.B) {
	u, _ := newDatabase(b)
	s := openTest(b, u)
	const queued = 1_000_000
	start := time.Now()
	// A million commit-time trigger calls would make the fill take
	// minutes: fill without them, then set the counter as migration 0011
	// does. (TestStatsQueryPlan fills with them.)
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `ALTER TABLE recipients DISABLE TRIGGER USER`); err != nil {
		b.Fatal(err)
	}
	fillQueue(b, s, queued, 0, 1_900_000_000_000)
	if _, err := s.pool.Exec(ctx, `ALTER TABLE recipients ENABLE TRIGGER USER`); err != nil {
		b.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE queue_stats SET queued = CASE slot WHEN 0 THEN $1 ELSE 0 END`, queued); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d queued in %v", queued, time.Since(start))
	for b.Loop() {
		st, err := s.Stats(context.Background())
		if err != nil || st.Queued != queued {
			b.Fatalf("Stats = %+v, %v", st, err)
		}
	}
}

// The counter is written once, at commit, with what the transaction kept:
// changes rolled back to a savepoint are not counted, and neither is a
// transaction rolled back whole.
func TestStatsCounterSavepoints(t *testing.T) {
	ctx := context.Background()
	u, _ := newDatabase(t)
	s := openTest(t, u)
	insert := func(tx pgx.Tx, id string, n int) {
		t.Helper()
		if _, err := tx.Exec(ctx, `INSERT INTO messages (id, channel, account, created) VALUES ($1, 'smtp', 'acme', 1)`, id); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO recipients (message_id, to_addr, state)
			SELECT $1, '+15550000001', 'queued' FROM generate_series(1, $2::int)`, id, n); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insert(tx, "a", 1000)
	sp, err := tx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insert(sp, "b", 5)
	if err := sp.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE recipients SET state = 'sent' WHERE id IN (SELECT id FROM recipients LIMIT 10)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tx, err = s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insert(tx, "c", 7)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stats(ctx); err != nil || st.Queued != 990 {
		t.Fatalf("Stats = %+v, %v; want 990 queued", st, err)
	}
}
