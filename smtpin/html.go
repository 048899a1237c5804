package smtpin

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlLines renders HTML as the lines of text a reader sees: no scripts,
// styles or head; block elements on lines of their own; entities decoded;
// whitespace collapsed as a browser does, except in <pre>. Text inside
// <blockquote> is quoted, as ">" lines are in plain text.
func htmlLines(src string, emit func(line)) {
	z := html.NewTokenizer(strings.NewReader(src))
	w := htmlWriter{emit: emit}
	hidden := 0 // depth inside elements whose content is not shown
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			// Only io.EOF: the tokenizer reads from memory.
			w.endLine()
			return
		case html.TextToken:
			if hidden == 0 {
				w.text(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			start, end := tt != html.EndTagToken, tt != html.StartTagToken
			switch a {
			case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template, atom.Noscript:
				if tt == html.StartTagToken {
					hidden++
				} else if tt == html.EndTagToken && hidden > 0 {
					hidden--
				}
			case atom.Body:
				hidden = 0 // an unclosed <head> ends here
			case atom.Br:
				if start {
					w.newline()
				}
			case atom.Td, atom.Th:
				w.space = true
			case atom.Blockquote, atom.Pre:
				w.endLine()
				n := &w.quote
				if a == atom.Pre {
					n = &w.pre
				}
				if start && !end {
					*n++
				} else if !start && *n > 0 {
					*n--
				}
			default:
				if blockElements[a] {
					w.endLine()
				}
			}
		}
	}
}

var blockElements = map[atom.Atom]bool{
	atom.Address: true, atom.Article: true, atom.Aside: true, atom.Caption: true,
	atom.Dd: true, atom.Div: true, atom.Dl: true, atom.Dt: true, atom.Fieldset: true,
	atom.Figcaption: true, atom.Figure: true, atom.Footer: true, atom.Form: true,
	atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Header: true, atom.Hr: true, atom.Li: true, atom.Main: true, atom.Nav: true,
	atom.Ol: true, atom.P: true, atom.Section: true, atom.Table: true, atom.Tr: true, atom.Ul: true,
}

// htmlWriter lays out text the way a browser collapses whitespace.
type htmlWriter struct {
	emit  func(line)
	cur   strings.Builder // the current line
	space bool            // whitespace seen since the last character
	quote int             // blockquote depth
	pre   int             // pre depth: whitespace kept
}

func (w *htmlWriter) text(t []byte) {
	for _, r := range string(t) {
		switch {
		case w.pre > 0 && r == '\n':
			w.newline()
		case w.pre > 0:
			w.char(r)
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\u00a0':
			// A no-break space is a space for SMS too; kept, it would
			// force the whole text into UCS-2.
			w.space = true
		default:
			if w.space && w.cur.Len() > 0 {
				w.cur.WriteByte(' ')
			}
			w.char(r)
		}
	}
}

func (w *htmlWriter) char(r rune) {
	if r == '\u00a0' {
		r = ' '
	}
	w.cur.WriteRune(r)
	w.space = false
}

// newline is a hard line break (<br>, a newline in <pre>).
func (w *htmlWriter) newline() {
	w.emit(line{text: w.cur.String(), quoted: w.quote > 0})
	w.cur.Reset()
	w.space = false
}

// endLine ends the current line at a block boundary, unless it is empty:
// consecutive block boundaries make one line break, not blank lines, so
// Outlook's one-<p>-per-line HTML reads as it looks.
func (w *htmlWriter) endLine() {
	if w.cur.Len() > 0 {
		w.newline()
	}
	w.space = false
}
