package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// benchMessage is a typical submission: 1 KiB of text, one recipient.
func benchMessage(text string) *bridge.Message {
	return &bridge.Message{
		ID: bridge.NewID(), Channel: bridge.ChannelSMTP, Account: "acme",
		EnvelopeFrom: "app@example.com", Text: text, Created: time.Now(),
		Recipients: []bridge.Recipient{{To: "+972501234567", Providers: []string{"mindcrm"}, Provider: "mindcrm",
			State: bridge.StateQueued, NextAttempt: time.Now()}},
	}
}

// BenchmarkEnqueueParallel is many SMTP sessions submitting at once, each
// waiting for its commit before the next message. msgs/fsync is how many
// messages shared one WAL flush (server-wide, from pg_stat_wal).
func BenchmarkEnqueueParallel(b *testing.B) {
	for _, sessions := range []int{20, 128} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			u, _ := newDatabase(b)
			s := openTest(b, u)
			text := strings.Repeat("x", 1024)
			syncs := func() int64 {
				var n int64
				if err := s.pool.QueryRow(context.Background(), `SELECT wal_sync FROM pg_stat_wal`).Scan(&n); err != nil {
					b.Fatal(err)
				}
				return n
			}
			before := syncs()
			var left atomic.Int64
			left.Store(int64(b.N))
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range sessions {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						if err := s.Enqueue(context.Background(), benchMessage(text)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if n := syncs() - before; n > 0 {
				b.ReportMetric(float64(b.N)/float64(n), "msgs/fsync")
			}
		})
	}
}
