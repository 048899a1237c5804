package mailout_test

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout"
)

func notice(action bridge.Action) mailout.Notice {
	b := bounce()
	return mailout.Notice{Action: action, From: b.From, To: b.To, ReportingMTA: b.ReportingMTA, MessageID: "n-1@sms.example.com",
		Date: date, Subject: "Dinner", OriginalMessageID: b.OriginalMessageID, OriginalEnvelopeID: "ENV 1\x00",
		ArrivalDate: b.ArrivalDate, OriginalHeaders: b.OriginalHeaders,
		Recipients: []mailout.NoticeRecipient{{Address: "+972501234567@sms.example.com", ORCPT: "utf-8;dána@example.com",
			Provider: "voip", ProviderID: "sms-77\r\nX-Evil: 1", Detail: "DELIVRD", At: date,
			WillRetryUntil: map[bridge.Action]time.Time{bridge.ActionDelayed: date.Add(time.Hour)}[action]}}}
}

// Every action's notification is a multipart/report whose fields are
// exact, US-ASCII and uninjectable, and which threads under the original.
func TestBuildNotice(t *testing.T) {
	for action, want := range map[bridge.Action]struct{ status, subject, says string }{
		bridge.ActionDelivered: {"2.0.0", "Delivered as SMS: Dinner", "carrier reported"},
		bridge.ActionRelayed:   {"2.0.0", "Relayed as SMS: Dinner", "does not report delivery"},
		bridge.ActionDelayed:   {"4.0.0", "Delayed SMS: Dinner", "warning only"},
	} {
		t.Run(string(action), func(t *testing.T) {
			data, err := mailout.BuildNotice(notice(action))
			if err != nil {
				t.Fatal(err)
			}
			d := readDSN(t, data)
			if !slices.Equal(d.types, []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}) {
				t.Errorf("parts %v", d.types)
			}
			if s, _ := d.top.Text("Subject"); s != want.subject {
				t.Errorf("Subject %q", s)
			}
			if d.top.Get("In-Reply-To") != "<orig-2@mail.example.com>" || d.top.Get("References") != "<orig-2@mail.example.com>" {
				t.Errorf("threading: %q %q", d.top.Get("In-Reply-To"), d.top.Get("References"))
			}
			if !strings.Contains(d.human, want.says) {
				t.Errorf("human part:\n%s", d.human)
			}
			if d.perMsg.Get("Original-Envelope-Id") != "ENV1" || d.perMsg.Get("Reporting-Mta") != "dns; mx.sms.example.com" {
				t.Errorf("per message: %v", d.perMsg)
			}
			r := d.perRcpt[0]
			wantFields := map[string]string{
				"Original-Recipient":        `utf-8; d\x{E1}na@example.com`,
				"Final-Recipient":           "rfc822; +972501234567@sms.example.com",
				"Action":                    string(action),
				"Status":                    want.status,
				"Last-Attempt-Date":         date.Format("Mon, 02 Jan 2006 15:04:05 -0700"),
				"X-Sms-Provider":            "voip",
				"X-Sms-Provider-Message-Id": "sms-77X-Evil:1",
			}
			if action == bridge.ActionDelayed {
				wantFields["Will-Retry-Until"] = date.Add(time.Hour).Format("Mon, 02 Jan 2006 15:04:05 -0700")
				wantFields["Diagnostic-Code"] = "smtp; DELIVRD"
			}
			for k, v := range wantFields {
				if r.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, r.Get(k), v)
				}
			}
			if r.Get("X-Evil") != "" || d.top.Get("X-Evil") != "" {
				t.Error("a provider id injected a field")
			}
		})
	}
	bad := notice("opened")
	if _, err := mailout.BuildNotice(bad); bridge.ReasonOf(err) != bridge.ReasonInvalid {
		t.Errorf("unknown action: %v", err)
	}
}

// RET=FULL attaches the original rebuilt from its kept headers and text
// as message/rfc822 and says so; RET=HDRS (and FULL with non-ASCII
// headers, which would not stay 7-bit) attaches the headers.
func TestBounceReturnFull(t *testing.T) {
	b := bounce()
	b.Return, b.OriginalText = bridge.ReturnFull, "Your appointment is at 9.\nשלום"
	b.OriginalHeaders = "From: Dana <dana@example.com>\r\nSubject: Appointment\r\nContent-Type: multipart/alternative; boundary=x\r\nMIME-Version: 1.0\r\n"
	data, err := mailout.BuildBounce(b)
	if err != nil {
		t.Fatal(err)
	}
	d := readDSN(t, data)
	if !slices.Equal(d.types, []string{"text/plain", "message/delivery-status", "message/rfc822"}) {
		t.Fatalf("parts %v", d.types)
	}
	if !strings.Contains(d.human, "rebuilt from its headers and its text") {
		t.Errorf("the explanation does not say the copy is rebuilt:\n%s", d.human)
	}
	if bytes.ContainsFunc(data, func(r rune) bool { return r > 0x7e }) {
		t.Error("the bounce is not 7-bit")
	}
	e := readMail(t, data)
	mr := e.MultipartReader()
	var inner *message.Entity
	for i := 0; i < 3; i++ {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if inner, err = message.Read(p.Body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ct, _, _ := inner.Header.ContentType(); ct != "text/plain" || inner.Header.Get("Subject") != "Appointment" {
		t.Errorf("attached: %s, subject %q", ct, inner.Header.Get("Subject"))
	}
	text, _ := io.ReadAll(inner.Body)
	if got := strings.ReplaceAll(string(text), "\r\n", "\n"); got != b.OriginalText {
		t.Errorf("attached text %q", got)
	}

	b.OriginalHeaders = "Subject: שלום\r\n"
	if data, err = mailout.BuildBounce(b); err != nil {
		t.Fatal(err)
	}
	if d := readDSN(t, data); d.types[2] != "text/rfc822-headers" || !strings.Contains(d.human, "Its headers are attached") {
		t.Errorf("non-ASCII headers with FULL: %v\n%s", d.types, d.human)
	}
}

// A bounce echoes each recipient's ORCPT as Original-Recipient.
func TestBounceOriginalRecipient(t *testing.T) {
	b := bounce()
	b.Recipients[0].ORCPT = "rfc822;crm-42@example.com"
	data, err := mailout.BuildBounce(b)
	if err != nil {
		t.Fatal(err)
	}
	d := readDSN(t, data)
	if got := d.perRcpt[0].Get("Original-Recipient"); got != "rfc822; crm-42@example.com" {
		t.Errorf("Original-Recipient %q", got)
	}
	if got := d.perRcpt[1].Get("Original-Recipient"); got != "" {
		t.Errorf("Original-Recipient %q for a recipient without ORCPT", got)
	}
}
