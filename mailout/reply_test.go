package mailout_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout"
)

func reply() mailout.Reply {
	return mailout.Reply{
		From:       "+972501234567@sms.example.com",
		FromName:   "+972 50-123-4567",
		To:         "dana@example.com",
		Subject:    "Re: תור למרפאה",
		Text:       "כן, מגיע מחר 🙂 ممنون",
		MessageID:  "<in1.c0123456789abcdefghij@sms.example.com>",
		InReplyTo:  "orig-2@mail.example.com",
		References: []string{"<root-1@mail.example.com>"},
		Date:       date,
		Extra: []mailout.Field{
			{Key: "X-SMS-From", Value: "+972501234567"},
			{Key: "X-SMS-To", Value: "Clinic"},
		},
	}
}

// replyKeys are the top-level fields every reply has (with threading and
// the two extra fields of reply()).
var replyKeys = []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "In-Reply-To", "Message-Id",
	"Mime-Version", "References", "Subject", "To", "X-Sms-From", "X-Sms-To"}

func TestBuildReplyThreadsUnderTheOriginal(t *testing.T) {
	r := reply()
	data, err := mailout.BuildReply(r)
	if err != nil {
		t.Fatal(err)
	}
	e := readMail(t, data)
	h := gomail.Header{Header: e.Header}
	if got := keys(e.Header); !slices.Equal(got, replyKeys) {
		t.Errorf("header fields %v, want %v", got, replyKeys)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != r.From || from[0].Name != r.FromName {
		t.Errorf("From = %v (%v), want %s <%s>", from, err, r.FromName, r.From)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != r.To {
		t.Errorf("To = %v (%v)", to, err)
	}
	if s, err := h.Subject(); err != nil || s != r.Subject {
		t.Errorf("Subject = %q (%v), want %q", s, err, r.Subject)
	}
	if d, err := h.Date(); err != nil || !d.Equal(r.Date) {
		t.Errorf("Date = %v (%v), want %v", d, err, r.Date)
	}
	if id, err := h.MessageID(); err != nil || id != "in1.c0123456789abcdefghij@sms.example.com" {
		t.Errorf("Message-ID = %q (%v)", id, err)
	}
	if ids, err := h.MsgIDList("In-Reply-To"); err != nil || !slices.Equal(ids, []string{"orig-2@mail.example.com"}) {
		t.Errorf("In-Reply-To = %v (%v)", ids, err)
	}
	if ids, err := h.MsgIDList("References"); err != nil || !slices.Equal(ids, []string{"root-1@mail.example.com", "orig-2@mail.example.com"}) {
		t.Errorf("References = %v (%v), want the thread ending in the original", ids, err)
	}
	if v, _ := e.Header.Text("X-Sms-To"); v != "Clinic" {
		t.Errorf("X-SMS-To = %q", v)
	}
	if mt, params, _ := e.Header.ContentType(); mt != "text/plain" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type = %s %v", mt, params)
	}
	if got := body(t, e); got != r.Text {
		t.Errorf("text = %q, want %q", got, r.Text)
	}
	// The mail itself is 7-bit: it passes smarthosts without 8BITMIME.
	for i, c := range data {
		if c >= 0x80 {
			t.Fatalf("8-bit byte at %d: %q", i, data[max(0, i-20):i+1])
		}
	}
}

func TestBuildReplyText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain ascii = fine", "plain ascii = fine"},
		{"two\nlines\r\nand\rthree", "two\r\nlines\r\nand\r\nthree"},
		{"שלום\n\n-- \nnot a signature here", "שלום\r\n\r\n-- \r\nnot a signature here"},
		{".\r\n.\r\nQUIT\r\n", ".\r\n.\r\nQUIT\r\n"},
		{"bad utf-8 \xff\xfe end", "bad utf-8 \uFFFD end"},
		{strings.Repeat("long line ", 200), strings.Repeat("long line ", 200)},
		{"", ""},
	} {
		r := reply()
		r.Text = tc.in
		data, err := mailout.BuildReply(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, readMail(t, data)); got != tc.want {
			t.Errorf("text %q came back as %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBuildReplyWithoutThread(t *testing.T) {
	r := reply()
	r.InReplyTo, r.References, r.Extra = "", nil, nil
	data, err := mailout.BuildReply(r)
	if err != nil {
		t.Fatal(err)
	}
	e := readMail(t, data)
	want := []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}
	if got := keys(e.Header); !slices.Equal(got, want) {
		t.Errorf("header fields %v, want %v", got, want)
	}
}

func TestBuildReplyLongThreadIsTrimmed(t *testing.T) {
	r := reply()
	r.References = nil
	for i := range 50 {
		r.References = append(r.References, "ref"+strings.Repeat("x", i)+"@example.com")
	}
	r.InReplyTo = r.References[49]
	data, err := mailout.BuildReply(r)
	if err != nil {
		t.Fatal(err)
	}
	h := gomail.Header{Header: readMail(t, data).Header}
	ids, err := h.MsgIDList("References")
	if err != nil || len(ids) != 20 || ids[0] != r.References[0] || ids[19] != r.InReplyTo {
		t.Errorf("References = %d ids (%v): want 20, from the root to the original", len(ids), err)
	}
}

// TestBuildReplyHostile feeds CR, LF and MIME syntax into every free-text
// input: the result must have exactly the usual fields, each once, and
// the text must come back as given.
func TestBuildReplyHostile(t *testing.T) {
	evil := "x\r\nBcc: victim@example.net\r\n\r\n--boundary\r\nContent-Type: text/html\n\rX-Evil: 1\r\n.\r\n"
	r := reply()
	r.Subject = "Re: " + evil
	r.FromName = evil
	r.Text = evil
	r.InReplyTo = "<orig@example.com>\r\nBcc: victim@example.net"
	r.References = []string{"root@example.com\r\nX-Evil: 1", "ok@example.com", "a b@example.com", "<<x@y>>"}
	r.Extra = []mailout.Field{{Key: "X-SMS-From", Value: evil}, {Key: "X-SMS-To", Value: "\n\n"}}
	data, err := mailout.BuildReply(r)
	if err != nil {
		t.Fatal(err)
	}
	e := readMail(t, data)
	want := slices.DeleteFunc(slices.Clone(replyKeys), func(k string) bool { return k == "In-Reply-To" })
	if got := keys(e.Header); !slices.Equal(got, want) {
		t.Errorf("header fields %v, want %v", got, want)
	}
	h := gomail.Header{Header: e.Header}
	if ids, err := h.MsgIDList("References"); err != nil || !slices.Equal(ids, []string{"ok@example.com"}) {
		t.Errorf("References = %v (%v): want only the valid id", ids, err)
	}
	if s, _ := h.Subject(); strings.ContainsAny(s, "\r\n") || !strings.Contains(s, "Bcc: victim@example.net") {
		t.Errorf("Subject = %q: want the text on one line", s)
	}
	if got, want := body(t, e), strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(evil, "\r\n", "\n"), "\r", "\n"), "\n", "\r\n"); got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
}

func TestBuildReplyRefusesInvalidInput(t *testing.T) {
	for name, mutate := range map[string]func(*mailout.Reply){
		"to with CRLF":    func(r *mailout.Reply) { r.To = "a@example.com\r\nBcc: b@example.com" },
		"to with a name":  func(r *mailout.Reply) { r.To = "Dana <dana@example.com>" },
		"two recipients":  func(r *mailout.Reply) { r.To = "a@example.com, b@example.com" },
		"empty from":      func(r *mailout.Reply) { r.From = "" },
		"bad message id":  func(r *mailout.Reply) { r.MessageID = "no-at-sign" },
		"message id CRLF": func(r *mailout.Reply) { r.MessageID = "a@b\r\nBcc: x@y" },
		"no date":         func(r *mailout.Reply) { r.Date = time.Time{} },
		"extra not X-":    func(r *mailout.Reply) { r.Extra = []mailout.Field{{Key: "Bcc", Value: "x@y"}} },
		"extra key with CRLF": func(r *mailout.Reply) {
			r.Extra = []mailout.Field{{Key: "X-A: 1\r\nBcc", Value: "x@y"}}
		},
	} {
		r := reply()
		mutate(&r)
		if data, err := mailout.BuildReply(r); err == nil || bridge.IsTemporary(err) || bridge.ReasonOf(err) != bridge.ReasonInvalid {
			t.Errorf("%s: %v: want a permanent invalid error\n%s", name, err, data)
		}
	}
}

// FuzzBuildReply: whatever the free text, the reply parses, has exactly
// the usual top-level fields, and carries the text unchanged but for line
// breaks.
func FuzzBuildReply(f *testing.F) {
	f.Add("Re: hello", "+972 50", "שלום 🙂", "orig@example.com", "root@example.com", "+972501234567")
	f.Add("x\r\nBcc: a@b", "n\r\n\r\n--b", "\r\n.\r\n--frontier--\r\n", "<a@b>\r\nX: y", "r@x\nBcc: z", "\n\n")
	f.Add("=?utf-8?q?=0D=0ABcc:_x?=", "\"quoted\" <x@y>", "=\r\n=3D=0D", "", "", "")
	f.Add(strings.Repeat("long ", 300), strings.Repeat("ä", 200), strings.Repeat("a", 2000), "a@[127.0.0.1]", "<<a@b>>", "\x00\x7f\u2028")
	f.Fuzz(func(t *testing.T, subject, name, text, inReplyTo, ref, extra string) {
		r := mailout.Reply{
			From: "+972501234567@sms.example.com", FromName: name, To: "dana@example.com",
			Subject: subject, Text: text, MessageID: "m1@sms.example.com",
			InReplyTo: inReplyTo, References: []string{ref}, Date: date,
			Extra: []mailout.Field{{Key: "X-SMS-From", Value: extra}},
		}
		data, err := mailout.BuildReply(r)
		if err != nil {
			t.Fatalf("BuildReply: %v", err)
		}
		e := readMail(t, data)
		want := []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To", "X-Sms-From"}
		if e.Header.Has("In-Reply-To") {
			want = append(want, "In-Reply-To")
		}
		if e.Header.Has("References") {
			want = append(want, "References")
		}
		slices.Sort(want)
		if got := keys(e.Header); !slices.Equal(got, want) {
			t.Fatalf("header fields %v, want %v\n%s", got, want, data)
		}
		if got, want := body(t, e), canonical(text); got != want {
			t.Fatalf("text %q came back as %q", want, got)
		}
	})
}

// canonical is text as a text/plain body carries it.
func canonical(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}
