package mailout_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout"
)

var date = time.Date(2025, 3, 14, 9, 26, 53, 0, time.FixedZone("IST", 2*3600))

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

// keys returns a header's field names, canonical and sorted, repeats kept.
func keys(h message.Header) []string {
	var ks []string
	for f := h.Fields(); f.Next(); {
		ks = append(ks, textproto.CanonicalMIMEHeaderKey(f.Key()))
	}
	slices.Sort(ks)
	return ks
}

func readMail(t testing.TB, data []byte) *message.Entity {
	t.Helper()
	e, err := message.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parsing the mail: %v\n%s", err, data)
	}
	return e
}

func body(t testing.TB, e *message.Entity) string {
	t.Helper()
	b, err := io.ReadAll(e.Body)
	if err != nil {
		t.Fatalf("reading a body: %v", err)
	}
	return string(b)
}

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

func bounce() mailout.Bounce {
	return mailout.Bounce{
		From:               "MAILER-DAEMON@sms.example.com",
		To:                 "dana@example.com",
		ReportingMTA:       "mx.sms.example.com",
		MessageID:          "bounce-1@sms.example.com",
		Date:               date,
		Subject:            "תור למרפאה",
		OriginalMessageID:  "<orig-2@mail.example.com>",
		OriginalEnvelopeID: "QQ314159",
		ArrivalDate:        date.Add(-time.Hour),
		OriginalHeaders: "Received: from mail.example.com\r\n\tby sms.example.com; Fri, 14 Mar 2025 08:26:53 +0200\r\n" +
			"From: Dana <dana@example.com>\r\nTo: +972501234567@sms.example.com, +972529876543@sms.example.com\r\n" +
			"Subject: =?utf-8?b?16rXldeoINec157XqNek15DXlA==?=\r\nMessage-ID: <orig-2@mail.example.com>\r\n",
		Recipients: []mailout.FailedRecipient{
			{Address: "+972501234567@sms.example.com", Status: "5.1.1", Reason: bridge.ReasonBadNumber,
				Diagnostic: "MindCRM: invalid destination", LastAttempt: date.Add(-time.Minute)},
			{Address: "+972529876543@sms.example.com", Reason: bridge.ReasonExpired,
				Diagnostic: "gave up after 24h0m0s; last error: voipcom: 503\r\nService Unavailable"},
		},
	}
}

// dsn is a delivery-status notification taken apart.
type dsn struct {
	top       message.Header
	types     []string // the parts' media types
	human     string
	perMsg    textproto.MIMEHeader
	perRcpt   []textproto.MIMEHeader
	rawStatus string
	headers   string // the text/rfc822-headers part
}

func readDSN(t testing.TB, data []byte) dsn {
	t.Helper()
	e := readMail(t, data)
	d := dsn{top: e.Header}
	mt, params, err := e.Header.ContentType()
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type = %s %v (%v), want multipart/report; report-type=delivery-status", mt, params, err)
	}
	mr := e.MultipartReader()
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading part %d: %v", len(d.types)+1, err)
		}
		pt, _, _ := p.Header.ContentType()
		d.types = append(d.types, pt)
		b := body(t, p)
		switch pt {
		case "text/plain":
			d.human = b
		case "message/delivery-status":
			d.rawStatus = b
			r := textproto.NewReader(bufio.NewReader(strings.NewReader(b)))
			for i := 0; ; i++ {
				h, err := r.ReadMIMEHeader()
				if len(h) > 0 {
					if i == 0 {
						d.perMsg = h
					} else {
						d.perRcpt = append(d.perRcpt, h)
					}
				}
				if err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatalf("delivery-status block %d: %v\n%s", i, err, b)
					}
					break
				}
			}
		case "text/rfc822-headers":
			d.headers = b
		}
	}
	return d
}

func TestBuildBounceIsADeliveryStatusReport(t *testing.T) {
	b := bounce()
	data, err := mailout.BuildBounce(b)
	if err != nil {
		t.Fatal(err)
	}
	d := readDSN(t, data)
	if !slices.Equal(d.types, []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}) {
		t.Fatalf("parts %v", d.types)
	}
	wantKeys := []string{"Auto-Submitted", "Content-Type", "Date", "From", "In-Reply-To", "Message-Id", "Mime-Version", "References", "Subject", "To"}
	if got := keys(d.top); !slices.Equal(got, wantKeys) {
		t.Errorf("header fields %v, want %v", got, wantKeys)
	}
	h := gomail.Header{Header: d.top}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 ||
		from[0].Name != "Mail Delivery System" || from[0].Address != "MAILER-DAEMON@sms.example.com" {
		t.Errorf("From = %v (%v)", from, err)
	}
	if to := d.top.Get("To"); to != "<dana@example.com>" && to != "dana@example.com" {
		t.Errorf("To = %q", to)
	}
	if s, _ := h.Subject(); s != "Undelivered SMS: תור למרפאה" {
		t.Errorf("Subject = %q", s)
	}
	if v := d.top.Get("Auto-Submitted"); v != "auto-replied" {
		t.Errorf("Auto-Submitted = %q", v)
	}
	if ids, _ := h.MsgIDList("In-Reply-To"); !slices.Equal(ids, []string{"orig-2@mail.example.com"}) {
		t.Errorf("In-Reply-To = %v", ids)
	}

	for k, want := range map[string]string{
		"Reporting-Mta":        "dns; mx.sms.example.com",
		"Original-Envelope-Id": "QQ314159",
		"Arrival-Date":         "Fri, 14 Mar 2025 08:26:53 +0200",
	} {
		if got := d.perMsg[k]; len(got) != 1 || got[0] != want {
			t.Errorf("per-message %s = %q, want %q", k, got, want)
		}
	}
	if len(d.perRcpt) != 2 {
		t.Fatalf("%d recipient blocks, want 2:\n%s", len(d.perRcpt), d.rawStatus)
	}
	for i, want := range []map[string]string{{
		"Final-Recipient":   "rfc822; +972501234567@sms.example.com",
		"Action":            "failed",
		"Status":            "5.1.1",
		"Diagnostic-Code":   "smtp; MindCRM: invalid destination",
		"Last-Attempt-Date": "Fri, 14 Mar 2025 09:25:53 +0200",
	}, {
		"Final-Recipient": "rfc822; +972529876543@sms.example.com",
		"Action":          "failed",
		"Status":          "5.4.7",
		"Diagnostic-Code": "smtp; gave up after 24h0m0s; last error: voipcom: 503 Service Unavailable",
	}} {
		if len(d.perRcpt[i]) != len(want) {
			t.Errorf("recipient %d has fields %v, want %d", i, d.perRcpt[i], len(want))
		}
		for k, v := range want {
			if got := d.perRcpt[i].Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("recipient %d %s = %q, want %q", i, k, got, v)
			}
		}
	}
	for _, s := range []string{"+972501234567@sms.example.com", "MindCRM: invalid destination", "+972529876543@sms.example.com", "503 Service Unavailable"} {
		if !strings.Contains(d.human, s) {
			t.Errorf("explanation lacks %q:\n%s", s, d.human)
		}
	}
	if d.headers != b.OriginalHeaders {
		t.Errorf("original headers = %q, want them as given", d.headers)
	}
}

func TestBuildBounceHostile(t *testing.T) {
	b := bounce()
	b.Subject = "x\r\nBcc: victim@example.net"
	b.OriginalEnvelopeID = "id\r\nX-Evil: 1"
	b.Recipients = []mailout.FailedRecipient{{
		Address:    "+972501234567@sms.example.com\r\nAction: delivered",
		Status:     "4.4.1\r\nStatus: 2.0.0",
		Reason:     bridge.ReasonProviderRejected,
		Diagnostic: "שגיאה\r\n\r\nFinal-Recipient: rfc822; other@example.com\r\nAction: delivered\\",
	}}
	b.OriginalHeaders = "Subject: hi\r\n--frontier\r\n\r\n--frontier--\r\nContent-Type: text/html\r\n" +
		"From: a@example.com\r\n-- \r\n--x: y\r\n\tcontinued\r\nTo: \xff\x00b@example.com\r\n"
	data, err := mailout.BuildBounce(b)
	if err != nil {
		t.Fatal(err)
	}
	d := readDSN(t, data)
	if !slices.Equal(d.types, []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}) {
		t.Fatalf("parts %v", d.types)
	}
	wantKeys := []string{"Auto-Submitted", "Content-Type", "Date", "From", "In-Reply-To", "Message-Id", "Mime-Version", "References", "Subject", "To"}
	if got := keys(d.top); !slices.Equal(got, wantKeys) {
		t.Errorf("header fields %v, want %v", got, wantKeys)
	}
	if len(d.perMsg) != 3 || len(d.perRcpt) != 1 {
		t.Fatalf("blocks: per-message %v, recipients %v", d.perMsg, d.perRcpt)
	}
	rc := d.perRcpt[0]
	if got := rc.Values("Action"); len(got) != 1 || got[0] != "failed" {
		t.Errorf("Action = %q", got)
	}
	if got := rc.Values("Status"); len(got) != 1 || got[0] != "5.0.0" {
		t.Errorf("Status = %q: want the reason's code in place of an invalid one", got)
	}
	if got := rc.Values("Final-Recipient"); len(got) != 1 {
		t.Errorf("Final-Recipient = %q", got)
	}
	diag := rc.Get("Diagnostic-Code")
	if want := `smtp; \x{5E9}\x{5D2}\x{5D9}\x{5D0}\x{5D4} Final-Recipient: rfc822; other@example.com Action: delivered\x{5C}`; diag != want {
		t.Errorf("Diagnostic-Code = %q, want %q", diag, want)
	}
	if got := d.perMsg.Get("Original-Envelope-Id"); got != "idX-Evil:1" {
		t.Errorf("Original-Envelope-Id = %q", got)
	}
	if want := "Subject: hi\r\n"; d.headers != want {
		t.Errorf("original headers = %q, want %q (cut at the empty line)", d.headers, want)
	}

	// Without an empty line, garbage lines are dropped and fields kept.
	b.OriginalHeaders = strings.Replace(b.OriginalHeaders, "--frontier\r\n\r\n", "--frontier\r\n", 1)
	data, err = mailout.BuildBounce(b)
	if err != nil {
		t.Fatal(err)
	}
	d = readDSN(t, data)
	want := "Subject: hi\r\nContent-Type: text/html\r\nFrom: a@example.com\r\nTo: \uFFFDb@example.com\r\n"
	if d.headers != want {
		t.Errorf("original headers = %q, want %q", d.headers, want)
	}
}

func TestBuildBounceRefusesInvalidInput(t *testing.T) {
	for name, mutate := range map[string]func(*mailout.Bounce){
		"null recipient":  func(b *mailout.Bounce) { b.To = "" },
		"to with CRLF":    func(b *mailout.Bounce) { b.To = "a@example.com\r\nBcc: b@example.com" },
		"no recipients":   func(b *mailout.Bounce) { b.Recipients = nil },
		"empty address":   func(b *mailout.Bounce) { b.Recipients[1].Address = "\r\n" },
		"bad message id":  func(b *mailout.Bounce) { b.MessageID = "x" },
		"no date":         func(b *mailout.Bounce) { b.Date = time.Time{} },
		"bad reporter":    func(b *mailout.Bounce) { b.ReportingMTA = "mx\r\nX-Evil: 1" },
		"from not a mail": func(b *mailout.Bounce) { b.From = "MAILER-DAEMON" },
	} {
		b := bounce()
		mutate(&b)
		if data, err := mailout.BuildBounce(b); err == nil || bridge.IsTemporary(err) || bridge.ReasonOf(err) != bridge.ReasonInvalid {
			t.Errorf("%s: %v: want a permanent invalid error\n%s", name, err, data)
		}
	}
}

func TestBuildBounceDefaults(t *testing.T) {
	b := bounce()
	b.ReportingMTA, b.Subject, b.OriginalHeaders, b.OriginalMessageID, b.OriginalEnvelopeID = "", "", "", "", ""
	b.ArrivalDate = time.Time{}
	b.Recipients = b.Recipients[:1]
	data, err := mailout.BuildBounce(b)
	if err != nil {
		t.Fatal(err)
	}
	d := readDSN(t, data)
	if !slices.Equal(d.types, []string{"text/plain", "message/delivery-status"}) {
		t.Errorf("parts %v: want no headers part without headers", d.types)
	}
	if got := d.perMsg.Get("Reporting-Mta"); got != "dns; sms.example.com" || len(d.perMsg) != 1 {
		t.Errorf("per-message block %v: want only Reporting-MTA, from From's domain", d.perMsg)
	}
	if s, _ := (&gomail.Header{Header: d.top}).Subject(); s != "Undelivered SMS: +972501234567@sms.example.com" {
		t.Errorf("Subject = %q", s)
	}
	if d.top.Has("In-Reply-To") || d.top.Has("References") {
		t.Error("threading fields without an original Message-ID")
	}
}

func TestStatusFor(t *testing.T) {
	for reason, want := range map[bridge.Reason]string{
		bridge.ReasonBadNumber:        "5.1.1",
		bridge.ReasonTooLong:          "5.3.4",
		bridge.ReasonExpired:          "5.4.7",
		bridge.ReasonSenderNotAllowed: "5.7.1",
		bridge.ReasonProviderRejected: "5.0.0",
		"":                            "5.0.0",
	} {
		if got := mailout.StatusFor(reason); got != want {
			t.Errorf("StatusFor(%q) = %s, want %s", reason, got, want)
		}
	}
}
