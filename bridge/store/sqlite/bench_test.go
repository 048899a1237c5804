package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/loadtest"
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

// BenchmarkEnqueueParallel is many SMTP sessions submitting at once; each
// Enqueue returns only after its data is fsynced, so the rate shows how
// well commits are shared.
func BenchmarkEnqueueParallel(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "q.db"))
	text := strings.Repeat("x", 1024)
	b.SetParallelism(64) // goroutines per GOMAXPROCS: sessions, not cores
	b.ReportAllocs()
	commits := s.commits.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Enqueue(context.Background(), benchMessage(text)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/float64(s.commits.Load()-commits), "msgs/commit")
}

// BenchmarkEnqueueSerial is one session at a time: one fsync per message.
func BenchmarkEnqueueSerial(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "q.db"))
	text := strings.Repeat("x", 1024)
	for b.Loop() {
		if err := s.Enqueue(context.Background(), benchMessage(text)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkClaimComplete is the dispatcher's side: claim 64 due
// recipients, record an outcome for each. One op is one recipient.
func BenchmarkClaimComplete(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, filepath.Join(b.TempDir(), "q.db"))
	due := time.Now()
	for left := b.N; left > 0; left -= 100 {
		m := benchMessage("hello")
		m.Recipients = nil
		for i := range min(left, 100) {
			m.Recipients = append(m.Recipients, bridge.Recipient{To: fmt.Sprintf("+97250%07d", i),
				Providers: []string{"mindcrm"}, Provider: "mindcrm", State: bridge.StateQueued, NextAttempt: due})
		}
		if err := s.Enqueue(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	lease := func(int) time.Duration { return time.Hour }
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		jobs, err := s.Claim(ctx, due, 64, nil, lease)
		if err != nil || len(jobs) == 0 {
			b.Fatalf("Claim = %d jobs, %v after %d of %d", len(jobs), err, done, b.N)
		}
		outs := make([]bridge.Outcome, len(jobs))
		for i, j := range jobs {
			outs[i] = bridge.Outcome{RecipientID: j.Recipient.ID, State: bridge.StateSent, Provider: "mindcrm",
				ProviderID: "p-1", Info: map[string]string{"status": "ok"}, At: due}
		}
		if err := s.Complete(ctx, outs); err != nil {
			b.Fatal(err)
		}
		done += len(jobs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "recipients/s")
}

// BenchmarkLowLoad is one SMS at a time, as at a low offered rate: it is
// enqueued, claimed with a quota that differs from the last claim's (as
// the dispatcher's does while sends come and go) and its outcome
// recorded, each in a commit of its own. One op is one SMS.
func BenchmarkLowLoad(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, filepath.Join(b.TempDir(), "q.db"))
	lease := func(int) time.Duration { return time.Hour }
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m := benchMessage("hello")
		due := m.Recipients[0].NextAttempt
		if err := s.Enqueue(ctx, m); err != nil {
			b.Fatal(err)
		}
		jobs, err := s.Claim(ctx, due, 64, map[string]int{"mindcrm": 8 + i%16}, lease)
		if err != nil || len(jobs) != 1 {
			b.Fatalf("Claim = %d jobs, %v", len(jobs), err)
		}
		if err := s.Complete(ctx, []bridge.Outcome{{RecipientID: jobs[0].Recipient.ID, State: bridge.StateSent,
			Provider: "mindcrm", ProviderID: "p-1", At: due}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueue20 is the load test's shape without SMTP: 20 sessions,
// each waiting for its commit before submitting the next message.
func BenchmarkEnqueue20(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "q.db"))
	text := strings.Repeat("x", 1024)
	b.SetParallelism(10) // 10 × GOMAXPROCS(2) = 20 sessions
	commits := s.commits.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Enqueue(context.Background(), benchMessage(text)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/float64(s.commits.Load()-commits), "msgs/commit")
}

// BenchmarkLifecycle20 is all the store does for a message of the load
// test, without SMTP or providers: 20 sessions enqueue 1 KiB messages,
// each to a phone of its own, while a dispatcher claims them (64 at a
// time, as the daemon's) and records each outcome filed under its
// conversation, one Complete per recipient as the daemon's recorders do.
// One op is one message enqueued, claimed and recorded. cpu-us/msg is the
// process's CPU per message: all of it is the store's.
func BenchmarkLifecycle20(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, filepath.Join(b.TempDir(), "q.db"))
	text := strings.Repeat("x", 1024)
	lease := func(int) time.Duration { return time.Minute }
	var next atomic.Int64 // messages handed out to sessions
	b.ResetTimer()
	cpu := loadtest.ProcessCPU()

	// A session's commit wakes the dispatcher when it found nothing due
	// (as the daemon's Enqueued hook does): signalled after the commit,
	// so a claim after the signal sees the message.
	enqueued := make(chan struct{}, 1)
	var sessions sync.WaitGroup
	for range 20 {
		sessions.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				m := benchMessage(text)
				m.Recipients[0].To = fmt.Sprintf("+97250%07d", i)
				if err := s.Enqueue(ctx, m); err != nil {
					b.Error(err)
					return
				}
				select {
				case enqueued <- struct{}{}:
				default:
				}
			}
		})
	}
	var recorders sync.WaitGroup
	for done := 0; done < b.N; {
		jobs, err := s.Claim(ctx, time.Now(), 64, nil, lease)
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) == 0 {
			<-enqueued
			continue
		}
		for _, j := range jobs {
			recorders.Go(func() {
				at := time.Now()
				o := bridge.Outcome{RecipientID: j.Recipient.ID, State: bridge.StateSent, Provider: "mindcrm",
					ProviderID: fmt.Sprint(j.Recipient.ID), At: at,
					Conversation: &bridge.ConversationTouch{ID: bridge.ConversationID(j.Recipient.To, "Acme"),
						Phone: j.Recipient.To, Our: "Acme", Account: "acme", ReplyTo: j.Message.EnvelopeFrom, At: j.Message.Created}}
				if err := s.Complete(ctx, []bridge.Outcome{o}); err != nil {
					b.Error(err)
				}
			})
		}
		recorders.Wait() // the daemon's dispatcher claims again as capacity frees up
		done += len(jobs)
	}
	sessions.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(loadtest.PerMessage(loadtest.ProcessCPU()-cpu, b.N), "cpu-us/msg")
}

// BenchmarkStats1M is a metrics scrape's store read with 1,000,000
// recipients queued (one message each, inserted directly in one
// transaction): it must not grow with the queue.
func BenchmarkStats1M(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "q.db"))
	const queued = 1_000_000
	now := time.Now().UnixMilli()
	start := time.Now()
	if _, err := s.wdb.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO messages (id, channel, account, text, created) SELECT 'm' || i, 'smtp', 'acme', 'hi', ? + i FROM n`,
		queued, now); err != nil {
		b.Fatal(err)
	}
	if _, err := s.wdb.Exec(`INSERT INTO recipients (message_id, to_addr, provider, state, next_attempt)
		SELECT id, '+972501234567', 'p', 'queued', created FROM messages`); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d queued in %v", queued, time.Since(start))
	for b.Loop() {
		st, err := s.Stats(context.Background())
		if err != nil || st.Queued != queued || st.OldestQueued.UnixMilli() != now+1 {
			b.Fatalf("Stats = %+v, %v", st, err)
		}
	}
}

// BenchmarkListByState100k lists conversations by the state of their
// newest SMS among 100,000 (one sent SMS and one inbound SMS each, every
// tenth answered): the worst case, a state none has, reads all of them.
func BenchmarkListByState100k(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "q.db"))
	const n = 100_000
	now := time.Now().UnixMilli()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO messages (id, channel, account, text, created) SELECT 'm' || i, 'smtp', 'acme', 'hi', ? + 2 * i FROM n`,
			[]any{n, now}},
		{`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO conversations (id, phone, our, provider, account, created, updated)
		SELECT 'c' || i, '+1555' || i, 'Acme', 'p', 'acme', ? + 2 * i, ? + 2 * i + 1 FROM n`, []any{n, now, now}},
		{`INSERT INTO recipients (message_id, to_addr, provider, provider_id, state, next_attempt, conversation_id)
		SELECT id, '+1555' || substr(id, 2), 'p', id, 'sent', created, 'c' || substr(id, 2) FROM messages`, nil},
		{`INSERT INTO inbound (id, provider, dedupe_key, conversation_id, from_addr, received, created)
		SELECT 'i' || substr(id, 2), 'p', id, id, phone, updated, updated FROM conversations WHERE substr(id, 2) % 10 = 0`, nil},
	} {
		if _, err := s.wdb.Exec(q.sql, q.args...); err != nil {
			b.Fatal(err)
		}
	}
	for _, tt := range []struct {
		state bridge.State
		want  int
	}{{bridge.StateReceived, 50}, {bridge.StateSent, 50}, {bridge.StateFailed, 0}} {
		b.Run(string(tt.state), func(b *testing.B) {
			for b.Loop() {
				list, err := s.ListConversations(context.Background(), bridge.ConversationFilter{State: tt.state})
				if err != nil || len(list) != tt.want {
					b.Fatalf("ListConversations(%s) = %d, %v", tt.state, len(list), err)
				}
			}
		})
	}
}
