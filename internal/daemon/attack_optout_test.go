package daemon_test

import (
	"fmt"
	"net/url"
	"strings"
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

// Every bad request to the suppression API gets a specific answer naming
// its field, and changes nothing; an account reaches only its own.
func TestAttackSuppressionAPI(t *testing.T) {
	voip := voipcomtest.NewServer(t, "k", "p", "17134567890")
	d := start(t, optoutConfig(voip.URL, "127.0.0.1:1"))
	base := "http://" + d.HTTPAddr() + "/v1/suppressions"
	for _, c := range []struct {
		name, method, url, token, body string
		status                         int
		reason, field                  string
	}{
		{"no token", "GET", base, "", "", 401, "unknown_account", "Authorization"},
		{"malformed JSON", "POST", base, optoutOps, `{"phone": `, 400, "malformed_json", ""},
		{"unknown field", "POST", base, optoutOps, `{"phone": "+17136641234", "scope": "all"}`, 400, "malformed_json", ""},
		{"two values", "POST", base, optoutOps, `{"phone": "+17136641234"} {}`, 400, "malformed_json", ""},
		{"no phone", "POST", base, optoutOps, `{"reason": "x"}`, 422, "invalid", "phone"},
		{"bad phone", "POST", base, optoutOps, `{"phone": "12"}`, 422, "bad_number", "phone"},
		{"long reason", "POST", base, optoutOps, `{"phone": "+17136641234", "reason": "` + strings.Repeat("r", 501) + `"}`, 422, "invalid", "reason"},
		{"another account", "POST", base, optoutOps, `{"phone": "+17136641234", "account": "other"}`, 403, "sender_not_allowed", "account"},
		{"everyone, not admin", "DELETE", base + "?phone=%2B17136641234&account=other", optoutOps, "", 403, "sender_not_allowed", "account"},
		{"not its number", "POST", base, optoutOps, `{"phone": "+17136641234", "number": "Other"}`, 403, "sender_not_allowed", "number"},
		{"unknown parameter", "GET", base + "?scope=all", optoutOps, "", 400, "", "scope"},
		{"bad limit", "GET", base + "?limit=100000", optoutOps, "", 400, "", "limit"},
		{"bad phone filter", "GET", base + "?phone=abc", optoutOps, "", 400, "bad_number", "phone"},
		{"delete without phone", "DELETE", base, optoutOps, "", 400, "", "phone"},
		{"delete of nothing", "DELETE", base + "?phone=%2B17136641234", optoutOps, "", 404, "not_found", ""},
	} {
		r := call(t, c.method, c.url, c.token, c.body)
		if r.Status != c.status || (c.reason != "" && r.Body["reason"] != c.reason) || r.Body["field"] != nilIfEmpty(c.field) {
			t.Errorf("%s: %d %v, want %d %s field %q", c.name, r.Status, r.Body, c.status, c.reason, c.field)
		}
	}
	if r := call(t, "GET", base+"?phone=abc", optoutOps, ""); !strings.Contains(fmt.Sprint(r.Body["error"]), `"abc"`) {
		t.Errorf("bad phone filter's error does not name the value: %v", r.Body)
	}
	if r := call(t, "GET", base, optoutOps, ""); len(r.Body["suppressions"].([]any)) != 0 {
		t.Errorf("refused requests stored something: %v", r.Body)
	}
	// other's own entry is invisible to ops even when ops asks for it.
	if r := call(t, "POST", base, optoutOther, `{"phone": "+17136641234", "reason": "theirs"}`); r.Status != 201 {
		t.Fatalf("other's POST: %d %v", r.Status, r.Body)
	}
	if r := call(t, "GET", base+"?account=other", optoutOps, ""); len(r.Body["suppressions"].([]any)) != 0 {
		t.Errorf("ops lists other's entries with ?account=other: %v", r.Body)
	}
	if r := call(t, "GET", base+"/history", optoutOps, ""); len(r.Body["events"].([]any)) != 0 {
		t.Errorf("ops reads other's history: %v", r.Body)
	}
	if r := call(t, "DELETE", base+"?phone=%2B17136641234", optoutOps, ""); r.Status != 404 {
		t.Errorf("ops deletes (its own, absent) entry: %d, want 404 and other's kept", r.Status)
	}
	if r := call(t, "GET", base, optoutOther, ""); len(r.Body["suppressions"].([]any)) != 1 {
		t.Errorf("other's entry: %v", r.Body)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// TestAttackSuppressionCap: an account cannot grow the suppression list,
// which retention never purges, without bound through the API; the cap is
// per account, and opt-outs phones send do not count against it.
func TestAttackSuppressionCap(t *testing.T) {
	voip := voipcomtest.NewServer(t, "k", "p", "17134567890")
	cfg := strings.Replace(optoutConfig(voip.URL, "127.0.0.1:1"), "[consent]\n", "[consent]\nmax_per_account = 2\n", 1)
	d := start(t, cfg)
	base := "http://" + d.HTTPAddr() + "/v1/suppressions"
	for _, p := range []string{"+17136641231", "+17136641232"} {
		if r := call(t, "POST", base, optoutOps, `{"phone": "`+p+`"}`); r.Status != 201 {
			t.Fatalf("POST %s: %d %v", p, r.Status, r.Body)
		}
	}
	r := call(t, "POST", base, optoutOps, `{"phone": "+17136641233"}`)
	if r.Status != 422 || r.Body["reason"] != "invalid" || r.Body["field"] != "phone" {
		t.Errorf("third POST: %d %v, want 422 invalid field phone", r.Status, r.Body)
	}
	if r := call(t, "GET", base, optoutOps, ""); len(r.Body["suppressions"].([]any)) != 2 {
		t.Errorf("stored after the cap: %v", r.Body)
	}
	if r := call(t, "POST", base, optoutOther, `{"phone": "+17136641233"}`); r.Status != 201 {
		t.Errorf("another account's POST: %d %v, want 201 (the cap is per account)", r.Status, r.Body)
	}
}
