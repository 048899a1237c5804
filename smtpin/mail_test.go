package smtpin

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
)

// crlf turns a fixture written with LF into a mail with CRLF line endings,
// as SMTP carries it.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

type mailCase struct {
	name    string
	raw     string
	subject string
	body    string
}

// mailCases are the mails TestReadMail reads and FuzzReadMail starts
// from: those of each stage of ReadMail (MIME walking, HTML, cleaning),
// then those of the header.
func mailCases(t testing.TB) []mailCase {
	return slices.Concat(mimeCases(t), htmlCases(), cleanCases(), []mailCase{
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
	})
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
