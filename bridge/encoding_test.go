package bridge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSmartEncodeEachLookAlike replaces every look-alike, written here by
// class independently of the table, inside otherwise GSM-7 text, and
// checks the table has no entry this list lacks.
func TestSmartEncodeEachLookAlike(t *testing.T) {
	classes := []struct {
		chars, want string
	}{
		{"‘’‚‛‹›′‵ʹʻʼʽˈˊˋ´`", "'"},
		{"“”„‟«»″‶ʺ", `"`},
		{"‐‑‒–—―⁃−﹘﹣", "-"},
		{"…", "..."},
		{"‥", ".."},
		{"•‣∙·◦▪●", "-"},
		{"\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000", " "},
		{"\u2028\u2029", "\n"},
		{"\u00ad\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff", ""},
		{"⁄∕", "/"},
		{"ˆ", "^"},
		{"˜", "~"},
		{"˂", "<"},
		{"˃", ">"},
	}
	n := 0
	for _, c := range classes {
		for _, r := range c.chars {
			n++
			in := "a" + string(r) + "b"
			got, replaced := SmartEncode(in)
			if want := "a" + c.want + "b"; got != want || replaced != 1 {
				t.Errorf("SmartEncode(%q) = %q, %d; want %q, 1", in, got, replaced, want)
			}
			if seg := CountSegments(got); seg.Encoding != GSM7 {
				t.Errorf("SmartEncode(%q) = %q is %s", in, got, seg.Encoding)
			}
			if CountSegments(in).Encoding != UCS2 {
				t.Errorf("%U is GSM-7 already: not a look-alike", r)
			}
		}
	}
	if n != len(lookAlikes) {
		t.Errorf("the classes list %d characters, the table has %d", n, len(lookAlikes))
	}
}

func TestSmartEncodeLeavesUCS2Text(t *testing.T) {
	for _, text := range []string{
		"שלום “דנה” – התור מחר ב־10:30\u00a0…",     // Hebrew: every look-alike stays
		"سلام، «پیام» شما دریافت شد — ممنون",       // Persian
		"See you there 👍🏽 – it’s at 10",            // emoji with a skin tone
		"Family: 👨\u200d👩\u200d👧 ‘home’",           // joiners hold the emoji together
		"Ça coûte 5 € – d’accord?",                 // û is not GSM-7
		"plain GSM-7 text: {braces} and [€5]",      // nothing to replace
		"bad byte \xff with ‘quotes’",              // U+FFFD forces UCS-2
		"ASCII with a curly ‘quote’ and an emoji😀", // mixed at the end
	} {
		if got, n := SmartEncode(text); got != text || n != 0 {
			t.Errorf("SmartEncode(%q) = %q, %d; want it unchanged", text, got, n)
		}
	}
}

// TestSmartEncodeMailSamples counts the parts of mail as clients write it
// (testdata/mail: Outlook, Gmail and Apple Mail bodies with their curly
// quotes, dashes and no-break spaces) before and after smart encoding.
func TestSmartEncodeMailSamples(t *testing.T) {
	tests := []struct {
		file          string
		before, after Segments
	}{
		{"outlook.txt", Segments{UCS2, 294, 5}, Segments{GSM7, 295, 2}},
		{"outlook_bullets.txt", Segments{UCS2, 237, 4}, Segments{GSM7, 238, 2}},
		{"gmail.txt", Segments{UCS2, 126, 2}, Segments{GSM7, 128, 1}},
		{"applemail.txt", Segments{UCS2, 107, 2}, Segments{GSM7, 107, 1}},
		{"hebrew_mixed.txt", Segments{UCS2, 74, 2}, Segments{UCS2, 74, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "mail", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			text := CleanText(string(b))
			got, _ := SmartEncode(text)
			before, after := CountSegments(text), CountSegments(got)
			t.Logf("%s: %v -> %v", tt.file, before, after)
			if after.Encoding == UCS2 && got != text {
				t.Errorf("text needing UCS-2 was changed: %q", got)
			}
			if before != tt.before || after != tt.after {
				t.Errorf("parts %v -> %v; want %v -> %v", before, after, tt.before, tt.after)
			}
		})
	}
}

func TestParseCost(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"0.01", "0.01", true},
		{" 0.0100 ", "0.01", true},
		{"1e-2", "0.01", true},
		{"0", "0", true},
		{"0.0075", "0.0075", true},
		{"1000", "1000", true},
		{"1000.01", "", false},
		{"-0.01", "", false},
		{"", "", false},
		{"NaN", "", false},
		{"Inf", "", false},
		{"0x1p-2", "0.25", true},
		{"free", "", false},
		{strings.Repeat("0", 40), "", false},
	}
	for _, tt := range tests {
		got, ok := ParseCost(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseCost(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseCost(f *testing.F) {
	for _, s := range []string{"0.01", "1e-2", "-1", "NaN", "1000", "0x1p-2", "9.999999999e2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := ParseCost(s)
		if !ok {
			if c != "" {
				t.Fatalf("ParseCost(%q) = %q but not ok", s, c)
			}
			return
		}
		// A stored cost reads back as itself.
		if again, ok := ParseCost(c); !ok || again != c {
			t.Fatalf("ParseCost(%q) = %q, but that reads as %q, %v", s, c, again, ok)
		}
		if strings.ContainsAny(c, "eE-+xX") || !utf8.ValidString(c) {
			t.Fatalf("ParseCost(%q) = %q: not a plain decimal", s, c)
		}
	})
}
