package smtpin

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

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

// maxRefs bounds the References kept: each may cost a store lookup
// (bridge.ReplySender), and the nearest ancestors are the ones that
// matter (mailout keeps as many in the mail it builds).
const maxRefs = 20

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
