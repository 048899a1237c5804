package postgres

import (
	"context"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaVersion reads the schema version of the database at url, and
// returns it with latest, the version this program's migrations bring a
// database to, without changing anything: one connection, one read-only
// transaction, no migration, no instance registered. A database smsbridge
// never opened has version 0.
func SchemaVersion(ctx context.Context, url string) (version, latest int, err error) {
	ms, err := migrations()
	if err != nil {
		return 0, 0, err
	}
	latest = len(ms)
	// Parsed as Open parses it, so pool settings in the URL are no error.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return 0, latest, storeErr("parsing connection string", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return 0, latest, storeErr("connecting", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || !exists {
			return err
		}
		return tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version)
	})
	return version, latest, storeErr("reading the schema version", err)
}

// Where names the database url points at, without its credentials, for
// messages: "db.example.com:5432/smsbridge".
func Where(url string) string {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return "(connection string that does not parse)"
	}
	c := cfg.ConnConfig
	return net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))) + "/" + c.Database
}
