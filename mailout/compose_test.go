package mailout_test

import (
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout"
)

func TestComposeReplyThreadsForTheWriterOnly(t *testing.T) {
	c := &mailout.Composer{Domain: "sms.example.com", Subject: "SMS from {phone} to {to}", Hostname: "bridge.example.com"}
	conv := &bridge.Conversation{ID: bridge.ConversationID("+972501234567", "+972500000001"), Phone: "+972501234567",
		Our: "+972500000001", ReplyTo: "alice@example.com", MailMessageID: "orig-1@example.com", Subject: "Café plans"}
	in := &bridge.Inbound{ID: "01abc", Provider: "voip", From: "+972501234567", To: "+972500000001", Text: "שלום\r\nBcc: evil@example.com",
		Received: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Conversation: conv.ID}

	out, err := c.Reply(conv, in, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if out.Kind != bridge.MailReply || out.To != "alice@example.com" || out.From != "+972501234567@sms.example.com" || out.Ref != "01abc" {
		t.Errorf("envelope %+v", out)
	}
	e := readMail(t, out.Data)
	h := e.Header
	if got := h.Get("In-Reply-To"); got != "<orig-1@example.com>" {
		t.Errorf("In-Reply-To = %q", got)
	}
	if got, _ := h.Text("Subject"); got != "Re: Café plans" {
		t.Errorf("Subject = %q", got)
	}
	if id, ok := bridge.ConversationOfMailID(h.Get("Message-Id")); !ok || id != conv.ID {
		t.Errorf("Message-ID %q does not name conversation %s", h.Get("Message-Id"), conv.ID)
	}
	if h.Get("Bcc") != "" || !strings.Contains(body(t, e), "Bcc: evil@example.com") {
		t.Errorf("SMS text escaped into the header: Bcc=%q", h.Get("Bcc"))
	}

	// The catch-all has no mail to thread under and gets the plain subject.
	out, err = c.Reply(conv, in, "desk@example.com")
	if err != nil {
		t.Fatal(err)
	}
	h = readMail(t, out.Data).Header
	if h.Get("In-Reply-To") != "" {
		t.Errorf("catch-all mail threads under %q", h.Get("In-Reply-To"))
	}
	if got, _ := h.Text("Subject"); got != "SMS from +972501234567 to +972500000001" {
		t.Errorf("Subject = %q", got)
	}
}

func TestComposeBounce(t *testing.T) {
	c := &mailout.Composer{Domain: "sms.example.com", Hostname: "bridge.example.com"}
	m := &bridge.Message{ID: "01msg", Channel: bridge.ChannelSMTP, EnvelopeFrom: "bounces@example.com", MailMessageID: "orig@example.com",
		Headers: "From: alice@example.com\r\nSubject: Reminder\r\n", Created: time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)}
	out, err := c.Bounce(m, []bridge.Failure{
		{To: "+972501234567", Provider: "p", Reason: bridge.ReasonProviderRejected, Error: "blacklisted", At: m.Created.Add(time.Minute)},
		{To: "phonebook:12", Provider: "p", Reason: bridge.ReasonExpired, Error: "gave up after 24h", At: m.Created.Add(time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.From != "" || out.To != "bounces@example.com" || out.Kind != bridge.MailBounce {
		t.Errorf("envelope from %q to %q kind %s; want the null sender to the envelope sender", out.From, out.To, out.Kind)
	}
	d := readDSN(t, out.Data)
	if len(d.perRcpt) != 2 {
		t.Fatalf("%d recipient blocks", len(d.perRcpt))
	}
	if got := d.perRcpt[0].Get("Final-Recipient"); got != "rfc822; +972501234567@sms.example.com" {
		t.Errorf("Final-Recipient = %q", got)
	}
	if got := d.perRcpt[1].Get("Final-Recipient"); got != "rfc822; phonebook-12@sms.example.com" {
		t.Errorf("Final-Recipient = %q", got)
	}
	if got := d.perRcpt[1].Get("Status"); got != "5.4.7" {
		t.Errorf("expired Status = %q, want 5.4.7", got)
	}
	if !strings.Contains(d.perRcpt[0].Get("Diagnostic-Code"), "blacklisted") {
		t.Errorf("Diagnostic-Code = %q", d.perRcpt[0].Get("Diagnostic-Code"))
	}
	if !strings.Contains(d.headers, "Subject: Reminder") {
		t.Errorf("original headers not attached: %q", d.headers)
	}
}
