package daemon_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/mindcrm/mindcrmtest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// parsedDSN is a delivery-status notification read back: the top header,
// the human part, the message/delivery-status fields (per message, then
// per recipient) and the attachment's type.
type parsedDSN struct {
	header     message.Header
	human      string
	perMessage textproto.MIMEHeader
	recipients []textproto.MIMEHeader
	attached   string
}

// parseDSN reads a multipart/report with go-message and its
// message/delivery-status blocks with net/textproto.
func parseDSN(t *testing.T, data []byte) parsedDSN {
	t.Helper()
	e, err := message.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("reading the DSN: %v\n%s", err, data)
	}
	var d parsedDSN
	d.header = e.Header
	if ct, params, _ := e.Header.ContentType(); ct != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %s %v", ct, params)
	}
	mr := e.MultipartReader()
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.ContentType()
		switch i {
		case 0:
			if ct != "text/plain" {
				t.Fatalf("first part %s", ct)
			}
			d.human = string(body)
		case 1:
			if ct != "message/delivery-status" {
				t.Fatalf("second part %s", ct)
			}
			r := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
			for {
				h, err := r.ReadMIMEHeader()
				if len(h) > 0 {
					if d.perMessage == nil {
						d.perMessage = h
					} else {
						d.recipients = append(d.recipients, h)
					}
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("delivery-status: %v\n%s", err, body)
				}
			}
		default:
			d.attached = ct
		}
	}
	return d
}

// sendDSNMail sends one mail from alice@example.com with ENVID and RET,
// each recipient with NOTIFY and ORCPT (the ORCPT is "orig-<n>@crm.example"
// for the nth), and returns the bridge's message id.
func sendDSNMail(t *testing.T, addr, from, envid string, notify []smtp.DSNNotify, to ...string) string {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, &smtp.MailOptions{EnvelopeID: envid, Return: smtp.DSNReturnHeaders}); err != nil {
		t.Fatal(err)
	}
	for i, rcpt := range to {
		if err := c.Rcpt(rcpt, &smtp.RcptOptions{Notify: notify, OriginalRecipientType: smtp.DSNAddressTypeRFC822,
			OriginalRecipient: fmt.Sprintf("orig-%d@crm.example", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "From: <"+from+">\r\nMessage-ID: <writer-1@example.com>\r\nSubject: Dinner\r\n\r\nAre you coming at 8?\r\n")
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()
	_, id, _ := strings.Cut(resp.StatusText, "queued as ")
	return id
}

// checkDSN checks every field of a success notification for one recipient.
func checkDSN(t *testing.T, m mailtest.Message, to, envid, action, provider string, want map[string]string) {
	t.Helper()
	if m.From != "" || len(m.To) != 1 || m.To[0] != to {
		t.Errorf("envelope %q -> %v; want <> -> %s", m.From, m.To, to)
	}
	d := parseDSN(t, m.Data)
	if got := d.header.Get("In-Reply-To"); got != "<writer-1@example.com>" {
		t.Errorf("In-Reply-To %q", got)
	}
	if got := d.header.Get("References"); got != "<writer-1@example.com>" {
		t.Errorf("References %q", got)
	}
	if got := d.header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted %q", got)
	}
	if got := d.perMessage.Get("Reporting-Mta"); got != "dns; sms.example.com" && !strings.HasPrefix(got, "dns; ") {
		t.Errorf("Reporting-MTA %q", got)
	}
	if got := d.perMessage.Get("Original-Envelope-Id"); got != envid {
		t.Errorf("Original-Envelope-Id %q, want %q", got, envid)
	}
	if d.perMessage.Get("Arrival-Date") == "" {
		t.Error("no Arrival-Date")
	}
	if len(d.recipients) != 1 {
		t.Fatalf("%d recipients in one notification, want 1", len(d.recipients))
	}
	r := d.recipients[0]
	status := "2.0.0"
	if action == "delayed" {
		status = "4.0.0"
	}
	if r.Get("Action") != action || r.Get("Status") != status || r.Get("X-Sms-Provider") != provider {
		t.Errorf("Action %q Status %q provider %q; want %s %s %s", r.Get("Action"), r.Get("Status"), r.Get("X-Sms-Provider"), action, status, provider)
	}
	if _, err := time.Parse("Mon, 02 Jan 2006 15:04:05 -0700", r.Get("Last-Attempt-Date")); err != nil {
		t.Errorf("Last-Attempt-Date: %v", err)
	}
	for k, v := range want {
		if got := r.Get(k); got != v {
			t.Errorf("%s %q, want %q", k, got, v)
		}
	}
	if d.attached != "text/rfc822-headers" {
		t.Errorf("attached %q, want the headers (RET=HDRS)", d.attached)
	}
	switch action {
	case "delivered":
		if !strings.Contains(d.human, "carrier reported") {
			t.Errorf("the explanation does not say whose word it is:\n%s", d.human)
		}
	case "relayed":
		if !strings.Contains(d.human, "does not report delivery") {
			t.Errorf("the explanation does not say there will be no report:\n%s", d.human)
		}
	}
}

// byRecipient orders captured notifications by their Final-Recipient.
func byRecipient(t *testing.T, msgs []mailtest.Message) map[string]mailtest.Message {
	t.Helper()
	out := map[string]mailtest.Message{}
	for _, m := range msgs {
		d := parseDSN(t, m.Data)
		for _, r := range d.recipients {
			out[strings.TrimPrefix(r.Get("Final-Recipient"), "rfc822; ")] = m
		}
	}
	return out
}

var successDelay = []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyDelayed}

// TestDSNDeliveredVoipcom: NOTIFY=SUCCESS,DELAY with ENVID and ORCPT; the
// provider's delivery callback for each recipient yields one "delivered"
// notification each, with the provider's message id; a repeated callback
// mails nothing more.
func TestDSNDeliveredVoipcom(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001", "972500000002")
	d := start(t, voipTwoWayConfig(fake.URL, capture.Addr()))
	id := sendDSNMail(t, d.SMTPAddr(), "alice@example.com", "ENV+voip-1", successDelay,
		"0501234567@sms.example.com", "0501234568@sms.example.com")
	var m *bridge.Message
	eventually(t, 5*time.Second, "both sent", func() bool {
		var err error
		m, err = d.Store().Message(t.Context(), id)
		return err == nil && m.Recipients[0].State == bridge.StateSent && m.Recipients[1].State == bridge.StateSent
	})
	for range 2 { // the provider retries its callback: still one notification each
		for _, r := range m.Recipients {
			st := url.Values{"smsid": {r.ProviderID}, "to": {strings.TrimPrefix(r.To, "+")}, "status": {"DELIVRD"}}
			if code, _ := postCallback(t, fake, d, "/v1/providers/voip/status", callbackSecret, st); code != 200 {
				t.Fatalf("status callback: %d", code)
			}
		}
	}
	msgs, err := capture.Wait(ctx15(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	got := byRecipient(t, msgs)
	for i, r := range m.Recipients {
		checkDSN(t, got[r.To+"@sms.example.com"], "alice@example.com", "ENV+voip-1", "delivered", "voip", map[string]string{
			"Original-Recipient":        fmt.Sprintf("rfc822; orig-%d@crm.example", i+1),
			"Final-Recipient":           "rfc822; " + r.To + "@sms.example.com",
			"X-Sms-Provider-Message-Id": r.ProviderID,
		})
	}
	// Nothing more comes: the mail worker has delivered what was queued
	// (the outbox is empty) and the capture holds two.
	eventually(t, 5*time.Second, "the outbox drained", func() bool {
		st, err := d.Store().MailStats(t.Context())
		return err == nil && st.Queued == 0
	})
	if n := len(capture.Messages()); n != 2 {
		t.Errorf("%d notifications, want 2 (one per recipient, however often the provider reports)", n)
	}
	// The conversation log says what was mailed about each SMS.
	for _, r := range m.Recipients {
		c, err := d.Store().LatestConversation(t.Context(), r.To, "", "voip")
		if err != nil {
			t.Fatal(err)
		}
		log, err := d.Store().ConversationLog(t.Context(), c.ID, 10)
		if err != nil || len(log) != 1 || log[0].Notified != "delivered" {
			t.Errorf("conversation log of %s: %+v, %v; want the SMS, notified delivered", r.To, log, err)
		}
	}
}

// TestDSNDeliveredIPPanel: the same through IPPanel's polled report.
func TestDSNDeliveredIPPanel(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	fake := ippaneltest.NewServer(t, "tok-7f3a9d", "+983000505")
	d := start(t, ippanelTwoWayConfig(fake.URL, capture.Addr()))
	id := sendDSNMail(t, d.SMTPAddr(), "orders@shop.example", "ENV-edge-1", successDelay,
		"09120000001@sms.example.com", "09120000002@sms.example.com")
	var m *bridge.Message
	eventually(t, 5*time.Second, "both sent", func() bool {
		var err error
		m, err = d.Store().Message(t.Context(), id)
		return err == nil && m.Recipients[0].State == bridge.StateSent && m.Recipients[1].State == bridge.StateSent
	})
	for _, r := range m.Recipients {
		var bulk int64
		fmt.Sscan(r.ProviderID, &bulk)
		fake.SetStatus(bulk, r.To, 2)
	}
	msgs, err := capture.Wait(ctx15(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	got := byRecipient(t, msgs)
	for i, r := range m.Recipients {
		checkDSN(t, got[r.To+"@sms.example.com"], "orders@shop.example", "ENV-edge-1", "delivered", "edge", map[string]string{
			"Original-Recipient":        fmt.Sprintf("rfc822; orig-%d@crm.example", i+1),
			"X-Sms-Provider-Message-Id": r.ProviderID,
		})
	}
}

func mindcrmDSNConfig(url, smarthost string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[replies]
smarthost = %q
[[accounts]]
name = "clinic"
emails = ["desk@clinic.example"]
sender_ids = ["Clinic"]
[[providers]]
name = "crm"
type = "mindcrm"
base_url = %q
user_id = 42
[[routes]]
prefix = "+972"
provider = "crm"
`, smarthost, url)
}

// TestDSNRelayedMindCRM: MindCRM reports no delivery, so NOTIFY=SUCCESS is
// answered "relayed" when it takes the SMS.
func TestDSNRelayedMindCRM(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	fake := mindcrmtest.NewServer(t)
	d := start(t, mindcrmDSNConfig(fake.URL, capture.Addr()))
	id := sendDSNMail(t, d.SMTPAddr(), "desk@clinic.example", "ENV-crm-1", successDelay, "0521234567@sms.example.com")
	msgs, err := capture.Wait(ctx15(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := d.Store().Message(t.Context(), id)
	if err != nil || m.Recipients[0].Notified != "relayed" {
		t.Errorf("recorded notifications %q, %v; want relayed", m.Recipients[0].Notified, err)
	}
	checkDSN(t, msgs[0], "desk@clinic.example", "ENV-crm-1", "relayed", "crm", map[string]string{
		"Original-Recipient": "rfc822; orig-1@crm.example",
		"Final-Recipient":    "rfc822; +972521234567@sms.example.com",
	})
}

// downConfig routes to a voip-communications that is not there: every
// attempt fails temporarily.
func downConfig(smarthost, extra string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[replies]
smarthost = %q
retry_min = "100ms"
retry_max = "200ms"
[queue]
retry_min = "50ms"
retry_max = "100ms"
max_age = "1h"
%s
[[accounts]]
name = "alice"
emails = ["alice@example.com"]
sender_ids = ["972500000001"]
[[providers]]
name = "voip"
type = "voipcom"
base_url = "http://%s"
api_key = "key"
api_password = "pw-voip"
numbers = ["972500000001"]
[[routes]]
prefix = "+972"
provider = "voip"
`, smarthost, extra, addr)
}

// TestDSNDelayedOnce: a provider down past queue.delay_warning yields
// exactly one "delayed" notification per recipient that asked, with
// Will-Retry-Until, however many attempts follow; NOTIFY=NEVER and
// NOTIFY=FAILURE recipients of the same mail get none.
func TestDSNDelayedOnce(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	d := start(t, downConfig(capture.Addr(), `delay_warning = "1s"`))
	id := sendDSNMail(t, d.SMTPAddr(), "alice@example.com", "ENV-down-1", successDelay, "0501234567@sms.example.com")
	never := sendDSNMail(t, d.SMTPAddr(), "alice@example.com", "ENV-down-2", []smtp.DSNNotify{smtp.DSNNotifyNever}, "0501234568@sms.example.com")
	failure := sendDSNMail(t, d.SMTPAddr(), "alice@example.com", "ENV-down-3", []smtp.DSNNotify{smtp.DSNNotifyFailure}, "0501234569@sms.example.com")
	msgs, err := capture.Wait(ctx15(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := d.Store().Message(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	checkDSN(t, msgs[0], "alice@example.com", "ENV-down-1", "delayed", "voip", map[string]string{
		"Original-Recipient": "rfc822; orig-1@crm.example",
		"Will-Retry-Until":   m.Created.Add(time.Hour).Format("Mon, 02 Jan 2006 15:04:05 -0700"),
	})
	if d := parseDSN(t, msgs[0].Data); !strings.HasPrefix(d.recipients[0].Get("Diagnostic-Code"), "smtp; ") {
		t.Errorf("Diagnostic-Code %q: the last error is not given", d.recipients[0].Get("Diagnostic-Code"))
	}
	// Three more attempts at every recipient after the notification:
	// still one, and none for the others.
	after := map[string]int{}
	for _, mid := range []string{id, never, failure} {
		m, _ := d.Store().Message(t.Context(), mid)
		after[mid] = m.Recipients[0].Attempts
	}
	eventually(t, 15*time.Second, "three more attempts each", func() bool {
		for _, mid := range []string{id, never, failure} {
			m, err := d.Store().Message(t.Context(), mid)
			if err != nil || m.Recipients[0].Attempts < after[mid]+3 {
				return false
			}
		}
		return true
	})
	eventually(t, 5*time.Second, "the outbox drained", func() bool {
		st, err := d.Store().MailStats(t.Context())
		return err == nil && st.Queued == 0
	})
	if got := capture.Messages(); len(got) != 1 {
		t.Errorf("%d notifications, want 1", len(got))
	}
	if m, _ := d.Store().Message(t.Context(), id); !m.Recipients[0].DelayNotified || m.Recipients[0].Notified != "delayed" {
		t.Errorf("the delay notification is not recorded: %v %q", m.Recipients[0].DelayNotified, m.Recipients[0].Notified)
	}
	for _, mid := range []string{never, failure} {
		if m, _ := d.Store().Message(t.Context(), mid); m.Recipients[0].Notified != "" {
			t.Errorf("notified %q for a recipient that did not ask", m.Recipients[0].Notified)
		}
	}
}

// TestDSNNeverOnFailure: NOTIFY=NEVER gets nothing even when the SMS fails
// for good; the same failure with NOTIFY absent bounces (the default).
func TestDSNNeverOnFailure(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001", "972500000002")
	fake.FailRecipient("972501234567", 400, "number is blacklisted")
	fake.FailRecipient("972501234568", 400, "number is blacklisted")
	d := start(t, voipTwoWayConfig(fake.URL, capture.Addr()))
	never := sendDSNMail(t, d.SMTPAddr(), "alice@example.com", "ENV-never", []smtp.DSNNotify{smtp.DSNNotifyNever}, "0501234567@sms.example.com")
	bounced := sendDSNMail(t, d.SMTPAddr(), "alice@example.com", "ENV-default", nil, "0501234568@sms.example.com")
	eventually(t, 5*time.Second, "both failed", func() bool {
		a, err1 := d.Store().Message(t.Context(), never)
		b, err2 := d.Store().Message(t.Context(), bounced)
		return err1 == nil && err2 == nil && a.Recipients[0].State == bridge.StateFailed && b.Recipients[0].State == bridge.StateFailed
	})
	msgs, err := capture.Wait(ctx15(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the outbox drained", func() bool {
		st, err := d.Store().MailStats(t.Context())
		return err == nil && st.Queued == 0
	})
	if n := len(capture.Messages()); n != 1 {
		t.Fatalf("%d notifications, want only the default's bounce", n)
	}
	for mid, want := range map[string]string{never: "", bounced: "failed"} {
		if m, _ := d.Store().Message(t.Context(), mid); m.Recipients[0].Notified != want {
			t.Errorf("notified %q, want %q", m.Recipients[0].Notified, want)
		}
	}
	p := parseDSN(t, msgs[0].Data)
	if p.perMessage.Get("Original-Envelope-Id") != "ENV-default" || p.recipients[0].Get("Action") != "failed" ||
		p.recipients[0].Get("Original-Recipient") != "rfc822; orig-1@crm.example" {
		t.Errorf("bounce: %v %v", p.perMessage, p.recipients)
	}
}
