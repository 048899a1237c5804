package sqlite

import (
	"errors"
	"fmt"

	"github.com/smsbridge/smsbridge/bridge"
	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var errClosed = errors.New("store is closed")

// storeErr wraps err from operation op. Failures of the store itself (the
// disk is full or read-only, I/O errors, another process holding the lock,
// a closed store) become a temporary bridge.Error with
// ReasonStoreUnavailable, which the front ends answer with "try again
// later" (SMTP 451 4.3.0) rather than losing or refusing the message.
func storeErr(op string, err error) error {
	if err == nil || unavailable(err) || errors.Is(err, bridge.ErrNotFound) {
		return err
	}
	if errors.Is(err, errClosed) || storeFailure(err) {
		return &bridge.Error{
			Reason: bridge.ReasonStoreUnavailable,
			Temp:   true,
			Msg:    "message store unavailable",
			Err:    fmt.Errorf("sqlite %s: %w", op, err),
		}
	}
	return fmt.Errorf("sqlite %s: %w", op, err)
}

// storeFailure reports whether err is SQLite saying the database cannot
// be used right now, as opposed to refusing this one statement.
func storeFailure(err error) bool {
	var se *sqlitedrv.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // primary code; extended codes refine it
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_CORRUPT,
		sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_NOLFS:
		return true
	}
	return false
}

// unavailable reports whether err already says the store is unavailable.
func unavailable(err error) bool {
	return bridge.ReasonOf(err) == bridge.ReasonStoreUnavailable
}

// isConstraint reports whether err is a constraint violation (a duplicate
// key), which refuses one statement and says nothing about the store.
func isConstraint(err error) bool {
	var se *sqlitedrv.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}
