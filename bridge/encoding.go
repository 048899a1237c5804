package bridge

import "strings"

// Smart encoding: mail clients turn what people type into typographic
// characters (Outlook's and Apple Mail's curly quotes and en dashes, Gmail's
// NBSP before a signature, zero-width spaces pasted from web pages). None
// of them is in GSM-7, and one alone sends the whole text as UCS-2: 70
// characters a part instead of 160, two to three times the price. When they
// are the only characters keeping a text out of GSM-7, they are replaced
// by the GSM-7 characters they look like.
//
// The choice is all or nothing: a text that needs UCS-2 anyway (Hebrew,
// Persian, an emoji, an accented letter GSM-7 lacks) is left exactly as
// written, curly quotes included. Replacing them would save nothing, and
// in such a text they may be meant: a zero-width joiner holds an emoji
// sequence together, a right-to-left mark orders a Hebrew line.

// lookAlikes maps each typographic character to the GSM-7 text that looks
// like it. Every replacement is GSM-7 (TestLookAlikesAreGSM7); most are
// one septet, "..." is three and the circumflex and tilde are extension
// characters (two).
var lookAlikes = map[rune]string{
	// Single quotes, apostrophes and primes.
	'\u2018': "'", // ‘ left single quotation mark
	'\u2019': "'", // ’ right single quotation mark (Word's apostrophe)
	'\u201A': "'", // ‚ single low-9 quotation mark
	'\u201B': "'", // ‛ single high-reversed-9 quotation mark
	'\u2039': "'", // ‹ single left-pointing angle quotation mark
	'\u203A': "'", // › single right-pointing angle quotation mark
	'\u2032': "'", // ′ prime
	'\u2035': "'", // ‵ reversed prime
	'\u02B9': "'", // ʹ modifier letter prime
	'\u02BB': "'", // ʻ modifier letter turned comma
	'\u02BC': "'", // ʼ modifier letter apostrophe
	'\u02BD': "'", // ʽ modifier letter reversed comma
	'\u02C8': "'", // ˈ modifier letter vertical line
	'\u02CA': "'", // ˊ modifier letter acute accent
	'\u02CB': "'", // ˋ modifier letter grave accent
	'\u00B4': "'", // ´ acute accent, used as an apostrophe
	'`':      "'", // grave accent: the one printable ASCII character GSM-7 lacks
	// Double quotes and double primes.
	'\u201C': `"`, // “ left double quotation mark
	'\u201D': `"`, // ” right double quotation mark
	'\u201E': `"`, // „ double low-9 quotation mark (German, Hebrew in Latin)
	'\u201F': `"`, // ‟ double high-reversed-9 quotation mark
	'\u00AB': `"`, // « left-pointing double angle quotation mark
	'\u00BB': `"`, // » right-pointing double angle quotation mark
	'\u2033': `"`, // ″ double prime
	'\u2036': `"`, // ‶ reversed double prime
	'\u02BA': `"`, // ʺ modifier letter double prime
	// Hyphens, dashes and minus signs.
	'\u2010': "-", // ‐ hyphen
	'\u2011': "-", // ‑ non-breaking hyphen
	'\u2012': "-", // ‒ figure dash
	'\u2013': "-", // – en dash (Outlook's and Apple Mail's " - ")
	'\u2014': "-", // — em dash
	'\u2015': "-", // ― horizontal bar
	'\u2043': "-", // ⁃ hyphen bullet
	'\u2212': "-", // − minus sign
	'\uFE58': "-", // ﹘ small em dash
	'\uFE63': "-", // ﹣ small hyphen-minus
	// Ellipses.
	'\u2026': "...", // … horizontal ellipsis
	'\u2025': "..",  // ‥ two dot leader
	// Bullets: a list item reads as "- item", as in plain-text mail.
	// Outlook's plain text turns Symbol-font bullets into middle dots.
	'\u2022': "-", // • bullet
	'\u2023': "-", // ‣ triangular bullet
	'\u2219': "-", // ∙ bullet operator
	'\u00B7': "-", // · middle dot
	'\u25E6': "-", // ◦ white bullet
	'\u25AA': "-", // ▪ black small square
	'\u25CF': "-", // ● black circle
	// Spaces of every width: one space.
	'\u00A0': " ", // no-break space (Gmail's and Outlook's &nbsp;)
	'\u2000': " ", // en quad
	'\u2001': " ", // em quad
	'\u2002': " ", // en space
	'\u2003': " ", // em space
	'\u2004': " ", // three-per-em space
	'\u2005': " ", // four-per-em space
	'\u2006': " ", // six-per-em space
	'\u2007': " ", // figure space
	'\u2008': " ", // punctuation space
	'\u2009': " ", // thin space
	'\u200A': " ", // hair space
	'\u202F': " ", // narrow no-break space (French punctuation, macOS times)
	'\u205F': " ", // medium mathematical space
	'\u3000': " ", // ideographic space
	// Line and paragraph separators: a line break.
	'\u2028': "\n",
	'\u2029': "\n",
	// Invisible characters: nothing. In a text that is GSM-7 otherwise
	// there is no emoji for a joiner to join nor right-to-left text for a
	// direction mark to order.
	'\u00AD': "", // soft hyphen
	'\u200B': "", // zero-width space
	'\u200C': "", // zero-width non-joiner
	'\u200D': "", // zero-width joiner
	'\u200E': "", // left-to-right mark
	'\u200F': "", // right-to-left mark
	'\u202A': "", // left-to-right embedding
	'\u202B': "", // right-to-left embedding
	'\u202C': "", // pop directional formatting
	'\u202D': "", // left-to-right override
	'\u202E': "", // right-to-left override
	'\u2060': "", // word joiner
	'\u2066': "", // left-to-right isolate
	'\u2067': "", // right-to-left isolate
	'\u2068': "", // first strong isolate
	'\u2069': "", // pop directional isolate
	'\uFEFF': "", // zero-width no-break space (byte order mark)
	// Other look-alikes.
	'\u2044': "/", // ⁄ fraction slash
	'\u2215': "/", // ∕ division slash
	'\u02C6': "^", // ˆ modifier letter circumflex accent
	'\u02DC': "~", // ˜ small tilde
	'\u02C2': "<", // ˂ modifier letter left arrowhead
	'\u02C3': ">", // ˃ modifier letter right arrowhead
}

// SmartEncode returns text with its typographic look-alikes replaced by
// GSM-7 characters, if that makes it GSM-7; otherwise (it is GSM-7
// already, or it needs UCS-2 for some other character) text unchanged.
// replaced counts the characters replaced.
func SmartEncode(text string) (out string, replaced int) {
	for _, r := range text {
		if gsmCost(r) > 0 {
			continue
		}
		if _, ok := lookAlikes[r]; !ok {
			return text, 0 // needs UCS-2 whatever we do
		}
		replaced++
	}
	if replaced == 0 {
		return text, 0
	}
	var b strings.Builder
	b.Grow(len(text))
	for _, r := range text {
		if s, ok := lookAlikes[r]; ok && gsmCost(r) == 0 {
			b.WriteString(s)
			continue
		}
		b.WriteRune(r)
	}
	return b.String(), replaced
}
