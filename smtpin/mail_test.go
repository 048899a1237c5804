package smtpin

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"

	"github.com/smsbridge/smsbridge/bridge"
)

// crlf turns a fixture written with LF into a mail with CRLF line endings,
// as SMTP carries it.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

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

type mailCase struct {
	name    string
	raw     string
	subject string
	body    string
}

const (
	hebrew  = "שלום, התור שלך מחר ב-10:00 אצל ד\"ר כהן."
	persian = "گزارش: پرداخت شما با موفقيت انجام شد"
	arabic  = "مرحبا، تم استلام طلبك"
	russian = "Привет, заказ готов"
)

func mailCases(t testing.TB) []mailCase {
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
			name: "HTML only",
			raw: crlf(`Subject: html
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><head><title>Ignored title</title><style>p { color: red; }</style></h=
ead>
<body>
<p>Dear&nbsp;customer,</p>
<p>Your   order &amp; invoice are
ready &lt;#42&gt;.<br>Total: &#8362;120 &euro;</p>
<div>Line one</div><div>Line two</div>
<script>alert("x")</script>
<ul><li>First</li><li>Second</li></ul>
<table><tr><td>Date</td><td>2024-01-01</td></tr></table>
<p>=D7=AA=D7=95=D7=93=D7=94</p>
</body></html>
`),
			subject: "html",
			body:    "Dear customer,\nYour order & invoice are ready <#42>.\nTotal: ₪120 €\nLine one\nLine two\nFirst\nSecond\nDate 2024-01-01\nתודה",
		},
		{
			name: "HTML reply with blockquote",
			raw: crlf(`Subject: Re: meeting
Content-Type: text/html; charset=utf-8

<div dir="ltr">Sounds good, see you at 10.</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 1 Jan 2024 at 09:00, Bob &lt;<a href="mailto:b@x">b@x</a>&gt; wrote:<br></div><blockquote class="gmail_quote"><div dir="ltr">Are we meeting tomorrow?<br><br>Bob</div></blockquote></div>
`),
			subject: "Re: meeting",
			body:    "Sounds good, see you at 10.",
		},
		{
			name: "HTML text starting with > is no quote",
			raw: crlf(`Subject: stock
Content-Type: text/html

<p>&gt; 5 items left</p><pre>  kept   as
  is</pre><p>A
 -- 
B</p>
`),
			subject: "stock",
			body:    "> 5 items left\n  kept   as\n  is\nA -- B",
		},
		{
			name: "signature stripped",
			raw: crlf(`Subject: sig

Server db1 is down.

-- 
Monitoring team
+972-3-1234567
`),
			subject: "sig",
			body:    "Server db1 is down.",
		},
		{
			name: "signature without trailing space stripped",
			raw: crlf(`Subject: sig

Server db1 is down.
--
Monitoring team
`),
			subject: "sig",
			body:    "Server db1 is down.",
		},
		{
			name: "quoted reply stripped",
			raw: crlf(`Subject: Re: meeting

Thanks, see you then.

On Mon, 1 Jan 2024, Bob <b@x> wrote:
> Are we meeting tomorrow?
>
> Bob
`),
			subject: "Re: meeting",
			body:    "Thanks, see you then.",
		},
		{
			name: "interleaved reply and wrapped attribution",
			raw: crlf(`Subject: Re: meeting

On Mon, 1 Jan 2024 at 09:00, Bob Smith from Accounting <
bob.smith@accounting.example.com> wrote:
> Tomorrow?
Yes.
> 10:00?
Make it 11.
`),
			subject: "Re: meeting",
			body:    "Yes.\nMake it 11.",
		},
		{
			name: "Hebrew attribution stripped",
			raw: crlf(`Subject: x
Content-Type: text/plain; charset=utf-8

בסדר גמור, נתראה.

ב-1 בינו׳ 2024, בוב <b@x> כתב/ה:
> נפגשים מחר?
`),
			subject: "x",
			body:    "בסדר גמור, נתראה.",
		},
		{
			name: "Outlook original message stripped",
			raw: crlf(`Subject: RE: invoice

Approved.

-----Original Message-----
From: Bob <b@x>
Sent: Monday, January 1, 2024 9:00 AM
Subject: invoice

Please approve.
`),
			subject: "RE: invoice",
			body:    "Approved.",
		},
		{
			name: "Outlook underscore separator stripped",
			raw: crlf(`Subject: RE: invoice

Approved.

________________________________
From: Bob <b@x>
Sent: Monday, January 1, 2024 9:00 AM

Please approve.
`),
			subject: "RE: invoice",
			body:    "Approved.",
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
		{
			name: "format=flowed joined",
			raw: crlf(`Subject: flowed
Content-Type: text/plain; charset=utf-8; format=flowed; delsp=no

This paragraph was wrapped by the mail client 
at seventy-two columns and is one line.
 >From the stuffed line.

-- 
sig
`),
			subject: "flowed",
			body:    "This paragraph was wrapped by the mail client at seventy-two columns and is one line.\n>From the stuffed line.",
		},
		{
			name: "whitespace normalised",
			raw: crlf(`Subject:   spaced   

   

  indented line kept   
trailing tabs		



after three blanks
` + "\n\n"),
			subject: "spaced",
			body:    "  indented line kept\ntrailing tabs\n\nafter three blanks",
		},
		{
			name:    "LF line endings",
			raw:     "Subject: lf\nContent-Type: text/plain\n\nline one\nline two\n",
			subject: "lf",
			body:    "line one\nline two",
		},
		{
			name:    "RFC 2047 Q subject, several words",
			raw:     crlf("Subject: =?utf-8?q?Caf=C3=A9_=D7=A9=D7=9C=D7=95=D7=9D?= =?UTF-8?Q?_and_more?=\n\nbody\n"),
			subject: "Café שלום and more",
			body:    "body",
		},
		{
			name:    "header only",
			raw:     crlf("Subject: disk full on db1\n\n"),
			subject: "disk full on db1",
			body:    "",
		},
	}
}

func TestReadMail(t *testing.T) {
	for _, tc := range mailCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ReadMail(strings.NewReader(tc.raw), Limits{})
			if err != nil {
				t.Fatalf("ReadMail: %v", err)
			}
			if m.Subject != tc.subject {
				t.Errorf("Subject = %q, want %q", m.Subject, tc.subject)
			}
			if m.Body != tc.body {
				t.Errorf("Body = %q\nwant   %q", m.Body, tc.body)
			}
		})
	}
}

func TestReadMailHeaders(t *testing.T) {
	raw := "From: Alice <a@example.com>\n" +
		"Message-ID: <abc.123@mail.example.com>\n" +
		"In-Reply-To: <parent@x>\n" +
		"References: <root@x>\n <parent@x> (comment)\n" +
		"X-SMS-Sender: Clinic\n" +
		"Subject: hi\n" +
		"\n" +
		"body\n"
	m, err := ReadMail(strings.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageID != "abc.123@mail.example.com" {
		t.Errorf("MessageID = %q", m.MessageID)
	}
	if m.InReplyTo != "parent@x" {
		t.Errorf("InReplyTo = %q", m.InReplyTo)
	}
	if want := []string{"root@x", "parent@x"}; !slices.Equal(m.References, want) {
		t.Errorf("References = %q, want %q", m.References, want)
	}
	if got := m.Header.Get("X-Sms-Sender"); got != "Clinic" {
		t.Errorf("Header X-SMS-Sender = %q", got)
	}
	// Only what a bounce shows, in bounceFields order, one line each.
	want := "From: Alice <a@example.com>\r\n" +
		"Subject: hi\r\n" +
		"Message-ID: <abc.123@mail.example.com>\r\n"
	if m.BounceHeaders != want {
		t.Errorf("BounceHeaders = %q\nwant            %q", m.BounceHeaders, want)
	}
}

func TestReadMailMessageIDWithoutBrackets(t *testing.T) {
	m, err := ReadMail(strings.NewReader("Message-ID: legacy-id@host\r\n\r\nx\r\n"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageID != "legacy-id@host" {
		t.Errorf("MessageID = %q", m.MessageID)
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

func TestReadMailReadError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := ReadMail(iotest.TimeoutReader(strings.NewReader("Subject: x\r\n\r\nbody")), Limits{})
	if err == nil || bridge.ReasonOf(err) != "" {
		t.Fatalf("err = %v, want the read error unclassified", err)
	}
	_, err = ReadMail(iotest.ErrReader(boom), Limits{})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap %v", err, boom)
	}
}

// TestReadMailLinear feeds inputs shaped to make a careless cleaner
// quadratic; at a megabyte each, quadratic work would exceed the test
// timeout, and the outcome is checked too.
func TestReadMailLinear(t *testing.T) {
	tests := []struct {
		name, raw, body string
	}{
		{"one long flowed paragraph", "Content-Type: text/plain; format=flowed\r\n\r\n" + strings.Repeat("ab \r\n", 200_000) + "end", strings.Repeat("ab ", 200_000) + "end"},
		{"quotes between blank lines", "\r\n" + "keep\r\n" + strings.Repeat("\r\n>q\r\n", 200_000), "keep"},
		{"deep multipart nesting", deepMultipart(20_000), ""},
		{"multipart nesting at the limit", deepMultipart(maxDepth), "deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadMail(strings.NewReader(tt.raw), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if m.Body != tt.body {
				t.Errorf("Body = %.80q (%d bytes), want %.80q (%d bytes)", m.Body, len(m.Body), tt.body, len(tt.body))
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

func TestMailText(t *testing.T) {
	full := &Mail{Subject: "Alert", Body: "disk full"}
	noBody := &Mail{Subject: "Alert"}
	noSubject := &Mail{Body: "disk full"}
	tests := []struct {
		m    *Mail
		mode string
		want string
	}{
		{full, "body", "disk full"},
		{full, "subject", "Alert"},
		{full, "subject+body", "Alert\ndisk full"},
		{full, "", "disk full"},
		{noBody, "body", "Alert"},
		{noBody, "subject", "Alert"},
		{noBody, "subject+body", "Alert"},
		{noSubject, "body", "disk full"},
		{noSubject, "subject", "disk full"},
		{noSubject, "subject+body", "disk full"},
		{&Mail{}, "subject+body", ""},
	}
	for _, tt := range tests {
		if got := tt.m.Text(tt.mode); got != tt.want {
			t.Errorf("%+v.Text(%q) = %q, want %q", *tt.m, tt.mode, got, tt.want)
		}
	}
}

func FuzzReadMail(f *testing.F) {
	for _, tc := range mailCases(f) {
		f.Add([]byte(tc.raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ReadMail(bytes.NewReader(raw), Limits{})
		if err != nil {
			// The input cannot fail to read, so every error is about
			// the mail itself.
			if r := bridge.ReasonOf(err); r != bridge.ReasonInvalid && r != bridge.ReasonTooLong {
				t.Fatalf("error without reason %q or %q: %v", bridge.ReasonInvalid, bridge.ReasonTooLong, err)
			}
			return
		}
		if !utf8.ValidString(m.Body) || !utf8.ValidString(m.Subject) {
			t.Fatalf("invalid UTF-8: subject %q body %q", m.Subject, m.Body)
		}
		if strings.Contains(m.Body, "\r") || strings.HasPrefix(m.Body, "\n") || strings.HasSuffix(m.Body, "\n") || strings.Contains(m.Body, "\n\n\n") {
			t.Fatalf("body not normalised: %q", m.Body)
		}
		if len(m.Body) > 3*len(raw)+64 {
			t.Fatalf("%d bytes of body from %d bytes of mail", len(m.Body), len(raw))
		}
	})
}

func BenchmarkReadMail(b *testing.B) {
	var body strings.Builder
	for body.Len() < 800 {
		body.WriteString("Your appointment with Dr. Cohen is confirmed for Monday at 10:30.\r\n")
	}
	raw := []byte("From: Clinic <clinic@example.com>\r\n" +
		"To: 0521234567@sms.example.com\r\n" +
		"Subject: Appointment reminder\r\n" +
		"Message-ID: <1234.5678@example.com>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" + body.String())
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ReadMail(bytes.NewReader(raw), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
