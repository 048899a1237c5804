package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

func TestLogCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "q.db")
	st, err := sqlite.Open(t.Context(), db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Millisecond)
	m := &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelSMTP, Account: "ops", Sender: "+972500000001", Text: "Meeting at 10 – ok?",
		SMSText: "Meeting at 10 - ok?", Encoding: bridge.GSM7, Parts: 1, Created: now.Add(-time.Hour), Recipients: []bridge.Recipient{{To: "+972501234567", Providers: []string{"p"}, Provider: "p", State: bridge.StateQueued}}}
	if err := st.Enqueue(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	conv := bridge.ConversationID("+972501234567", "+972500000001")
	if err := st.Complete(t.Context(), []bridge.Outcome{{RecipientID: m.Recipients[0].ID, State: bridge.StateSent, Provider: "p", ProviderID: "x1", Cost: "0.01", At: now.Add(-time.Hour),
		Conversation: &bridge.ConversationTouch{ID: conv, Phone: "+972501234567", Our: "+972500000001", Account: "ops", ReplyTo: "alice@example.com", At: m.Created}}}); err != nil {
		t.Fatal(err)
	}
	in := &bridge.Inbound{ID: bridge.NewID(), Provider: "p", DedupeKey: "k1", From: "+972501234567", To: "+972500000001", Text: "Yes\nsee you",
		Received: now.Add(-time.Minute), Conversation: conv, MailTo: "alice@example.com", Created: now}
	if err := st.RecordInbound(t.Context(), in, nil, nil); err != nil {
		t.Fatal(err)
	}
	other := &bridge.Inbound{ID: bridge.NewID(), Provider: "p", DedupeKey: "k2", From: "+972507654321", Text: "wrong number",
		Received: now.Add(-72 * time.Hour), Conversation: bridge.ConversationID("+972507654321", ""), Created: now}
	if err := st.RecordInbound(t.Context(), other, nil, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()

	cfg := filepath.Join(dir, "smsbridge.toml")
	text := fmt.Sprintf(`
[store]
path = %q
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "ops"
emails = ["*@example.com"]
[[providers]]
name = "p"
type = "console"
[[routes]]
prefix = "+"
provider = "p"
`, db)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"log", "-config", cfg, "-phone", "050-123-4567"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := out.String()
	for _, want := range []string{"== +972501234567 with +972500000001", "replies to alice@example.com", "→ out", "sent, 1 part GSM-7, cost 0.01", "Meeting at 10 – ok?",
		"← in", "mailed to alice@example.com", "Yes ⏎ see you"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "wrong number") {
		t.Errorf("-phone did not filter:\n%s", got)
	}
	// -since leaves out the conversation that went quiet three days ago.
	out.Reset()
	if code := run([]string{"log", "-config", cfg, "-since", "24h"}, &out, &errb); code != 0 || strings.Contains(out.String(), "wrong number") ||
		!strings.Contains(out.String(), "Meeting at 10") {
		t.Errorf("-since 24h: exit %d\n%s", code, out.String())
	}
	if code := run([]string{"log", "-config", cfg, "-since", "yesterday"}, &out, &errb); code != 2 {
		t.Errorf("-since yesterday: exit %d, want 2", code)
	}
}
