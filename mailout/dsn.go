package mailout

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
)

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
	// Return is the sender's RET (RFC 3461): with bridge.ReturnFull the
	// attachment is the original rebuilt from OriginalHeaders and
	// OriginalText as message/rfc822 (the bridge keeps no more of a
	// mail), and the explanation says so; otherwise the headers alone.
	Return       bridge.DSNReturn
	OriginalText string

	Recipients []FailedRecipient // at least one
}

// FailedRecipient is one recipient a Bounce reports.
type FailedRecipient struct {
	Address string // as the sender wrote it, e.g. "+972501234567@sms.example.com"
	ORCPT   string // "rfc822;alice@example.com" as given at RCPT, echoed as Original-Recipient; or ""
	// Status is the RFC 3463 code ("5.1.1"); when it is not a valid
	// permanent code it is derived from Reason (see StatusFor).
	Status      string
	Reason      bridge.Reason
	Diagnostic  string    // the provider's (or our) reason, free text
	LastAttempt time.Time // optional
}

// BuildBounce returns the complete delivery-status notification:
// multipart/report with a human explanation, the message/delivery-status
// part, and the original's header block (when given). Its errors are
// permanent *bridge.Error, as BuildReply's.
func BuildBounce(b Bounce) ([]byte, error) {
	if b.To == "" {
		return nil, invalid("to", "a bounce needs a recipient (never bounce a bounce)")
	}
	addrs := make([]string, len(b.Recipients))
	for i, r := range b.Recipients {
		addrs[i] = r.Address
	}
	from, to, id, mta, subject, err := reportHead("bounce", b.From, b.FromName, b.To, b.MessageID, b.ReportingMTA, b.Subject, b.Date, addrs)
	if err != nil {
		return nil, err
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
	if p, ok := bounceAttachment(b); ok {
		parts = append(parts, p)
	}
	data, err := build(h, "", parts)
	if err != nil {
		return nil, fmt.Errorf("mailout: building the bounce: %w", err)
	}
	return data, nil
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
	switch _, full := reconstructed(b.OriginalHeaders, b.OriginalText); {
	case b.Return == bridge.ReturnFull && full:
		s.WriteString("The message will not be retried. A copy is attached, rebuilt from its headers and its text\n" +
			"as the gateway kept them (it does not keep whole mails): attachments and formatting are not in it.\n")
	default:
		s.WriteString("The message will not be retried. Its headers are attached.\n")
	}
	return s.String()
}

// bounceAttachment is what a bounce attaches of the original: RET=FULL's
// reconstruction when it can be made, else the header block.
func bounceAttachment(b Bounce) (part, bool) {
	if b.Return == bridge.ReturnFull {
		if p, ok := reconstructed(b.OriginalHeaders, b.OriginalText); ok {
			return p, true
		}
	}
	return headersPart(b.OriginalHeaders)
}

// deliveryStatus is the body of the message/delivery-status part: one
// per-message block and one block per recipient (RFC 3464 §2). Each block
// is written as a header block, so values are folded and the blank line
// between blocks comes from the writer.
func deliveryStatus(b Bounce, mta string) (string, error) {
	blocks := make([]fields, len(b.Recipients))
	for i, r := range b.Recipients {
		rcpt := recipientHead(r.ORCPT, r.Address, "failed", status(r))
		if d := flatten(r.Diagnostic); d != "" {
			rcpt = append(rcpt, field{"Diagnostic-Code", "smtp; " + asciiText(d)})
		}
		if !r.LastAttempt.IsZero() {
			rcpt = append(rcpt, field{"Last-Attempt-Date", r.LastAttempt.Format(dateLayout)})
		}
		blocks[i] = rcpt
	}
	return statusBlocks(mta, b.OriginalEnvelopeID, b.ArrivalDate, blocks)
}

// statusBlocks writes a message/delivery-status body: the per-message
// block (Reporting-MTA, Original-Envelope-Id, Arrival-Date), then the
// recipients' blocks as given. Each block is written as a header block,
// so values are folded and the blank line between blocks comes from the
// writer.
func statusBlocks(mta, envelopeID string, arrival time.Time, recipients []fields) (string, error) {
	var buf bytes.Buffer
	msg := fields{{"Reporting-MTA", "dns; " + mta}}
	if envid := printable(envelopeID); envid != "" {
		msg = append(msg, field{"Original-Envelope-Id", envid})
	}
	if !arrival.IsZero() {
		msg = append(msg, field{"Arrival-Date", arrival.Format(dateLayout)})
	}
	if err := msg.write(&buf); err != nil {
		return "", err
	}
	for _, rcpt := range recipients {
		if err := rcpt.write(&buf); err != nil {
			return "", err
		}
	}
	return buf.String(), nil
}

// recipientHead starts a recipient's block with the fields every report
// has, in RFC 3464's order.
func recipientHead(orcpt, addr, action, status string) fields {
	var rcpt fields
	if o := originalRecipient(orcpt); o != "" {
		rcpt = append(rcpt, field{"Original-Recipient", o})
	}
	return append(rcpt,
		field{"Final-Recipient", addressType(addr)},
		field{"Action", action},
		field{"Status", status})
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

// reportHead checks and renders what every multipart/report we send
// (bounces and delivery notices) needs in its header: From, To, the
// Message-ID, the reporting MTA (default: the From domain) and the
// subject's tail (default: the recipients' addresses). kind names the
// report in errors.
func reportHead(kind, fromAddr, fromName, toAddr, messageID, reportingMTA, subj string, date time.Time, recipients []string) (from, to, id, mta, subject string, err error) {
	if fromName == "" {
		fromName = "Mail Delivery System"
	}
	if from, err = addressField("From", fromAddr, fromName); err != nil {
		return
	}
	if to, err = addressField("To", toAddr, ""); err != nil {
		return
	}
	var ok bool
	if id, ok = msgID(messageID); !ok {
		err = invalid("message_id", "Message-ID %q is not a valid msg-id", messageID)
		return
	}
	if date.IsZero() {
		err = invalid("date", "%s without a date", kind)
		return
	}
	if len(recipients) == 0 {
		err = invalid("recipients", "%s without recipients", kind)
		return
	}
	addrs := make([]string, len(recipients))
	for i, a := range recipients {
		if addrs[i] = flatten(a); addrs[i] == "" {
			err = invalid("recipients", "recipient %d without an address", i+1)
			return
		}
	}
	mta = reportingMTA
	if mta == "" {
		mta = fromAddr[strings.LastIndexByte(fromAddr, '@')+1:]
	}
	if !hostName(mta) {
		err = invalid("reporting_mta", "reporting MTA %q is not a host name", mta)
		return
	}
	if subject = flatten(subj); subject == "" {
		subject = strings.Join(addrs, ", ")
	}
	return
}
