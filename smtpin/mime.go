package smtpin

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // every charset x/text knows, for bodies and RFC 2047 words
	"github.com/emersion/go-message/textproto"

	"github.com/smsbridge/smsbridge/bridge"
)

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
)

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
