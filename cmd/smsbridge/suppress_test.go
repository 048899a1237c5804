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

func TestSuppressCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "q.db")
	cfg := filepath.Join(dir, "smsbridge.toml")
	text := fmt.Sprintf(`
[store]
path = %q
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "ops"
emails = ["*@example.com"]
sender_ids = ["+972500000001"]
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
	// A send waits in the queue (scheduled) from ops' number.
	st, err := sqlite.Open(t.Context(), db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m := &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelSMTP, Account: "ops", Sender: "+972500000001", Text: "tomorrow",
		Created: now, Recipients: []bridge.Recipient{{To: "+972501234567", Providers: []string{"p"}, Provider: "p",
			State: bridge.StateQueued, NextAttempt: now.Add(24 * time.Hour)}}}
	if err := st.Enqueue(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	st.Close()

	runOK := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"suppress"}, args...), &out, &errb); code != 0 {
			t.Fatalf("suppress %v: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	got := runOK("add", "-config", cfg, "-phone", "050-123-4567", "-account", "ops", "-number", "+972500000001", "-reason", "imported from the CRM")
	if !strings.Contains(got, "+972501234567") || !strings.Contains(got, "1 queued SMS cancelled") {
		t.Errorf("add: %q", got)
	}
	got = runOK("list", "-config", cfg)
	if !strings.Contains(got, "+972501234567") || !strings.Contains(got, "number +972500000001 of ops") ||
		!strings.Contains(got, "cli:") || !strings.Contains(got, "imported from the CRM") {
		t.Errorf("list:\n%s", got)
	}
	runOK("remove", "-config", cfg, "-phone", "+972501234567", "-account", "ops", "-number", "+972500000001", "-reason", "consent found")
	if got := runOK("list", "-config", cfg); strings.Contains(got, "+972501234567") {
		t.Errorf("list after remove:\n%s", got)
	}
	got = runOK("list", "-config", cfg, "-history")
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "remove") || !strings.Contains(lines[1], "consent found") ||
		!strings.Contains(lines[2], "add") {
		t.Errorf("history:\n%s", got)
	}

	// Refusals name what is wrong.
	var out, errb bytes.Buffer
	if code := run([]string{"suppress", "add", "-config", cfg, "-phone", "+972501234567"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "-reason") {
		t.Errorf("add without a reason: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"suppress", "add", "-config", cfg, "-phone", "+972501234567", "-account", "ops", "-number", "Nope", "-reason", "x"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "sender") {
		t.Errorf("add with another sender: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"suppress", "remove", "-config", cfg, "-phone", "+972501234567", "-reason", "x"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "not found") {
		t.Errorf("remove of nothing: exit %d, %q", code, errb.String())
	}
}
