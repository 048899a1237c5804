//go:build unix

package daemon_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/internal/daemon"
	"github.com/smsbridge/smsbridge/loadtest"
)

const benchConfig = `
[log]
level = "warn"
[smtp]
domains = ["sms.localhost"]
[[accounts]]
name = "load"
emails = ["*@localhost"]
sender_ids = ["Load"]
[[providers]]
name = "console"
type = "console"
concurrency = 16
[[routes]]
prefix = "+"
provider = "console"
`

// BenchmarkSMTPAcknowledge measures durably acknowledged messages per
// second with 20 SMTP sessions and 1 KiB messages, beside the go-smtp
// discard server as the ceiling, and how many of them the dispatcher sent
// while the load ran (dispatched-msgs/s); the queue must also drain
// within 30 seconds of the load ending.
//
//	go test -run '^$' -bench SMTPAcknowledge -benchtime 1x ./internal/daemon
func BenchmarkSMTPAcknowledge(b *testing.B) {
	benchAcknowledge(b, func(b *testing.B) (*daemon.Daemon, func()) {
		return startBench(b, benchConfig), func() {}
	})
}

// benchAcknowledge runs the acknowledge benchmark against the daemon that
// start returns (stop, if it does anything, ends it before the figures are
// reported, so the next run does not share the machine with it).
func benchAcknowledge(b *testing.B, start func(b *testing.B) (d *daemon.Daemon, stop func())) {
	const dur = 5 * time.Second
	for range b.N {
		cpu := loadtest.ProcessCPU()
		ceiling, err := loadtest.RunDiscard(context.Background(), loadtest.Options{Sessions: 20, Size: 1024, Duration: dur, From: "load@localhost"})
		if err != nil {
			b.Fatal(err)
		}
		ceilingCPU := loadtest.PerMessage(loadtest.ProcessCPU()-cpu, ceiling.Sent)

		d, stopDaemon := start(b)
		cpu = loadtest.ProcessCPU()
		res, err := loadtest.Run(context.Background(), loadtest.Options{Addr: d.SMTPAddr(), Sessions: 20, Size: 1024, Duration: dur, From: "load@localhost",
			To: func(i int) string { return "+97250" + pad7(i) + "@sms.localhost" }})
		if err != nil {
			b.Fatal(err)
		}
		resCPU := loadtest.PerMessage(loadtest.ProcessCPU()-cpu, res.Sent)
		if res.Failed > 0 {
			b.Fatalf("%d failed: %v", res.Failed, res.Errors)
		}
		// What the dispatcher sent while the load ran: it keeps up if
		// that is close to what was acknowledged, not merely if it
		// catches up once the load has stopped.
		backlog, err := d.Store().Stats(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		// The queue may hold what the last commits brought in, not a
		// tenth of the load.
		if backlog.Queued > res.Sent/10 {
			b.Errorf("dispatcher fell behind: %d of %d acknowledged still queued when the load ended", backlog.Queued, res.Sent)
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
		stopDaemon()
		b.ReportMetric(ceiling.Rate, "discard-msgs/s")
		b.ReportMetric(res.Rate, "msgs/s")
		b.ReportMetric(res.Rate/ceiling.Rate, "ratio")
		b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(drain.Seconds(), "drain-s")
		b.ReportMetric(float64(res.Sent-backlog.Queued)/dur.Seconds(), "dispatched-msgs/s")
		// CPU per message, load generator included in both: on a busy
		// machine the rates are bounded by CPU, and this shows whether a
		// change made the bridge cheaper even when the rates are noisy.
		b.ReportMetric(ceilingCPU, "discard-cpu-us/msg")
		b.ReportMetric(resCPU, "cpu-us/msg")
	}
}

func pad7(i int) string { return fmt.Sprintf("%07d", i%10000000) }

// BenchmarkSMTPBridgeOnly is the smsbridge half of BenchmarkSMTPAcknowledge,
// for profiling (-cpuprofile) without the discard server in the profile.
func BenchmarkSMTPBridgeOnly(b *testing.B) {
	for range b.N {
		d := startBench(b, benchConfig)
		cpu := loadtest.ProcessCPU()
		res, err := loadtest.Run(context.Background(), loadtest.Options{Addr: d.SMTPAddr(), Sessions: 20, Size: 1024, Duration: 5 * time.Second, From: "load@localhost",
			To: func(i int) string { return "+97250" + pad7(i) + "@sms.localhost" }})
		if err != nil || res.Failed > 0 {
			b.Fatalf("%v, %d failed: %v", err, res.Failed, res.Errors)
		}
		b.ReportMetric(loadtest.PerMessage(loadtest.ProcessCPU()-cpu, res.Sent), "cpu-us/msg")
		b.ReportMetric(res.Rate, "msgs/s")
		b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
	}
}
