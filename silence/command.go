package silence

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Verb is what an SMS command asks for.
type Verb int

const (
	VerbNone    Verb = iota
	VerbSilence      // ACK or SILENCE: silence the alert group
	VerbExpire       // UNACK: expire the silence this phone made for it
)

func (v Verb) String() string {
	switch v {
	case VerbSilence:
		return "ACK"
	case VerbExpire:
		return "UNACK"
	}
	return "none"
}

// Command is a parsed SMS command.
type Command struct {
	Verb Verb
	// Duration is how long to silence (VerbSilence); 0: the default.
	Duration time.Duration
	// Ref is the alert's short reference (#3); 0: the latest alert SMS.
	Ref int
}

// MaxDuration is the longest duration a command is read with, whatever
// the configuration allows (which Resolve checks): it keeps the arithmetic
// far from overflow, and no pager silence should last longer.
const MaxDuration = 90 * 24 * time.Hour

// MaxRef is the largest reference a command names.
const MaxRef = 999_999

// maxCommandBytes: no command is longer; a longer SMS is an ordinary
// reply, not parsed further.
const maxCommandBytes = 64

// ErrNotCommand is Parse's answer to a text that is no command: an
// ordinary reply.
var ErrNotCommand = errors.New("not a command")

// Parse reads an SMS that may be a command: ACK or SILENCE with an
// optional duration and reference, UNACK with an optional reference, in
// any case, the arguments in any order, a trailing "." or "!" ignored:
//
//	ACK            ack 2h        SILENCE #3 30m      ack #3 1d12h
//	UNACK          unack #3
//
// A duration is one or more <number><unit> with unit m, h or d. A text
// whose first word is none of the verbs is ErrNotCommand; one that
// starts with a verb but whose arguments are wrong gets an error meant
// for the phone ("ACK 5y": cannot read "5y" ...).
func Parse(text string) (Command, error) {
	if len(text) > maxCommandBytes {
		return Command{}, ErrNotCommand
	}
	words := strings.Fields(strings.TrimRight(strings.TrimSpace(text), ".!"))
	if len(words) == 0 {
		return Command{}, ErrNotCommand
	}
	var c Command
	switch strings.ToUpper(words[0]) {
	case "ACK", "SILENCE":
		c.Verb = VerbSilence
	case "UNACK":
		c.Verb = VerbExpire
	default:
		return Command{}, ErrNotCommand
	}
	verb := strings.ToUpper(words[0])
	for _, w := range words[1:] {
		switch {
		case strings.HasPrefix(w, "#"):
			if c.Ref != 0 {
				return Command{}, fmt.Errorf("%s names two alerts; send one command for each", verb)
			}
			n, err := strconv.Atoi(w[1:])
			if err != nil || n <= 0 || n > MaxRef || w[1] == '+' {
				return Command{}, fmt.Errorf("cannot read %q as an alert reference such as #3", clip(w))
			}
			c.Ref = n
		case c.Verb == VerbExpire:
			return Command{}, fmt.Errorf("%s takes only an alert reference such as #3, not %q", verb, clip(w))
		default:
			if c.Duration != 0 {
				return Command{}, fmt.Errorf("%s names two durations", verb)
			}
			d, err := ParseDuration(w)
			if err != nil {
				return Command{}, err
			}
			c.Duration = d
		}
	}
	return c, nil
}

// ParseDuration reads a command's duration: "30m", "2h", "1d", "1d12h"
// (units m, h and d, in any case), more than zero and at most
// MaxDuration.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("cannot read %q as a duration such as 30m, 2h or 1d", clip(s))
	if s == "" {
		return 0, bad
	}
	var total time.Duration
	rest := strings.ToLower(s)
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || i > 6 {
			return 0, bad
		}
		n, _ := strconv.Atoi(rest[:i]) // at most six digits: cannot fail
		var unit time.Duration
		switch rest[i] {
		case 'm':
			unit = time.Minute
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		default:
			return 0, bad
		}
		total += time.Duration(n) * unit
		if total > MaxDuration {
			return 0, fmt.Errorf("%s is longer than %s", clip(s), Format(MaxDuration))
		}
		rest = rest[i+1:]
	}
	if total <= 0 {
		return 0, fmt.Errorf("%s is no time at all", clip(s))
	}
	return total, nil
}

// Resolve is how long c silences: its Duration, or def when it names
// none; more than max is refused with a message for the phone.
func (c Command) Resolve(def, max time.Duration) (time.Duration, error) {
	d := c.Duration
	if d == 0 {
		d = def
	}
	if d > max {
		return 0, fmt.Errorf("%s is longer than the %s allowed", Format(d), Format(max))
	}
	return d, nil
}

// Format writes d as a command would: "2h", "30m", "1d", "1d12h", "2h30m".
func Format(d time.Duration) string {
	if d <= 0 {
		return "0m"
	}
	d = d.Round(time.Minute)
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if n := d / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}
