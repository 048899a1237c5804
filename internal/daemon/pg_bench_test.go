//go:build unix

package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/internal/pgtest"
	"github.com/smsbridge/smsbridge/loadtest"
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
	const dur = 5 * time.Second
	for range b.N {
		addr, stop, err := loadtest.DiscardServer()
		if err != nil {
			b.Fatal(err)
		}
		cpu := cpuTime()
		ceiling, err := loadtest.Run(context.Background(), loadtest.Options{Addr: addr, Sessions: 20, Size: 1024, Duration: dur, From: "load@localhost"})
		ceilingCPU := perMessage(cpuTime()-cpu, ceiling.Sent)
		stop()
		if err != nil {
			b.Fatal(err)
		}

		dbURL, _ := pgtest.NewDatabase(b)
		d, stopDaemon := startPG(b, benchConfig, dbURL)
		cpu = cpuTime()
		res, err := loadtest.Run(context.Background(), loadtest.Options{Addr: d.SMTPAddr(), Sessions: 20, Size: 1024, Duration: dur, From: "load@localhost",
			To: func(i int) string { return "+97250" + pad7(i) + "@sms.localhost" }})
		if err != nil {
			b.Fatal(err)
		}
		resCPU := perMessage(cpuTime()-cpu, res.Sent)
		if res.Failed > 0 {
			b.Fatalf("%d failed: %v", res.Failed, res.Errors)
		}
		drained := time.Now()
		for {
			st, err := d.Store().Stats(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if st.Queued == 0 {
				break
			}
			if time.Since(drained) > 30*time.Second {
				b.Fatalf("dispatcher did not keep up: %d still queued 30s after the load", st.Queued)
			}
			time.Sleep(10 * time.Millisecond)
		}
		drain := time.Since(drained)
		// Stopped before the next run, which would otherwise share the
		// machine with this one's connections and dispatcher.
		stopDaemon()
		b.ReportMetric(ceiling.Rate, "discard-msgs/s")
		b.ReportMetric(res.Rate, "msgs/s")
		b.ReportMetric(res.Rate/ceiling.Rate, "ratio")
		b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(drain.Seconds(), "drain-s")
		b.ReportMetric(ceilingCPU, "discard-cpu-us/msg")
		b.ReportMetric(resCPU, "cpu-us/msg")
	}
}
