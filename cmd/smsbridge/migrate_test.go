package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/postgres"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
	"github.com/smsbridge/smsbridge/internal/pgtest"
)

func TestMigrateStore(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dbURL, _ := pgtest.NewDatabase(t)
	path := filepath.Join(t.TempDir(), "old.db")
	src, err := sqlite.Open(ctx, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var ids []string
	for i, key := range []string{"", "order-17", ""} {
		m := &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelSMTP, Account: "ops", EnvelopeFrom: "a@example.com",
			Headers: "Subject: x\r\n", Text: "שלום " + string(rune('a'+i)), Created: now, IdempotencyKey: key,
			Recipients: []bridge.Recipient{
				{To: "+972501111111", Providers: []string{"voip", "edge"}, Provider: "voip", NextAttempt: now},
				{To: "+972502222222", Providers: []string{"voip"}, Provider: "voip", NextAttempt: now.Add(time.Hour)},
			}}
		if err := src.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	jobs, err := src.Claim(ctx, now, 2, func(int) time.Duration { return time.Minute })
	if err != nil || len(jobs) != 2 {
		t.Fatalf("claim: %v, %d", err, len(jobs))
	}
	if err := src.Complete(ctx, []bridge.Outcome{
		{RecipientID: jobs[0].Recipient.ID, State: bridge.StateSent, Provider: "edge", ProviderID: "p-1", At: now},
		{RecipientID: jobs[1].Recipient.ID, State: bridge.StateFailed, Error: "stat_code 2", At: now},
	}); err != nil {
		t.Fatal(err)
	}
	src.Close()

	var out, errb bytes.Buffer
	if code := run([]string{"migrate-store", "-from", "sqlite:" + path, "-to", dbURL}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "copied 3 messages, 0 were already there") {
		t.Errorf("output %q", out.String())
	}
	if code := run([]string{"migrate-store", "-from", "sqlite:" + path, "-to", dbURL}, &out, &errb); code != 0 || !strings.Contains(out.String(), "copied 0 messages, 3 were already there") {
		t.Errorf("second run: exit %d, %q", code, out.String())
	}

	src, _ = sqlite.Open(ctx, path, quiet)
	defer src.Close()
	dst, err := postgres.Open(ctx, dbURL, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for _, id := range ids {
		want, _ := src.Message(ctx, id)
		got, err := dst.Message(ctx, id)
		if err != nil {
			t.Fatalf("%s not migrated: %v", id, err)
		}
		if got.Text != want.Text || got.Headers != want.Headers || len(got.Recipients) != len(want.Recipients) {
			t.Fatalf("%s: got %+v, want %+v", id, got, want)
		}
		for i, w := range want.Recipients {
			g := got.Recipients[i]
			if g.To != w.To || g.State != w.State || g.Provider != w.Provider || g.ProviderID != w.ProviderID ||
				g.Error != w.Error || g.Attempts != w.Attempts || !g.NextAttempt.Equal(w.NextAttempt) || strings.Join(g.Providers, ",") != strings.Join(w.Providers, ",") {
				t.Errorf("%s recipient %d: got %+v, want %+v", id, i, g, w)
			}
		}
	}
	if m, err := dst.MessageByKey(ctx, "ops", "order-17"); err != nil || m.ID != ids[1] {
		t.Errorf("idempotency key not migrated: %v, %v", m, err)
	}
	if code := run([]string{"migrate-store", "-from", path, "-to", dbURL}, &out, &errb); code != 2 {
		t.Errorf("bad -from: exit %d, want 2", code)
	}
}
