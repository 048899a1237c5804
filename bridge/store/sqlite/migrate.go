package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
	"log/slog"
)

// Schema changes are files migrations/NNNN_name.sql, numbered from 1
// without gaps. A file is never edited once released: a change is a new
// file. The database's PRAGMA user_version is the number of the last one
// applied.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in order.
func migrations() ([]storeutil.Migration, error) {
	return storeutil.Migrations(migrationFiles, "migrations")
}

// migrate applies the migrations db has not had yet, each in its own
// transaction together with the user_version bump, so a crash leaves the
// schema at one version or the next, never between.
func migrate(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		applied, err := apply(ctx, db, m, len(ms))
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if applied {
			log.InfoContext(ctx, "applied store migration", "version", m.Version, "name", m.Name)
		}
	}
	return nil
}

// apply runs m unless the database already has it. The version is read
// inside the (immediate, so write-locked) transaction: two processes
// opening a new database at once cannot both apply the same migration.
func apply(ctx context.Context, db *sql.DB, m storeutil.Migration, latest int) (applied bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var current int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return false, err
	}
	if current > latest {
		return false, fmt.Errorf("database schema version %d is newer than this program knows (%d); upgrade smsbridge", current, latest)
	}
	if current >= m.Version {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, err
	}
	// PRAGMA takes no bound parameters; the version is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.Version)); err != nil {
		return false, err
	}
	return true, tx.Commit()
}
