package bridge

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Caps on what one submission may carry, the same over SMTP and HTTP. They
// bound what a client can make the bridge store and hand to a provider;
// every provider's own limits are far below them (a template parameter is
// a name, a code or an amount; a sender ID at most 16 characters).
const (
	MaxParams        = 20   // template parameters
	MaxParamName     = 64   // bytes
	MaxParamValue    = 1000 // bytes
	MaxSenderBytes   = 64
	MaxTemplateBytes = 64
	// MaxSubject caps the mail subject kept for reply subjects (RFC
	// 5322's line limit).
	MaxSubject = 998
	// MaxStoredHeaders caps the mail header kept for bounces
	// (Message.Headers); smtpin keeps only a few fields, well under it.
	MaxStoredHeaders = 8 << 10
	// DefaultScheduleHorizon is how far ahead a send may be scheduled
	// when Options.ScheduleHorizon is 0.
	DefaultScheduleHorizon = 365 * 24 * time.Hour
)

// fieldName is how the client named a submission field: the JSON key over
// HTTP, the X-SMS-* header over SMTP.
func fieldName(ch Channel, field string) string {
	if ch != ChannelSMTP {
		return field
	}
	switch {
	case field == "sender":
		return "X-SMS-Sender"
	case field == "template":
		return "X-SMS-Template"
	case field == "send_at":
		return "X-SMS-Send-At"
	case field == "params":
		return "X-SMS-Param-<name>"
	case strings.HasPrefix(field, "params."):
		return "X-SMS-Param-" + strings.TrimPrefix(field, "params.")
	}
	return field
}

// checkContent refuses what a submission may not carry (sizes and counts
// over the caps, control characters in sender, template or parameters) and
// strips control characters from the text, so none ever reaches a
// provider: a provider may act on them (an escape, a NUL ending a C
// string) or bill them, and a phone shows them as garbage.
func checkContent(s *Submission) error {
	refuse := func(field, format string, args ...any) error {
		return Permanent(ReasonInvalid, field, "%s: %s", fieldName(s.Channel, field), fmt.Sprintf(format, args...))
	}
	word := func(field, v string, limit int) error {
		if len(v) > limit {
			return refuse(field, "%d bytes; at most %d", len(v), limit)
		}
		if i := controlAt(v); i >= 0 {
			return refuse(field, "control character %U at byte %d", firstRune(v[i:]), i)
		}
		return nil
	}
	if err := word("sender", s.Sender, MaxSenderBytes); err != nil {
		return err
	}
	if err := word("template", s.Template, MaxTemplateBytes); err != nil {
		return err
	}
	if len(s.Params) > MaxParams {
		return refuse("params", "%d parameters; at most %d", len(s.Params), MaxParams)
	}
	// In name order, so the same request always gets the same answer.
	for _, name := range slices.Sorted(maps.Keys(s.Params)) {
		v := s.Params[name]
		if name == "" {
			return refuse("params", "a parameter has no name")
		}
		if err := word("params", name, MaxParamName); err != nil {
			return err
		}
		if err := word("params."+name, v, MaxParamValue); err != nil {
			return err
		}
	}
	s.Text = CleanText(s.Text)
	s.Headers = capHeaders(s.Headers)
	if len(s.Subject) > MaxSubject {
		s.Subject = strings.ToValidUTF8(s.Subject[:MaxSubject], "")
	}
	return nil
}

// checkSchedule refuses a send further ahead than horizon.
func checkSchedule(s *Submission, now time.Time, horizon time.Duration) error {
	if s.SendAt.IsZero() || !s.SendAt.After(now.Add(horizon)) {
		return nil
	}
	return Permanent(ReasonInvalid, "send_at", "%s: %s is more than %s ahead (limits.schedule_horizon)",
		fieldName(s.Channel, "send_at"), s.SendAt.Format(time.RFC3339), days(horizon))
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		if n := d / (24 * time.Hour); n != 1 {
			return fmt.Sprintf("%d days", n)
		}
		return "1 day"
	}
	return d.String()
}

// isControl reports whether r is a C0 or C1 control character or DEL.
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f)
}

// controlAt returns the byte index of the first control character in s,
// or -1.
func controlAt(s string) int {
	for i, r := range s {
		if isControl(r) {
			return i
		}
	}
	return -1
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

// CleanText returns SMS text without control characters: line breaks
// (CRLF, CR, LF) become LF, a tab a space (GSM-7 has no tab, and one would
// force the whole text into UCS-2), and every other C0 or C1 control
// character and DEL is removed. Text is stripped rather than refused
// because mail bodies carry stray controls (a form feed, a NUL from a
// broken charset) that nobody meant to send.
func CleanText(s string) string {
	if controlAt(s) < 0 {
		return s
	}
	// Valid first, so removing a control cannot join the bytes around
	// it into one ("\xc2\x1f\x85" would become U+0085).
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\n':
			b.WriteByte('\n')
		case r == '\r':
			if i+1 >= len(s) || s[i+1] != '\n' {
				b.WriteByte('\n')
			}
		case r == '\t':
			b.WriteByte(' ')
		case isControl(r):
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// capHeaders cuts a header block to MaxStoredHeaders at a line end.
func capHeaders(h string) string {
	if len(h) <= MaxStoredHeaders {
		return h
	}
	h = h[:MaxStoredHeaders]
	if i := strings.LastIndex(h, "\r\n"); i >= 0 {
		return h[:i+2]
	}
	return ""
}
