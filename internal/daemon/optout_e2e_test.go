package daemon_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

const (
	optoutPhone  = "+17136641234"
	optoutDigits = "17136641234"
	optoutOps    = "ops-token-optout"
	optoutOther  = "other-token-optout"
)

// optoutConfig: ops writes from a voip-communications number, and from an
// alphanumeric ID that voip-communications refuses, so those SMS fall
// over to a provider that does not schedule natively: a scheduled one
// waits in our queue. An opt-out covers the account (scope).
func optoutConfig(voipURL, smarthost string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[replies]
smarthost = %q
retry_min = "100ms"
retry_max = "200ms"
[consent]
scope = "account"
confirmation = "Unsubscribed from Acme. Reply START to resubscribe."
opt_in_confirmation = "Welcome back to Acme."
[[accounts]]
name = "ops"
emails = ["ops@example.com"]
sender_ids = ["+17134567890", "Acme"]
api_token_sha256 = %q
help_text = "Acme alerts. Reply STOP to stop, START to resume."
[[accounts]]
name = "other"
emails = ["x@other.example"]
sender_ids = ["Other"]
api_token_sha256 = %q
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "k"
api_password = "p"
numbers = ["+17134567890"]
inbound_secret = %q
[[providers]]
name = "held"
type = "console"
[[routes]]
prefix = "+1"
provider = "voip"
fallback = ["held"]
`, smarthost, sha(optoutOps), sha(optoutOther), voipURL, callbackSecret)
}

func inboundSMS(t *testing.T, fake *voipcomtest.Server, d interface{ HTTPAddr() string }, id, text string) {
	t.Helper()
	form := url.Values{"from": {optoutDigits}, "to": {"17134567890"}, "msg": {text}, "smsid": {id}}
	if code, body := postCallback(t, fake, d, "/v1/providers/voip/inbound", callbackSecret, form); code != 200 || body["duplicate"] != false {
		t.Fatalf("inbound %q: %d %v", text, code, body)
	}
}

// sentTo returns the voip-communications sends to the phone.
func sentTo(fake *voipcomtest.Server) []url.Values {
	var out []url.Values
	for _, r := range fake.Requests() {
		if r.Form.Get("to") == optoutDigits {
			out = append(out, r.Form)
		}
	}
	return out
}

func TestOptOutEndToEnd(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{STARTTLS: false})
	fake := voipcomtest.NewServer(t, "k", "p", "17134567890")
	d := start(t, optoutConfig(fake.URL, capture.Addr()))
	base := "http://" + d.HTTPAddr()
	to := []string{optoutPhone + "@sms.example.com"}

	// ops writes to the phone, and schedules an SMS for tomorrow from
	// its alphanumeric ID (held in our queue).
	if _, err := sendMail(t, d.SMTPAddr(), "ops@example.com", to,
		"From: Ops <ops@example.com>\nMessage-ID: <w-1@example.com>\nSubject: Maintenance\n\nThe site is down tonight.\n"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the first SMS", func() bool { return len(sentTo(fake)) == 1 })
	tomorrow := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	reply, err := sendMail(t, d.SMTPAddr(), "ops@example.com", to,
		"From: ops@example.com\nX-SMS-Sender: Acme\nX-SMS-Send-At: "+tomorrow+"\n\nReminder: maintenance tonight.\n")
	if err != nil {
		t.Fatal(err)
	}
	_, scheduledID, _ := strings.Cut(reply, "queued as ")
	if m, err := d.Store().Message(t.Context(), scheduledID); err != nil || m.Recipients[0].State != bridge.StateQueued || m.Recipients[0].Provider != "held" {
		t.Fatalf("scheduled message: %+v, %v; want queued for held", m, err)
	}

	// The phone sends "stop" (lower case, padded).
	inboundSMS(t, fake, d, "in-stop", "  stop\n")

	// The confirmation goes out through the same provider, from the
	// number the phone wrote to.
	eventually(t, 5*time.Second, "the confirmation SMS", func() bool { return len(sentTo(fake)) == 2 })
	if f := sentTo(fake)[1]; f.Get("from") != "17134567890" || f.Get("msg") != "Unsubscribed from Acme. Reply START to resubscribe." {
		t.Errorf("confirmation sent as from=%q msg=%q", f.Get("from"), f.Get("msg"))
	}
	// The writer is told, in the conversation's thread.
	msgs, err := capture.Wait(ctx5(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].To[0] != "ops@example.com" {
		t.Errorf("opt-out mailed to %v, want the writer", msgs[0].To)
	}
	h, text := readMailText(t, msgs[0].Data)
	if h.Get("X-SMS-Consent") == "" || !strings.Contains(text, "opted out") || !strings.Contains(text, "stop") {
		t.Errorf("writer's mail: X-SMS-Consent %q, text %q; want the opt-out said", h.Get("X-SMS-Consent"), text)
	}
	// The scheduled send is cancelled, not sent.
	m, err := d.Store().Message(t.Context(), scheduledID)
	if err != nil || m.Recipients[0].State != bridge.StateCancelled || !strings.Contains(m.Recipients[0].Error, "opted out") {
		t.Errorf("scheduled send after STOP: %+v, %v; want cancelled, saying why", m.Recipients, err)
	}

	// The next mail is refused at RCPT, naming the reason; nothing queued.
	_, err = sendMail(t, d.SMTPAddr(), "ops@example.com", to, "From: ops@example.com\n\nAre you there?\n")
	if code, enh := smtpCode(err); code != 550 || enh != "5.7.1" || !strings.Contains(err.Error(), "opted out") {
		t.Errorf("mail after STOP: %v, want 550 5.7.1 naming the opt-out", err)
	}
	// Over HTTP: 422 naming to[1].
	r := call(t, "POST", base+"/v1/messages", optoutOps, `{"to": ["+17136641299", "`+optoutPhone+`"], "text": "hi"}`)
	errs, _ := r.Body["errors"].([]any)
	if r.Status != 422 || len(errs) != 1 || errs[0].(map[string]any)["field"] != "to[1]" || errs[0].(map[string]any)["reason"] != "opted_out" {
		t.Errorf("HTTP send after STOP: %d %v, want 422 to[1]: opted_out", r.Status, r.Body)
	}
	// An alert hook pages the others and notes the phone it skipped.
	am, err := os.ReadFile("../../webhook/alerts/testdata/alertmanager_firing.json")
	if err != nil {
		t.Fatal(err)
	}
	r = call(t, "POST", base+"/v1/hooks/alertmanager?to=+17136641299,"+url.QueryEscape(optoutPhone), optoutOps, string(am))
	skipped, _ := r.Body["skipped"].([]any)
	rcpts, _ := r.Body["recipients"].([]any)
	if r.Status != 202 || len(rcpts) != 1 || len(skipped) != 1 || skipped[0].(map[string]any)["field"] != "to[1]" ||
		skipped[0].(map[string]any)["reason"] != "opted_out" {
		t.Errorf("alert after STOP: %d %v, want 202 to the other number, to[1] skipped", r.Status, r.Body)
	}
	if r := call(t, "POST", base+"/v1/hooks/alertmanager?to="+url.QueryEscape(optoutPhone), optoutOps, string(am)); r.Status != 422 || r.Body["reason"] != "opted_out" {
		t.Errorf("alert to the opted-out phone alone: %d %v, want 422 opted_out", r.Status, r.Body)
	}

	// The list and its history show who, when and why.
	r = call(t, "GET", base+"/v1/suppressions", optoutOps, "")
	list, _ := r.Body["suppressions"].([]any)
	if r.Status != 200 || len(list) != 1 {
		t.Fatalf("GET /v1/suppressions: %d %v", r.Status, r.Body)
	}
	if s := list[0].(map[string]any); s["phone"] != optoutPhone || s["scope"] != "account" || s["account"] != "ops" ||
		s["source"] != "sms" || s["by"] != optoutPhone || !strings.Contains(s["reason"].(string), "stop") {
		t.Errorf("suppression %v", s)
	}
	if r := call(t, "GET", base+"/v1/suppressions", optoutOther, ""); len(r.Body["suppressions"].([]any)) != 0 {
		t.Errorf("another account sees ops' suppressions: %v", r.Body)
	}

	// HELP answers the account's help text, and changes nothing.
	inboundSMS(t, fake, d, "in-help", "ＨＥＬＰ")
	eventually(t, 5*time.Second, "the help SMS", func() bool { return len(sentTo(fake)) == 3 })
	if f := sentTo(fake)[2]; f.Get("msg") != "Acme alerts. Reply STOP to stop, START to resume." || f.Get("from") != "17134567890" {
		t.Errorf("help answer: from=%q msg=%q", f.Get("from"), f.Get("msg"))
	}

	// START lifts it: confirmed, and mail is accepted again.
	inboundSMS(t, fake, d, "in-start", "START")
	eventually(t, 5*time.Second, "the opt-in confirmation", func() bool { return len(sentTo(fake)) == 4 })
	if f := sentTo(fake)[3]; f.Get("msg") != "Welcome back to Acme." {
		t.Errorf("opt-in confirmation %q", f.Get("msg"))
	}
	if _, err := sendMail(t, d.SMTPAddr(), "ops@example.com", to, "From: ops@example.com\n\nWelcome back.\n"); err != nil {
		t.Errorf("mail after START: %v", err)
	}
	eventually(t, 5*time.Second, "the SMS after START", func() bool { return len(sentTo(fake)) == 5 })

	// The same over the HTTP API: ops adds a suppression for its number
	// (an import), which refuses mail at RCPT; another account cannot
	// remove it; ops removes it and mail goes again.
	r = call(t, "POST", base+"/v1/suppressions", optoutOps, `{"phone": "`+optoutPhone+`", "number": "+17134567890", "reason": "imported from the CRM"}`)
	if r.Status != http.StatusCreated || r.Body["scope"] != "number" || r.Body["by"] != "ops" || r.Body["source"] != "api" {
		t.Fatalf("POST /v1/suppressions: %d %v", r.Status, r.Body)
	}
	_, err = sendMail(t, d.SMTPAddr(), "ops@example.com", to, "From: ops@example.com\n\nHello?\n")
	if code, enh := smtpCode(err); code != 550 || enh != "5.7.1" || !strings.Contains(err.Error(), "imported from the CRM") {
		t.Errorf("mail after the API suppression: %v, want 550 5.7.1 with its reason", err)
	}
	q := "?phone=" + url.QueryEscape(optoutPhone) + "&number=" + url.QueryEscape("+17134567890") + "&reason=consent+found"
	if r := call(t, "DELETE", base+"/v1/suppressions"+q, optoutOther, ""); r.Status != 403 {
		t.Errorf("another account's DELETE: %d %v, want 403", r.Status, r.Body)
	}
	if r := call(t, "DELETE", base+"/v1/suppressions"+q, optoutOps, ""); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %v", r.Status, r.Body)
	}
	if r := call(t, "DELETE", base+"/v1/suppressions"+q, optoutOps, ""); r.Status != 404 {
		t.Errorf("second DELETE: %d, want 404", r.Status)
	}
	if r := call(t, "POST", base+"/v1/messages", optoutOps, `{"to": ["`+optoutPhone+`"], "text": "hello again"}`); r.Status != 202 {
		t.Errorf("HTTP send after DELETE: %d %v", r.Status, r.Body)
	}
	// Every change is kept: SMS add and remove, API add and remove.
	r = call(t, "GET", base+"/v1/suppressions/history?phone="+url.QueryEscape(optoutPhone), optoutOps, "")
	events, _ := r.Body["events"].([]any)
	var got []string
	for _, e := range events {
		e := e.(map[string]any)
		got = append(got, fmt.Sprint(e["action"], " ", e["source"], " ", e["by"]))
	}
	want := []string{"remove api ops", "add api ops", "remove sms " + optoutPhone, "add sms " + optoutPhone}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("history %v, want %v", got, want)
	}
}
