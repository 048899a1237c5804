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
	"io"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/smsbridge/smsbridge/bridge"
)

// dateLayout is RFC 5322's date-time, as go-message writes it.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// maxReferences bounds References: RFC 5322 §3.6.4 lets a long thread be
// trimmed, and clients need only its first and last ids to thread.
const maxReferences = 20

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

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
