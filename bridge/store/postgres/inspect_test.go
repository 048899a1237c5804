package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestSchemaVersion(t *testing.T) {
	ctx := context.Background()
	dbURL, _ := newDatabase(t)
	// Pool settings, which Open takes, are no error here either.
	withPool := dbURL + " pool_max_conns=2"
	if strings.Contains(dbURL, "://") {
		withPool = dbURL + map[bool]string{true: "&", false: "?"}[strings.Contains(dbURL, "?")] + "pool_max_conns=2"
	}
	v, latest, err := SchemaVersion(ctx, withPool)
	if err != nil || v != 0 || latest < 13 {
		t.Fatalf("empty database: version %d, latest %d, %v", v, latest, err)
	}
	// Reading created nothing, not even the version table.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("%d tables after reading the version (%v)", tables, err)
	}

	openTest(t, dbURL)
	if v, _, err := SchemaVersion(ctx, dbURL); err != nil || v != latest {
		t.Errorf("migrated database: version %d, %v", v, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')`); err != nil {
		t.Fatal(err)
	}
	if v, _, err := SchemaVersion(ctx, dbURL); err != nil || v != 99 {
		t.Errorf("newer database: version %d, %v", v, err)
	}

	if _, _, err := SchemaVersion(ctx, "postgres://nobody:pw-not-shown@127.0.0.1:1/x?connect_timeout=5"); err == nil ||
		strings.Contains(err.Error(), "pw-not-shown") {
		t.Errorf("unreachable server: %v", err)
	}
}

func TestWhere(t *testing.T) {
	for url, want := range map[string]string{
		"postgres://bridge:secret@db.example.com/smsbridge?sslmode=verify-full": "db.example.com:5432/smsbridge",
		"host=/run/postgresql dbname=sms user=bridge password=secret port=5433": "/run/postgresql:5433/sms",
		"postgres://[::1]:6000/x?pool_max_conns=4":                              "[::1]:6000/x",
	} {
		if got := Where(url); got != want {
			t.Errorf("Where(%q) = %q, want %q", url, got, want)
		}
	}
}
