// Package silence creates and expires alert silences through the
// Alertmanager API v2 (Prometheus Alertmanager, and Grafana's built-in
// Alertmanager, which serves the same API under its own prefix), and
// reads the SMS commands that ask for them (command.go).
//
// It knows nothing of SMS or accounts: the bridge decides who may
// silence what, and calls a Client.
package silence

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Matcher is one label a silence matches, by equality: what an alert
// group's labels give. Regular expressions are never sent, so no label
// value can widen a silence beyond the group it came from.
type Matcher struct {
	Name  string
	Value string
}

// Silence is one silence to create or replace.
type Silence struct {
	// ID, if set, names a silence made earlier: the API updates it in
	// place while it is active with the same matchers, and replaces it
	// with a new one (a new ID) otherwise.
	ID        string
	Matchers  []Matcher
	StartsAt  time.Time
	EndsAt    time.Time
	CreatedBy string
	Comment   string
}

// Limits on what a silence may carry. Alertmanager itself refuses
// silences over its configured size; these keep the request small and
// the error clear before anything is sent.
const (
	MaxMatchers   = 64
	maxLabelBytes = 1024
	maxTextBytes  = 1024
	maxIDBytes    = 128
)

// ErrNotFound is returned (wrapped) when the API knows no silence with
// the ID given.
var ErrNotFound = errors.New("no such silence")

// Check refuses a silence the API would refuse, saying which field is
// wrong, so that no request is made for it.
func (s *Silence) Check(now time.Time) error {
	switch {
	case len(s.Matchers) == 0:
		return errors.New("silence: at least one matcher is required (a silence without one would mute everything)")
	case len(s.Matchers) > MaxMatchers:
		return fmt.Errorf("silence: %d matchers, at most %d", len(s.Matchers), MaxMatchers)
	case !s.EndsAt.After(s.StartsAt):
		return fmt.Errorf("silence: endsAt %s is not after startsAt %s", s.EndsAt.UTC().Format(time.RFC3339), s.StartsAt.UTC().Format(time.RFC3339))
	case !s.EndsAt.After(now):
		return fmt.Errorf("silence: endsAt %s is in the past", s.EndsAt.UTC().Format(time.RFC3339))
	case strings.TrimSpace(s.CreatedBy) == "" || strings.TrimSpace(s.Comment) == "":
		return errors.New("silence: createdBy and comment are required")
	case len(s.CreatedBy) > maxTextBytes || len(s.Comment) > maxTextBytes:
		return fmt.Errorf("silence: createdBy and comment are at most %d bytes", maxTextBytes)
	case len(s.ID) > maxIDBytes:
		return fmt.Errorf("silence: id over %d bytes", maxIDBytes)
	}
	for i, m := range s.Matchers {
		switch {
		case !labelName(m.Name):
			return fmt.Errorf("silence: matchers[%d]: %q is not a label name", i, clip(m.Name))
		case m.Value == "":
			// An empty value matches alerts without the label:
			// wider than the group.
			return fmt.Errorf("silence: matchers[%d] (%s): empty value", i, m.Name)
		case len(m.Value) > maxLabelBytes || !utf8.ValidString(m.Value):
			return fmt.Errorf("silence: matchers[%d] (%s): value over %d bytes or not UTF-8", i, m.Name, maxLabelBytes)
		}
	}
	return nil
}

// labelName reports whether s is a label name both APIs accept: the
// Prometheus form [a-zA-Z_][a-zA-Z0-9_]*, which Grafana's labels also
// take (it allows more, but nothing a group label of ours would need).
func labelName(s string) bool {
	if s == "" || len(s) > maxLabelBytes {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// clip cuts what an error quotes to 64 bytes.
func clip(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "..."
	}
	return s
}
