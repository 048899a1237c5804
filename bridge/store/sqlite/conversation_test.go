package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

// queryPlan returns SQLite's plan for query, one step a line.
func queryPlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.rdb.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
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
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}

// The queries of the conversation log and the mail queue read their
// partial indexes, not the whole recipients or outbox table.
func TestConversationQueryPlans(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
	for _, tt := range []struct {
		name, query, index string
		args               []any
	}{
		{"Report", updateReported, "recipients_report", []any{"delivered", "", 0, "p", "id", "", ""}},
		{"Outstanding", selectOutstanding, "recipients_outstanding", []any{"p", 0, 10}},
		{"ConversationLog", `SELECT r.id FROM recipients r JOIN messages m ON m.id = r.message_id
			WHERE r.conversation_id = ? ORDER BY m.created DESC, r.id DESC LIMIT ?`, "recipients_conversation", []any{"c", 10}},
		{"ClaimMail", selectDueMail, "outbox_due", []any{0, 10}},
		{"ListConversations", `SELECT c.id FROM conversations c WHERE c.account = ? ORDER BY c.updated DESC, c.id DESC LIMIT ?`,
			"conversations_account", []any{"a", 10}},
		{"ListConversations by provider", `SELECT c.id FROM conversations c WHERE c.provider = ? ORDER BY c.updated DESC, c.id DESC LIMIT ?`,
			"conversations_provider", []any{"p", 10}},
		// The state of each conversation's newest SMS: its recipients
		// and its inbound SMS through their indexes, not a table scan.
		{"ListConversations by state", `SELECT c.id FROM conversations c WHERE ` + storeutil.LastState("?") +
			` = ? ORDER BY c.updated DESC, c.id DESC LIMIT ?`, "recipients_conversation", []any{"a", "failed", 10}},
		{"ListConversations by state (inbound)", `SELECT c.id FROM conversations c WHERE ` + storeutil.LastState("") +
			` = ? ORDER BY c.updated DESC, c.id DESC LIMIT ?`, "inbound_conversation", []any{"received", 10}},
	} {
		plan := queryPlan(t, s, tt.query, tt.args...)
		if !strings.Contains(plan, tt.index) {
			t.Errorf("%s does not use %s:\n%s", tt.name, tt.index, plan)
		}
		if tt.name == "ClaimMail" && strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("ClaimMail sorts instead of walking outbox_due in order:\n%s", plan)
		}
	}
}

// A database from before the conversation log (schema 3) is upgraded in
// place: its messages read back with no ReplyTo, and its recipients take
// outcomes with conversations.
func TestUpgradeFromSchema3(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:3] {
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	if _, err := db.Exec(`PRAGMA user_version = 3;
		INSERT INTO messages (id, channel, account, text, created) VALUES ('old', 'smtp', 'acme', 'hi', 1);
		INSERT INTO recipients (message_id, to_addr, state) VALUES ('old', '+15551234567', 'queued')`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, path)
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
