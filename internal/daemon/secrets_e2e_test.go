package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/internal/daemon"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/mindcrm/mindcrmtest"
	"github.com/smsbridge/smsbridge/providers/providertest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// Every secret carries leakMarker, so a log that holds any piece of one
// (a truncated snippet, say) is caught, not only a whole copy. Nothing
// that may legitimately be logged (names, numbers, addresses) carries it.
const leakMarker = "LEAKCANARY"

const (
	leakVoipKey     = "vk-LEAKCANARY-3a91"
	leakVoipPass    = "vp-LEAKCANARY-77f2"
	leakEdgeToken   = "et-LEAKCANARY-c5d0"
	leakFileToken   = "ft-LEAKCANARY-19be"
	leakAPIToken    = "at-LEAKCANARY-e4a8"
	leakSMTPPass    = "sp-LEAKCANARY-2d6c"
	leakWrongToken  = "wt-LEAKCANARY-0b3f" // a mistyped API token is as sensitive as the right one
	leakWrongPass   = "wp-LEAKCANARY-91aa" // likewise a mistyped SMTP password
	leakBadFakePass = "bp-LEAKCANARY-5e07" // what the "voipbad" fake expects instead of leakVoipPass
	leakCallback    = "cb-LEAKCANARY-6d21-0123456789"
	leakWrongCB     = "wc-LEAKCANARY-8f40-0123456789"
	leakSmarthostPW = "sh-LEAKCANARY-a7c3"
)

// syncBuffer is a bytes.Buffer the daemon's goroutines write while the
// test may read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLogged is start with the daemon's log kept: every record, at debug
// level, goes both to text and to JSON. It returns stop, which shuts the
// daemon down and waits for it, so the logs are complete once it returns;
// cleanup calls it too.
func startLogged(t *testing.T, cfgText string) (d *daemon.Daemon, text, jsonl *syncBuffer, stop func()) {
	t.Helper()
	cfg, err := config.Parse(cfgText, daemon.Kinds)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Store.Path = filepath.Join(t.TempDir(), "smsbridge.db")
	cfg.SMTP.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	text, jsonl = &syncBuffer{}, &syncBuffer{}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	log := slog.New(slog.NewMultiHandler(slog.NewTextHandler(text, opts), slog.NewJSONHandler(jsonl, opts)))

	ctx, cancel := context.WithCancel(context.Background())
	d, err = daemon.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("daemon.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("daemon stopped with %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("daemon did not stop within 20s")
			}
		})
	}
	t.Cleanup(stop)
	return d, text, jsonl, stop
}

func secretsConfig(t *testing.T, voipURL, voipBadURL, crmURL, edgeURL, edgeFileURL, smarthost string) string {
	cert, key := writeCert(t)
	hash, err := bcrypt.GenerateFromPassword([]byte(leakSMTPPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "ippanel-token")
	if err := os.WriteFile(tokenFile, []byte(leakFileToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// retry_max also paces the retries of a provider that refuses our
	// credentials, so the voipbad failures repeat during the test.
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
default_region = "IL"
tls_cert = %q
tls_key = %q
[queue]
retry_min = "50ms"
retry_max = "200ms"
# The smarthost offers no STARTTLS, so AUTH (and the password) is never
# sent: every reply fails and is retried, and the failure is logged.
[replies]
smarthost = %q
username = "bridge"
password = %q
retry_min = "50ms"
retry_max = "200ms"
[[accounts]]
name = "ops"
emails = ["ops@example.com"]
sender_ids = ["+17134567890", "+983000505", "Clinic"]
api_token_sha256 = %q
smtp_password_hash = %q
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = %q
api_password = %q
numbers = ["+17134567890"]
inbound_secret = %q
[[providers]]
name = "voipbad"
type = "voipcom"
base_url = %q
api_key = %q
api_password = %q
numbers = ["+17134567890"]
[[providers]]
name = "crm"
type = "mindcrm"
base_url = %q
[[providers]]
name = "edge"
type = "ippanel"
base_url = %q
token = %q
numbers = ["+983000505"]
[[providers]]
name = "edgefile"
type = "ippanel"
base_url = %q
token_file = %q
numbers = ["+983000505"]
[[routes]]
prefix = "+1"
provider = "voip"
[[routes]]
prefix = "+44"
provider = "voipbad"
[[routes]]
prefix = "+972"
provider = "crm"
[[routes]]
prefix = "+98912"
provider = "edge"
[[routes]]
prefix = "+98935"
provider = "edgefile"
`, cert, key, smarthost, leakSmarthostPW, sha(leakAPIToken), hash,
		voipURL, leakVoipKey, leakVoipPass, leakCallback,
		voipBadURL, leakVoipKey, leakVoipPass,
		crmURL,
		edgeURL, leakEdgeToken,
		edgeFileURL, tokenFile)
}

// ippanelEcho is an IPPanel error envelope that quotes token back in every
// field a client might copy into an error.
func ippanelEcho(token string) string {
	return fmt.Sprintf(`{"data":null,"meta":{"status":false,"message":"token %[1]s rejected","message_code":"%[1]s","errors":{"Authorization":["%[1]s is not valid"]}}}`, token)
}

// A whole run, with credentials everywhere and every failure a provider or
// a client can cause, leaves no credential in the logs.
func TestNoSecretInLogs(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte(leakVoipKey + ":" + leakVoipPass))

	voip := voipcomtest.NewServer(t, leakVoipKey, leakVoipPass, "17134567890")
	voipBad := voipcomtest.NewServer(t, leakVoipKey, leakBadFakePass, "17134567890")
	crm := mindcrmtest.NewServer(t)
	edge := ippaneltest.NewServer(t, leakEdgeToken, "+983000505")
	edgeFile := ippaneltest.NewServer(t, leakFileToken, "+983000505")

	// Provider failures, each retried until the fake answers normally.
	// The bodies echo our credentials back, as a careless API (or a proxy
	// dumping the request) might.
	voipEcho := fmt.Sprintf("Authorization: Basic %s (api_key %s, api_password %s)", basic, leakVoipKey, leakVoipPass)
	voip.Faults.Push(
		providertest.Fault{Status: 500, Body: fmt.Sprintf(`{"error": true, "error_message": %q}`, voipEcho)},
		providertest.Fault{Status: 429, RetryAfter: time.Second},
		providertest.Fault{Status: 502, Body: "<html>" + voipEcho + "</html>"},
		providertest.Fault{Close: true},
	)
	crm.Faults.Push(providertest.Fault{Status: 500}, providertest.Fault{Close: true})
	edge.Faults.Push(
		providertest.Fault{Status: 401, Body: ippanelEcho(leakEdgeToken)},
		providertest.Fault{Status: 500, Body: ippanelEcho(leakEdgeToken)},
		providertest.Fault{Status: 429, RetryAfter: time.Second, Body: ippanelEcho(leakEdgeToken)},
		providertest.Fault{Status: 200, Body: "maintenance, token " + leakEdgeToken}, // not an envelope
		providertest.Fault{Close: true},
	)
	edgeFile.Faults.Push(
		providertest.Fault{Status: 503, Body: "upstream said: Authorization: " + leakFileToken},
		providertest.Fault{Status: 401, Body: ippanelEcho(leakFileToken)},
		providertest.Fault{Close: true},
	)

	capture := mailtest.Start(t, mailtest.Options{})
	d, textLog, jsonLog, stop := startLogged(t, secretsConfig(t, voip.URL, voipBad.URL, crm.URL, edge.URL, edgeFile.URL, capture.Addr()))
	base := "http://" + d.HTTPAddr()

	// Provider callbacks, with a wrong secret here and the right one below.
	inbound := func(secret, smsid string) int {
		resp, err := voip.PostInbound(t.Context(), base+"/v1/providers/voip/inbound?secret="+secret,
			url.Values{"from": {"17134567801"}, "to": {"17134567890"}, "msg": {"ok"}, "smsid": {smsid}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := inbound(leakWrongCB, "s-1"); code != 401 {
		t.Errorf("callback with a wrong secret: %d, want 401", code)
	}

	// One recipient per provider; the sender is the one that provider takes.
	targets := []struct{ provider, to, sender string }{
		{"voip", "+17134567801", "+17134567890"},
		{"voipbad", "+447911123456", "+17134567890"},
		{"crm", "+972501234567", "Clinic"},
		{"edge", "+989120000001", "+983000505"},
		{"edgefile", "+989350000002", "+983000505"},
	}
	ids := map[string][]string{} // provider -> message ids
	for _, tg := range targets {
		reply, err := sendMail(t, d.SMTPAddr(), "ops@example.com", []string{tg.to + "@sms.example.com"},
			"X-SMS-Sender: "+tg.sender+"\nSubject: x\n\nby mail to "+tg.provider+"\n")
		if err != nil {
			t.Fatalf("mail to %s: %v", tg.provider, err)
		}
		_, id, ok := strings.Cut(reply, "queued as ")
		if !ok {
			t.Fatalf("mail to %s: reply %q names no message", tg.provider, reply)
		}
		ids[tg.provider] = append(ids[tg.provider], id)

		r := call(t, "POST", base+"/v1/messages", leakAPIToken,
			fmt.Sprintf(`{"to": [%q], "sender": %q, "text": "by HTTP to %s"}`, tg.to, tg.sender, tg.provider))
		if r.Status != 202 {
			t.Fatalf("HTTP send to %s: status %d: %v", tg.provider, r.Status, r.Body)
		}
		ids[tg.provider] = append(ids[tg.provider], r.Body["id"].(string))
	}

	// Wrong and malformed API tokens are refused.
	for _, hdr := range []string{"Bearer " + leakWrongToken, "Token " + leakAPIToken, leakAPIToken, "Basic " + basic} {
		r := call(t, "POST", base+"/v1/messages", "", `{"to": ["+17134567801"], "text": "x"}`, "Authorization", hdr)
		if r.Status != 401 {
			t.Errorf("Authorization %q: status %d, want 401", hdr, r.Status)
		}
	}

	// SMTP AUTH over STARTTLS: wrong passwords, a right password for an
	// unknown user, then the right one, which sends through voip.
	// Each session is closed before stop, which would otherwise wait out
	// the shutdown grace for it.
	withTLSClient := func(f func(c *smtp.Client)) {
		c, err := smtp.DialStartTLS(d.SMTPAddr(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		f(c)
	}
	for name, auth := range map[string]sasl.Client{
		"PLAIN wrong password": sasl.NewPlainClient("", "ops", leakWrongPass),
		"LOGIN wrong password": sasl.NewLoginClient("ops", leakWrongPass),
		"PLAIN unknown user":   sasl.NewPlainClient("", "nobody", leakSMTPPass),
		"PLAIN identity":       sasl.NewPlainClient(leakSMTPPass, "ops", leakWrongPass),
	} {
		withTLSClient(func(c *smtp.Client) {
			if err := c.Auth(auth); err == nil {
				t.Errorf("%s: AUTH accepted", name)
			} else if c, e := smtpCode(err); c != 535 || e != "5.7.8" {
				t.Errorf("%s: %v, want 535 5.7.8", name, err)
			}
		})
	}
	for name, auth := range map[string]sasl.Client{
		"PLAIN": sasl.NewPlainClient("", "ops", leakSMTPPass),
		"LOGIN": sasl.NewLoginClient("ops", leakSMTPPass),
	} {
		withTLSClient(func(c *smtp.Client) {
			if err := c.Auth(auth); err != nil {
				t.Fatalf("%s: AUTH: %v", name, err)
			}
			// Authenticated, the envelope sender is one of the account's addresses.
			if err := c.SendMail("ops@example.com", []string{"+17134567801@sms.example.com"},
				strings.NewReader("X-SMS-Sender: +17134567890\r\nSubject: x\r\n\r\nauthenticated "+name+"\r\n")); err != nil {
				t.Fatalf("%s: send: %v", name, err)
			}
			_ = c.Quit()
		})
	}

	// Wait for the outcomes: every message sent, except those through
	// voipbad, which stay queued with the credential error.
	eventually(t, 20*time.Second, "every provider answered", func() bool {
		for provider, list := range ids {
			for _, id := range list {
				m, err := d.Store().Message(t.Context(), id)
				if err != nil || len(m.Recipients) != 1 {
					return false
				}
				r := m.Recipients[0]
				if provider == "voipbad" && (r.State != bridge.StateQueued || !strings.Contains(r.Error, "api credentials")) {
					return false
				}
				if provider != "voipbad" && r.State != bridge.StateSent {
					return false
				}
			}
		}
		return len(voip.Requests()) == 4 // two authenticated mails besides the two sends
	})
	for name, got := range map[string]int{"crm": len(crm.Requests()), "edge": len(edge.Requests()), "edgefile": len(edgeFile.Requests()), "voipbad": len(voipBad.Requests())} {
		want := 2
		if name == "voipbad" {
			want = 0
		}
		if got != want {
			t.Errorf("%s fake accepted %d requests, want %d", name, got, want)
		}
	}
	// A reply to ops' SMS: mailed to ops through a smarthost that cannot
	// take it (it would need the password over plain text). Wait until the
	// attempt failed, so its error is in the log.
	if code := inbound(leakCallback, "s-2"); code != 200 {
		t.Errorf("callback with the secret: %d, want 200", code)
	}
	eventually(t, 10*time.Second, "a failed reply mail", func() bool { return mailRetries(t, d) >= 1 })
	stop()

	text, js := textLog.String(), jsonLog.String()
	for name, secret := range map[string]string{
		"marker":                leakMarker,
		"voipcom api_key":       leakVoipKey,
		"voipcom api_password":  leakVoipPass,
		"voipcom Basic auth":    basic,
		"ippanel token":         leakEdgeToken,
		"ippanel token_file":    leakFileToken,
		"API token":             leakAPIToken,
		"API Bearer":            "Bearer " + leakAPIToken,
		"wrong API token":       leakWrongToken,
		"SMTP password":         leakSMTPPass,
		"wrong SMTP password":   leakWrongPass,
		"callback secret":       leakCallback,
		"wrong callback secret": leakWrongCB,
		"smarthost password":    leakSmarthostPW,
	} {
		for format, out := range map[string]string{"text": text, "JSON": js} {
			if i := strings.Index(out, secret); i >= 0 {
				t.Errorf("%s log holds the %s: %q", format, name, lineAt(out, i))
			}
		}
	}

	// The check above means something only if the run logged: records from
	// every component and provider exercised, failures included.
	records := decodeJSONLog(t, js)
	if n := strings.Count(text, "\n"); n != len(records) || n == 0 {
		t.Errorf("text log has %d records, JSON log %d", n, len(records))
	}
	type key struct{ field, value, level string }
	seen := map[key]bool{}
	for _, r := range records {
		level, _ := r["level"].(string)
		component, _ := r["component"].(string)
		provider, _ := r["provider"].(string)
		switch {
		case component != "":
			seen[key{"component", component, ""}] = true
			seen[key{"component", component, level}] = true
		case provider != "":
			// A record of the provider client itself, not the dispatcher's.
			seen[key{"provider", provider, ""}] = true
			seen[key{"provider", provider, level}] = true
		}
	}
	for _, want := range []key{
		{"component", "smtp", ""}, {"component", "smtp", "WARN"}, // failed AUTH
		{"component", "http", ""}, {"component", "dispatcher", ""}, {"component", "store", ""},
		{"component", "mailout", "WARN"}, // the smarthost refused
		{"provider", "voip", ""}, {"provider", "crm", ""}, {"provider", "edge", ""}, {"provider", "edgefile", ""},
		{"provider", "voipbad", "ERROR"}, {"provider", "edge", "ERROR"}, // refused credentials
	} {
		if !seen[want] {
			t.Errorf("no record with %s=%s (level %q; \"\" is any) in the log", want.field, want.value, want.level)
		}
	}
}

// decodeJSONLog parses the JSON handler's output, one record a line.
func decodeJSONLog(t *testing.T, out string) []map[string]any {
	t.Helper()
	var records []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		records = append(records, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return records
}

// lineAt returns the line of out that holds offset i, to show where a
// secret leaked.
func lineAt(out string, i int) string {
	start := strings.LastIndexByte(out[:i], '\n') + 1
	end := strings.IndexByte(out[i:], '\n')
	if end < 0 {
		return out[start:]
	}
	return out[start : i+end]
}
