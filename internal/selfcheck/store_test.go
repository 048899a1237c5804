package selfcheck

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge/store/postgres"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/internal/pgtest"
)

var quiet = slog.New(slog.DiscardHandler)

// check runs one item as Run does, without a deadline worth the name.
func check(t *testing.T, it Item) Result {
	t.Helper()
	return Run(t.Context(), []Item{it}, time.Minute, func(s string) string { return s })[0]
}

func wantResult(t *testing.T, r Result, verdict, detail string) {
	t.Helper()
	if r.Verdict != verdict || !regexp.MustCompile(detail).MatchString(r.Detail) {
		t.Errorf("%s, want %s matching %s", r, verdict, detail)
	}
}

func TestSQLiteStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "smsbridge.db")
	it := storeItem(config.Store{Path: path})
	if it.Name != "store sqlite "+path {
		t.Errorf("name %q", it.Name)
	}
	wantResult(t, check(t, it), OK, `does not exist yet: serve creates it, schema version \d+$`)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the check created the database: %v", err)
	}

	s, err := sqlite.Open(context.Background(), path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	wantResult(t, check(t, it), OK, `^schema version \d+, current$`)
	// A relative path is relative to the working directory: which file
	// that was is said.
	t.Chdir(dir)
	wantResult(t, check(t, storeItem(config.Store{Path: "smsbridge.db"})), OK, `^`+regexp.QuoteMeta(path)+`: schema version \d+, current$`)

	setVersion := func(v int) {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
			t.Fatal(err)
		}
	}
	setVersion(3)
	wantResult(t, check(t, it), OK, `^schema version 3: serve migrates it to \d+ at start$`)
	setVersion(999)
	wantResult(t, check(t, it), Fail, `^schema version 999 is newer than this smsbridge knows \(\d+\): serve refuses it; upgrade smsbridge$`)

	wantResult(t, check(t, storeItem(config.Store{Path: filepath.Join(dir, "missing", "x.db")})), Fail,
		`^directory .*/missing: does not exist$`)

	if os.Geteuid() != 0 { // root may write anything
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		wantResult(t, check(t, storeItem(config.Store{Path: filepath.Join(ro, "x.db")})), Fail, `/ro: not writable: permission denied$`)
	}
}

func TestPostgresStore(t *testing.T) {
	dbURL, name := pgtest.NewDatabase(t)
	it := storeItem(config.Store{URL: config.Secret(dbURL)})
	if !strings.HasPrefix(it.Name, "store postgres ") || !strings.HasSuffix(it.Name, "/"+name) {
		t.Errorf("name %q", it.Name)
	}
	wantResult(t, check(t, it), OK, `^empty: serve creates the schema \(version \d+\) at start$`)
	s, err := postgres.Open(context.Background(), dbURL, quiet)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	wantResult(t, check(t, it), OK, `^schema version \d+, current$`)

	bad := storeItem(config.Store{URL: "postgres://bridge:pw-in-url@127.0.0.1:1/smsbridge?connect_timeout=5"})
	if bad.Name != "store postgres 127.0.0.1:1/smsbridge" {
		t.Errorf("name %q", bad.Name)
	}
	wantResult(t, check(t, bad), Fail, `connect`)
}
