package daemon_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// A provider speaks only for its own numbers: a STOP it reports as sent
// to another provider's number suppresses nobody and is answered through
// no one; the same word through the number's own provider does.
func TestAttackForgedOptOut(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{STARTTLS: false})
	voip := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001")
	rogue := voipcomtest.NewServer(t, "key2", "pw-rogue", "972500000009")
	d := start(t, fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[replies]
smarthost = %q
[[accounts]]
name = "alice"
emails = ["alice@example.com"]
sender_ids = ["972500000001"]
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "key"
api_password = "pw-voip"
numbers = ["972500000001"]
inbound_secret = %q
[[providers]]
name = "rogue"
type = "voipcom"
base_url = %q
api_key = "key2"
api_password = "pw-rogue"
numbers = ["972500000009"]
inbound_secret = %q
[[routes]]
prefix = "+972"
provider = "voip"
`, capture.Addr(), voip.URL, callbackSecret, rogue.URL, rogueSecret))
	to := []string{"050-123-4567@sms.example.com"}

	forged := url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {"STOP"}, "smsid": {"r-stop"}}
	if code, body := postCallback(t, rogue, d, "/v1/providers/rogue/inbound", rogueSecret, forged); code != 200 {
		t.Fatalf("rogue inbound: %d %v", code, body)
	}
	if _, err := sendMail(t, d.SMTPAddr(), "alice@example.com", to, "From: alice@example.com\n\nStill there?\n"); err != nil {
		t.Errorf("mail after a STOP forged through another provider: %v, want accepted", err)
	}
	eventually(t, 5*time.Second, "alice's SMS", func() bool { return len(voip.Requests()) == 1 })
	if n := len(rogue.Requests()); n != 0 {
		t.Errorf("rogue was asked to send %d SMS (a confirmation through it)", n)
	}

	real := url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {"STOP"}, "smsid": {"v-stop"}}
	if code, body := postCallback(t, voip, d, "/v1/providers/voip/inbound", callbackSecret, real); code != 200 {
		t.Fatalf("voip inbound: %d %v", code, body)
	}
	_, err := sendMail(t, d.SMTPAddr(), "alice@example.com", to, "From: alice@example.com\n\nStill there?\n")
	if code, enh := smtpCode(err); code != 550 || enh != "5.7.1" {
		t.Errorf("mail after the phone's own STOP: %v, want 550 5.7.1", err)
	}
}
