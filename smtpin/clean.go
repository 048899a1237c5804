package smtpin

import (
	"slices"
	"strings"
	"unicode"
)

// line is a line of text and whether it is quoted from an earlier
// message. Each format says what a quote is, so a plain line that happens
// to start with ">" (an unstuffed flowed line, an HTML "&gt;") is kept.
type line struct {
	text   string
	quoted bool
}

// splitLines calls yield with each line of s, whatever its line endings
// (CRLF, LF or CR).
func splitLines(s string, yield func(string)) {
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			yield(s)
			return
		}
		yield(s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
}

// plainLines splits text/plain, where a quoted line starts with ">".
func plainLines(s string, emit func(line)) {
	splitLines(s, func(l string) {
		emit(line{text: l, quoted: strings.HasPrefix(l, ">")})
	})
}

// flowedLines splits format=flowed text (RFC 3676 §4), joining soft line
// breaks: a line ending in a space continues on the next line of the same
// quote depth. Space-stuffing is undone.
func flowedLines(s string, delsp bool, emit func(line)) {
	var para strings.Builder // the paragraph being joined
	quoted, joining, prevDepth, first := false, false, 0, true
	splitLines(s, func(l string) {
		depth := 0
		for depth < len(l) && l[depth] == '>' {
			depth++
		}
		content := strings.TrimPrefix(l[depth:], " ")
		// A change of quote depth ends a paragraph (§4.5).
		if !first && !(joining && depth == prevDepth) {
			emit(line{text: para.String(), quoted: quoted})
			para.Reset()
		}
		first = false
		joining = strings.HasSuffix(content, " ") && content != "-- "
		if joining && delsp {
			content = content[:len(content)-1]
		}
		para.WriteString(content)
		quoted, prevDepth = depth > 0, depth
	})
	emit(line{text: para.String(), quoted: quoted})
}

// cleaner normalises decoded text for SMS, line by line as the text is
// split: no signature, no quoted reply, no trailing spaces, never more
// than one blank line in a row and none at either end, LF line endings.
// Nothing else is changed.
//
// It holds only a few lines at a time, so a text of a million tiny lines
// costs no more than its size. Runs of blank lines and of quoted lines
// are each taken as their first line, which changes no outcome: every
// rule below looks only at where such a run starts. An attribution above
// a quote may remove the line before it (dropQuote); only the last
// maxPending to 2*maxPending lines can still be removed, which real mail never exceeds.
type cleaner struct {
	out  strings.Builder
	gap  bool // a blank line is owed before the next text
	done bool // past the signature: the rest is dropped

	started          bool
	prevBlank, prevQ bool // the kind of the last line kept
	held             line // the last line kept, waiting for the next (signature look-ahead)
	holding          bool
	pending          []line // the last lines passed to dropQuote, not yet in out
	last             int    // 1 + index in pending of the last non-blank line; 0: none may introduce a quote
	inQuote          bool
}

const maxPending = 64

func (c *cleaner) add(l line) {
	if c.done {
		return
	}
	l.text = strings.TrimRightFunc(l.text, unicode.IsSpace)
	blank := l.text == ""
	if c.started && ((l.quoted && c.prevQ) || (!l.quoted && blank && !c.prevQ && c.prevBlank)) {
		return
	}
	c.started, c.prevQ, c.prevBlank = true, l.quoted, blank
	if c.holding {
		if isSignature(c.held, &l) {
			c.done = true
			return
		}
		c.dropQuote(c.held)
	}
	c.held, c.holding = l, true
}

// text returns the cleaned text of every line added.
func (c *cleaner) text() string {
	if c.holding && !c.done && !isSignature(c.held, nil) {
		c.dropQuote(c.held)
	}
	for _, l := range c.pending {
		c.write(l)
	}
	c.pending = nil
	return c.out.String()
}

// isSignature reports whether l (followed by next, nil at the end)
// starts what is not sent: "-- " is the signature separator (RFC 3676
// §4.3); with its space trimmed, "--" also matches, as clients that
// strip trailing spaces send it. Or an Outlook-style quoted message.
func isSignature(l line, next *line) bool {
	return !l.quoted && (l.text == "--" || isOriginalMessage(l, next))
}

// dropQuote removes quoted lines and the attribution line that introduces
// a quoted block: the last non-blank line before it, if it ends in ":"
// ("On Mon, 1 Jan 2024, Bob <b@x> wrote:", "ב-1 בינו׳ 2024, Bob כתב/ה:"),
// and a line starting "On " just above it, which is the first half of a
// wrapped attribution. Only one attribution goes per non-quoted line, so
// "a:" above two quotes separated by a blank line stays.
func (c *cleaner) dropQuote(l line) {
	switch {
	case !l.quoted:
		c.pending = append(c.pending, l)
		if l.text != "" {
			c.last = len(c.pending)
		}
		c.inQuote = false
	case !c.inQuote:
		c.inQuote = true
		last := c.last - 1
		if last < 0 || !strings.HasSuffix(c.pending[last].text, ":") {
			break
		}
		// Mail clients wrap a long English attribution.
		if !strings.HasPrefix(c.pending[last].text, "On ") && last > 0 && strings.HasPrefix(c.pending[last-1].text, "On ") {
			last--
		}
		c.pending, c.last = c.pending[:last], 0
	}
	if len(c.pending) == 2*maxPending {
		// Write out the older half; the array is reused, so a long
		// text allocates nothing here.
		for _, l := range c.pending[:maxPending] {
			c.write(l)
		}
		c.pending = c.pending[:copy(c.pending, c.pending[maxPending:])]
		c.last = max(c.last-maxPending, 0)
	}
}

// write appends a line to the text, collapsing blank lines.
func (c *cleaner) write(l line) {
	if l.text == "" {
		c.gap = c.out.Len() > 0
		return
	}
	if c.gap {
		c.out.WriteByte('\n')
		c.gap = false
	}
	if c.out.Len() > 0 {
		c.out.WriteByte('\n')
	}
	c.out.WriteString(l.text)
}

// originalMessage holds the lower-cased titles Outlook puts between dashes
// above the message it replies to or forwards, in the languages our users
// write in.
var originalMessage = []string{
	"original message",
	"הודעה מקורית",
	"پیام اصلی",
	"الرسالة الأصلية",
	"исходное сообщение",
	"ursprüngliche nachricht",
	"message d'origine",
	"mensaje original",
}

// isOriginalMessage reports whether l (followed by next, nil at the end)
// starts the message an Outlook-style reply quotes below itself:
// "-----Original Message-----", or a line of underscores directly
// followed by a "From:" line.
func isOriginalMessage(cur line, next *line) bool {
	l := strings.TrimSpace(cur.text)
	if strings.HasPrefix(l, "-----") && strings.HasSuffix(l, "-----") {
		title := strings.ToLower(strings.TrimSpace(strings.Trim(l, "-")))
		return slices.Contains(originalMessage, title)
	}
	if len(l) >= 10 && strings.Trim(l, "_") == "" && next != nil {
		n := strings.TrimSpace(next.text)
		return strings.HasPrefix(n, "From:") || strings.HasPrefix(n, "מאת:") || strings.HasPrefix(n, "از:")
	}
	return false
}
