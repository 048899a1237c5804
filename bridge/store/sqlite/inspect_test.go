package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// files lists dir, to show that reading the version left it as it was.
func files(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestSchemaVersion(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "smsbridge.db")

	if _, _, err := SchemaVersion(ctx, path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("reading a missing database created %v", got)
	}

	s, err := Open(ctx, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	// Open, with its -wal file: read through it.
	v, latest, err := SchemaVersion(ctx, path)
	if err != nil || v != latest || latest < 15 {
		t.Errorf("open store: version %d, latest %d, %v", v, latest, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := files(t, dir)
	v, _, err = SchemaVersion(ctx, path)
	if err != nil || v != latest {
		t.Errorf("closed store: version %d, %v", v, err)
	}
	if after := files(t, dir); !slices.Equal(before, after) {
		t.Errorf("reading the version changed the directory from %v to %v", before, after)
	}

	// A database from a newer smsbridge is reported as it is: refusing it
	// is Open's job.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if v, _, err := SchemaVersion(ctx, path); err != nil || v != 99 {
		t.Errorf("newer database: version %d, %v", v, err)
	}

	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte("this is not a database, only a file someone put there by mistake...................."), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := SchemaVersion(ctx, junk); err == nil {
		t.Error("a file that is no database: no error")
	}
}
