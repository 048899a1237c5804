package silence

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		text string
		want Command
	}{
		{"ACK", Command{Verb: VerbSilence}},
		{"  ack.  ", Command{Verb: VerbSilence}},
		{"Ack!", Command{Verb: VerbSilence}},
		{"ACK 2h", Command{Verb: VerbSilence, Duration: 2 * time.Hour}},
		{"silence 30M", Command{Verb: VerbSilence, Duration: 30 * time.Minute}},
		{"SILENCE 1d", Command{Verb: VerbSilence, Duration: 24 * time.Hour}},
		{"ack #3 1h", Command{Verb: VerbSilence, Duration: time.Hour, Ref: 3}},
		{"ack 1h #3", Command{Verb: VerbSilence, Duration: time.Hour, Ref: 3}},
		{"ACK #12", Command{Verb: VerbSilence, Ref: 12}},
		{"ack 1d12h", Command{Verb: VerbSilence, Duration: 36 * time.Hour}},
		{"ack 2h30m", Command{Verb: VerbSilence, Duration: 150 * time.Minute}},
		{"UNACK", Command{Verb: VerbExpire}},
		{"unack #7", Command{Verb: VerbExpire, Ref: 7}},
		{"ack\t#03\n", Command{Verb: VerbSilence, Ref: 3}},
	} {
		got, err := Parse(tt.text)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.text, got, err, tt.want)
		}
	}
}

func TestParseNotCommand(t *testing.T) {
	for _, text := range []string{"", "  ", "ok", "acknowledged", "on it", "#3 ACK", "STOP", "silenced?",
		"ACK " + strings.Repeat("x", 80)} {
		if _, err := Parse(text); !errors.Is(err, ErrNotCommand) {
			t.Errorf("Parse(%q) = %v; want ErrNotCommand (an ordinary reply)", text, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"ACK 5y", `cannot read "5y" as a duration`},
		{"ACK 2", `cannot read "2" as a duration`},
		{"ACK h", `cannot read "h" as a duration`},
		{"ack on my way", `cannot read "on" as a duration`},
		{"ACK 0m", "no time at all"},
		{"ACK 91d", "longer than 90d"},
		{"ACK 999999h", "longer than 90d"},
		{"ACK 1234567m", `cannot read "1234567m"`},
		{"ACK 1h 2h", "two durations"},
		{"ACK #1 #2", "two alerts"},
		{"ACK #", `cannot read "#" as an alert reference`},
		{"ACK #0", `cannot read "#0"`},
		{"ACK #-1", `cannot read "#-1"`},
		{"ACK #+1", `cannot read "#+1"`},
		{"ACK #1000000", `cannot read "#1000000"`},
		{"UNACK 2h", `UNACK takes only an alert reference such as #3, not "2h"`},
	} {
		_, err := Parse(tt.text)
		if err == nil || errors.Is(err, ErrNotCommand) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v; want an error with %q", tt.text, err, tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	def, max := 2*time.Hour, 24*time.Hour
	if d, err := (Command{Verb: VerbSilence}).Resolve(def, max); err != nil || d != def {
		t.Errorf("no duration: %v, %v; want the default", d, err)
	}
	if d, err := (Command{Verb: VerbSilence, Duration: 24 * time.Hour}).Resolve(def, max); err != nil || d != max {
		t.Errorf("the maximum itself: %v, %v", d, err)
	}
	if _, err := (Command{Verb: VerbSilence, Duration: 25 * time.Hour}).Resolve(def, max); err == nil ||
		err.Error() != "1d1h is longer than the 1d allowed" {
		t.Errorf("over the maximum: %v", err)
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{2 * time.Hour: "2h", 30 * time.Minute: "30m", 36 * time.Hour: "1d12h",
		150 * time.Minute: "2h30m", 0: "0m", 48*time.Hour + time.Minute: "2d1m"} {
		if got := Format(d); got != want {
			t.Errorf("Format(%v) = %q, want %q", d, got, want)
		}
	}
}

// FuzzParse: whatever the text, Parse does not panic; a command it
// accepts has a verb, a duration within bounds, a reference within
// bounds, and reads back the same from its own spelling.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"ACK", "ack 2h #3", "UNACK #1", "SILENCE 1d12h", "ack 0m", "ack #", "ACK 90d", "unack 2h", "ack 9999999m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text)
		if err != nil {
			if c != (Command{}) {
				t.Fatalf("Parse(%q) failed with %v but returned %+v", text, err, c)
			}
			return
		}
		if c.Verb != VerbSilence && c.Verb != VerbExpire {
			t.Fatalf("Parse(%q) = %+v: no verb", text, c)
		}
		if c.Duration < 0 || c.Duration > MaxDuration || c.Ref < 0 || c.Ref > MaxRef {
			t.Fatalf("Parse(%q) = %+v: out of bounds", text, c)
		}
		if c.Verb == VerbExpire && c.Duration != 0 {
			t.Fatalf("Parse(%q) = %+v: UNACK with a duration", text, c)
		}
		again := c.Verb.String()
		if c.Duration > 0 {
			again += " " + Format(c.Duration)
		}
		if c.Ref > 0 {
			again += " #" + strconv.Itoa(c.Ref)
		}
		if back, err := Parse(again); err != nil || back != c {
			t.Fatalf("Parse(%q) = %+v, but its spelling %q parses as %+v, %v", text, c, again, back, err)
		}
	})
}
