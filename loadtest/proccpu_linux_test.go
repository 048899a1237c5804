package loadtest

import (
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with a space and a parenthesis, as comm may have.
	line := "1234 (post gres: x) S 77 1 1 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 100 1000 10 18446744073709551615\n"
	times, ppid, err := parseStat(line)
	if err != nil || ppid != 77 || times != [4]time.Duration{2500 * time.Millisecond, 500 * time.Millisecond, 70 * time.Millisecond, 30 * time.Millisecond} {
		t.Fatalf("parseStat = %v, %d, %v", times, ppid, err)
	}
	for _, bad := range []string{"", "1 (x S 1", "1 (x) S 1 2 3", "1 (x) S a 1 1 0 -1 0 0 0 0 0 1 1 1 1 20 0"} {
		if _, _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

// parseStat takes any line without panicking, and never returns a
// negative time.
func FuzzParseStat(f *testing.F) {
	f.Add("1234 (post gres: x) S 77 1 1 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 100 1000 10\n")
	f.Fuzz(func(t *testing.T, line string) {
		times, _, err := parseStat(line)
		for _, d := range times {
			if err == nil && d < 0 {
				t.Fatalf("parseStat(%q) = %v", line, times)
			}
		}
	})
}
