package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/smsbridge/smsbridge/bridge"
)

var errClosed = errors.New("store is closed")

// storeErr wraps err from operation op.
//
// Failures of the store itself become a temporary bridge.Error with
// ReasonStoreUnavailable, which the front ends answer with "try again
// later" (SMTP 451 4.3.0) rather than losing or refusing the message:
// the server cannot be reached or went away, is shutting down, is out of
// disk, memory or connections, or is a read-only standby. Any error that
// did not come from the server (PgError) is one of reaching it: a
// refused or broken connection, a TLS failure, a closed pool.
//
// The server refusing the data (SQLSTATE class 22: say, a NUL byte in a
// text column) is permanent: trying again sends the same bytes.
// A cancelled or expired context is the caller's and stays as it is.
func storeErr(op string, err error) error {
	if err == nil || errors.Is(err, bridge.ErrNotFound) || errors.Is(err, bridge.ErrDuplicateKey) ||
		bridge.ReasonOf(err) == bridge.ReasonStoreUnavailable {
		return err
	}
	wrapped := fmt.Errorf("postgres %s: %w", op, err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return wrapped
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return unavailableErr(wrapped)
	}
	switch {
	case storeFailure(pe.Code):
		return unavailableErr(wrapped)
	case strings.HasPrefix(pe.Code, "22"):
		return &bridge.Error{Reason: bridge.ReasonInvalid, Msg: "message store refused the data", Err: wrapped}
	}
	return wrapped
}

func unavailableErr(err error) error {
	return &bridge.Error{Reason: bridge.ReasonStoreUnavailable, Temp: true, Msg: "message store unavailable", Err: err}
}

// storeFailure reports whether SQLSTATE code says the database cannot be
// used right now, as opposed to refusing this one statement.
func storeFailure(code string) bool {
	switch code {
	case "25006", // read_only_sql_transaction: a standby, or default_transaction_read_only
		"40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03", // lock_not_available
		"57014", // query_canceled: statement_timeout, or cancelled by an operator
		"58030": // io_error
		return true
	}
	if len(code) < 2 {
		return false
	}
	switch code[:2] {
	case "08", // connection_exception
		"53", // insufficient_resources: disk_full, out_of_memory, too_many_connections
		"57": // operator_intervention: admin_shutdown, crash_shutdown, cannot_connect_now
		return true
	}
	return false
}

// uniqueViolationOn reports whether err is a unique violation on table.
func uniqueViolationOn(err error, table string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.TableName == table
}
