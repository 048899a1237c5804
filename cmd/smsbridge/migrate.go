package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge/store/postgres"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
	"github.com/smsbridge/smsbridge/bridge/store/storeexport"
)

// migrateStore copies a SQLite store to a PostgreSQL one: messages with
// their recipients' states, conversations and idempotency keys, the
// conversations, the inbound log, the mail queue, the pollers' cursors
// (not their leases, which belong to running instances), the suppression
// list with its history, the sender claims of pools (whose replies go to
// whom) and the alert references (what an answer like "ack #3" acts on).
// It can be run again: what the target holds already is skipped (of a
// sender claim held in both, the later end stays). Stop the daemon
// first, or what it writes during the copy may be missed.
func migrateStore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate-store", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "source store: sqlite:PATH")
	to := fs.String("to", "", "target store: postgres://…")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path, ok := strings.CutPrefix(*from, "sqlite:")
	if !ok || path == "" || !(strings.HasPrefix(*to, "postgres://") || strings.HasPrefix(*to, "postgresql://")) {
		fmt.Fprintln(stderr, "usage: smsbridge migrate-store -from sqlite:PATH -to postgres://…")
		return 2
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, err := sqlite.Open(ctx, path, log)
	if err != nil {
		fmt.Fprintln(stderr, "smsbridge:", err)
		return 1
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, *to, log)
	if err != nil {
		fmt.Fprintln(stderr, "smsbridge:", err)
		return 1
	}
	defer dst.Close()

	now := time.Now() // when sends that were in flight in the old store become due
	importMessages := func(ctx context.Context, page []storeexport.Message) (int, error) {
		return dst.ImportMessages(ctx, page, now)
	}
	steps := []struct {
		what string
		run  func(*tally) error
	}{
		{"messages", func(t *tally) error { return src.Export(ctx, importEach(ctx, importMessages, t)) }},
		{"conversations", func(t *tally) error { return src.ExportConversations(ctx, importEach(ctx, dst.ImportConversations, t)) }},
		{"inbound SMS", func(t *tally) error { return src.ExportInbound(ctx, importEach(ctx, dst.ImportInbound, t)) }},
		{"mails", func(t *tally) error { return src.ExportMail(ctx, importEach(ctx, dst.ImportMail, t)) }},
		{"poller cursors", func(t *tally) error { return src.ExportCursors(ctx, importEach(ctx, dst.ImportCursors, t)) }},
		{"suppressions", func(t *tally) error { return src.ExportSuppressions(ctx, importEach(ctx, dst.ImportSuppressions, t)) }},
		{"suppression changes", func(t *tally) error {
			return src.ExportSuppressionHistory(ctx, importEach(ctx, dst.ImportSuppressionHistory, t))
		}},
		{"sender claims", func(t *tally) error { return src.ExportSenderClaims(ctx, importEach(ctx, dst.ImportSenderClaims, t)) }},
		{"alert references", func(t *tally) error { return src.ExportAlertRefs(ctx, importEach(ctx, dst.ImportAlertRefs, t)) }},
	}
	for _, st := range steps {
		var t tally
		if err := st.run(&t); err != nil {
			fmt.Fprintf(stderr, "smsbridge: migrate-store: %s: %v\n", st.what, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: %d copied, %d already there\n", st.what, t.stored, t.read-t.stored)
	}
	return 0
}

// tally counts the rows of one kind read from the source and stored in
// the target.
type tally struct{ read, stored int }

// importEach returns an export callback that imports each page with imp.
func importEach[T any](ctx context.Context, imp func(context.Context, []T) (int, error), t *tally) func([]T) error {
	return func(page []T) error {
		n, err := imp(ctx, page)
		t.read, t.stored = t.read+len(page), t.stored+n
		return err
	}
}
