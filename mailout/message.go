// Package mailout delivers the bridge's own mail to a smarthost: replies
// from phones, mailed to the person the phone answers, and RFC 3464
// delivery-status notifications for SMS that failed for good.
//
// Messages are built with go-message, which refuses a CR or LF in a header
// value. Every input is validated (addresses, message ids) or flattened
// (free text) before it gets there, so no input, however hostile, can add
// a header field or break the MIME structure.
package mailout

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/smsbridge/smsbridge/bridge"
)

// Field is one extra header field.
type Field struct {
	Key   string // must start with "X-"
	Value string // free text; flattened to one line
}

// Reply is an SMS from a phone, to be mailed to the person it answers.
type Reply struct {
	From     string // addr-spec, e.g. "+972501234567@sms.example.com"
	FromName string // optional display name
	To       string // addr-spec of the person
	Subject  string // used as given (the caller adds "Re: ")
	Text     string // the SMS, UTF-8; line breaks become CRLF
	// MessageID is this mail's id, with or without angle brackets
	// ("x@sms.example.com" or "<x@sms.example.com>"). It must be a valid
	// msg-id: answers to the reply find their conversation through it.
	MessageID string
	// InReplyTo is the Message-ID of the person's mail the SMS answers
	// ("" if none), References the ids of that mail's thread, oldest first;
	// both with or without brackets. An id that is not a valid msg-id is
	// left out: the reply then arrives unthreaded rather than not at all.
	InReplyTo  string
	References []string
	Date       time.Time
	// Extra are informational fields such as X-SMS-From, in order.
	Extra []Field
}

// Bounce is a delivery-status notification (RFC 3464) telling the sender
// of a mail that some of its recipients will never get it as SMS.
type Bounce struct {
	From     string // addr-spec, e.g. "MAILER-DAEMON@sms.example.com"
	FromName string // default "Mail Delivery System"
	To       string // the original mail's envelope sender; never "" (no bounce to a bounce)
	// ReportingMTA names this host in Reporting-MTA (default: From's domain).
	ReportingMTA string
	MessageID    string // this mail's id, with or without brackets
	Date         time.Time

	// About the original mail, all optional.
	Subject            string    // its subject, shown in ours
	OriginalMessageID  string    // its Message-ID, for In-Reply-To and References
	OriginalEnvelopeID string    // the ENVID its sender gave at MAIL FROM
	ArrivalDate        time.Time // when we accepted it
	// OriginalHeaders is its header block, attached as text/rfc822-headers
	// after cleaning: lines that are neither a field nor a continuation
	// are dropped, and it ends at its first empty line.
	OriginalHeaders string

	Recipients []FailedRecipient // at least one
}

// FailedRecipient is one recipient a Bounce reports.
type FailedRecipient struct {
	Address string // as the sender wrote it, e.g. "+972501234567@sms.example.com"
	// Status is the RFC 3463 code ("5.1.1"); when it is not a valid
	// permanent code it is derived from Reason (see StatusFor).
	Status      string
	Reason      bridge.Reason
	Diagnostic  string    // the provider's (or our) reason, free text
	LastAttempt time.Time // optional
}

// dateLayout is RFC 5322's date-time, as go-message writes it.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// maxReferences bounds References: RFC 5322 §3.6.4 lets a long thread be
// trimmed, and clients need only its first and last ids to thread.
const maxReferences = 20

// BuildReply returns the complete reply mail: text/plain in UTF-8, threaded
// under InReplyTo. It fails, with a permanent *bridge.Error, only for an
// invalid address, message id, date or extra field name, never because of
// the text.
func BuildReply(r Reply) ([]byte, error) {
	from, err := addressField("From", r.From, r.FromName)
	if err != nil {
		return nil, err
	}
	to, err := addressField("To", r.To, "")
	if err != nil {
		return nil, err
	}
	id, ok := msgID(r.MessageID)
	if !ok {
		return nil, invalid("message_id", "Message-ID %q is not a valid msg-id", r.MessageID)
	}
	if r.Date.IsZero() {
		return nil, invalid("date", "reply without a date")
	}
	h := fields{
		{"MIME-Version", "1.0"},
		{"From", from},
		{"To", to},
		{"Subject", encodeText(r.Subject)},
		{"Date", r.Date.Format(dateLayout)},
		{"Message-ID", "<" + id + ">"},
	}
	h = h.thread(r.InReplyTo, r.References)
	for _, f := range r.Extra {
		if !extraKey(f.Key) {
			return nil, invalid("extra", "extra header field %q: the name must be X- followed by letters, digits and dashes", f.Key)
		}
		h = append(h, field{f.Key, encodeText(f.Value)})
	}
	text := canonicalText(r.Text)
	enc := bodyEncoding(text)
	h = append(h,
		field{"Content-Type", "text/plain; charset=utf-8"},
		field{"Content-Transfer-Encoding", enc})
	data, err := build(h, text, nil)
	if err != nil {
		return nil, fmt.Errorf("mailout: building the reply: %w", err)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		// End the mail with a line break without changing the text:
		// base64 ignores it, quoted-printable needs it soft.
		if enc == "quoted-printable" {
			data = append(data, '=')
		}
		data = append(data, "\r\n"...)
	}
	return data, nil
}

// BuildBounce returns the complete delivery-status notification:
// multipart/report with a human explanation, the message/delivery-status
// part, and the original's header block (when given). Its errors are
// permanent *bridge.Error, as BuildReply's.
func BuildBounce(b Bounce) ([]byte, error) {
	if b.FromName == "" {
		b.FromName = "Mail Delivery System"
	}
	from, err := addressField("From", b.From, b.FromName)
	if err != nil {
		return nil, err
	}
	if b.To == "" {
		return nil, invalid("to", "a bounce needs a recipient (never bounce a bounce)")
	}
	to, err := addressField("To", b.To, "")
	if err != nil {
		return nil, err
	}
	id, ok := msgID(b.MessageID)
	if !ok {
		return nil, invalid("message_id", "Message-ID %q is not a valid msg-id", b.MessageID)
	}
	if b.Date.IsZero() {
		return nil, invalid("date", "bounce without a date")
	}
	if len(b.Recipients) == 0 {
		return nil, invalid("recipients", "bounce without failed recipients")
	}
	for i, r := range b.Recipients {
		if flatten(r.Address) == "" {
			return nil, invalid("recipients", "failed recipient %d without an address", i+1)
		}
	}
	mta := b.ReportingMTA
	if mta == "" {
		mta = b.From[strings.LastIndexByte(b.From, '@')+1:]
	}
	if !hostName(mta) {
		return nil, invalid("reporting_mta", "reporting MTA %q is not a host name", mta)
	}

	subject := flatten(b.Subject)
	if subject == "" {
		addrs := make([]string, len(b.Recipients))
		for i, r := range b.Recipients {
			addrs[i] = flatten(r.Address)
		}
		subject = strings.Join(addrs, ", ")
	}
	h := fields{
		{"MIME-Version", "1.0"},
		{"From", from},
		{"To", to},
		{"Subject", encodeText("Undelivered SMS: " + subject)},
		{"Date", b.Date.Format(dateLayout)},
		{"Message-ID", "<" + id + ">"},
	}
	h = h.thread(b.OriginalMessageID, nil)
	h = append(h,
		// RFC 3834: it is automatic, so nothing answers it automatically.
		field{"Auto-Submitted", "auto-replied"},
		// A boundary of our own, set here, keeps go-message from moving
		// Content-Type to the top when it adds one.
		field{"Content-Type", "multipart/report; report-type=delivery-status; boundary=" + rand.Text()})

	human := canonicalText(explanation(b, mta))
	status, err := deliveryStatus(b, mta)
	if err != nil {
		return nil, fmt.Errorf("mailout: building the bounce: %w", err)
	}
	parts := []part{
		{fields{{"Content-Type", "text/plain; charset=utf-8"}, {"Content-Transfer-Encoding", bodyEncoding(human)}}, human},
		// Its fields are US-ASCII by construction (see deliveryStatus).
		{fields{{"Content-Type", "message/delivery-status"}}, status},
	}
	if orig := cleanHeaders(b.OriginalHeaders); orig != "" {
		ph := fields{{"Content-Type", "text/rfc822-headers"}, {"Content-Transfer-Encoding", "7bit"}}
		if !isASCII(orig) {
			// Headers in UTF-8 (RFC 6532) travel quoted-printable, so the
			// bounce stays 7-bit for smarthosts without 8BITMIME.
			ph = fields{{"Content-Type", "text/rfc822-headers; charset=utf-8"}, {"Content-Transfer-Encoding", "quoted-printable"}}
		}
		parts = append(parts, part{ph, orig})
	}
	data, err := build(h, "", parts)
	if err != nil {
		return nil, fmt.Errorf("mailout: building the bounce: %w", err)
	}
	return data, nil
}

// part is one MIME entity: its fields and its body before transfer
// encoding.
type part struct {
	h    fields
	body string
}

// build writes a mail with the fields top and either body or, when top is
// multipart, parts.
func build(top fields, body string, parts []part) ([]byte, error) {
	h, err := top.header()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		if _, err := io.WriteString(w, body); err != nil {
			return nil, err
		}
	}
	for _, p := range parts {
		ph, err := p.h.header()
		if err != nil {
			return nil, err
		}
		pw, err := w.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(pw, p.body); err != nil {
			return nil, err
		}
		if err := pw.Close(); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// explanation is the bounce's human-readable part.
func explanation(b Bounce, mta string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "This is the SMS gateway at %s.\n\n", mta)
	if len(b.Recipients) == 1 {
		s.WriteString("Your message could not be delivered as SMS to this recipient:\n\n")
	} else {
		s.WriteString("Your message could not be delivered as SMS to these recipients:\n\n")
	}
	for _, r := range b.Recipients {
		why := flatten(r.Diagnostic)
		if why == "" {
			why = "status " + status(r)
		}
		fmt.Fprintf(&s, "  %s\n    %s\n\n", flatten(r.Address), why)
	}
	s.WriteString("The message will not be retried. Its headers are attached.\n")
	return s.String()
}

// deliveryStatus is the body of the message/delivery-status part: one
// per-message block and one block per recipient (RFC 3464 §2). Each block
// is written as a header block, so values are folded and the blank line
// between blocks comes from the writer.
func deliveryStatus(b Bounce, mta string) (string, error) {
	var buf bytes.Buffer
	msg := fields{{"Reporting-MTA", "dns; " + mta}}
	if envid := printable(b.OriginalEnvelopeID); envid != "" {
		msg = append(msg, field{"Original-Envelope-Id", envid})
	}
	if !b.ArrivalDate.IsZero() {
		msg = append(msg, field{"Arrival-Date", b.ArrivalDate.Format(dateLayout)})
	}
	if err := msg.write(&buf); err != nil {
		return "", err
	}
	for _, r := range b.Recipients {
		rcpt := fields{
			{"Final-Recipient", addressType(r.Address)},
			{"Action", "failed"},
			{"Status", status(r)},
		}
		if d := flatten(r.Diagnostic); d != "" {
			rcpt = append(rcpt, field{"Diagnostic-Code", "smtp; " + asciiText(d)})
		}
		if !r.LastAttempt.IsZero() {
			rcpt = append(rcpt, field{"Last-Attempt-Date", r.LastAttempt.Format(dateLayout)})
		}
		if err := rcpt.write(&buf); err != nil {
			return "", err
		}
	}
	return buf.String(), nil
}

// addressType is a Final-Recipient value: "rfc822; addr" for an ASCII
// address, "utf-8; addr" with RFC 6533 escapes for any other.
func addressType(addr string) string {
	addr = flatten(addr)
	if isASCII(addr) {
		return "rfc822; " + addr
	}
	return "utf-8; " + asciiText(addr)
}

// status is r's RFC 3463 status code: the one given if it is a valid
// permanent one, else the one its reason maps to.
func status(r FailedRecipient) string {
	s := strings.TrimSpace(r.Status)
	if validStatus(s) && s[0] == '5' {
		return s
	}
	return StatusFor(r.Reason)
}

// StatusFor maps a failure's reason to the RFC 3463 status code a bounce
// reports for it.
func StatusFor(reason bridge.Reason) string {
	switch reason {
	case bridge.ReasonBadDomain:
		return "5.1.2" // bad destination system address
	case bridge.ReasonBadNumber:
		return "5.1.1" // bad destination mailbox address
	case bridge.ReasonNoRoute:
		return "5.4.4" // unable to route
	case bridge.ReasonUnknownAccount, bridge.ReasonSenderNotAllowed:
		return "5.7.1" // delivery not authorized
	case bridge.ReasonTooLong:
		return "5.3.4" // message too big for system
	case bridge.ReasonTooManyRecipients:
		return "5.5.3" // too many recipients
	case bridge.ReasonEmpty, bridge.ReasonTemplateUnknown, bridge.ReasonInvalid:
		return "5.6.0" // other media error
	case bridge.ReasonProviderAuth:
		return "5.3.0" // other mail system problem: ours
	case bridge.ReasonProviderDown:
		return "5.4.1" // no answer from host
	case bridge.ReasonExpired:
		return "5.4.7" // delivery time expired
	}
	return "5.0.0"
}

// validStatus reports whether s is class.subject.detail (RFC 3463 §2).
func validStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || strings.IndexByte("245", parts[0][0]) < 0 {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// invalid is the error for input a mail cannot be built from: permanent,
// since building it again gives the same result.
func invalid(field, format string, args ...any) error {
	return bridge.Permanent(bridge.ReasonInvalid, field, "mailout: "+format, args...)
}

// field is one header field, its value already encoded for the wire.
type field struct{ key, value string }

// fields are header fields in the order they are to be written.
type fields []field

// thread adds In-Reply-To and References for a mail answering parent in
// the thread refs. Invalid ids are left out.
func (fs fields) thread(parent string, refs []string) fields {
	var ids []string
	for _, r := range refs {
		if id, ok := msgID(r); ok {
			ids = append(ids, id)
		}
	}
	if parent, ok := msgID(parent); ok {
		fs = append(fs, field{"In-Reply-To", "<" + parent + ">"})
		// The parent ends the thread, once.
		ids = append(slices.DeleteFunc(ids, func(id string) bool { return id == parent }), parent)
	}
	if len(ids) > maxReferences {
		// Keep the thread's root and its nearest ancestors.
		ids = append(ids[:1], ids[len(ids)-maxReferences+1:]...)
	}
	if len(ids) > 0 {
		fs = append(fs, field{"References", "<" + strings.Join(ids, "> <") + ">"})
	}
	return fs
}

// header converts fs to a go-message header, keeping the names as
// spelled here. go-message would write "Message-Id" and "Reporting-Mta":
// legal (names are case-insensitive) but not what the RFCs and mailers
// write, and some bounce parsers match names exactly. It writes the field
// added last first, so they are added bottom-up.
func (fs fields) header() (message.Header, error) {
	var h message.Header
	for i := len(fs) - 1; i >= 0; i-- {
		f := fs[i]
		// go-message folds the field and refuses CR or LF in it.
		var one textproto.Header
		one.Add(f.key, f.value)
		var buf bytes.Buffer
		if err := textproto.WriteHeader(&buf, one); err != nil {
			return message.Header{}, err
		}
		raw := bytes.TrimSuffix(buf.Bytes(), []byte("\r\n"))
		if len(raw) > len(f.key) && bytes.EqualFold(raw[:len(f.key)], []byte(f.key)) {
			copy(raw, f.key)
		}
		h.AddRaw(raw)
	}
	return h, nil
}

// write writes fs as one header block, ending in an empty line.
func (fs fields) write(buf *bytes.Buffer) error {
	h, err := fs.header()
	if err != nil {
		return err
	}
	return textproto.WriteHeader(buf, h.Header)
}

// addressField validates addr as a bare addr-spec and formats it with an
// optional display name (RFC 2047-encoded when not ASCII).
func addressField(key, addr, name string) (string, error) {
	if addr == "" || strings.ContainsFunc(addr, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", invalid(strings.ToLower(key), "%s address %q is not valid", key, addr)
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || a.Name != "" {
		return "", invalid(strings.ToLower(key), "%s address %q is not a bare address", key, addr)
	}
	return (&mail.Address{Name: flatten(name), Address: addr}).String(), nil
}

// msgID returns id without brackets if it is a valid ASCII msg-id
// (RFC 5322 §3.6.4, as go-message parses it back).
func msgID(id string) (string, bool) {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if id == "" || len(id) > 250 || !isASCII(id) || strings.ContainsAny(id, " \t\r\n<>") {
		return "", false
	}
	var h gomail.Header
	h.Set("Message-Id", "<"+id+">")
	parsed, err := h.MessageID()
	return id, err == nil && parsed == id
}

// extraKey reports whether k is an X- field name of letters, digits and
// dashes.
func extraKey(k string) bool {
	if len(k) < 3 || len(k) > 76 || !strings.EqualFold(k[:2], "x-") {
		return false
	}
	for _, c := range k {
		if !(c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// hostName reports whether s looks like a DNS name or address literal we
// may write after "dns;".
func hostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '.' || c == ':' || c == '[' || c == ']' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// maxText bounds a flattened text: a subject, a name or a diagnostic
// longer than this is no use to a reader, and go-message takes time
// quadratic in a field's length to fold it.
const maxText = 1000

// flatten makes free text one header-safe line: invalid UTF-8 replaced,
// every run of control characters (CR and LF among them) and line or
// paragraph separators turned into one space, the ends trimmed, and cut
// to maxText bytes with an ellipsis.
func flatten(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range s {
		if b.Len() >= maxText {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// encodeText flattens s and encodes it as RFC 2047 words if it is not
// ASCII.
func encodeText(s string) string {
	return mime.QEncoding.Encode("utf-8", flatten(s))
}

// asciiText writes the non-ASCII characters of s as RFC 6533 escapes
// (\x{HHHH}), for fields that must be US-ASCII.
func asciiText(s string) string {
	if isASCII(s) && !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r >= utf8.RuneSelf || r == '\\' {
			fmt.Fprintf(&b, `\x{%X}`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// printable keeps the printable ASCII of s (an ENVID is xtext-decoded
// printable ASCII, RFC 3461 §4.4).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r > ' ' && r < 0x7f {
			return r
		}
		return -1
	}, s)
}

// canonicalText is s as the body of a text/plain part: valid UTF-8 with
// CRLF line breaks (RFC 2046 §4.1.1).
func canonicalText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// bodyEncoding chooses the transfer encoding of a text body: ASCII reads
// best quoted-printable (almost unchanged); anything else is a third
// bigger in base64 instead of three times bigger in quoted-printable.
func bodyEncoding(text string) string {
	if isASCII(text) {
		return "quoted-printable"
	}
	return "base64"
}

// cleanHeaders turns a header block given as text into one that cannot
// break the part it goes in: valid UTF-8, CRLF line breaks, only field
// lines (a name of letters, digits, '-', '_' or '.' and a colon) and their
// continuations, no empty line, at most 900 bytes a line (under the 998
// at which go-message's 7bit writer would break a line, starting the rest
// with any character) and 64 KiB in all. A line that starts with a letter
// or a space cannot be a MIME boundary ("--...").
func cleanHeaders(s string) string {
	const maxLine, maxTotal = 900, 64 << 10
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var b strings.Builder
	inField, started := false, false
	for line := range strings.SplitSeq(s, "\n") {
		if line == "" && started {
			break // the end of the header block
		}
		started = started || line != ""
		line = strings.Map(func(r rune) rune {
			if r == '\t' || !unicode.IsControl(r) {
				return r
			}
			return -1
		}, line)
		switch {
		case line == "":
			continue
		case line[0] == ' ' || line[0] == '\t':
			if !inField || strings.TrimSpace(line) == "" {
				continue
			}
		case fieldLine(line):
			inField = true
		default:
			inField = false
			continue
		}
		if len(line) > maxLine {
			line = strings.ToValidUTF8(line[:maxLine], "")
		}
		if b.Len()+len(line)+2 > maxTotal {
			break
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return b.String()
}

// fieldLine reports whether line starts a header field: a name of
// letters, digits, '-', '_' or '.', beginning with a letter or digit,
// then a colon.
func fieldLine(line string) bool {
	name, _, ok := strings.Cut(line, ":")
	if !ok || name == "" {
		return false
	}
	for i, c := range name {
		alnum := '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !alnum && (i == 0 || c != '-' && c != '_' && c != '.') {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
