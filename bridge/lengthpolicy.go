package bridge

import (
	"unicode"
	"unicode/utf8"
)

// Overflow is what happens to a text longer than its account's
// max_segments.
type Overflow string

const (
	// OverflowRefuse refuses the message before acceptance (SMTP 552
	// 5.3.4, HTTP 422 naming text). It is the default.
	OverflowRefuse Overflow = "refuse"
	// OverflowTruncate sends as much as fits, cut at a word boundary
	// and marked as cut: monitoring mail is often long, and the start of
	// it is worth more than no SMS at all.
	OverflowTruncate Overflow = "truncate"
)

// Truncation markers: the ellipsis where the encoding has it (UCS-2, one
// unit), three dots in GSM-7 (which lacks it).
const (
	markerUCS2 = "…"
	markerGSM7 = "..."
)

// Truncate returns text cut to fit in maxParts SMS parts, counted as
// CountSegments counts (GSM-7 extension characters cost two septets,
// UCS-2 characters outside the BMP two units, a multipart SMS holds 153
// septets or 67 units a part, and an escape sequence or surrogate pair is
// never split between parts), ending with a marker. A text that fits is
// returned as is.
//
// The cut is at the last space or line break that leaves the cut text at
// least half of what fits; in one long word (a URL, a token) it is at the
// last character that fits, but never inside a combining sequence (a
// letter and its marks, an emoji and its modifiers or joiners).
//
// A text needs UCS-2 if any character does; when the only such characters
// come after the cut, the cut text is GSM-7 and can hold more than twice
// as much. Truncate tries both and keeps the longer.
func Truncate(text string, maxParts int) string {
	if maxParts < 1 {
		maxParts = 1
	}
	if CountSegments(text).Count <= maxParts {
		return text
	}
	// The text up to its first character GSM-7 lacks, cut in GSM-7.
	g := len(text)
	for i, r := range text {
		if gsmCost(r) == 0 {
			g = i
			break
		}
	}
	best := cut(text[:g], maxParts, gsmCost, gsmSingle, gsmPart, markerGSM7)
	if g < len(text) {
		// The whole text, cut in UCS-2: longer if the first non-GSM
		// character came early enough.
		if u := cut(text, maxParts, ucs2Cost, ucs2Single, ucs2Part, markerUCS2); len(u) > len(best) {
			best = u
		}
	}
	return best
}

// cut returns the longest prefix of text that, followed by marker, fits
// in maxParts parts of the given sizes and costs, cut as Truncate says,
// with marker appended. text may fit whole (Truncate's GSM-7 prefix);
// it is still marked, as text followed it.
func cut(text string, maxParts int, cost func(rune) int, single, part int, marker string) string {
	markerCost := 0
	for _, r := range marker {
		markerCost += cost(r)
	}
	fits := func(units, parts, used int) bool {
		if units+markerCost <= single {
			return true
		}
		// Place the marker as the greedy split would.
		for _, r := range marker {
			c := cost(r)
			if used+c > part {
				parts++
				used = 0
			}
			used += c
		}
		return parts <= maxParts
	}
	// Walk the prefixes in order, with the greedy part split of each
	// (parts, used), keeping the longest that fits (end) and the longest
	// that ends before a space (word).
	end, word := 0, -1
	units, parts, used := 0, 1, 0
	var prev rune
	for i, r := range text {
		if i > 0 && fits(units, parts, used) {
			if !joins(prev, r) {
				end = i
			}
			if unicode.IsSpace(r) && !unicode.IsSpace(prev) {
				word = i
			}
		} else if i > 0 {
			break
		}
		c := cost(r)
		units += c
		if used+c > part {
			parts++
			used = 0
		}
		used += c
		prev = r
	}
	if fits(units, parts, used) {
		end = len(text) // all of it (a GSM-7 prefix that fits whole)
	}
	if word >= 0 && word*2 >= end {
		end = word
	}
	// No space before the marker ("word..." not "word ...").
	for end > 0 {
		r, size := utf8.DecodeLastRuneInString(text[:end])
		if !unicode.IsSpace(r) {
			break
		}
		end -= size
	}
	return text[:end] + marker
}

// joins reports whether a cut between prev and next would split what a
// phone shows as one character: a letter from its combining marks, an
// emoji from its skin tone, variation selector or joiner, or a regional
// indicator from its pair (approximately: two flags in a row may be cut
// between their letters).
func joins(prev, next rune) bool {
	switch {
	case unicode.In(next, unicode.Mn, unicode.Me, unicode.Mc):
		return true
	case next == '\u200D' || prev == '\u200D': // zero-width joiner
		return true
	case next >= '\uFE00' && next <= '\uFE0F': // variation selectors
		return true
	case next >= 0x1F3FB && next <= 0x1F3FF: // skin tone modifiers
		return true
	case next >= 0xE0020 && next <= 0xE007F: // tag sequences (subdivision flags)
		return true
	case isRegional(prev) && isRegional(next):
		return true
	}
	return false
}

func isRegional(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

// shaped is a submission's text as it is sent.
type shaped struct {
	text  string   // the text sent
	seg   Segments // how it travels
	saved int      // SMS parts smart encoding saved, per recipient
}

// shape applies the account's smart encoding and length policy to a
// submission's text (not empty): look-alikes are replaced first, so the
// length is counted on what is sent; then a text over the account's
// limit is refused or truncated.
func (b *Bridge) shape(acct *Account, text string) (shaped, error) {
	smart := b.opt.SmartEncoding
	if acct.SmartEncoding != nil {
		smart = *acct.SmartEncoding
	}
	limit := b.opt.MaxSegments
	if acct.MaxSegments > 0 {
		limit = acct.MaxSegments
	}
	before := CountSegments(text)
	out := shaped{text: text, seg: before}
	if smart {
		// Never at a higher price: "…" becomes three septets, so a text
		// of ellipses could take more GSM-7 parts than UCS-2 ones.
		if t, n := SmartEncode(text); n > 0 {
			if seg := CountSegments(t); seg.Count <= before.Count {
				out.text, out.seg = t, seg
			}
		}
	}
	if out.seg.Count > limit {
		if acct.Overflow != OverflowTruncate {
			return shaped{}, Permanent(ReasonTooLong, "text", "message is %s; the limit is %d segments", out.seg, limit)
		}
		out.text = Truncate(out.text, limit)
		out.seg = CountSegments(out.text)
	}
	// What the text as written would have cost under the same policy.
	cost := before.Count
	if acct.Overflow == OverflowTruncate {
		cost = min(cost, limit)
	}
	out.saved = max(0, cost-out.seg.Count)
	return out, nil
}
