package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/postgres"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

// migrateStore copies every message, with its recipients' states and its
// idempotency key, from a SQLite store to a PostgreSQL one. It can be run
// again: messages already in the target are skipped. Stop the daemon
// first, or messages accepted during the copy may be missed.
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

	copied, skipped := 0, 0
	err = src.Export(ctx, func(m *bridge.Message) error {
		if _, err := dst.Message(ctx, m.ID); err == nil {
			skipped++
			return nil
		} else if !errors.Is(err, bridge.ErrNotFound) {
			return err
		}
		if err := dst.Enqueue(ctx, m); err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		copied++
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "smsbridge: migrate-store:", err)
		return 1
	}
	fmt.Fprintf(stdout, "copied %d messages, %d were already there\n", copied, skipped)
	return 0
}
