package smtpin

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // every charset x/text knows, for bodies and RFC 2047 words
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/smsbridge/smsbridge/bridge"
)

// Mail is the part of a mail that becomes an SMS.
type Mail struct {
	Subject    string   // decoded (RFC 2047)
	Body       string   // decoded text; signature and quoted reply removed; normalised
	MessageID  string   // Message-ID without <>
	InReplyTo  string   // without <>
	References []string // without <>
	// Header is the parsed header, for the X-SMS-* headers.
	Header mail.Header
	// RawHeader is the header block as received, every line ending in
	// CRLF and without the blank line that ends it, for bounces.
	RawHeader string
}

// maxDepth bounds multipart nesting; real mail nests three or four deep,
// and parts deeper than this are ignored rather than recursed into.
const maxDepth = 16

// ReadMail reads a whole mail from r and extracts the text to send.
//
// The text is the first text/plain or text/html part, preferring
// text/plain within multipart/alternative and skipping attachments.
// An unknown charset or transfer encoding does not fail the mail: the bytes
// are read as UTF-8 with invalid sequences replaced. A mail whose header or
// MIME structure cannot be parsed is a permanent bridge.ReasonInvalid error;
// an error reading r is returned wrapped as it is (go-smtp's size-limit
// error included).
func ReadMail(r io.Reader) (*Mail, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading mail: %w", err)
	}
	src := bytes.NewReader(raw)
	br := bufio.NewReaderSize(src, min(len(raw), 4096)) // most mails are far smaller than bufio's default
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, invalid("the mail header is malformed", err)
	}
	headerLen := len(raw) - src.Len() - br.Buffered()

	// New fails only for an unknown charset or transfer encoding, and
	// then returns the body undecoded: read as UTF-8, it is the best guess.
	e, _ := message.New(message.Header{Header: h}, br)
	m := &Mail{
		Header:    mail.Header{Header: e.Header},
		RawHeader: crlfHeader(raw[:headerLen]),
	}
	m.Subject, _ = m.Header.Subject() // on error: the raw value, the best we have
	m.Subject = strings.TrimSpace(strings.ToValidUTF8(m.Subject, "\uFFFD"))
	if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
		m.MessageID = ids[0]
	}
	if ids := msgIDs(h.Get("In-Reply-To")); len(ids) > 0 {
		m.InReplyTo = ids[0]
	}
	m.References = msgIDs(h.Get("References"))

	// Decoding can grow text at most threefold (a single-byte charset's
	// character becomes up to three UTF-8 bytes), so this bounds memory
	// by the input without ever cutting a real text short.
	d := decoder{limit: 3*int64(len(raw)) + 64}
	p, _, err := d.text(e, 0)
	if err != nil {
		return nil, err
	}
	var lines []line
	switch {
	case p.html:
		lines = htmlLines(p.body)
	case p.flowed:
		lines = flowedLines(p.body, p.delsp)
	default:
		lines = plainLines(p.body)
	}
	m.Body = cleanText(lines)
	return m, nil
}

// Text composes the SMS text per the [smtp] text setting: "body",
// "subject" or "subject+body" (subject, newline, body). When the part asked
// for is empty the other is used, so a mail with any text is never refused
// as empty.
func (m *Mail) Text(mode string) string {
	switch {
	case m.Body == "":
		return m.Subject
	case m.Subject == "":
		return m.Body
	case mode == "subject":
		return m.Subject
	case mode == "subject+body":
		return m.Subject + "\n" + m.Body
	}
	return m.Body
}

func invalid(msg string, err error) *bridge.Error {
	e := bridge.Permanent(bridge.ReasonInvalid, "body", "%s", msg)
	e.Err = err
	return e
}

// crlfHeader returns the header block with CRLF line endings and without
// its terminating blank line, whatever line endings the client used.
func crlfHeader(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + 32)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		sb.Write(line)
		sb.WriteString("\r\n")
	}
	return sb.String()
}

// msgIDs returns the message ids in a Message-ID, In-Reply-To or References
// value without their angle brackets. Ids written without brackets (seen
// from some old clients) are taken as whitespace-separated words.
func msgIDs(v string) []string {
	if !strings.Contains(v, "<") {
		return strings.Fields(v)
	}
	var ids []string
	for {
		_, rest, ok := strings.Cut(v, "<")
		if !ok {
			return ids
		}
		id, rest, ok := strings.Cut(rest, ">")
		if !ok {
			return ids
		}
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
		v = rest
	}
}

// textPart is a part chosen to become the SMS, still in its own format.
type textPart struct {
	body   string
	html   bool
	flowed bool // text/plain; format=flowed (RFC 3676)
	delsp  bool
}

type decoder struct {
	limit int64 // most bytes of decoded text read from one part
}

// text returns the text of e: the part itself if it is text/plain or
// text/html, else the text found in its subparts. found is false when e
// holds no text.
func (d *decoder) text(e *message.Entity, depth int) (p textPart, found bool, err error) {
	typ, params := mediaType(e.Header)
	switch {
	// A mail of one part marked as an attachment still has only that
	// text to send, so only subparts are skipped.
	case depth > 0 && isAttachment(e.Header):
		return p, false, nil
	case typ == "text/plain" || typ == "text/html":
		body, err := d.read(e)
		if err != nil {
			return p, false, err
		}
		p = textPart{body: body, html: typ == "text/html"}
		if strings.EqualFold(params["format"], "flowed") {
			p.flowed, p.delsp = true, strings.EqualFold(params["delsp"], "yes")
		}
		return p, true, nil
	case strings.HasPrefix(typ, "multipart/") && depth < maxDepth:
		return d.multipart(e, typ == "multipart/alternative", depth)
	}
	return p, false, nil
}

// multipart returns the first text among e's parts, or, in a
// multipart/alternative, the first text/plain, else the first text/html.
func (d *decoder) multipart(e *message.Entity, alternative bool, depth int) (best textPart, found bool, err error) {
	mr := e.MultipartReader()
	if mr == nil {
		return best, false, nil
	}
	for {
		part, err := mr.NextPart()
		switch {
		case err == io.EOF:
			return best, found, nil
		case message.IsUnknownCharset(err) || message.IsUnknownEncoding(err):
			// part is readable as it is; the fallbacks apply.
		case err != nil && found:
			// A broken tail (often a missing closing boundary) after
			// the text was found costs nothing.
			return best, true, nil
		case err != nil:
			return best, false, invalid("the multipart structure is malformed", err)
		}
		p, ok, err := d.text(part, depth+1)
		if err != nil {
			return best, false, err
		}
		if !ok || (found && p.html) {
			continue
		}
		best, found = p, true
		if !alternative || !p.html {
			return best, true, nil
		}
	}
}

// read returns the decoded body of a text part as valid UTF-8.
func (d *decoder) read(e *message.Entity) (string, error) {
	b, err := io.ReadAll(io.LimitReader(e.Body, d.limit+1))
	// A multipart missing its closing boundary ends its last part with
	// ErrUnexpectedEOF; what was read is the whole text.
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", invalid("the text part cannot be decoded (broken base64 or quoted-printable)", err)
	}
	if int64(len(b)) > d.limit {
		return "", invalid("the text part is larger than the mail", nil)
	}
	b = bytes.TrimPrefix(b, []byte("\uFEFF")) // a UTF-8 byte order mark is no text
	return strings.ToValidUTF8(string(b), "\uFFFD"), nil
}

// mediaType returns the part's lower-case media type, text/plain when it
// has none (RFC 2045 §5.2), and its parameters.
func mediaType(h message.Header) (string, map[string]string) {
	typ, params, err := h.ContentType()
	if err != nil {
		// Bad parameters still leave a usable type.
		typ, _, _ = strings.Cut(h.Get("Content-Type"), ";")
		typ = strings.ToLower(strings.TrimSpace(typ))
	}
	if typ == "" {
		typ = "text/plain"
	}
	return typ, params
}

func isAttachment(h message.Header) bool {
	disp, _, err := h.ContentDisposition()
	if err != nil {
		disp, _, _ = strings.Cut(h.Get("Content-Disposition"), ";")
	}
	return strings.EqualFold(strings.TrimSpace(disp), "attachment")
}

// line is a line of text and whether it is quoted from an earlier
// message. Each format says what a quote is, so a plain line that happens
// to start with ">" (an unstuffed flowed line, an HTML "&gt;") is kept.
type line struct {
	text   string
	quoted bool
}

func splitLines(s string) []string {
	if strings.Contains(s, "\r") {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	return strings.Split(s, "\n")
}

// plainLines splits text/plain, where a quoted line starts with ">".
func plainLines(s string) []line {
	split := splitLines(s)
	lines := make([]line, len(split))
	for i, l := range split {
		lines[i] = line{text: l, quoted: strings.HasPrefix(l, ">")}
	}
	return lines
}

// flowedLines splits format=flowed text (RFC 3676 §4), joining soft line
// breaks: a line ending in a space continues on the next line of the same
// quote depth. Space-stuffing is undone.
func flowedLines(s string, delsp bool) []line {
	var lines []line
	var para strings.Builder // the paragraph being joined
	quoted, joining, prevDepth := false, false, 0
	for i, l := range splitLines(s) {
		depth := 0
		for depth < len(l) && l[depth] == '>' {
			depth++
		}
		content := strings.TrimPrefix(l[depth:], " ")
		// A change of quote depth ends a paragraph (§4.5).
		if i > 0 && !(joining && depth == prevDepth) {
			lines = append(lines, line{text: para.String(), quoted: quoted})
			para.Reset()
		}
		joining = strings.HasSuffix(content, " ") && content != "-- "
		if joining && delsp {
			content = content[:len(content)-1]
		}
		para.WriteString(content)
		quoted, prevDepth = depth > 0, depth
	}
	return append(lines, line{text: para.String(), quoted: quoted})
}

// cleanText normalises decoded text for SMS: no signature, no quoted
// reply, no trailing spaces, never more than one blank line in a row and
// none at either end, LF line endings. Nothing else is changed.
func cleanText(lines []line) string {
	size := 0
	for i := range lines {
		lines[i].text = strings.TrimRightFunc(lines[i].text, unicode.IsSpace)
		size += len(lines[i].text) + 1
	}
	for i, l := range lines {
		// "-- " is the signature separator (RFC 3676 §4.3); with its
		// space trimmed above, "--" also matches, as clients that strip
		// trailing spaces send it.
		if !l.quoted && (l.text == "--" || isOriginalMessage(lines, i)) {
			lines = lines[:i]
			break
		}
	}
	lines = dropQuotes(lines)

	var b strings.Builder
	b.Grow(size)
	blank := false
	for _, l := range lines {
		if l.text == "" {
			blank = b.Len() > 0
			continue
		}
		if blank {
			b.WriteByte('\n')
			blank = false
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l.text)
	}
	return b.String()
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

// isOriginalMessage reports whether lines[i] starts the message an
// Outlook-style reply quotes below itself: "-----Original Message-----",
// or a line of underscores directly followed by a "From:" line.
func isOriginalMessage(lines []line, i int) bool {
	l := strings.TrimSpace(lines[i].text)
	if strings.HasPrefix(l, "-----") && strings.HasSuffix(l, "-----") {
		title := strings.ToLower(strings.TrimSpace(strings.Trim(l, "-")))
		return slices.Contains(originalMessage, title)
	}
	if len(l) >= 10 && strings.Trim(l, "_") == "" && i+1 < len(lines) {
		next := strings.TrimSpace(lines[i+1].text)
		return strings.HasPrefix(next, "From:") || strings.HasPrefix(next, "מאת:") || strings.HasPrefix(next, "از:")
	}
	return false
}

// dropQuotes removes quoted lines and the attribution line that introduces
// a quoted block: the last non-blank line before it, if it ends in ":"
// ("On Mon, 1 Jan 2024, Bob <b@x> wrote:", "ב-1 בינו׳ 2024, Bob כתב/ה:"),
// and a line starting "On " just above it, which is the first half of a
// wrapped attribution. Only one attribution goes per non-quoted line, so
// "a:" above two quotes separated by a blank line stays.
func dropQuotes(lines []line) []line {
	out := lines[:0]
	last := -1 // index in out of the last non-blank line, -1 if none may introduce a quote
	inQuote := false
	for _, l := range lines {
		switch {
		case !l.quoted:
			if l.text != "" {
				last = len(out)
			}
			out = append(out, l)
			inQuote = false
		case !inQuote:
			inQuote = true
			if last < 0 || !strings.HasSuffix(out[last].text, ":") {
				break
			}
			// Mail clients wrap a long English attribution.
			if !strings.HasPrefix(out[last].text, "On ") && last > 0 && strings.HasPrefix(out[last-1].text, "On ") {
				last--
			}
			out, last = out[:last], -1
		}
	}
	return out
}

// htmlLines renders HTML as the lines of text a reader sees: no scripts,
// styles or head; block elements on lines of their own; entities decoded;
// whitespace collapsed as a browser does, except in <pre>. Text inside
// <blockquote> is quoted, as ">" lines are in plain text.
func htmlLines(src string) []line {
	z := html.NewTokenizer(strings.NewReader(src))
	var w htmlWriter
	hidden := 0 // depth inside elements whose content is not shown
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			// Only io.EOF: the tokenizer reads from memory.
			w.endLine()
			return w.lines
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
	lines []line
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
	w.lines = append(w.lines, line{text: w.cur.String(), quoted: w.quote > 0})
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

// ReplyAddress is where the phone's answers to this mail are mailed: the
// Reply-To or From address (the person), not the envelope sender, which
// for many senders is a bounce address. envelopeFrom is the fallback.
func (m *Mail) ReplyAddress(envelopeFrom string) string {
	for _, key := range []string{"Reply-To", "From"} {
		if list, err := m.Header.AddressList(key); err == nil && len(list) > 0 && list[0].Address != "" {
			return list[0].Address
		}
	}
	return envelopeFrom
}

// Refs are the ids of the mails this one answers: References, then
// In-Reply-To (the nearest ancestor last).
func (m *Mail) Refs() []string {
	refs := append([]string(nil), m.References...)
	if m.InReplyTo != "" && (len(refs) == 0 || refs[len(refs)-1] != m.InReplyTo) {
		refs = append(refs, m.InReplyTo)
	}
	return refs
}
