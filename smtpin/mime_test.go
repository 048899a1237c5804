package smtpin

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"

	"github.com/smsbridge/smsbridge/bridge"
)

// encode returns s in a legacy charset, as a non-UTF-8 mail carries it.
func encode(t testing.TB, e encoding.Encoding, s string) string {
	t.Helper()
	b, err := e.NewEncoder().String(s)
	if err != nil {
		t.Fatalf("encoding %q: %v", s, err)
	}
	return b
}

func qp(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(b.String(), "\r\n", "\n")
}

// b64 is base64 wrapped at 76 columns, as mail clients write it.
func b64(s string) string {
	e := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(e) > 76 {
		b.WriteString(e[:76] + "\n")
		e = e[76:]
	}
	return b.String() + e + "\n"
}

const (
	hebrew  = "שלום, התור שלך מחר ב-10:00 אצל ד\"ר כהן."
	persian = "گزارش: پرداخت شما با موفقيت انجام شد"
	arabic  = "مرحبا، تم استلام طلبك"
	russian = "Привет, заказ готов"
)

// mimeCases are mails whose text is found by walking MIME parts and
// decoding charsets and transfer encodings.
func mimeCases(t testing.TB) []mailCase {
	return []mailCase{
		{
			name: "base64 UTF-8 Hebrew",
			raw: crlf(`From: Alice <a@example.com>
To: 0521234567@sms.example.com
Subject: =?UTF-8?B?` + base64.StdEncoding.EncodeToString([]byte("תזכורת")) + `?=
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: base64

` + b64(hebrew+"\r\nנתראה 😀\r\n")),
			subject: "תזכורת",
			body:    hebrew + "\nנתראה 😀",
		},
		{
			name: "quoted-printable windows-1255 Hebrew",
			raw: crlf(`Subject: ` + mime.QEncoding.Encode("windows-1255", encode(t, charmap.Windows1255, "תור חדש")) + `
Content-Type: text/plain; charset=windows-1255
Content-Transfer-Encoding: quoted-printable

` + qp(t, encode(t, charmap.Windows1255, hebrew+"\nתודה"))),
			subject: "תור חדש",
			body:    hebrew + "\nתודה",
		},
		{
			name: "8bit ISO-8859-8 Hebrew",
			raw: crlf(`Subject: x
Content-Type: text/plain; charset=ISO-8859-8
Content-Transfer-Encoding: 8bit

` + encode(t, charmap.ISO8859_8, hebrew) + "\n"),
			subject: "x",
			body:    hebrew,
		},
		{
			name: "base64 ISO-8859-8-I Hebrew",
			raw: crlf(`Subject: x
Content-Type: text/plain; charset="iso-8859-8-i"
Content-Transfer-Encoding: base64

` + b64(encode(t, charmap.ISO8859_8I, hebrew))),
			subject: "x",
			body:    hebrew,
		},
		{
			name: "quoted-printable windows-1256 Persian",
			raw: crlf(`Subject: =?windows-1256?B?` + base64.StdEncoding.EncodeToString([]byte(encode(t, charmap.Windows1256, "گزارش"))) + `?=
Content-Type: text/plain; charset=windows-1256
Content-Transfer-Encoding: quoted-printable

` + qp(t, encode(t, charmap.Windows1256, persian))),
			subject: "گزارش",
			body:    persian,
		},
		{
			name: "ISO-8859-6 Arabic",
			raw: crlf(`Subject: x
Content-Type: text/plain; charset=ISO-8859-6
Content-Transfer-Encoding: 8bit

` + encode(t, charmap.ISO8859_6, arabic) + "\n"),
			subject: "x",
			body:    arabic,
		},
		{
			name: "KOI8-R Russian",
			raw: crlf(`Subject: x
Content-Type: text/plain; charset=koi8-r
Content-Transfer-Encoding: base64

` + b64(encode(t, charmap.KOI8R, russian))),
			subject: "x",
			body:    russian,
		},
		{
			name: "unknown charset read as UTF-8",
			raw: crlf(`Subject: x
Content-Type: text/plain; charset=x-no-such-charset
Content-Transfer-Encoding: 8bit

שלום` + "\xff" + `!
`),
			subject: "x",
			body:    "שלום\uFFFD!",
		},
		{
			name: "no charset, UTF-8 bytes",
			raw: crlf(`Subject: x

שלום 😀 سلام
`),
			subject: "x",
			body:    "שלום 😀 سلام",
		},
		{
			name: "unknown transfer encoding taken as is",
			raw: crlf(`Subject: x
Content-Transfer-Encoding: x-uuencode

plain enough
`),
			subject: "x",
			body:    "plain enough",
		},
		{
			name: "UTF-8 byte order mark dropped",
			raw: crlf(`Subject: bom
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

` + b64("\uFEFFשלום\r\n")),
			subject: "bom",
			body:    "שלום",
		},
		{
			name: "multipart/alternative prefers text/plain",
			raw: crlf(`Subject: alt
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

Plain wins
--b1
Content-Type: text/html; charset=utf-8

<p>HTML loses</p>
--b1--
`),
			subject: "alt",
			body:    "Plain wins",
		},
		{
			name: "multipart/alternative with text/plain after text/html",
			raw: crlf(`Subject: alt
Content-Type: multipart/alternative; boundary=b1

--b1
Content-Type: text/html

<p>HTML loses</p>
--b1
Content-Type: text/plain

Plain wins
--b1--
`),
			subject: "alt",
			body:    "Plain wins",
		},
		{
			name: "multipart/mixed with attachments",
			raw: crlf(`Subject: report
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is a multi-part message in MIME format.
--outer
Content-Type: text/plain; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

Attached notes, not the message.
--outer
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Report attached, all systems OK.
--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IK
--outer--
`),
			subject: "report",
			body:    "Report attached, all systems OK.",
		},
		{
			name: "nested mixed, alternative and related",
			raw: crlf(`Subject: nested
Content-Type: multipart/mixed; boundary=m

--m
Content-Type: multipart/alternative; boundary=a

--a
Content-Type: multipart/related; boundary=r

--r
Content-Type: text/html; charset=utf-8

<p>From HTML</p><img src="cid:logo">
--r
Content-Type: image/png
Content-ID: <logo>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--r--
--a
Content-Type: text/plain; charset=utf-8

From plain
--a--
--m
Content-Type: application/octet-stream
Content-Disposition: attachment

xx
--m--
`),
			subject: "nested",
			body:    "From plain",
		},
		{
			name: "multipart/related HTML only",
			raw: crlf(`Subject: related
Content-Type: multipart/related; boundary=r; type="text/html"

--r
Content-Type: text/html; charset=windows-1255
Content-Transfer-Encoding: quoted-printable

` + qp(t, encode(t, charmap.Windows1255, "<p>שלום</p><p><img src=\"cid:x\">עולם</p>")) + `
--r
Content-Type: image/gif
Content-Transfer-Encoding: base64

R0lGODlhAQABAAAAACw=
--r--
`),
			subject: "related",
			body:    "שלום\nעולם",
		},
		{
			name: "missing closing boundary",
			raw: crlf(`Subject: truncated
Content-Type: multipart/mixed; boundary=m

--m
Content-Type: text/plain

Still readable.
`),
			subject: "truncated",
			body:    "Still readable.",
		},
	}
}

func TestReadMailInvalid(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"not a header", "this is not a header\r\n\r\nbody\r\n"},
		{"header starts with a space", " Subject: x\r\n\r\nbody\r\n"},
		{"multipart without boundary", "Content-Type: multipart/mixed\r\n\r\n--\r\nx\r\n"},
		{"multipart with no parts", "Content-Type: multipart/mixed; boundary=b\r\n\r\nno parts here\r\n"},
		{"broken base64", "Content-Transfer-Encoding: base64\r\n\r\n!!!!not base64!!!!\r\n"},
		{"broken quoted-printable", "Content-Transfer-Encoding: quoted-printable\r\n\r\nunescaped \x01 control byte\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadMail(strings.NewReader(tt.raw), Limits{})
			if err == nil {
				t.Fatalf("ReadMail = %+v, want an error", m)
			}
			if r := bridge.ReasonOf(err); r != bridge.ReasonInvalid {
				t.Errorf("reason %q, want %q (err %v)", r, bridge.ReasonInvalid, err)
			}
			if bridge.IsTemporary(err) {
				t.Errorf("error is temporary: %v", err)
			}
		})
	}
}

// deepMultipart nests n multiparts around a text part.
func deepMultipart(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%[1]d\r\n", i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}
