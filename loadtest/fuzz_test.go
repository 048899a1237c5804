package loadtest

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// RefOf finds the ref a message was sent with, whatever follows it on
// its line or after it, and never returns one holding white space.
func FuzzRefOf(f *testing.F) {
	f.Add("RUN-1", "\r\nyour appointment")
	f.Add("ABC-12", " joined line")
	f.Fuzz(func(t *testing.T, ref, rest string) {
		text := "ref " + ref + rest
		got, ok := RefOf(text)
		if ok && (got == "" || strings.ContainsFunc(got, unicode.IsSpace)) {
			t.Fatalf("RefOf(%q) = %q", text, got)
		}
		first, _ := utf8.DecodeRuneInString(rest)
		if utf8.ValidString(text) && ref != "" && !strings.ContainsFunc(ref, unicode.IsSpace) &&
			(rest == "" || unicode.IsSpace(first)) && (!ok || got != ref) {
			t.Fatalf("RefOf(%q) = %q, %v; want %q", text, got, ok, ref)
		}
	})
}

// parseDepth reads any exposition without panicking.
func FuzzParseDepth(f *testing.F) {
	f.Add("# HELP x\nsmsbridge_queue_depth 12\n")
	f.Add("smsbridge_queue_depth NaN")
	f.Fuzz(func(t *testing.T, text string) {
		_, _ = parseDepth(strings.NewReader(text))
	})
}
