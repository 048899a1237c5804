package bridge

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestKeywordMatch(t *testing.T) {
	k := NewKeywords(DefaultOptOutKeywords, DefaultOptInKeywords, DefaultHelpKeywords)
	for _, c := range []struct {
		text string
		want Keyword
	}{
		{"STOP", KeywordOptOut},
		{"stop", KeywordOptOut},
		{"Stop", KeywordOptOut},
		{"  stop \r\n", KeywordOptOut},
		{"\tSTOP\u00a0", KeywordOptOut},     // no-break space
		{"ＳＴＯＰ", KeywordOptOut},             // full-width
		{"\u3000ｓｔｏｐ\u3000", KeywordOptOut}, // ideographic spaces around full-width
		{"Stop.", KeywordOptOut},
		{"STOP!", KeywordOptOut},
		{"stopall", KeywordOptOut},
		{"Unsubscribe", KeywordOptOut},
		{"OPTOUT", KeywordOptOut},
		{"\u200fהסר\u200f", KeywordOptOut}, // Hebrew with right-to-left marks
		{"הסר", KeywordOptOut},
		{"עצור", KeywordOptOut},
		{"لغو", KeywordOptOut},
		{" لغو ", KeywordOptOut},
		{"انصراف", KeywordOptOut},
		{"توقف", KeywordOptOut},
		{"START", KeywordOptIn},
		{"unstop", KeywordOptIn},
		{"Yes", KeywordOptIn},
		{"شروع", KeywordOptIn},
		{"HELP", KeywordHelp},
		{"info", KeywordHelp},
		{"ｈｅｌｐ", KeywordHelp},
		{"راهنما", KeywordHelp},
		{"راهنما", KeywordHelp},
		{"עזרה", KeywordHelp},
		{"stop the car", KeywordNone},
		{"please stop", KeywordNone},
		{"STOP STOP", KeywordNone},
		{"stopp", KeywordNone},
		{"s t o p", KeywordNone},
		{"", KeywordNone},
		{"   ", KeywordNone},
		{"yes I will be there", KeywordNone},
		{"helpful", KeywordNone},
		{"لغو کنید لطفا", KeywordNone},
		{"הסר אותי בבקשה", KeywordNone},
	} {
		if got := k.Match(c.text); got != c.want {
			t.Errorf("Match(%q) = %s, want %s", c.text, got, c.want)
		}
	}
}

// Persian keyboards differ in which yeh and kaf they send: a list written
// with the Persian letters matches text typed with the Arabic ones.
func TestKeywordPersianLetters(t *testing.T) {
	k := NewKeywords([]string{"کنسل"}, nil, []string{"راهنمای"})
	if got := k.Match("كنسل"); got != KeywordOptOut { // Arabic kaf
		t.Errorf("Arabic kaf: %s", got)
	}
	if got := k.Match("راهنماي"); got != KeywordHelp { // Arabic yeh
		t.Errorf("Arabic yeh: %s", got)
	}
}

func TestKeywordConfigured(t *testing.T) {
	k := NewKeywords([]string{"Arrêt", "STOP"}, []string{"stop", "GO"}, []string{})
	if got := k.Match("ARRÊT"); got != KeywordOptOut {
		t.Errorf("configured opt-out: %s", got)
	}
	if got := k.Match("stop"); got != KeywordOptOut {
		t.Errorf("a word in both lists: %s, want the opt-out", got)
	}
	if got := k.Match("help"); got != KeywordNone {
		t.Errorf("help with an empty help list: %s", got)
	}
	if got := k.Match("go"); got != KeywordOptIn {
		t.Errorf("configured opt-in: %s", got)
	}
}

func FuzzKeywordMatch(f *testing.F) {
	for _, s := range []string{"STOP", "ＳＴＯＰ", "stop the car", "\u200fהסר", "لغو", "", " \u3000 ", "Stop.!", "ﬀ"} {
		f.Add(s)
	}
	k := NewKeywords(DefaultOptOutKeywords, DefaultOptInKeywords, DefaultHelpKeywords)
	f.Fuzz(func(t *testing.T, s string) {
		got := k.Match(s)
		n := NormalizeKeyword(s)
		if strings.TrimSpace(n) != n || strings.HasSuffix(n, ".") || strings.HasSuffix(n, "!") || strings.Contains(n, "  ") {
			t.Fatalf("NormalizeKeyword(%q) = %q: not trimmed and collapsed", s, n)
		}
		if isASCII(s) && (k.Match(strings.ToUpper(s)) != got || k.Match(strings.ToLower(s)) != got) {
			t.Fatalf("Match(%q) = %s depends on case", s, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(n) {
			t.Fatalf("NormalizeKeyword(%q) = %q, not valid UTF-8", s, n)
		}
		if got != KeywordNone && len(s) > maxKeywordBytes {
			t.Fatalf("Match of %d bytes = %s", len(s), got)
		}
		// Surrounding white space never changes the answer.
		if len(s) < maxKeywordBytes-4 && k.Match(" "+s+"\n") != got {
			t.Fatalf("Match(%q) = %s but padded %s", s, got, k.Match(" "+s+"\n"))
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
