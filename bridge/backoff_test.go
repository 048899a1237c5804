package bridge

import (
	"testing"
	"time"
)

// TestBackoff checks the range each attempt's delay is drawn from: floor
// after the first try, then up to a ceiling that doubles and is capped.
func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		attempts       int
		floor, ceiling time.Duration
		lo, hi         time.Duration // lo <= delay < hi, or == lo when hi == lo
	}{
		{1, time.Minute, time.Hour, time.Minute, time.Minute},
		{0, time.Minute, time.Hour, time.Minute, time.Minute},
		{2, time.Minute, time.Hour, time.Minute, 2 * time.Minute},
		{3, time.Minute, time.Hour, time.Minute, 4 * time.Minute},
		{7, time.Minute, time.Hour, time.Minute, time.Hour},
		{1000, time.Minute, time.Hour, time.Minute, time.Hour},
		{5, time.Second, time.Second, time.Second, time.Second},
	} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := Backoff(c.attempts, c.floor, c.ceiling)
			if d < c.lo || (c.hi > c.lo && d >= c.hi) || (c.hi == c.lo && d != c.lo) {
				t.Fatalf("Backoff(%d, %v, %v) = %v, want in [%v, %v)", c.attempts, c.floor, c.ceiling, d, c.lo, c.hi)
			}
			seen[d] = true
		}
		// Full jitter: retries that failed together spread out.
		if c.hi > c.lo && len(seen) < 100 {
			t.Errorf("Backoff(%d, %v, %v): %d distinct delays in 200 draws", c.attempts, c.floor, c.ceiling, len(seen))
		}
	}
}
