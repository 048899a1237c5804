package daemon_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// repliesConfig is one account on *@localhost sending through a voipcom
// fake, with replies mailed to smarthost. smtpExtra is added to [smtp],
// extra to the account.
func repliesConfig(fakeURL, smarthost, smtpExtra, extra string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
%s
[replies]
smarthost = %q
retry_min = "100ms"
retry_max = "200ms"
[[accounts]]
name = "local"
emails = ["*@localhost"]
sender_ids = ["972500000001"]
api_token_sha256 = %q
%s
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "key"
api_password = "pw-voip"
numbers = ["972500000001"]
inbound_secret = %q
[[routes]]
prefix = "+972"
provider = "voip"
`, smtpExtra, smarthost, sha(aliceToken), extra, fakeURL, callbackSecret)
}

// phoneAnswers mails msg from envelope ops@localhost to the phone, waits
// until the SMS is recorded as sent, has the phone answer through the
// provider's callback, and returns the envelope recipients of the reply
// mail.
func phoneAnswers(t *testing.T, extra, msg string) []string {
	t.Helper()
	capture := mailtest.Start(t, mailtest.Options{})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001")
	d := start(t, repliesConfig(fake.URL, capture.Addr(), "", extra))
	reply, err := sendMail(t, d.SMTPAddr(), "ops@localhost", []string{"0501234567@sms.example.com"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	_, id, _ := strings.Cut(reply, "queued as ")
	eventually(t, 5*time.Second, "the SMS recorded as sent", func() bool {
		m, err := d.Store().Message(t.Context(), id)
		return err == nil && m.Recipients[0].State == bridge.StateSent
	})
	form := url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {"the code is 4711"}, "smsid": {"in-1"}}
	if code, body := postCallback(t, fake, d, "/v1/providers/voip/inbound", callbackSecret, form); code != 200 {
		t.Fatalf("callback: %d %v", code, body)
	}
	msgs, err := capture.Wait(ctx5(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	return msgs[0].To
}

// A mail's Reply-To is whatever its writer typed. Honouring any of them
// let a client of the account (or anyone who could reach the port) have
// the phone's answers, one-time codes and all, mailed to themselves.
// Replies go to the envelope sender unless the header names one of the
// account's addresses.
func TestAttackReplyToOutsideAccount(t *testing.T) {
	to := phoneAnswers(t, "", "From: Boss <boss@evil.example>\nReply-To: attacker@evil.example\nSubject: code\n\nSend me the code\n")
	if len(to) != 1 || to[0] != "ops@localhost" {
		t.Fatalf("the phone's answer was mailed to %v, want only the envelope sender ops@localhost", to)
	}
}

// The account's own addresses in Reply-To are honoured, as before.
func TestAttackReplyToOwnAddress(t *testing.T) {
	to := phoneAnswers(t, "", "From: ops@localhost\nReply-To: desk@localhost\nSubject: x\n\nping\n")
	if len(to) != 1 || to[0] != "desk@localhost" {
		t.Fatalf("the phone's answer was mailed to %v, want the Reply-To desk@localhost", to)
	}
}

// reply_to extends where answers may go: a partner's helpdesk.
func TestAttackReplyToAllowList(t *testing.T) {
	to := phoneAnswers(t, `reply_to = ["*@partner.example"]`,
		"From: ops@localhost\nReply-To: Help Desk <desk@partner.example>\nSubject: x\n\nping\n")
	if len(to) != 1 || to[0] != "desk@partner.example" {
		t.Fatalf("the phone's answer was mailed to %v, want the allowed Reply-To desk@partner.example", to)
	}
}

// The HTTP API's reply_to obeys the same rule, with a 422 naming it.
func TestAttackHTTPReplyTo(t *testing.T) {
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001")
	d := start(t, repliesConfig(fake.URL, "", "", `reply_to = ["*@partner.example"]`))
	base := "http://" + d.HTTPAddr() + "/v1/messages"

	r := call(t, "POST", base, aliceToken, `{"to":"0501234567","text":"hi","reply_to":"attacker@evil.example"}`)
	if r.Status != 422 || r.Body["field"] != "reply_to" {
		t.Fatalf("reply_to outside the account: %d %v, want 422 naming reply_to", r.Status, r.Body)
	}
	var ids []string
	for _, ok := range []string{"ops@localhost", "desk@partner.example"} {
		r := call(t, "POST", base, aliceToken, fmt.Sprintf(`{"to":"0501234567","text":"hi","reply_to":%q}`, ok))
		if r.Status != 202 {
			t.Fatalf("reply_to %s: %d %v, want 202", ok, r.Status, r.Body)
		}
		ids = append(ids, r.Body["id"].(string))
	}
	// Once both allowed messages are sent, an empty queue shows that the
	// refused one was never stored.
	eventually(t, 5*time.Second, "the two allowed sends recorded", func() bool {
		for _, id := range ids {
			if m, err := d.Store().Message(t.Context(), id); err != nil || m.Recipients[0].State != bridge.StateSent {
				return false
			}
		}
		return true
	})
	if st, err := d.Store().Stats(t.Context()); err != nil || st.Queued != 0 || len(fake.Requests()) != 2 {
		t.Fatalf("after the refusal: queue %+v (%v), %d provider calls; want nothing of the refused send", st, err, len(fake.Requests()))
	}
}

// An authenticated session once sent with any MAIL FROM, and a failure
// was bounced there: the bridge mailed a stranger of the client's
// choosing. Either the envelope sender is refused, or no bounce goes out.
func TestAttackBounceToStranger(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001")
	fake.FailRecipient("972501234567", 400, "number is blacklisted")
	cert, key := writeCert(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	d := start(t, repliesConfig(fake.URL, capture.Addr(),
		fmt.Sprintf("tls_cert = %q\ntls_key = %q\ntls_listen = \"127.0.0.1:0\"", cert, key),
		fmt.Sprintf("smtp_password_hash = %q", hash)))

	c, err := smtp.DialTLS(d.SMTPTLSAddr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "local", "s3cret pass")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail("victim@elsewhere.example", nil); err != nil {
		if code, ec := smtpCode(err); code != 550 || ec != "5.7.1" {
			t.Fatalf("MAIL FROM a stranger: %v, want accepted (no bounce) or 550 5.7.1", err)
		}
		return // refused at MAIL: nobody can be bounced to
	}
	if err := c.Rcpt("0501234567@sms.example.com", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "Subject: x\r\n\r\nhello\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		if code, _ := smtpCode(err); code != 550 && code != 554 {
			t.Fatalf("DATA: %v", err)
		}
		return // refused: nothing to bounce
	}
	_, id, _ := strings.Cut(resp.StatusText, "queued as ")
	// A bounce is queued in the transaction that records the failure, so
	// once the recipient has failed and the mail queue is empty, any
	// bounce has reached the smarthost.
	eventually(t, 5*time.Second, "the recipient failed", func() bool {
		m, err := d.Store().Message(t.Context(), id)
		return err == nil && m.Recipients[0].State == bridge.StateFailed
	})
	eventually(t, 5*time.Second, "an empty mail queue", func() bool {
		st, err := d.Store().MailStats(t.Context())
		return err == nil && st.Queued == 0
	})
	for _, m := range capture.Messages() {
		t.Errorf("mail to %v from %q: the bridge bounced to an address that is not the account's", m.To, m.From)
	}
}
