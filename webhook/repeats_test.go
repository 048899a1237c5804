package webhook

import (
	"fmt"
	"testing"
	"time"
)

func TestRepeatsWindow(t *testing.T) {
	r := newRepeats(100)
	t0 := time.Date(2030, 1, 1, 3, 0, 0, 0, time.UTC)
	if !r.claim("a", t0, time.Hour) {
		t.Fatal("first notification refused")
	}
	if r.claim("a", t0.Add(59*time.Minute), time.Hour) {
		t.Error("a repeat within the window was allowed")
	}
	if !r.claim("b", t0.Add(time.Minute), time.Hour) {
		t.Error("another notification was refused")
	}
	if !r.claim("a", t0.Add(time.Hour), time.Hour) {
		t.Error("a repeat after the window was refused")
	}
	if r.claim("a", t0.Add(time.Hour+time.Minute), time.Hour) {
		t.Error("the window did not start again with the repeat sent")
	}
	r.release("b")
	if !r.claim("b", t0.Add(2*time.Minute), time.Hour) {
		t.Error("a released claim still held")
	}
}

// However many notifications come, at most max are remembered: the
// oldest is forgotten first.
func TestRepeatsBounded(t *testing.T) {
	r := newRepeats(10)
	t0 := time.Date(2030, 1, 1, 3, 0, 0, 0, time.UTC)
	for i := range 1000 {
		r.claim(fmt.Sprint(i), t0, time.Hour)
	}
	if len(r.seen) != 10 || r.order.Len() != 10 {
		t.Fatalf("%d remembered (%d in order), want 10", len(r.seen), r.order.Len())
	}
	if r.claim("999", t0, time.Hour) || !r.claim("0", t0, time.Hour) {
		t.Error("want the newest remembered and the oldest forgotten")
	}
	// Expired ones go as soon as anything is claimed.
	r.claim("x", t0.Add(2*time.Hour), time.Minute)
	if len(r.seen) != 1 {
		t.Errorf("%d remembered after all others expired, want 1", len(r.seen))
	}
}
