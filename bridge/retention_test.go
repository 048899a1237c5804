package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// fakePurger has purgeable records of each kind, and tells calls on a
// channel so that the test waits on them rather than on time.
type fakePurger struct {
	left   map[bridge.PurgeKind]int
	calls  chan purgeCall
	fail   error
	marks  []bridge.PurgeMark
	cutoff time.Time
}

type purgeCall struct {
	kind bridge.PurgeKind
	at   time.Time
}

func (f *fakePurger) Purge(ctx context.Context, kind bridge.PurgeKind, cutoff time.Time, after bridge.PurgeMark, limit int) (bridge.PurgeBatch, error) {
	if f.calls != nil {
		f.calls <- purgeCall{kind, time.Now()}
	}
	if f.fail != nil {
		return bridge.PurgeBatch{}, f.fail
	}
	f.cutoff = cutoff
	f.marks = append(f.marks, after)
	n := min(f.left[kind], limit)
	f.left[kind] -= n
	b := bridge.PurgeBatch{Scanned: n, Deleted: n}
	if n > 0 {
		b.Next = bridge.PurgeMark{At: cutoff, ID: fmt.Sprintf("%s-%d", kind, len(f.marks))}
	}
	return b, nil
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// Purge goes through every kind in batches, each continuing after the
// last, pausing between full batches, and with the cutoff now - Keep.
func TestRetentionPurgeBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
		f := &fakePurger{left: map[bridge.PurgeKind]int{bridge.PurgeMessages: 5, bridge.PurgeMail: 2}}
		r := &bridge.Retention{Store: f, Keep: 72 * time.Hour, Batch: 2, Pause: time.Second,
			Now: func() time.Time { return now }, Log: quietLog}
		start := time.Now()
		n, err := r.Purge(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n[bridge.PurgeMessages] != 5 || n[bridge.PurgeMail] != 2 || n[bridge.PurgeInbound] != 0 || n[bridge.PurgeConversations] != 0 {
			t.Errorf("purged %v", n)
		}
		if !f.cutoff.Equal(now.Add(-72 * time.Hour)) {
			t.Errorf("cutoff %s, want now - 72h", f.cutoff)
		}
		// messages: 2, 2, 1 (two pauses); inbound: 0; mail: 2, 0 (one
		// pause); alert references: 0; conversations: 0.
		if len(f.marks) != 8 {
			t.Fatalf("%d batches, want 8", len(f.marks))
		}
		if !f.marks[0].At.IsZero() || f.marks[1].ID != "messages-1" || f.marks[2].ID != "messages-2" {
			t.Errorf("marks %v: each batch must continue after the previous one", f.marks)
		}
		if took := time.Since(start); took != 3*time.Second {
			t.Errorf("purge took %s of fake time, want 3 pauses of 1s", took)
		}
	})
}

// Run purges at once and then every interval, keeps going after a
// failure, and stops with its context, leaving no goroutine behind
// (synctest.Test fails on one).
func TestRetentionRunSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakePurger{left: map[bridge.PurgeKind]int{}, calls: make(chan purgeCall), fail: errors.New("disk on fire")}
		r := &bridge.Retention{Store: f, Keep: time.Hour, Log: quietLog}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		start := time.Now()
		go func() {
			r.Run(ctx, time.Hour)
			close(done)
		}()
		for i := range 3 {
			c := <-f.calls // a failed purge stops at its first kind
			if want := start.Add(time.Duration(i) * time.Hour); !c.at.Equal(want) || c.kind != bridge.PurgeMessages {
				t.Errorf("purge %d: %s at %s, want messages at start + %dh", i, c.kind, c.at, i)
			}
		}
		cancel()
		<-done
	})
}
