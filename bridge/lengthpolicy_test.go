package bridge

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	he := func(n int) string { return strings.Repeat("א", n) }
	tests := []struct {
		name string
		text string
		max  int
		want string
	}{
		{"fits: unchanged", a(160), 1, a(160)},
		{"fits in 2: unchanged", a(306), 2, a(306)},
		// GSM-7, one part: 157 septets of text and "..." make 160.
		{"GSM-7 hard cut", a(200), 1, a(157) + "..."},
		{"extension char fits at the cut", a(155) + "€" + a(10), 1, a(155) + "€..."},
		{"extension char does not fit at the cut", a(156) + "€" + a(10), 1, a(156) + "..."},
		// Two parts of 153: the escape pair may not straddle the parts,
		// and the marker is placed as the greedy split would place it.
		{"escape pair at a part boundary", a(152) + "€" + a(300), 2, a(152) + "€" + a(148) + "..."},
		// UCS-2, one part: 69 units of text and "…" make 70.
		{"UCS-2 hard cut", he(100), 1, he(69) + "…"},
		{"emoji fits at the cut", he(67) + "😀" + he(10), 1, he(67) + "😀…"},
		{"emoji does not fit at the cut", he(68) + "😀" + he(10), 1, he(68) + "…"},
		{"skin tone stays with its emoji", he(66) + "👍🏽" + he(10), 1, he(66) + "…"},
		{"surrogate pair at a part boundary", he(66) + "😀" + he(100), 2, he(66) + "😀" + he(64) + "…"},
		{"combining mark stays with its letter", he(68) + "שׁ" + he(10), 1, he(68) + "…"},
		// Word boundaries.
		{"cut at a space", strings.Repeat("disk full ", 20), 1, strings.TrimSpace(strings.Repeat("disk full ", 15)) + " disk..."},
		{"line break is a boundary", a(100) + "\n" + a(100), 1, a(100) + "..."},
		{"a boundary too early is ignored", a(10) + " " + a(300), 1, a(10) + " " + a(146) + "..."},
		{"Hebrew words", strings.Repeat("שלום ", 20), 1, strings.TrimSpace(strings.Repeat("שלום ", 13)) + " שלום…"},
		// A text that needs UCS-2 only after the cut is cut in GSM-7.
		{"emoji after the cut", a(50) + " " + a(150) + " 😀", 1, a(50) + " " + a(106) + "..."},
		{"emoji before the cut", "😀 " + a(200), 1, "😀 " + a(66) + "…"},
		{"one part minimum", a(200), 0, a(157) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Truncate(tt.text, tt.max)
			if got != tt.want {
				t.Errorf("Truncate(%.30q…, %d) = %q\nwant %q", tt.text, tt.max, got, tt.want)
			}
			if seg := CountSegments(got); seg.Count > max(tt.max, 1) {
				t.Errorf("result is %s; the limit is %d", seg, tt.max)
			}
		})
	}
}

func TestShape(t *testing.T) {
	on, off := true, false
	b := &Bridge{opt: Options{MaxSegments: 2, SmartEncoding: true}}
	curly := strings.Repeat("It’s “done” – ok. ", 10) // 180 characters, UCS-2: 3 parts
	tests := []struct {
		name  string
		acct  Account
		text  string
		want  string
		seg   Segments
		saved int
		err   Reason
	}{
		{"replaced", Account{}, curly, strings.Repeat(`It's "done" - ok. `, 10), Segments{GSM7, 180, 2}, 1, ""},
		{"account turns it off: too long", Account{SmartEncoding: &off}, curly, "", Segments{}, 0, ReasonTooLong},
		{"account limit", Account{MaxSegments: 1}, curly, "", Segments{}, 0, ReasonTooLong},
		{"truncated after replacing", Account{MaxSegments: 1, Overflow: OverflowTruncate}, curly,
			strings.TrimSpace(strings.Repeat(`It's "done" - ok. `, 8)) + ` It's "done" -...`, Segments{GSM7, 160, 1}, 0, ""},
		{"truncated without replacing", Account{SmartEncoding: &off, MaxSegments: 1, Overflow: OverflowTruncate}, curly,
			strings.TrimSpace(strings.Repeat("It’s “done” – ok. ", 3)) + " It’s “done” –…", Segments{UCS2, 68, 1}, 0, ""},
		// 70 ellipses are one UCS-2 part and 210 septets (two parts) as "...".
		{"never more parts", Account{}, strings.Repeat("…", 70), strings.Repeat("…", 70), Segments{UCS2, 70, 1}, 0, ""},
		{"account turns it on", Account{SmartEncoding: &on}, "a–b", "a-b", Segments{GSM7, 3, 1}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.shape(&tt.acct, tt.text)
			if ReasonOf(err) != tt.err {
				t.Fatalf("shape: %v, want reason %q", err, tt.err)
			}
			if err != nil {
				return
			}
			if got.text != tt.want || got.seg != tt.seg || got.saved != tt.saved {
				t.Errorf("shape = %q, %v, saved %d\nwant %q, %v, saved %d", got.text, got.seg, got.saved, tt.want, tt.seg, tt.saved)
			}
		})
	}
}

// FuzzSmartEncodeTruncate checks replacement and truncation together:
// the replaced text is GSM-7 exactly when the original's only non-GSM
// characters are look-alikes, and the truncated text never takes more
// parts than the limit.
func FuzzSmartEncodeTruncate(f *testing.F) {
	f.Add("It’s “done” – ok…\u00a0", uint8(1))
	f.Add("שלום “דנה” – 10:30", uint8(1))
	f.Add(strings.Repeat("a", 152)+"€"+strings.Repeat("b ", 200), uint8(2))
	f.Add(strings.Repeat("א", 66)+"👍🏽"+strings.Repeat("א", 100), uint8(2))
	f.Add(strings.Repeat("…", 70), uint8(1))
	f.Add("😀 "+strings.Repeat("word ", 100), uint8(3))
	f.Fuzz(func(t *testing.T, text string, limit uint8) {
		maxParts := int(limit%12) + 1
		onlyLookAlikes := true
		for _, r := range text {
			if _, ok := lookAlikes[r]; gsmCost(r) == 0 && !ok {
				onlyLookAlikes = false
			}
		}
		out, n := SmartEncode(text)
		if gsm := CountSegments(out).Encoding == GSM7; gsm != onlyLookAlikes {
			t.Fatalf("SmartEncode(%q) = %q: GSM-7 %v, only look-alikes %v", text, out, gsm, onlyLookAlikes)
		}
		if n == 0 && out != text {
			t.Fatalf("SmartEncode(%q) = %q with no replacement", text, out)
		}
		cut := Truncate(out, maxParts)
		seg := CountSegments(cut)
		if seg.Count > maxParts {
			t.Fatalf("Truncate(%q, %d) = %q: %s", out, maxParts, cut, seg)
		}
		if CountSegments(out).Count <= maxParts {
			if cut != out {
				t.Fatalf("Truncate(%q, %d) changed a text that fits: %q", out, maxParts, cut)
			}
			return
		}
		kept, ok := strings.CutSuffix(cut, markerGSM7)
		if !ok {
			kept, ok = strings.CutSuffix(cut, markerUCS2)
		}
		if !ok || !strings.HasPrefix(out, kept) {
			t.Fatalf("Truncate(%q, %d) = %q: not a prefix and a marker", out, maxParts, cut)
		}
		if utf8.ValidString(out) && !utf8.ValidString(cut) {
			t.Fatalf("Truncate(%q, %d) = %q: invalid UTF-8", out, maxParts, cut)
		}
	})
}
