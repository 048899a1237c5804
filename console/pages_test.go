package console

import (
	"testing"
	"time"
)

func TestSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s", 5*time.Minute + 1400*time.Millisecond: "5m1s",
		10 * time.Minute: "10m", 2*time.Hour + 3*time.Second: "2h0m3s", 0: "0s",
	} {
		if got := span(d); got != want {
			t.Errorf("span(%v) = %q, want %q", d, got, want)
		}
	}
}
