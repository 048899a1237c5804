package mailout

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Notice is a delivery-status notification (RFC 3464) that is not a
// bounce: the carrier reported the SMS delivered, a provider that reports
// nothing more took it ("relayed"), or it is still waiting after
// queue.delay_warning ("delayed"). The sender asked for it with NOTIFY
// (RFC 3461) or through its account's default.
type Notice struct {
	Action       bridge.Action
	From         string // addr-spec, e.g. "MAILER-DAEMON@sms.example.com"
	FromName     string // default "Mail Delivery System"
	To           string // the original mail's envelope sender
	ReportingMTA string // default: From's domain
	MessageID    string
	Date         time.Time

	Subject            string
	OriginalMessageID  string // threads the notice under the original (In-Reply-To, References)
	OriginalEnvelopeID string // the ENVID given at MAIL FROM, echoed; "" if none
	ArrivalDate        time.Time
	OriginalHeaders    string // attached as text/rfc822-headers (RET applies to failures only, RFC 3461 §4.3)

	Recipients []NoticeRecipient // at least one
}

// NoticeRecipient is one recipient a Notice reports.
type NoticeRecipient struct {
	Address    string // "+972501234567@sms.example.com"
	ORCPT      string // "rfc822;alice@example.com" as given at RCPT, or ""
	Provider   string
	ProviderID string // the provider's message id
	Detail     string // the provider's status word (delivered) or the last error (delayed)
	At         time.Time
	// WillRetryUntil is when a delayed recipient will be given up.
	WillRetryUntil time.Time
}

// noticeStatus is the RFC 3463 status of each action: delivered and
// relayed are successes; a delay is a transient failure (4.0.0: the
// provider's own reason is in the Diagnostic-Code).
var noticeStatus = map[bridge.Action]string{
	bridge.ActionDelivered: "2.0.0",
	bridge.ActionRelayed:   "2.0.0",
	bridge.ActionDelayed:   "4.0.0",
}

var noticeSubject = map[bridge.Action]string{
	bridge.ActionDelivered: "Delivered as SMS: ",
	bridge.ActionRelayed:   "Relayed as SMS: ",
	bridge.ActionDelayed:   "Delayed SMS: ",
}

// BuildNotice returns the complete notification: multipart/report with a
// human explanation, the message/delivery-status part, and the original's
// header block (when kept). Its errors are permanent *bridge.Error.
func BuildNotice(n Notice) ([]byte, error) {
	status, ok := noticeStatus[n.Action]
	if !ok {
		return nil, invalid("action", "unknown notification action %q", n.Action)
	}
	if n.To == "" {
		return nil, invalid("to", "a notification needs a recipient")
	}
	addrs := make([]string, len(n.Recipients))
	for i, r := range n.Recipients {
		addrs[i] = r.Address
	}
	from, to, id, mta, subject, err := reportHead("notification", n.From, n.FromName, n.To, n.MessageID, n.ReportingMTA, n.Subject, n.Date, addrs)
	if err != nil {
		return nil, err
	}
	h := fields{
		{"MIME-Version", "1.0"},
		{"From", from},
		{"To", to},
		{"Subject", encodeText(noticeSubject[n.Action] + subject)},
		{"Date", n.Date.Format(dateLayout)},
		{"Message-ID", "<" + id + ">"},
	}
	// Only In-Reply-To and References: the notice joins the thread of
	// the writer's mail, as the phone's replies do.
	h = h.thread(n.OriginalMessageID, nil)
	h = append(h,
		field{"Auto-Submitted", "auto-replied"},
		field{"Content-Type", "multipart/report; report-type=delivery-status; boundary=" + rand.Text()})

	human := canonicalText(noticeText(n, mta))
	ds, err := noticeStatusPart(n, mta, status)
	if err != nil {
		return nil, fmt.Errorf("mailout: building the notification: %w", err)
	}
	parts := []part{
		{fields{{"Content-Type", "text/plain; charset=utf-8"}, {"Content-Transfer-Encoding", bodyEncoding(human)}}, human},
		{fields{{"Content-Type", "message/delivery-status"}}, ds},
	}
	if p, ok := headersPart(n.OriginalHeaders); ok {
		parts = append(parts, p)
	}
	data, err := build(h, "", parts)
	if err != nil {
		return nil, fmt.Errorf("mailout: building the notification: %w", err)
	}
	return data, nil
}

// noticeText is the human-readable part. It says plainly whose word a
// delivery is: the carrier's report, relayed by the provider.
func noticeText(n Notice, mta string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "This is the SMS gateway at %s.\n\n", mta)
	switch n.Action {
	case bridge.ActionDelivered:
		s.WriteString("The mobile carrier reported your message delivered as SMS to the phone of:\n\n")
	case bridge.ActionRelayed:
		s.WriteString("Your message was handed over as SMS to a provider that does not report delivery to the phone:\n\n")
	case bridge.ActionDelayed:
		s.WriteString("Your message has not yet been sent as SMS to:\n\n")
	}
	for _, r := range n.Recipients {
		fmt.Fprintf(&s, "  %s\n", flatten(r.Address))
		if p := flatten(r.Provider); p != "" {
			fmt.Fprintf(&s, "    provider %s", p)
			if id := flatten(r.ProviderID); id != "" {
				fmt.Fprintf(&s, ", message id %s", id)
			}
			s.WriteString("\n")
		}
		if d := flatten(r.Detail); d != "" {
			fmt.Fprintf(&s, "    %s\n", d)
		}
		if !r.WillRetryUntil.IsZero() {
			fmt.Fprintf(&s, "    still trying until %s\n", r.WillRetryUntil.Format(dateLayout))
		}
		s.WriteString("\n")
	}
	switch n.Action {
	case bridge.ActionDelivered:
		s.WriteString("This is what the carrier reported to the SMS provider; it does not say the message was read.\n")
	case bridge.ActionRelayed:
		s.WriteString("The provider accepted the SMS; it reports nothing more, so no further notice will follow.\n")
	case bridge.ActionDelayed:
		s.WriteString("No action is needed: this is a warning only. You will be told if the message fails.\n")
	}
	return s.String()
}

// noticeStatusPart is the message/delivery-status body: the per-message
// block and one block per recipient (RFC 3464 §2), US-ASCII throughout.
// The provider and its message id are extension fields (§2.4: "X-").
func noticeStatusPart(n Notice, mta, status string) (string, error) {
	blocks := make([]fields, len(n.Recipients))
	for i, r := range n.Recipients {
		rcpt := recipientHead(r.ORCPT, r.Address, string(n.Action), status)
		if d := flatten(r.Detail); d != "" && n.Action == bridge.ActionDelayed {
			rcpt = append(rcpt, field{"Diagnostic-Code", "smtp; " + asciiText(d)})
		}
		if !r.At.IsZero() {
			rcpt = append(rcpt, field{"Last-Attempt-Date", r.At.Format(dateLayout)})
		}
		if !r.WillRetryUntil.IsZero() {
			rcpt = append(rcpt, field{"Will-Retry-Until", r.WillRetryUntil.Format(dateLayout)})
		}
		if p := printable(r.Provider); p != "" {
			rcpt = append(rcpt, field{"X-SMS-Provider", p})
		}
		if id := printable(r.ProviderID); id != "" {
			rcpt = append(rcpt, field{"X-SMS-Provider-Message-Id", id})
		}
		if d := flatten(r.Detail); d != "" && n.Action == bridge.ActionDelivered {
			rcpt = append(rcpt, field{"X-SMS-Provider-Status", asciiText(d)})
		}
		blocks[i] = rcpt
	}
	return statusBlocks(mta, n.OriginalEnvelopeID, n.ArrivalDate, blocks)
}

// originalRecipient is an Original-Recipient value from a stored ORCPT
// ("rfc822;addr" or "utf-8;addr"), US-ASCII (RFC 6533 escapes for
// utf-8); "" for none or one that is not of those types.
func originalRecipient(orcpt string) string {
	typ, addr, ok := strings.Cut(orcpt, ";")
	addr = flatten(addr)
	if !ok || addr == "" {
		return ""
	}
	switch strings.ToLower(typ) {
	case "rfc822":
		if a := printable(addr); a == addr {
			return "rfc822; " + a
		}
	case "utf-8":
		return "utf-8; " + asciiText(addr)
	}
	return ""
}

// headersPart is the original's header block as text/rfc822-headers,
// cleaned (see cleanHeaders); ok is false when none is kept.
func headersPart(headers string) (part, bool) {
	orig := cleanHeaders(headers)
	if orig == "" {
		return part{}, false
	}
	ph := fields{{"Content-Type", "text/rfc822-headers"}, {"Content-Transfer-Encoding", "7bit"}}
	if !isASCII(orig) {
		ph = fields{{"Content-Type", "text/rfc822-headers; charset=utf-8"}, {"Content-Transfer-Encoding", "quoted-printable"}}
	}
	return part{ph, orig}, true
}

// reconstructed is RET=FULL's attachment: the bridge keeps a mail's
// (capped) header block and its text, not the mail, so the message/rfc822
// part is those two put together, its MIME fields replaced by a
// text/plain body in base64. ok is false when the headers are not ASCII
// (the part must stay 7-bit); the caller then attaches the headers only.
func reconstructed(headers, text string) (part, bool) {
	orig := cleanHeaders(headers)
	if orig == "" || !isASCII(orig) {
		return part{}, false
	}
	var b strings.Builder
	skip := false
	for line := range strings.SplitSeq(strings.TrimSuffix(orig, "\r\n"), "\r\n") {
		if line[0] != ' ' && line[0] != '\t' {
			name, _, _ := strings.Cut(line, ":")
			name = strings.ToLower(strings.TrimSpace(name))
			skip = name == "mime-version" || strings.HasPrefix(name, "content-")
		}
		if !skip {
			b.WriteString(line + "\r\n")
		}
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString([]byte(canonicalText(text)))
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return part{fields{{"Content-Type", "message/rfc822"}, {"Content-Transfer-Encoding", "7bit"}}, b.String()}, true
}
