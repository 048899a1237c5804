package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/storetest"
)

// twoInstances is two daemons on one database.
func twoInstances(t *testing.T) [2]*Store {
	u, _ := newDatabase(t)
	return [2]*Store{openTest(t, u), openTest(t, u)}
}

// TestLeaseTwoInstances is the pollers of two daemons racing for one job
// each time the lease runs out: one of them gets it each time, and a
// holder renews it through either instance.
func TestLeaseTwoInstances(t *testing.T) {
	stores := twoInstances(t)
	ctx := context.Background()
	base := time.UnixMilli(1_900_000_000_000)
	for round := range 5 {
		now := base.Add(time.Duration(round) * time.Hour)
		var mu sync.Mutex
		var holders []string
		var wg sync.WaitGroup
		for k, s := range stores {
			for i := range 4 {
				holder := fmt.Sprintf("instance-%d/poller-%d", k, i)
				wg.Go(func() {
					ok, err := s.Lease(ctx, "ippanel/inbox", holder, now, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						holders = append(holders, holder)
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		if len(holders) != 1 {
			t.Fatalf("round %d: holders %v, want one", round, holders)
		}
		// The holder renews through the other instance; nobody else may
		// take it meanwhile.
		for _, s := range stores {
			if ok, err := s.Lease(ctx, "ippanel/inbox", holders[0], now.Add(30*time.Second), time.Minute); err != nil || !ok {
				t.Fatalf("renewal by %s = %v, %v", holders[0], ok, err)
			}
			if ok, err := s.Lease(ctx, "ippanel/inbox", "intruder", now.Add(80*time.Second), time.Minute); err != nil || ok {
				t.Fatalf("another holder during the renewed lease = %v, %v", ok, err)
			}
		}
	}
}

// TestRecordInboundTwoInstances is a provider delivering one SMS to both
// daemons' webhooks several times at once: it is recorded once.
func TestRecordInboundTwoInstances(t *testing.T) {
	stores := twoInstances(t)
	ctx := context.Background()
	received := time.UnixMilli(1_900_000_000_000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	recorded, duplicates := 0, 0
	for _, s := range stores {
		for range 6 {
			wg.Go(func() {
				in := &bridge.Inbound{ID: bridge.NewID(), Provider: "voipcom", DedupeKey: "msg-77",
					From: "+972501234567", To: "+972599000001", Text: "yes", Received: received,
					Conversation: bridge.ConversationID("+972501234567", "+972599000001"), Created: received}
				mail := &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailReply, Ref: in.ID, To: "a@example.com", Data: []byte("x")}
				err := s.RecordInbound(ctx, in, mail, nil)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					recorded++
				case errors.Is(err, bridge.ErrDuplicateKey):
					duplicates++
				default:
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if recorded != 1 || duplicates != 11 {
		t.Errorf("recorded %d, duplicates %d; want 1 and 11", recorded, duplicates)
	}
	if st, err := stores[0].MailStats(ctx); err != nil || st.Queued != 1 {
		t.Errorf("MailStats = %+v, %v; want 1 queued", st, err)
	}
}

// TestClaimMailTwoInstances is two daemons' mailers on one queue: every
// mail is handed out exactly once.
func TestClaimMailTwoInstances(t *testing.T) {
	stores := twoInstances(t)
	ctx := context.Background()
	now := time.UnixMilli(1_900_000_000_000)
	want := map[string]bool{}
	for i := range 80 {
		m := &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, To: "a@example.com", Data: []byte("x"),
			Created: now.Add(-time.Duration(i) * time.Second)}
		if err := stores[i%2].QueueMail(ctx, m); err != nil {
			t.Fatal(err)
		}
		want[m.ID] = true
	}
	// Four mailers per instance.
	var queues []bridge.MailQueue
	for _, s := range stores {
		for range 4 {
			queues = append(queues, s)
		}
	}
	storetest.CheckMailClaimedOnce(t, want, storetest.ClaimAllMail(t, now, 3, queues...))
}

// A database from before the conversation log (schema 1) is upgraded in
// place: its messages read back with no ReplyTo, and its recipients take
// outcomes with conversations.
func TestUpgradeFromSchema1(t *testing.T) {
	ctx := context.Background()
	u, _ := newDatabase(t)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{ms[0].SQL,
		`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO schema_migrations (version, name) VALUES (1, '` + ms[0].Name + `')`,
		`INSERT INTO messages (id, channel, account, text, created) VALUES ('old', 'smtp', 'acme', 'hi', 1)`,
		`INSERT INTO recipients (message_id, to_addr, state) VALUES ('old', '+15551234567', 'queued')`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	conn.Close(ctx)

	s := openTest(t, u)
	m, err := s.Message(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if m.ReplyTo != "" || m.Text != "hi" || len(m.Recipients) != 1 {
		t.Fatalf("old message after the upgrade: %+v", m)
	}
	id := bridge.ConversationID("+15551234567", "")
	if err := s.Complete(ctx, []bridge.Outcome{{RecipientID: m.Recipients[0].ID, State: bridge.StateSent, At: m.Created,
		Conversation: &bridge.ConversationTouch{ID: id, Phone: "+15551234567"}}}); err != nil {
		t.Fatal(err)
	}
	if log, err := s.ConversationLog(ctx, id, 0); err != nil || len(log) != 1 || log[0].MessageID != "old" {
		t.Fatalf("ConversationLog = %+v, %v", log, err)
	}
}

// The queries of the conversation log and the mail queue can read their
// partial indexes whatever their parameters: the plans are generic, as
// for a statement pgx has prepared and run many times. Seq scans are
// turned off because on an empty table they would win.
func TestConversationQueryPlans(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
			return err
		}
		for i, q := range []struct {
			name, query, args string
			indexes           []string // any of them
		}{
			{"Report", updateReported, `'delivered', '', 1, 'p', 'id', ''`, []string{"recipients_report"}},
			// Which of the two is cheaper depends on how many of a
			// provider's recipients are sent and how many reported.
			{"Outstanding", selectOutstanding, `'p', 0, 10`, []string{"recipients_outstanding", "recipients_report"}},
			{"ConversationLog", `SELECT r.id FROM recipients r JOIN messages m ON m.id = r.message_id
				WHERE r.conversation_id = $1 ORDER BY m.created DESC, r.id DESC LIMIT $2`, `'c', 10`, []string{"recipients_conversation"}},
			{"ClaimMail", claimMail, `1, 10, 2, 1`, []string{"outbox_due"}},
		} {
			name := fmt.Sprintf("plan_test_%d", i)
			if _, err := tx.Exec(ctx, "PREPARE "+name+" AS "+q.query); err != nil {
				return fmt.Errorf("%s: %w", q.name, err)
			}
			rows, err := tx.Query(ctx, "EXPLAIN EXECUTE "+name+"("+q.args+")")
			if err != nil {
				return fmt.Errorf("%s: %w", q.name, err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("%s: %w", q.name, err)
			}
			plan := strings.Join(lines, "\n")
			if !strings.Contains(plan, "$") { // parameters, not values
				t.Errorf("%s: not a generic plan:\n%s", q.name, plan)
			}
			if !slices.ContainsFunc(q.indexes, func(ix string) bool { return strings.Contains(plan, ix) }) {
				t.Errorf("%s uses none of %v:\n%s", q.name, q.indexes, plan)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Text from providers and mail headers that a text column cannot hold
// (NUL, invalid UTF-8) is made valid rather than let an inbound SMS or a
// send's outcome go unrecorded.
func TestConversationInvalidText(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	ctx := context.Background()
	at := time.UnixMilli(1_900_000_000_000)
	id := bridge.ConversationID("+972501234567", "Clinic")
	in := &bridge.Inbound{ID: bridge.NewID(), Provider: "p1", DedupeKey: "k\x00\xff", From: "+972501234567", To: "Clinic",
		Text: "a\x00b\xffc", Raw: "{\"text\":\"a\x00b\xffc\"}", Received: at, Conversation: id, Created: at}
	if err := s.RecordInbound(ctx, in, nil, &bridge.Cursor{Name: "p1", Value: "\x00"}); err != nil {
		t.Fatalf("RecordInbound: %v", err)
	}
	if err := s.RecordInbound(ctx, in, nil, nil); !errors.Is(err, bridge.ErrDuplicateKey) {
		t.Errorf("RecordInbound again = %v, want ErrDuplicateKey", err)
	}
	m := message("+972501234567")
	if err := s.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	err := s.Complete(ctx, []bridge.Outcome{{RecipientID: m.Recipients[0].ID, State: bridge.StateSent, At: at,
		Conversation: &bridge.ConversationTouch{ID: id, Phone: "+972501234567", Our: "Clinic",
			ReplyTo: "a\xff@example.com", Subject: "Re: \x00", At: at}}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	log, err := s.ConversationLog(ctx, id, 0)
	if err != nil || len(log) != 2 {
		t.Fatalf("ConversationLog = %+v, %v", log, err)
	}
	if log[1].Text != "a\uFFFDb\uFFFDc" {
		t.Errorf("inbound text = %q", log[1].Text)
	}
	c, err := s.Conversation(ctx, id)
	if err != nil || c.ReplyTo != "a\uFFFD@example.com" || c.Subject != "Re: \uFFFD" {
		t.Errorf("Conversation = %+v, %v", c, err)
	}
}
