package bridge

import (
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

func TestCountSegments(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	he := func(n int) string { return strings.Repeat("א", n) }
	tests := []struct {
		name string
		text string
		want Segments
	}{
		{"empty", "", Segments{GSM7, 0, 0}},
		{"one char", "a", Segments{GSM7, 1, 1}},
		{"160 septets", a(160), Segments{GSM7, 160, 1}},
		{"161 septets", a(161), Segments{GSM7, 161, 2}},
		{"306 septets", a(306), Segments{GSM7, 306, 2}},
		{"307 septets", a(307), Segments{GSM7, 307, 3}},
		{"459 septets", a(459), Segments{GSM7, 459, 3}},
		{"460 septets", a(460), Segments{GSM7, 460, 4}},
		{"one non-GSM letter forces UCS-2", "Ça coûte 5€? ¡Si! ΔΩ ß £¥ §¿", Segments{UCS2, 28, 1}}, // û
		{"GSM basic and extension", "Ça va? ¡Si! ΔΩ ß £¥ §¿ [1] {2} ~^|\\ €", Segments{GSM7, 46, 1}},
		{"newline and CR are basic", "a\r\nb", Segments{GSM7, 4, 1}},
		{"form feed is extension", "a\fb", Segments{GSM7, 4, 1}},
		{"lower-case ç is not GSM", "ç", Segments{UCS2, 1, 1}},
		{"backtick is not GSM", "`", Segments{UCS2, 1, 1}},
		{"extension fills 160", a(158) + "€", Segments{GSM7, 160, 1}},
		{"extension makes 161", a(159) + "€", Segments{GSM7, 161, 2}},
		{"extension makes 161 with brace", a(159) + "{", Segments{GSM7, 161, 2}},
		// 306 septets fit two parts only if the escape pair could be split
		// between septet 153 and 154.
		{"escape pair not split", a(152) + "€" + a(152), Segments{GSM7, 306, 3}},
		{"escape pair fits at part end", a(151) + "€" + a(153), Segments{GSM7, 306, 2}},
		{"70 units", he(70), Segments{UCS2, 70, 1}},
		{"71 units", he(71), Segments{UCS2, 71, 2}},
		{"134 units", he(134), Segments{UCS2, 134, 2}},
		{"135 units", he(135), Segments{UCS2, 135, 3}},
		{"one Hebrew char forces UCS-2", a(69) + "א", Segments{UCS2, 70, 1}},
		{"emoji fills 70", he(68) + "😀", Segments{UCS2, 70, 1}},
		{"emoji makes 71", he(69) + "😀", Segments{UCS2, 71, 2}},
		{"surrogate pair not split", he(66) + "😀" + he(66), Segments{UCS2, 134, 3}},
		{"surrogate pair fits at part end", he(65) + "😀" + he(67), Segments{UCS2, 134, 2}},
		{"Hebrew", "שלום, מה שלומך?", Segments{UCS2, 15, 1}},
		{"Persian", "سلام، پیام شما دریافت شد. گزارش ۱۴۰۳", Segments{UCS2, 36, 1}},
		{"long Persian", strings.Repeat("پیام ", 20), Segments{UCS2, 100, 2}},
		{"invalid UTF-8 counts as U+FFFD", "a\xffb", Segments{UCS2, 3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CountSegments(tt.text); got != tt.want {
				t.Errorf("CountSegments(%.40q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestSegmentsString(t *testing.T) {
	tests := []struct {
		s    Segments
		want string
	}{
		{Segments{GSM7, 400, 3}, "3 segments (GSM-7, 400 characters)"},
		{Segments{UCS2, 5, 1}, "1 segment (UCS-2, 5 characters)"},
		{Segments{GSM7, 0, 0}, "0 segments (GSM-7, 0 characters)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}

// The GSM 03.38 tables written out as the standard lists them, so the fuzz
// test checks the implementation against an independent statement of them.
const (
	gsmBasicTable     = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtensionTable = "\f^{}\\[~]|€"
)

func TestGSMTables(t *testing.T) {
	// 128 code points less the escape (0x1B), which is no character.
	if n := len([]rune(gsmBasicTable)); n != 127 {
		t.Fatalf("basic table has %d characters, want 127", n)
	}
	for r := rune(0); r < 0x3000; r++ {
		want := 0
		switch {
		case strings.ContainsRune(gsmBasicTable, r):
			want = 1
		case strings.ContainsRune(gsmExtensionTable, r):
			want = 2
		}
		if got := gsmCost(r); got != want {
			t.Errorf("gsmCost(%q) = %d, want %d", r, got, want)
		}
	}
	if got := gsmCost('€'); got != 2 {
		t.Errorf("gsmCost('€') = %d, want 2", got)
	}
}

func FuzzCountSegments(f *testing.F) {
	for _, s := range []string{"", "a", "Hello [world] €5", "שלום", "سلام پیام", "😀😀", strings.Repeat("a", 152) + "€", "a\xffb"} {
		f.Add(s, "x")
		f.Add(s, "€")
		f.Add(s, "😀")
	}
	f.Add(strings.Repeat("0", 69)+"\xe2\x82", "\xac") // completes "€": UCS-2 becomes GSM-7
	f.Fuzz(func(t *testing.T, a, b string) {
		sa, sab := CountSegments(a), CountSegments(a+b)
		if a != "" && sa.Count < 1 {
			t.Fatalf("non-empty %q: %+v", a, sa)
		}
		// Appending bytes may complete a character whose first bytes
		// counted as U+FFFD; only appending characters must not shrink.
		if utf8.ValidString(a) && utf8.ValidString(b) && sab.Count < sa.Count {
			t.Fatalf("appending %q to %q: %d parts became %d", b, a, sa.Count, sab.Count)
		}

		gsm, septets := true, 0
		for _, r := range a {
			switch {
			case strings.ContainsRune(gsmBasicTable, r):
				septets++
			case strings.ContainsRune(gsmExtensionTable, r):
				septets += 2
			default:
				gsm = false
			}
		}
		single, part, units := gsmSingle, gsmPart, septets
		if !gsm {
			single, part, units = ucs2Single, ucs2Part, len(utf16.Encode([]rune(a)))
		}
		if (sa.Encoding == GSM7) != gsm {
			t.Fatalf("%q: encoding %s, all GSM: %v", a, sa.Encoding, gsm)
		}
		if sa.Units != units {
			t.Fatalf("%q: %d units, want %d", a, sa.Units, units)
		}
		// Greedy filling wastes at most one unit per part.
		if units > single && (sa.Count < ceilDiv(units, part) || sa.Count > ceilDiv(units, part-1)) {
			t.Fatalf("%q: %d units in %d parts", a, units, sa.Count)
		}
		if units > 0 && units <= single && sa.Count != 1 {
			t.Fatalf("%q: %d units in %d parts", a, units, sa.Count)
		}
	})
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func BenchmarkCountSegments(b *testing.B) {
	for _, bc := range []struct{ name, text string }{
		{"GSM-7", strings.Repeat("Your appointment is confirmed for 10:30 [ref 42]. ", 8)},
		{"UCS-2", strings.Repeat("התור שלך אושר לשעה 10:30 😀 ", 8)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.text)))
			for b.Loop() {
				CountSegments(bc.text)
			}
		})
	}
}
