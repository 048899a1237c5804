package selfcheck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/smsbridge/smsbridge/bridge/store/postgres"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
	"github.com/smsbridge/smsbridge/config"
)

// storeItem checks the store the configuration names. It changes
// nothing, so it does not open the store as serve does (which applies
// migrations, and on PostgreSQL registers an instance): it reads the
// schema version, says whether serve will migrate the schema (which it
// does at start; that is no failure) or refuse it as newer than this
// program, and for SQLite whether the file and its directory are
// writable by whoever runs the check.
func storeItem(cfg config.Store) Item {
	if u := cfg.URL.Value(); u != "" {
		return Item{Name: "store postgres " + postgres.Where(u), Checker: CheckFunc(func(ctx context.Context) (string, error) {
			v, latest, err := postgres.SchemaVersion(ctx, u)
			if err != nil {
				return "", err
			}
			return schema(v, latest)
		})}
	}
	return Item{Name: "store sqlite " + cfg.Path, Checker: CheckFunc(func(ctx context.Context) (string, error) {
		return sqliteStore(ctx, cfg.Path)
	})}
}

func sqliteStore(ctx context.Context, path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(abs)
	// SQLite writes its -wal and -shm files beside the database.
	if err := writable(dir); err != nil {
		return "", fmt.Errorf("directory %s: %w", dir, err)
	}
	v, latest, err := sqlite.SchemaVersion(ctx, abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s does not exist yet: serve creates it, schema version %d", abs, latest), nil
	case err != nil:
		return "", err
	}
	if err := writable(abs); err != nil {
		return "", fmt.Errorf("%s: %w", abs, err)
	}
	what, err := schema(v, latest)
	if abs != path { // a relative path is relative to where serve runs: say which file this was
		what, err = abs+": "+what, wrapf(abs, err)
	}
	return what, err
}

// wrapf prefixes err, if any, with what.
func wrapf(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// writable says whether the one running the check may write path.
func writable(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return errors.New("does not exist")
	} else if err != nil {
		return err
	}
	if err := unix.Access(path, unix.W_OK); err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	return nil
}

// schema judges a store's schema version against the latest this program
// knows.
func schema(v, latest int) (string, error) {
	switch {
	case v > latest:
		return "", fmt.Errorf("schema version %d is newer than this smsbridge knows (%d): serve refuses it; upgrade smsbridge", v, latest)
	case v == latest:
		return fmt.Sprintf("schema version %d, current", v), nil
	case v == 0:
		return fmt.Sprintf("empty: serve creates the schema (version %d) at start", latest), nil
	}
	return fmt.Sprintf("schema version %d: serve migrates it to %d at start", v, latest), nil
}
