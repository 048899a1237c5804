//go:build unix

package daemon_test

import (
	"testing"

	"github.com/smsbridge/smsbridge/internal/daemon"
	"github.com/smsbridge/smsbridge/internal/pgtest"
)

// BenchmarkSMTPAcknowledgePostgres is BenchmarkSMTPAcknowledge with the
// store on PostgreSQL (a fresh database on SMSBRIDGE_TEST_POSTGRES's
// server for each run), reporting the same metrics, so the two can be
// run side by side:
//
//	go test ./internal/daemon -run '^$' -bench SMTPAcknowledge -benchtime 1x
//
// cpu-us/msg counts this process only: the PostgreSQL server's work,
// which SQLite does in process, is not in it.
func BenchmarkSMTPAcknowledgePostgres(b *testing.B) {
	benchAcknowledge(b, func(b *testing.B) (*daemon.Daemon, func()) {
		dbURL, _ := pgtest.NewDatabase(b)
		return startPG(b, benchConfig, dbURL)
	})
}
