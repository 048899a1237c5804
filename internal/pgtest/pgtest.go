// Package pgtest gives tests a fresh PostgreSQL database on the server
// named by SMSBRIDGE_TEST_POSTGRES (default: the local one). Without a
// server tests skip, except under CI=true, where a skipped store test must
// not pass for a passed one.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ServerURL is the server tests create their databases on.
func ServerURL() string {
	if u := os.Getenv("SMSBRIDGE_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Admin connects to ServerURL, skipping tb if there is no server (failing
// it under CI=true).
func Admin(tb testing.TB) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		msg := fmt.Sprintf("no PostgreSQL server (set SMSBRIDGE_TEST_POSTGRES to a URL of one): %v", err)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// NewDatabase creates an empty database, dropped when tb ends, and
// returns its URL and name.
func NewDatabase(tb testing.TB) (dbURL, name string) {
	tb.Helper()
	conn := Admin(tb)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name = "smsbridge_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("dropping %s: %v", name, err)
		}
	})
	u, err := url.Parse(ServerURL())
	if err != nil || u.Scheme == "" {
		return ServerURL() + " dbname=" + name, name // key=value form
	}
	u.Path = "/" + name
	return u.String(), name
}
