package postgres

import (
	"context"
	"embed"
	"fmt"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Schema changes are files migrations/NNNN_name.sql, numbered from 1
// without gaps. A file is never edited once released: a change is a new
// file. Table schema_migrations lists the versions applied.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLockKey is the pg_advisory_xact_lock key that serialises
// migrations: instances starting together queue on it, and the second
// finds the schema already current. The value is arbitrary but fixed
// ("smsbridg" in ASCII) so that every version of smsbridge takes the same
// lock.
const migrateLockKey int64 = 0x736d736272696467

// migrations returns the embedded migrations in order.
func migrations() ([]storeutil.Migration, error) {
	return storeutil.Migrations(migrationFiles, "migrations")
}

// migrate applies the migrations the database has not had yet, all in
// one transaction with the version rows: PostgreSQL's DDL is
// transactional, so a failure or crash leaves the schema as it was.
func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	var applied []storeutil.Migration
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Taken before the version table is even looked at: CREATE TABLE
		// IF NOT EXISTS itself races between two sessions.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY,
			name    text NOT NULL,
			applied timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if current > len(ms) {
			return fmt.Errorf("database schema version %d is newer than this program knows (%d); upgrade smsbridge", current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			applied = append(applied, m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range applied { // only once committed
		log.InfoContext(ctx, "applied store migration", "version", m.Version, "name", m.Name)
	}
	return nil
}
