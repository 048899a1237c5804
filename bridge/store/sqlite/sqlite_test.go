package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/storetest"
	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bridge.Store { return openTest(t, filepath.Join(t.TempDir(), "q.db")) })
}

func TestConversationsContract(t *testing.T) {
	storetest.RunConversations(t, func(t *testing.T) storetest.Full { return openTest(t, filepath.Join(t.TempDir(), "q.db")) })
}

var quiet = slog.New(slog.DiscardHandler)

func openTest(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, quiet)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

var now = time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)

func testMessage(to ...string) *bridge.Message {
	m := &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelSMTP, Account: "acme",
		Text: "hello", Created: now}
	for _, n := range to {
		m.Recipients = append(m.Recipients, bridge.Recipient{To: n, Providers: []string{"p"}, Provider: "p",
			State: bridge.StateQueued, NextAttempt: now})
	}
	return m
}

func mustEnqueue(t *testing.T, s *Store, m *bridge.Message) {
	t.Helper()
	if err := s.Enqueue(context.Background(), m); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

// writerExec runs a statement on the writer's connection, between batches:
// the write pool has that one connection only.
func writerExec(t *testing.T, s *Store, query string) {
	t.Helper()
	if _, err := s.wdb.ExecContext(context.Background(), query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := Open(ctx, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	m := testMessage("+15551234567", "+15557654321")
	mustEnqueue(t, s, m)
	jobs, err := s.Claim(ctx, now, 1, nil, func(int) time.Duration { return time.Minute })
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim = %d jobs, %v", len(jobs), err)
	}
	if err := s.Complete(ctx, []bridge.Outcome{{RecipientID: jobs[0].Recipient.ID, State: bridge.StateSent,
		ProviderID: "abc", At: now}}); err != nil {
		t.Fatal(err)
	}
	want, err := s.Message(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The second Open finds the schema current and applies nothing; the
	// data and the queue state are as they were.
	s = openTest(t, path)
	got, err := s.Message(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
	}
	if got.Recipients[0].State != bridge.StateSent || got.Recipients[1].State != bridge.StateQueued {
		t.Fatalf("states after reopen: %s, %s", got.Recipients[0].State, got.Recipients[1].State)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var version int
	if err := s.rdb.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != len(ms) {
		t.Fatalf("user_version = %d, %v; want %d", version, err, len(ms))
	}
	// New recipients do not reuse ids.
	m2 := testMessage("+15550000000")
	mustEnqueue(t, s, m2)
	if m2.Recipients[0].ID <= m.Recipients[1].ID {
		t.Fatalf("new recipient id %d not above %d", m2.Recipients[0].ID, m.Recipients[1].ID)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	schema := func() string {
		s := openTest(t, path)
		rows, err := s.rdb.Query("SELECT type, name, sql FROM sqlite_schema ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var typ, name string
			var text sql.NullString
			if err := rows.Scan(&typ, &name, &text); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %s %s\n", typ, name, text.String)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	first := schema()
	if !strings.Contains(first, "table messages") || !strings.Contains(first, "index recipients_due") {
		t.Fatalf("schema lacks the tables:\n%s", first)
	}
	if second := schema(); second != first {
		t.Fatalf("second Open changed the schema:\n%s\nthen\n%s", first, second)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s := openTest(t, path)
	writerExec(t, s, "PRAGMA user_version = 999")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(context.Background(), path, quiet)
	if err == nil {
		s2.Close()
		t.Fatal("Open accepted a database from a newer version")
	}
}

func TestPragmas(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
	pragmas := func(c *sql.Conn) map[string]string {
		got := map[string]string{}
		for _, p := range []string{"journal_mode", "synchronous", "foreign_keys", "busy_timeout", "query_only"} {
			var v string
			if err := c.QueryRowContext(ctx, "PRAGMA "+p).Scan(&v); err != nil {
				t.Fatalf("PRAGMA %s: %v", p, err)
			}
			got[p] = v
		}
		return got
	}
	wc, err := s.wdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "5000", "query_only": "0"}
	if got := pragmas(wc); !reflect.DeepEqual(got, want) {
		t.Errorf("writer pragmas = %v, want %v", got, want)
	}
	wc.Close()

	// Every connection of the read pool, not just the first.
	var conns []*sql.Conn
	for range readConns {
		c, err := s.rdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		got := pragmas(c)
		if got["query_only"] != "1" || got["busy_timeout"] != "5000" || got["journal_mode"] != "wal" {
			t.Errorf("read connection %d pragmas = %v", i, got)
		}
		c.Close()
	}
}

func TestPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "my store #1", "q?x=1&y=%41.db")
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path)
	mustEnqueue(t, s, testMessage("+15551234567"))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
}

// blockWriter hands the writer a request that holds it until the returned
// func is called, so that requests made meanwhile pile up in one batch.
func blockWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	entered, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(context.Context, writeTx) error {
			close(entered)
			<-unblock
			return nil
		})
	}()
	<-entered
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("blocking request: %v", err)
		}
	}
}

// waitQueued waits, in a synctest bubble with s opened in it, until every
// goroutine is blocked, and checks that n requests then wait for the
// writer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	synctest.Wait()
	if got := s.writes.Waiting(); got != n {
		t.Fatalf("%d requests queued, want %d", got, n)
	}
}

func TestGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
		taken := testMessage("+15550000000")
		mustEnqueue(t, s, taken)

		release := blockWriter(t, s)
		before := s.commits.Load()
		const n = 100
		msgs := make([]*bridge.Message, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			msgs[i] = testMessage(fmt.Sprintf("+1555%07d", i))
			if i == n/2 {
				msgs[i].ID = taken.ID // fails alone: the others still commit
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Enqueue(ctx, msgs[i])
			}()
		}
		var completeErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Fails after its first update, which its savepoint undoes.
			completeErr = s.Complete(ctx, []bridge.Outcome{
				{RecipientID: taken.Recipients[0].ID, State: bridge.StateFailed, Error: "x"},
				{RecipientID: 1 << 40, State: bridge.StateSent},
			})
		}()
		waitQueued(t, s, n+1)
		release()
		wg.Wait()

		// The blocking request's commit, then one for all the others.
		if got := s.commits.Load() - before; got != 2 {
			t.Errorf("%d commits for %d requests, want 2", got, n+2)
		}
		if !errors.Is(completeErr, bridge.ErrNotFound) {
			t.Errorf("Complete(unknown) = %v, want ErrNotFound", completeErr)
		}
		for i, m := range msgs {
			if i == n/2 {
				if errs[i] == nil {
					t.Errorf("Enqueue of a duplicate id succeeded")
				}
				continue
			}
			if errs[i] != nil {
				t.Errorf("Enqueue %d: %v", i, errs[i])
				continue
			}
			got, err := s.Message(ctx, m.ID)
			if err != nil || len(got.Recipients) != 1 || got.Recipients[0].ID != m.Recipients[0].ID {
				t.Errorf("message %d after group commit: %+v, %v", i, got, err)
			}
		}
		if got, err := s.Message(ctx, taken.ID); err != nil || got.Recipients[0].To != "+15550000000" ||
			got.Recipients[0].State != bridge.StateQueued {
			t.Errorf("the message whose id was reused: %+v, %v", got, err)
		}
		if st, err := s.Stats(ctx); err != nil || st.Queued != n {
			t.Errorf("Stats = %+v, %v; want %d queued", st, err, n)
		}
	})
}

// A request whose caller gave up while it waited is not run.
func TestCancelledWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
		release := blockWriter(t, s)
		ctx, cancel := context.WithCancel(context.Background())
		m := testMessage("+15551234567")
		errc := make(chan error, 1)
		go func() { errc <- s.Enqueue(ctx, m) }()
		waitQueued(t, s, 1)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Enqueue = %v, want context.Canceled", err)
		}
		release()
		if _, err := s.Message(context.Background(), m.ID); !errors.Is(err, bridge.ErrNotFound) {
			t.Fatalf("message of a cancelled Enqueue was stored: %v", err)
		}
	})
}

func TestCloseFinishesHandedOverWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "q.db")
		s, err := Open(context.Background(), path, quiet)
		if err != nil {
			t.Fatal(err)
		}
		release := blockWriter(t, s)
		const n = 10
		errs := make(chan error, n)
		var msgs []*bridge.Message
		for i := range n {
			m := testMessage(fmt.Sprintf("+1555000%04d", i))
			msgs = append(msgs, m)
			go func() { errs <- s.Enqueue(context.Background(), m) }()
		}
		waitQueued(t, s, n)
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		// Close waits for the writer, which is still busy.
		synctest.Wait()
		select {
		case err := <-closed:
			t.Fatalf("Close returned %v while the writer was busy", err)
		default:
		}
		release()
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		for range n {
			if err := <-errs; err != nil {
				t.Errorf("Enqueue handed over before Close: %v", err)
			}
		}

		// After Close: a temporary store-unavailable error, not a hang.
		err = s.Enqueue(context.Background(), testMessage("+15559999999"))
		if bridge.ReasonOf(err) != bridge.ReasonStoreUnavailable || !bridge.IsTemporary(err) {
			t.Errorf("Enqueue after Close = %v, want temporary store_unavailable", err)
		}
		if err := s.Ping(context.Background()); err == nil {
			t.Error("Ping after Close succeeded")
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}

		s = openTest(t, path)
		for _, m := range msgs {
			if _, err := s.Message(context.Background(), m.ID); err != nil {
				t.Errorf("message %s after reopen: %v", m.ID, err)
			}
		}
	})
}

// assertUnavailable checks err is the temporary store_unavailable error
// the SMTP side answers with 451, wrapping SQLite's error code want.
func assertUnavailable(t *testing.T, err error, want int) {
	t.Helper()
	if bridge.ReasonOf(err) != bridge.ReasonStoreUnavailable || !bridge.IsTemporary(err) {
		t.Fatalf("err = %v, want a temporary store_unavailable error", err)
	}
	var se *sqlitedrv.Error
	if !errors.As(err, &se) || se.Code()&0xff != want {
		t.Fatalf("err = %v, does not wrap SQLite code %d", err, want)
	}
}

func TestDiskFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
		mustEnqueue(t, s, testMessage("+15550000000"))
		var pages int
		if err := s.wdb.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
			t.Fatal(err)
		}
		// The database may not grow: as good as a full disk, to SQLite.
		writerExec(t, s, fmt.Sprintf("PRAGMA max_page_count = %d", pages))

		big := testMessage("+15551234567")
		big.Text = strings.Repeat("ש", 64<<10)
		err := s.Enqueue(ctx, big)
		assertUnavailable(t, err, sqlite3.SQLITE_FULL)
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping with a full disk: %v", err)
		}

		// A whole batch, failing together, leaves no trace either.
		release := blockWriter(t, s)
		const n = 8
		msgs := make([]*bridge.Message, n)
		errs := make(chan error, n)
		for i := range msgs {
			msgs[i] = testMessage("+15551234567")
			msgs[i].Text = big.Text
			go func() { errs <- s.Enqueue(ctx, msgs[i]) }()
		}
		waitQueued(t, s, n)
		release()
		for range n {
			assertUnavailable(t, <-errs, sqlite3.SQLITE_FULL)
		}

		writerExec(t, s, "PRAGMA max_page_count = 4294967294")
		mustEnqueue(t, s, big)
		for _, m := range msgs {
			mustEnqueue(t, s, m)
		}
		got, err := s.Message(ctx, big.ID)
		if err != nil || got.Text != big.Text {
			t.Fatalf("after the disk has room: %v", err)
		}
		if err := s.IntegrityCheck(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
	writerExec(t, s, "PRAGMA query_only = 1")
	m := testMessage("+15551234567")
	assertUnavailable(t, s.Enqueue(ctx, m), sqlite3.SQLITE_READONLY)
	_, err := s.Claim(ctx, now, 10, nil, func(int) time.Duration { return time.Minute })
	assertUnavailable(t, err, sqlite3.SQLITE_READONLY)

	writerExec(t, s, "PRAGMA query_only = 0")
	mustEnqueue(t, s, m)
}

func TestLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s := openTest(t, path)
	writerExec(t, s, "PRAGMA busy_timeout = 50")

	// Another process (here, connection) holds the write lock.
	other, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	m := testMessage("+15551234567")
	assertUnavailable(t, s.Enqueue(ctx, m), sqlite3.SQLITE_BUSY)
	if err := s.Ping(ctx); bridge.ReasonOf(err) != bridge.ReasonStoreUnavailable {
		t.Errorf("Ping while locked = %v, want store_unavailable", err)
	}

	if _, err := c.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, s, m)
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestInfoAndJSONColumns(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
	m := testMessage("+15551234567", "+15557654321")
	m.Params = map[string]string{"name": "דוד"}
	mustEnqueue(t, s, m)
	info := map[string]string{"status": "queued at provider", "cost": "0.05"}
	err := s.Complete(ctx, []bridge.Outcome{
		{RecipientID: m.Recipients[0].ID, State: bridge.StateSent, Provider: "p", ProviderID: "x", Info: info, At: now},
		{RecipientID: m.Recipients[1].ID, State: bridge.StateFailed, Error: "no", At: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	var raw sql.NullString
	if err := s.rdb.QueryRow("SELECT info FROM recipients WHERE id = ?", m.Recipients[0].ID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(raw.String), &got); err != nil || !reflect.DeepEqual(got, info) {
		t.Errorf("info = %q (%v), want %v", raw.String, err, info)
	}
	if err := s.rdb.QueryRow("SELECT info FROM recipients WHERE id = ?", m.Recipients[1].ID).Scan(&raw); err != nil || raw.Valid {
		t.Errorf("info without details = %q, %v; want NULL", raw.String, err)
	}
	var params, providers string
	if err := s.rdb.QueryRow("SELECT m.params, r.providers FROM messages m JOIN recipients r ON r.message_id = m.id WHERE m.id = ? LIMIT 1", m.ID).
		Scan(&params, &providers); err != nil {
		t.Fatal(err)
	}
	if params != `{"name":"דוד"}` || providers != `["p"]` {
		t.Errorf("params = %s, providers = %s", params, providers)
	}
}

// Claim must walk the due index in order, not sort every due row.
func TestClaimQueryPlan(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
	rows, err := s.rdb.Query("EXPLAIN QUERY PLAN "+selectDue, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "recipients_due") || strings.Contains(text, "TEMP B-TREE") {
		t.Fatalf("query plan:\n%s", text)
	}
}

func TestIntegrityCheckFindsCorruption(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := Open(ctx, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		mustEnqueue(t, s, testMessage(fmt.Sprintf("+1555000%04d", i)))
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatalf("fresh store: %v", err)
	}
	var root, pageSize int64
	if err := s.rdb.QueryRow("SELECT rootpage FROM sqlite_schema WHERE name = 'recipients_message'").Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, pageSize), (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	if err := s.IntegrityCheck(ctx); err == nil {
		t.Fatal("IntegrityCheck passed a database with a zeroed index page")
	}
}

func TestSuppressionsContract(t *testing.T) {
	storetest.RunSuppressions(t, func(t *testing.T) storetest.Suppressing {
		return openTest(t, filepath.Join(t.TempDir(), "q.db"))
	})
}

// The metrics scrape (Stats) must not read the queue: every table it
// touches is looked up through an index (SEARCH), none walked (SCAN), and
// the oldest queued recipient is found at recipients_queued's edge. (The
// count that took 0.4-0.8 s at 100,000 queued was a SEARCH too, over
// every queued entry of recipients_due: hence the index check.)
func TestStatsQueryPlan(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
	text := queryPlan(t, s, statsQuery)
	for _, d := range strings.Split(text, "\n") {
		if strings.HasPrefix(d, "SCAN") && d != "SCAN CONSTANT ROW" {
			t.Errorf("Stats scans a table (%s); query plan:\n%s", d, text)
		}
	}
	if !strings.Contains(text, "recipients_queued") {
		t.Errorf("Stats does not use recipients_queued; query plan:\n%s", text)
	}
}

// What a claim reads for the providers outside its quota, and NextDue
// with providers to skip, go by provider through recipients_provider_due:
// they never walk the queue, in which the recipients of a provider at its
// quota (left out) may be thousands.
func TestLeavingProvidersOutReadsNoBacklog(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
	for name, c := range map[string]struct {
		query string
		args  []any
	}{
		"the claim's others": {selectDueExcept, []any{0, `["p"]`, 16}},
		"NextDue skipping":   {nextDueExcept, []any{`["p"]`}},
	} {
		text := queryPlan(t, s, c.query, c.args...)
		for _, d := range strings.Split(text, "\n") {
			if strings.HasPrefix(d, "SCAN") && !slices.Contains([]string{"SCAN CONSTANT ROW", "SCAN queued", "SCAN q"}, d) &&
				!strings.HasPrefix(d, "SCAN json_each") {
				t.Errorf("%s scans a table (%s); query plan:\n%s", name, d, text)
			}
			if strings.HasPrefix(d, "SEARCH") && strings.Contains(d, "recipients_due") {
				t.Errorf("%s reads recipients by due time (%s); query plan:\n%s", name, d, text)
			}
		}
		if !strings.Contains(text, "recipients_provider_due (state=? AND provider=?") {
			t.Errorf("%s does not look each provider up; query plan:\n%s", name, text)
		}
	}
}

// The counter behind Stats follows every way a recipient enters or
// leaves the queue, including a message's deletion cascading to its
// recipients.
func TestStatsCounterFollowsTheQueue(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
	counted := func() (counter, actual int) {
		t.Helper()
		if err := s.rdb.QueryRow(`SELECT (SELECT queued FROM queue_stats),
			(SELECT count(*) FROM recipients WHERE state = 'queued')`).Scan(&counter, &actual); err != nil {
			t.Fatal(err)
		}
		return counter, actual
	}
	a, b := benchMessage("a"), benchMessage("b")
	b.Recipients = append(b.Recipients, b.Recipients[0])
	b.Recipients[1].To = "+972501234568"
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
	if _, err := s.wdb.Exec(`DELETE FROM messages WHERE id = ?`, b.ID); err != nil {
		t.Fatal(err)
	}
	if c, n := counted(); c != 0 || n != 0 {
		t.Fatalf("after deleting the message: counter %d, queued %d", c, n)
	}
	if st, err := s.Stats(ctx); err != nil || st != (bridge.QueueStats{}) {
		t.Fatalf("Stats = %+v, %v; want zero", st, err)
	}
}
