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
	References []string // without <>; at most maxRefs, the nearest ancestors
	// Header is the parsed header, for the X-SMS-* headers.
	Header mail.Header
	// BounceHeaders are the few fields a bounce shows of this mail (see
	// bounceFields), one unfolded line each ending in CRLF, capped: what
	// the store keeps of the header, instead of the whole block.
	BounceHeaders string
}

// Limits bound what one mail may make ReadMail hold in memory. The zero
// value of a field is its default.
type Limits struct {
	// MaxHeaderFields and MaxHeaderBytes bound the header block of the
	// mail and of each MIME part: go-message parses a header into
	// structures tens of times its size, so a block of tiny fields is
	// refused before it is parsed (Postfix's header_size_limit is 100 KiB).
	MaxHeaderFields int // default 1000
	MaxHeaderBytes  int // default 64 KiB
}

// Default limits, the smtp.max_header_fields and smtp.max_header_bytes
// defaults.
const (
	DefaultMaxHeaderFields = 1000
	DefaultMaxHeaderBytes  = 64 << 10
)

func (l Limits) withDefaults() Limits {
	if l.MaxHeaderFields <= 0 {
		l.MaxHeaderFields = DefaultMaxHeaderFields
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

const (
	// maxDepth bounds multipart nesting; real mail nests three or four
	// deep, and parts deeper than this are ignored rather than recursed into.
	maxDepth = 16
	// maxParts bounds the MIME parts looked at for the text. Each costs a
	// parsed header; real mail has the text among its first few.
	maxParts = 1000
	// maxRefs bounds the References kept: each may cost a store lookup
	// (bridge.ReplySender), and the nearest ancestors are the ones that
	// matter (mailout keeps as many in the mail it builds).
	maxRefs = 20
)

// ReadMail reads a whole mail from r and extracts the text to send.
//
// The text is the first text/plain or text/html part, preferring
// text/plain within multipart/alternative and skipping attachments.
// An unknown charset or transfer encoding does not fail the mail: the bytes
// are read as UTF-8 with invalid sequences replaced. A mail whose header or
// MIME structure cannot be parsed is a permanent bridge.ReasonInvalid error;
// a header block (the mail's or a part's) over lim is a permanent
// bridge.ReasonTooLong error; an error reading r is returned wrapped as it
// is (go-smtp's size-limit error included).
//
// The mail is parsed as it streams in and never held whole: besides a
// bounded header, ReadMail keeps only the text part it chose (decoded,
// at most three times its size) and the text made of it, so what a mail
// costs in memory is a small multiple of its size whatever its shape.
// The rest of r is read and discarded, so a transport error (or the size
// limit) after the text is still reported.
func ReadMail(r io.Reader, lim Limits) (*Mail, error) {
	lim = lim.withDefaults()
	src := &countReader{r: r}
	m, err := readMail(src, lim)
	if err == nil {
		_, _ = io.Copy(io.Discard, src)
	}
	if src.err != nil {
		// The transport failed: that, not what the parser made of the
		// truncated input, is the answer.
		return nil, fmt.Errorf("reading mail: %w", src.err)
	}
	return m, err
}

func readMail(src *countReader, lim Limits) (*Mail, error) {
	g := newHeaderGuard(src, lim, nil)
	br := bufio.NewReaderSize(g, 4096)
	h, err := textproto.ReadHeader(br)
	if g.err != nil {
		return nil, g.err
	}
	if err != nil {
		return nil, invalid("the mail header is malformed", err)
	}

	// New fails only for an unknown charset or transfer encoding, and
	// then returns the body undecoded: read as UTF-8, it is the best guess.
	e, _ := message.New(message.Header{Header: h}, br)
	m := &Mail{
		Header:        mail.Header{Header: e.Header},
		BounceHeaders: bounceHeaders(h),
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
	if len(m.References) > maxRefs {
		m.References = m.References[len(m.References)-maxRefs:]
	}

	d := decoder{src: src, lim: lim}
	p, _, err := d.text(e, 0)
	if err != nil {
		return nil, err
	}
	var c cleaner
	switch {
	case p.html:
		htmlLines(p.body, c.add)
	case p.flowed:
		flowedLines(p.body, p.delsp, c.add)
	default:
		plainLines(p.body, c.add)
	}
	m.Body = c.text()
	return m, nil
}

// countReader counts the bytes read from r and remembers its first error
// other than io.EOF.
type countReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// bounceFields are the header fields a bounce shows of the mail it
// reports (RFC 3464 text/rfc822-headers): enough for its sender to know
// which mail it was, and all the store keeps of the header.
var bounceFields = []string{"From", "To", "Cc", "Subject", "Date", "Message-ID"}

// Caps on BounceHeaders: RFC 5322's line limit per field, and a total
// that six such fields stay under.
const (
	maxBounceField   = 998
	maxBounceHeaders = 8 << 10
)

// bounceHeaders returns the first of each bounceFields field of h, each
// unfolded onto one line of at most maxBounceField bytes.
func bounceHeaders(h textproto.Header) string {
	var b strings.Builder
	for _, k := range bounceFields {
		if !h.Has(k) {
			continue
		}
		line := k + ": " + strings.Join(strings.Fields(h.Get(k)), " ")
		if len(line) > maxBounceField {
			line = strings.ToValidUTF8(line[:maxBounceField], "")
		}
		if b.Len()+len(line)+2 > maxBounceHeaders {
			break
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return b.String()
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

// msgIDs returns the message ids in a Message-ID, In-Reply-To or References
// value without their angle brackets. Ids written without brackets (seen
// from some old clients) are taken as whitespace-separated words.
func msgIDs(v string) []string {
	if !strings.Contains(v, "<") {
		return slices.DeleteFunc(strings.Fields(v), tooLongID)
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
		if id = strings.TrimSpace(id); id != "" && !tooLongID(id) {
			ids = append(ids, id)
		}
		v = rest
	}
}

// maxMsgID bounds a message id kept (and stored, for threading): real ids
// are well under 100 bytes, and one that does not fit on a header line
// (RFC 5322: 998) is not an id anyone can thread under.
const maxMsgID = 990

func tooLongID(id string) bool { return len(id) > maxMsgID }

// textPart is a part chosen to become the SMS, still in its own format.
type textPart struct {
	body   string
	html   bool
	flowed bool // text/plain; format=flowed (RFC 3676)
	delsp  bool
}

type decoder struct {
	src   *countReader // the mail as read so far
	lim   Limits
	parts int // MIME parts looked at
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
	_, params := mediaType(e.Header)
	boundary := params["boundary"] // "": NextPart fails, as it should
	// Parts are read through a guard that bounds each part's header
	// before go-message parses it (message.Entity.MultipartReader would
	// parse any size).
	g := newHeaderGuard(e.Body, d.lim, []byte("--"+boundary))
	mr := textproto.NewMultipartReader(g, boundary)
	for {
		tp, err := mr.NextPart()
		if g.err != nil {
			return best, false, g.err
		}
		var part *message.Entity
		if err == nil {
			d.parts++
			if d.parts > maxParts {
				return best, false, bridge.Permanent(bridge.ReasonTooLong, "body", "the mail has more than %d MIME parts", maxParts)
			}
			part, err = message.New(message.Header{Header: tp.Header}, tp)
		}
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

var errTextTooLarge = errors.New("decoded text larger than the mail")

// read returns the decoded body of a text part as valid UTF-8.
func (d *decoder) read(e *message.Entity) (string, error) {
	b, err := io.ReadAll(&textLimit{r: e.Body, src: d.src})
	switch {
	case errors.Is(err, errTextTooLarge):
		return "", invalid("the text part is larger than the mail", nil)
	case errors.As(err, new(*bridge.Error)):
		// A header guard refused what follows the text (see headerGuard).
		return "", err
	// A multipart missing its closing boundary ends its last part with
	// ErrUnexpectedEOF; what was read is the whole text.
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return "", invalid("the text part cannot be decoded (broken base64 or quoted-printable)", err)
	}
	b = bytes.TrimPrefix(b, []byte("\uFEFF")) // a UTF-8 byte order mark is no text
	return strings.ToValidUTF8(string(b), "\uFFFD"), nil
}

// textLimit fails a text part's decoded body once it is more than three
// times the mail read so far. Decoding grows text at most threefold (a
// single-byte charset's character becomes up to three UTF-8 bytes), so
// this never cuts a real text short, and bounds memory by the input.
type textLimit struct {
	r   io.Reader
	n   int64
	src *countReader
}

func (t *textLimit) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += int64(n)
	if t.n > 3*t.src.n+64 {
		return n, errTextTooLarge
	}
	return n, err
}

// headerGuard passes a mail or a multipart body through unchanged, and
// fails it with a permanent bridge.ReasonTooLong error as soon as a header
// block in it (the mail's own at the start; with a boundary, each part's,
// after a delimiter line) has more fields or bytes than lim allows, before
// the parser that reads the same bytes builds it. It only counts: lines
// starting a field and bytes, until the blank line that ends the header.
type headerGuard struct {
	r     io.Reader
	lim   Limits
	delim []byte // "--" + boundary; nil for the mail's own header
	what  string // whose header, for the error

	inHeader bool
	col      int  // bytes of the current line seen so far
	blank    bool // the current line is empty so far (CR aside)
	fields   int  // in the current header block
	bytes    int  // in the current header block
	crs      int  // CRs starting the current line, not yet in bytes
	match    int  // delimiter bytes matched at the start of the line; -1: no match
	ws       bool // only whitespace after the delimiter so far
	err      *bridge.Error
}

// newHeaderGuard guards the mail's header (delim nil) or the part
// headers of a multipart body whose delimiter is delim.
func newHeaderGuard(r io.Reader, lim Limits, delim []byte) *headerGuard {
	if delim == nil {
		return &headerGuard{r: r, lim: lim, what: "the mail's header", inHeader: true, ws: true}
	}
	return &headerGuard{r: r, lim: lim, delim: delim, what: "a MIME part's header", ws: true}
}

func (g *headerGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if !g.inHeader && g.delim == nil {
		return n, err // past the mail's header: nothing more to watch
	}
	for _, c := range p[:n] {
		if g.inHeader {
			g.header(c)
			if g.err != nil {
				return n, g.err
			}
		} else if g.delim != nil {
			g.body(c)
		}
	}
	return n, err
}

func (g *headerGuard) header(c byte) {
	if g.col == 0 {
		g.blank = true
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			g.fields++
		}
	}
	if c == '\n' && g.blank { // the blank line ending the header
		g.inHeader, g.fields, g.bytes, g.crs = false, 0, 0, 0
		g.col, g.match, g.ws = 0, 0, true
		return
	}
	g.col++
	if g.blank && c == '\r' {
		// Counted once the line proves not to be the blank one
		// ending the header, whose bytes are not the header's (a
		// "blank" line of many CRs costs go-message its size, once).
		g.crs++
	} else {
		g.bytes += 1 + g.crs
		g.blank, g.crs = false, 0
	}
	if c == '\n' {
		g.col, g.match, g.ws = 0, 0, true
	}
	switch {
	case g.fields > g.lim.MaxHeaderFields:
		g.err = bridge.Permanent(bridge.ReasonTooLong, "header", "%s has more than %d fields (smtp.max_header_fields)", g.what, g.lim.MaxHeaderFields)
	case g.bytes > g.lim.MaxHeaderBytes:
		g.err = bridge.Permanent(bridge.ReasonTooLong, "header", "%s is larger than %d bytes (smtp.max_header_bytes)", g.what, g.lim.MaxHeaderBytes)
	}
}

// body watches for a delimiter line ("--boundary", then only
// whitespace): the part header follows it. The close delimiter
// ("--boundary--") is not one.
func (g *headerGuard) body(c byte) {
	if c == '\n' {
		if g.match == len(g.delim) && g.ws {
			g.inHeader = true
		}
		g.col, g.match, g.ws = 0, 0, true
		return
	}
	g.col++
	switch {
	case g.match < 0:
	case g.match < len(g.delim):
		if c == g.delim[g.match] {
			g.match++
		} else {
			g.match = -1
		}
	case c != ' ' && c != '\t' && c != '\r':
		g.ws = false
	}
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

// ReplyAddress is where the phone's answers to this mail are mailed: the
// Reply-To or From address (the person), not the envelope sender, which
// for many senders is a bounce address, but only one that allowed
// accepts (the account's own addresses and reply_to list): a header is
// whatever the writer of the mail typed, and answers to an SMS the
// account sent are the account's to receive. Otherwise the envelope
// sender, if allowed; otherwise "" (the catch-all gets the answers).
func (m *Mail) ReplyAddress(envelopeFrom string, allowed func(addr string) bool) string {
	for _, key := range []string{"Reply-To", "From"} {
		list, err := m.Header.AddressList(key)
		if err != nil || len(list) == 0 || list[0].Address == "" {
			continue
		}
		if allowed(list[0].Address) {
			return list[0].Address
		}
	}
	if envelopeFrom != "" && allowed(envelopeFrom) {
		return envelopeFrom
	}
	return ""
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
