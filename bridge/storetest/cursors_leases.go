package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

func savedCursor(t *testing.T, s Full, name string) string {
	t.Helper()
	v, err := s.Cursor(context.Background(), name)
	if err != nil {
		t.Fatalf("Cursor(%s): %v", name, err)
	}
	return v
}

func testCursor(t *testing.T, s Full) {
	if v := savedCursor(t, s, "p1/inbox"); v != "" {
		t.Errorf("cursor never saved = %q, want empty", v)
	}
	recordInbound(t, s, newInbound(phone1, our1, base), nil, &bridge.Cursor{Name: "p1/inbox", Value: "17"})
	recordInbound(t, s, newInbound(phone1, our1, base), nil, &bridge.Cursor{Name: "p2/inbox", Value: "2030-03-14T09:26:53Z"})
	recordInbound(t, s, newInbound(phone1, our1, base), nil, &bridge.Cursor{Name: "p1/inbox", Value: "18"})
	if v := savedCursor(t, s, "p1/inbox"); v != "18" {
		t.Errorf("p1 cursor = %q, want 18", v)
	}
	if v := savedCursor(t, s, "p2/inbox"); v != "2030-03-14T09:26:53Z" {
		t.Errorf("p2 cursor = %q", v)
	}
}

func takeLease(t *testing.T, s Full, name, holder string, now time.Time, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.Lease(context.Background(), name, holder, now, ttl)
	if err != nil {
		t.Fatalf("Lease(%s, %s): %v", name, holder, err)
	}
	return ok
}

func testLease(t *testing.T, s Full) {
	sec := func(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }
	for _, step := range []struct {
		name, holder string
		now          time.Time
		want         bool
	}{
		{"poll", "a", sec(0), true},
		{"poll", "b", sec(30), false},  // a holds it until 60s
		{"poll", "a", sec(50), true},   // renewed until 110s
		{"poll", "b", sec(61), false},  // would have been free without the renewal
		{"poll", "b", sec(110), true},  // run out
		{"poll", "a", sec(111), false}, // b's now
		{"other", "a", sec(111), true}, // another job
		{"poll", "b", sec(112), true},
	} {
		if got := takeLease(t, s, step.name, step.holder, step.now, time.Minute); got != step.want {
			t.Fatalf("Lease(%s, %s, %v) = %v, want %v", step.name, step.holder, step.now.Sub(base), got, step.want)
		}
	}
	if _, err := s.Lease(context.Background(), "poll", "", base, time.Minute); err == nil || bridge.IsTemporary(err) {
		t.Errorf("Lease without holder = %v, want a permanent error", err)
	}
}

func testLeaseConcurrent(t *testing.T, s Full) {
	const n = 8
	for round := range 3 {
		// Each round starts when the last one's lease has run out.
		now := base.Add(time.Duration(round) * time.Hour)
		var wg sync.WaitGroup
		got := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				got[i], errs[i] = s.Lease(context.Background(), "poll", fmt.Sprintf("holder-%d", i), now, time.Minute)
			})
		}
		wg.Wait()
		holders := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Lease: %v", errs[i])
			}
			if got[i] {
				holders++
			}
		}
		if holders != 1 {
			t.Fatalf("round %d: %d holders, want 1", round, holders)
		}
	}
}
