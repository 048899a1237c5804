package bridge

import (
	"strconv"
	"unicode/utf8"
)

// Encoding is the alphabet an SMS is sent in.
type Encoding string

const (
	GSM7 Encoding = "GSM-7" // 3GPP TS 23.038 default alphabet, 7 bits a character
	UCS2 Encoding = "UCS-2" // UTF-16, 16 bits a code unit
)

// Segments is how a text travels as SMS.
type Segments struct {
	Encoding Encoding
	// Units is the length in the encoding's units: septets for GSM-7
	// (an extension character costs two: the escape and the character),
	// UTF-16 code units for UCS-2 (an emoji costs two: a surrogate pair).
	Units int
	// Count is the number of SMS parts; 0 for an empty text.
	Count int
}

// Part sizes, in units. A multipart SMS carries a 6-byte user data header
// (UDH) in every part, which leaves 153 septets or 67 UTF-16 units.
const (
	gsmSingle  = 160
	gsmPart    = 153
	ucs2Single = 70
	ucs2Part   = 67
)

// CountSegments counts text the way a phone does: GSM-7 when every
// character is in the GSM 03.38 basic or extension table, UCS-2 otherwise.
// A long text is split into parts greedily, and an escape sequence or a
// surrogate pair is never split across two parts (phones move it whole to
// the next part), so the count can exceed units/153 or units/67.
func CountSegments(text string) Segments {
	if text == "" {
		return Segments{Encoding: GSM7}
	}
	if septets, ok := gsmSeptets(text); ok {
		return Segments{Encoding: GSM7, Units: septets, Count: parts(text, septets, gsmSingle, gsmPart, gsmCost)}
	}
	units := 0
	for _, r := range text {
		units += ucs2Cost(r)
	}
	return Segments{Encoding: UCS2, Units: units, Count: parts(text, units, ucs2Single, ucs2Part, ucs2Cost)}
}

// String describes s for people, e.g. "3 segments (GSM-7, 400 characters)".
// The characters are counted in units, as a phone's counter shows them.
func (s Segments) String() string {
	noun := " segments ("
	if s.Count == 1 {
		noun = " segment ("
	}
	return strconv.Itoa(s.Count) + noun + string(s.Encoding) + ", " + strconv.Itoa(s.Units) + " characters)"
}

// parts fills parts of size part greedily, moving a character that does not
// fit whole to the next part.
func parts(text string, units, single, part int, cost func(rune) int) int {
	if units <= single {
		return 1
	}
	n, used := 1, 0
	for _, r := range text {
		c := cost(r)
		if used+c > part {
			n++
			used = 0
		}
		used += c
	}
	return n
}

// gsmSeptets returns the GSM-7 length of text, or false if some character
// has no GSM-7 encoding.
func gsmSeptets(text string) (int, bool) {
	n := 0
	for _, r := range text {
		c := gsmCost(r)
		if c == 0 {
			return 0, false
		}
		n += c
	}
	return n, true
}

// ucs2Cost is the number of UTF-16 code units r takes. Ranging over a
// string never yields surrogates or invalid runes (bad bytes become U+FFFD),
// so only the supplementary planes cost two.
func ucs2Cost(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// gsmASCII is the cost of each ASCII character in GSM-7: 1 in the basic
// table, 2 in the extension table, 0 if absent (the backtick and most
// control characters).
var gsmASCII = func() (t [128]uint8) {
	for c := ' '; c <= '~'; c++ {
		t[c] = 1
	}
	t['\n'], t['\r'] = 1, 1
	t['`'] = 0
	for _, c := range "\f^{}\\[~]|" {
		t[c] = 2
	}
	return t
}()

// gsmCost is the number of septets r takes in GSM-7, or 0 if it has none.
func gsmCost(r rune) int {
	if r < utf8.RuneSelf {
		return int(gsmASCII[r])
	}
	switch r {
	case '£', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', 'Ø', 'ø', 'Å', 'å',
		'Δ', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 'Æ', 'æ', 'ß', 'É',
		'¤', '¡', 'Ä', 'Ö', 'Ñ', 'Ü', '§', '¿', 'ä', 'ö', 'ñ', 'ü', 'à':
		return 1
	case '€':
		return 2
	}
	return 0
}
