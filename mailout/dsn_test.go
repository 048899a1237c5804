package mailout_test

import (
	"bufio"
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

// FuzzBuildBounce: whatever the sender wrote and the providers said, the
// bounce parses as a delivery-status report with the usual fields, one
// block per recipient, and each recipient field exactly once.
func FuzzBuildBounce(f *testing.F) {
	f.Add("hello", "+972501234567@sms.example.com", "5.1.1", "invalid destination", "ENVID1",
		"Subject: hello\r\nFrom: a@b\r\n")
	f.Add("x\r\nBcc: a@b", "a\r\nAction: delivered", "2.0.0\r\nStatus: 5.0.0", "שגיאה\r\n\r\nFinal-Recipient: rfc822; x",
		"id\r\nX: y", "Subject: x\r\n\r\n--frontier\r\nContent-Type: text/html\r\n\r\n<b>")
	f.Add("", "", "", "", "", "--x\n-- \n\tcont\n: empty\nA:\n\xff\xfe: v\n")
	f.Add(strings.Repeat("s", 2000), strings.Repeat("ü", 300), "5.999.999", strings.Repeat("\\x{41}", 500), "\x00",
		strings.Repeat("X-Long: "+strings.Repeat("v", 1200)+"\r\n", 80))
	f.Fuzz(func(t *testing.T, subject, addr, status, diag, envid, headers string) {
		b := mailout.Bounce{
			From: "MAILER-DAEMON@sms.example.com", To: "dana@example.com", MessageID: "b1@sms.example.com",
			Date: date, Subject: subject, OriginalMessageID: "orig@example.com", OriginalEnvelopeID: envid,
			ArrivalDate: date, OriginalHeaders: headers,
			Recipients: []mailout.FailedRecipient{
				{Address: "+" + addr, Status: status, Reason: bridge.ReasonBadNumber, Diagnostic: diag, LastAttempt: date},
				{Address: "+972529876543@sms.example.com", Reason: bridge.ReasonExpired, Diagnostic: diag + diag},
			},
		}
		data, err := mailout.BuildBounce(b)
		if err != nil {
			t.Fatalf("BuildBounce: %v", err)
		}
		d := readDSN(t, data)
		wantKeys := []string{"Auto-Submitted", "Content-Type", "Date", "From", "In-Reply-To", "Message-Id", "Mime-Version", "References", "Subject", "To"}
		if got := keys(d.top); !slices.Equal(got, wantKeys) {
			t.Fatalf("header fields %v, want %v\n%s", got, wantKeys, data)
		}
		wantTypes := []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}
		if d.headers == "" {
			wantTypes = wantTypes[:2]
		}
		if !slices.Equal(d.types, wantTypes) {
			t.Fatalf("parts %v, want %v\n%s", d.types, wantTypes, data)
		}
		if len(d.perRcpt) != 2 {
			t.Fatalf("%d recipient blocks, want 2:\n%s", len(d.perRcpt), d.rawStatus)
		}
		if v := d.perMsg.Values("Reporting-Mta"); len(d.perMsg) > 3 || len(v) != 1 || v[0] != "dns; sms.example.com" {
			t.Fatalf("per-message block %v", d.perMsg)
		}
		for i, rc := range d.perRcpt {
			for _, k := range []string{"Final-Recipient", "Action", "Status"} {
				if len(rc.Values(k)) != 1 {
					t.Fatalf("recipient %d: %s = %q\n%s", i, k, rc.Values(k), d.rawStatus)
				}
			}
			if rc.Get("Action") != "failed" || !strings.HasPrefix(rc.Get("Status"), "5.") {
				t.Fatalf("recipient %d: Action %q, Status %q", i, rc.Get("Action"), rc.Get("Status"))
			}
			if len(rc) > 5 {
				t.Fatalf("recipient %d has fields %v", i, rc)
			}
		}
		for i := 0; i < len(d.rawStatus); i++ {
			if d.rawStatus[i] >= 0x80 {
				t.Fatalf("8-bit delivery-status:\n%s", d.rawStatus)
			}
		}
	})
}
