package mailout

import (
	"bytes"
	"fmt"
	"strings"
	"time"
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
