package daemon_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime/quotedprintable"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

const (
	voipKey  = "key-4f1d"
	voipPass = "pass-9c2e77"
	ourNum   = "17134567890"
)

func voipcomConfig(url string, extra string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
default_region = "IL"
max_segments = 3
[queue]
retry_min = "50ms"
retry_max = "200ms"
[[accounts]]
name = "ops"
emails = ["*@example.com"]
sender_ids = ["+%s"]
[[accounts]]
name = "brand"
emails = ["marketing@example.org"]
sender_ids = ["Brand"]
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = %q
api_password = %q
numbers = ["+%s"]
%s
[[routes]]
prefix = "+"
provider = "voip"
`, ourNum, url, voipKey, voipPass, ourNum, extra)
}

func hebrewQPWindows1255(t *testing.T, s string) string {
	b, err := charmap.Windows1255.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := quotedprintable.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.String()
}

// Mail in, exact decoded text out at the provider, for every encoding
// users send.
func TestMailBecomesSMS(t *testing.T) {
	fake := voipcomtest.NewServer(t, voipKey, voipPass, ourNum)
	d := start(t, voipcomConfig(fake.URL, ""))

	hebrew := "שלום, התור שלך אושר למחר ב-10:00"
	cases := []struct {
		name string
		to   []string
		mail string
		want string
	}{
		{"base64 UTF-8 Hebrew", []string{"+972-50-123-4567@sms.example.com"}, "From: a@example.com\nSubject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" +
			base64.StdEncoding.EncodeToString([]byte(hebrew)) + "\n", hebrew},
		{"quoted-printable windows-1255", []string{"0501234568@sms.example.com"}, "From: a@example.com\nSubject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=windows-1255\nContent-Transfer-Encoding: quoted-printable\n\n" +
			hebrewQPWindows1255(t, hebrew) + "\n", hebrew},
		{"multipart/alternative", []string{"050-123-4569@sms.example.com"}, "From: a@example.com\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=BB\n\n--BB\nContent-Type: text/plain; charset=utf-8\n\nPlain wins\n--BB\nContent-Type: text/html; charset=utf-8\n\n<p>HTML loses</p>\n--BB--\n", "Plain wins"},
		{"HTML only", []string{"00972501234570@sms.example.com"}, "From: a@example.com\nSubject: x\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n<html><head><style>p{color:red}</style></head><body><p>Server&nbsp;db1 is <b>down</b></p><p>Call &amp; check</p></body></html>\n", "Server db1 is down\nCall & check"},
		{"signature and quoted reply", []string{"0501234571@sms.example.com"}, "From: a@example.com\nSubject: Re: x\nContent-Type: text/plain; charset=utf-8\n\nYes, 10:00 works.\n\nOn Mon, 1 Jan 2024, Bob <b@example.com> wrote:\n> Can we meet at 10?\n> Thanks\n\n-- \nAlice\nExample Corp\n", "Yes, 10:00 works."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fake.Requests())
			reply, err := sendMail(t, d.SMTPAddr(), "alice@example.com", tc.to, tc.mail)
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			if _, id, ok := strings.Cut(reply, "queued as "); !ok || len(id) < 16 {
				t.Errorf("reply %q does not carry the message id", reply)
			}
			eventually(t, 5*time.Second, "provider request", func() bool { return len(fake.Requests()) > before })
			req := fake.Requests()[before]
			if got := req.Form.Get("msg"); got != tc.want {
				t.Errorf("msg = %q, want %q", got, tc.want)
			}
			if got := req.Form.Get("from"); got != ourNum {
				t.Errorf("from = %q, want %q", got, ourNum)
			}
		})
	}
}

// Three RCPT TO make one SMS to each; voip-communications takes them in one call.
func TestThreeRecipientsOneCall(t *testing.T) {
	fake := voipcomtest.NewServer(t, voipKey, voipPass, ourNum)
	d := start(t, voipcomConfig(fake.URL, ""))
	reply, err := sendMail(t, d.SMTPAddr(), "alice@example.com",
		[]string{"0501111111@sms.example.com", "+972521111111@SMS.Example.com", "0541111111@sms.example.com"},
		"From: alice@example.com\nSubject: hi\n\nMeeting moved to 11:00\n")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "provider request", func() bool { return len(fake.Requests()) >= 1 })
	req := fake.Requests()[0]
	want := []string{"972501111111", "972521111111", "972541111111"}
	if !slices.Equal(req.To, want) {
		t.Errorf("to = %v, want %v", req.To, want)
	}
	_, id, _ := strings.Cut(reply, "queued as ")
	eventually(t, 5*time.Second, "all sent", func() bool {
		m, err := d.Store().Message(t.Context(), id)
		if err != nil {
			return false
		}
		for _, r := range m.Recipients {
			if r.State != bridge.StateSent || r.ProviderID == "" {
				return false
			}
		}
		return len(m.Recipients) == 3
	})
	if n := len(fake.Requests()); n != 1 {
		t.Errorf("%d provider calls, want 1", n)
	}
}

// Every refusal, with its code, and nothing stored or sent for it.
func TestRefusals(t *testing.T) {
	fake := voipcomtest.NewServer(t, voipKey, voipPass, ourNum)
	d := start(t, voipcomConfig(fake.URL, "")+`
[[providers]]
name = "us"
type = "console"
[[routes]]
prefix = "+1"
provider = "us"
`)
	long := strings.Repeat("0123456789", 50) // 500 GSM-7 chars: 4 segments > 3
	cases := []struct {
		name, from string
		to         []string
		mail       string
		code       int
		enh        string
	}{
		{"relay to another domain", "alice@example.com", []string{"0501234567@example.net"}, "", 550, "5.7.1"},
		{"not a number", "alice@example.com", []string{"alice@sms.example.com"}, "", 550, "5.1.1"},
		{"invalid number", "alice@example.com", []string{"+972-5@sms.example.com"}, "", 550, "5.1.1"},
		{"unknown sender", "mallory@evil.example", []string{"0501234567@sms.example.com"}, "", 550, "5.7.1"},
		{"null sender", "", []string{"0501234567@sms.example.com"}, "", 550, "5.7.1"},
		{"empty body", "alice@example.com", []string{"0501234567@sms.example.com"}, "From: a@example.com\n\n\n-- \nsig\n", 554, "5.6.0"},
		{"too long", "alice@example.com", []string{"0501234567@sms.example.com"}, "From: a@example.com\n\n" + long + "\n", 552, "5.3.4"},
		{"sender ID not the account's", "alice@example.com", []string{"0501234567@sms.example.com"}, "From: a@example.com\nX-SMS-Sender: Brand\n\nhi\n", 550, "5.7.1"},
		{"sender ID the provider refuses", "marketing@example.org", []string{"0501234567@sms.example.com"}, "From: a@example.org\nX-SMS-Sender: Brand\n\nhi\n", 550, "5.7.1"},
		{"bad send-at", "alice@example.com", []string{"0501234567@sms.example.com"}, "From: a@example.com\nX-SMS-Send-At: tomorrow\n\nhi\n", 554, "5.6.0"},
		{"template at a provider without templates", "alice@example.com", []string{"0501234567@sms.example.com"}, "From: a@example.com\nX-SMS-Template: 7\n\nhi\n", 554, "5.6.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mail := tc.mail
			if mail == "" {
				mail = "From: a@example.com\n\nhello\n"
			}
			_, err := sendMail(t, d.SMTPAddr(), tc.from, tc.to, mail)
			code, enh := smtpCode(err)
			if code != tc.code || enh != tc.enh {
				t.Fatalf("got %d %s (%v), want %d %s", code, enh, err, tc.code, tc.enh)
			}
		})
	}
	st, err := d.Store().Stats(t.Context())
	if err != nil || st.Queued != 0 {
		t.Errorf("stats = %+v, %v: refused mail must not be queued", st, err)
	}
	// A mail accepted after every refusal is the moment to look: once it
	// has reached the provider, the dispatcher has been through the queue
	// the refusals would have been in, so it is the only call.
	if _, err := sendMail(t, d.SMTPAddr(), "alice@example.com", []string{"0507654321@sms.example.com"}, "From: a@example.com\n\nafter the refusals\n"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the mail sent after the refusals", func() bool { return len(fake.Requests()) >= 1 })
	if rs := fake.Requests(); len(rs) != 1 || rs[0].Form.Get("msg") != "after the refusals" {
		for _, r := range rs {
			t.Errorf("provider call to %v: %q", r.To, r.Form.Get("msg"))
		}
		t.Errorf("%d provider calls, want only the one after the refusals", len(rs))
	}
}

// X-SMS-Send-At holds the send; voip-communications schedules natively
// with delivery_date.
func TestScheduledSend(t *testing.T) {
	fake := voipcomtest.NewServer(t, voipKey, voipPass, ourNum)
	d := start(t, voipcomConfig(fake.URL, ""))
	at := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Minute)
	_, err := sendMail(t, d.SMTPAddr(), "alice@example.com", []string{"0501234567@sms.example.com"},
		"From: a@example.com\nX-SMS-Send-At: "+at.Format(time.RFC3339)+"\n\nReminder\n")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "provider request", func() bool { return len(fake.Requests()) == 1 })
	if got, want := fake.Requests()[0].Form.Get("delivery_date"), at.Format("2006-01-02 15:04"); got != want {
		t.Errorf("delivery_date = %q, want %q", got, want)
	}
}
