package daemon_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/internal/daemon"
	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

const (
	opsToken   = "tok-ops-5b1e"
	otherToken = "tok-other-77c0"
)

func sha(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }

func httpConfig(voipURL, ippanelURL string, extra string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
max_recipients = 50
[limits]
destination_per_minute = 3
[[accounts]]
name = "ops"
emails = ["*@example.com"]
sender_ids = ["+17134567890", "+983000505"]
api_token_sha256 = [%q, %q]
on_call = ["+972-50-000-0001", "0500000002"]
messages_per_minute = 50
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
[[providers]]
name = "held"
type = "console"
concurrency = 3
[[providers]]
name = "edge"
type = "ippanel"
base_url = %q
token = "edge-token"
numbers = ["+983000505"]
[[routes]]
prefix = "+972"
provider = "voip"
[[routes]]
prefix = "+1"
provider = "held"
[[routes]]
prefix = "+98"
provider = "edge"
%s`, sha(opsToken), sha("old-token"), sha(otherToken), voipURL, ippanelURL, extra)
}

type apiResp struct {
	Status int
	Header http.Header
	Body   map[string]any
}

func call(t *testing.T, method, url, token, body string, hdr ...string) apiResp {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := apiResp{Status: resp.StatusCode, Header: resp.Header}
	if len(bytes.TrimSpace(b)) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out.Body); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, url, b, err)
		}
	}
	return out
}

type httpEnv struct {
	base string
	voip *voipcomtest.Server
	edge *ippaneltest.Server
	d    *daemon.Daemon
}

func newHTTPEnv(t *testing.T, extra string) *httpEnv {
	voip := voipcomtest.NewServer(t, "k", "p", "17134567890")
	edge := ippaneltest.NewServer(t, "edge-token", "+983000505")
	d := start(t, httpConfig(voip.URL, edge.URL, extra))
	return &httpEnv{base: "http://" + d.HTTPAddr(), voip: voip, edge: edge, d: d}
}

func TestHTTPSendAPI(t *testing.T) {
	e := newHTTPEnv(t, "")

	// 202 with the id and each recipient's E.164 number and state.
	r := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": ["050-123-4567", "+972 52 765 4321"], "text": "Build 42 deployed"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d: %v", r.Status, r.Body)
	}
	id, _ := r.Body["id"].(string)
	rcpts, _ := r.Body["recipients"].([]any)
	if id == "" || len(rcpts) != 2 || rcpts[0].(map[string]any)["to"] != "+972501234567" || rcpts[0].(map[string]any)["state"] != "queued" {
		t.Fatalf("body = %v", r.Body)
	}
	eventually(t, 5*time.Second, "provider call", func() bool { return len(e.voip.Requests()) == 1 })
	if got := e.voip.Requests()[0].Form.Get("msg"); got != "Build 42 deployed" {
		t.Errorf("msg = %q", got)
	}
	eventually(t, 5*time.Second, "sent state", func() bool {
		g := call(t, "GET", e.base+"/v1/messages/"+id, opsToken, "")
		rs, _ := g.Body["recipients"].([]any)
		return g.Status == 200 && len(rs) == 2 && rs[0].(map[string]any)["state"] == "sent" && rs[1].(map[string]any)["provider_id"] != ""
	})
	// The old token of a rotation still works; another account cannot see it.
	if g := call(t, "GET", e.base+"/v1/messages/"+id, "old-token", ""); g.Status != 200 {
		t.Errorf("rotated token: %d", g.Status)
	}
	if g := call(t, "GET", e.base+"/v1/messages/"+id, otherToken, ""); g.Status != 404 {
		t.Errorf("other account's message: %d, want 404", g.Status)
	}

	for _, tc := range []struct {
		name, token, body string
		status            int
		reason, field     string
	}{
		{"malformed JSON", opsToken, `{"to": `, 400, "malformed_json", ""},
		{"unknown field", opsToken, `{"to": "0501234567", "txt": "hi"}`, 400, "malformed_json", ""},
		{"no token", "", `{"to": "0501234567", "text": "hi"}`, 401, "unknown_account", "Authorization"},
		{"unknown token", "nope", `{"to": "0501234567", "text": "hi"}`, 401, "unknown_account", "Authorization"},
		{"sender not allowed", opsToken, `{"to": "0501234567", "text": "hi", "sender": "Brand"}`, 403, "sender_not_allowed", "sender"},
		{"bad number", opsToken, `{"to": ["0501234567", "12"], "text": "hi"}`, 422, "bad_number", "to[1]"},
		{"no route", opsToken, `{"to": "+44 20 7946 0958", "text": "hi"}`, 422, "no_route", "to[0]"},
		{"too long", opsToken, `{"to": "0501234567", "text": "` + strings.Repeat("x", 1700) + `"}`, 422, "too_long", "text"},
		{"empty", opsToken, `{"to": "0501234567", "text": "  "}`, 422, "empty", "text"},
		{"unknown template", opsToken, `{"to": "0501234567", "template": "welcome"}`, 422, "template_unknown", "template"},
		{"no recipients", opsToken, `{"text": "hi"}`, 422, "invalid", "to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, "POST", e.base+"/v1/messages", tc.token, tc.body)
			if r.Status != tc.status || r.Body["reason"] != tc.reason || (tc.field != "" && r.Body["field"] != tc.field) {
				t.Fatalf("got %d %v, want %d %s field %q", r.Status, r.Body, tc.status, tc.reason, tc.field)
			}
			if tc.status == 422 {
				errs, _ := r.Body["errors"].([]any)
				if len(errs) == 0 || errs[0].(map[string]any)["field"] != tc.field {
					t.Errorf("422 without a per-field error list: %v", r.Body)
				}
			}
		})
	}
	if n := len(e.voip.Requests()); n != 1 {
		t.Errorf("%d provider calls; refused requests must send nothing", n)
	}
}

func TestHTTPIdempotencyKey(t *testing.T) {
	e := newHTTPEnv(t, "")
	body := `{"to": "0501234567", "text": "Order 17 shipped"}`
	first := call(t, "POST", e.base+"/v1/messages", opsToken, body, "Idempotency-Key", "order-17")
	again := call(t, "POST", e.base+"/v1/messages", opsToken, body, "Idempotency-Key", "order-17")
	if first.Status != 202 || again.Status != 202 || first.Body["id"] != again.Body["id"] {
		t.Fatalf("first %d %v, retry %d %v: want the same message", first.Status, first.Body["id"], again.Status, again.Body["id"])
	}
	other := call(t, "POST", e.base+"/v1/messages", opsToken, body, "Idempotency-Key", "order-18")
	if other.Body["id"] == first.Body["id"] {
		t.Error("a new key must make a new message")
	}
	eventually(t, 5*time.Second, "two sends", func() bool { return len(e.voip.Requests()) == 2 })
	// Nothing queued: every recipient stored is final, so any message the
	// retry made would have been sent by now.
	queueEmpty(t, e.d, 5*time.Second)
	if n := len(e.voip.Requests()); n != 2 {
		t.Errorf("%d sends, want 2 (the retry must not send again)", n)
	}
}

func TestHTTPCancel(t *testing.T) {
	e := newHTTPEnv(t, "")
	// Held in our queue (the console provider does not schedule).
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	r := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "+1 713 555 0100", "text": "later", "send_at": "`+at+`"}`)
	if r.Status != 202 {
		t.Fatalf("%d %v", r.Status, r.Body)
	}
	id := r.Body["id"].(string)
	c := call(t, "DELETE", e.base+"/v1/messages/"+id, opsToken, "")
	if rs, _ := c.Body["recipients"].([]any); c.Status != 200 || len(rs) != 1 || rs[0].(map[string]any)["state"] != "cancelled" {
		t.Fatalf("cancel: %d %v", c.Status, c.Body)
	}
	// Scheduled at IPPanel: cancelled there too.
	r = call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "+989120000001", "sender": "+983000505", "text": "later", "send_at": "`+at+`"}`)
	id = r.Body["id"].(string)
	eventually(t, 5*time.Second, "handed to IPPanel", func() bool {
		g := call(t, "GET", e.base+"/v1/messages/"+id, opsToken, "")
		rs, _ := g.Body["recipients"].([]any)
		return len(rs) == 1 && rs[0].(map[string]any)["state"] == "sent"
	})
	c = call(t, "DELETE", e.base+"/v1/messages/"+id, opsToken, "")
	if rs, _ := c.Body["recipients"].([]any); c.Status != 200 || rs[0].(map[string]any)["state"] != "cancelled" {
		t.Fatalf("cancel at provider: %d %v", c.Status, c.Body)
	}
	if got := e.edge.Cancelled(); len(got) != 1 {
		t.Errorf("IPPanel cancels = %v, want one", got)
	}
	if c := call(t, "DELETE", e.base+"/v1/messages/nosuchid", opsToken, ""); c.Status != 404 {
		t.Errorf("unknown id: %d", c.Status)
	}
}

func TestRateLimits(t *testing.T) {
	e := newHTTPEnv(t, "")
	// destination_per_minute = 3: the 4th SMS to one phone waits.
	for i := range 3 {
		if r := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "0501112233", "text": "loop"}`); r.Status != 202 {
			t.Fatalf("send %d: %d %v", i, r.Status, r.Body)
		}
	}
	r := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "0501112233", "text": "loop"}`)
	if r.Status != 429 || r.Header.Get("Retry-After") == "" || r.Body["reason"] != "rate_limited" {
		t.Fatalf("over the limit: %d %v (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	// The same limit answers SMTP with 451 4.7.1.
	_, err := sendMail(t, e.d.SMTPAddr(), "ops@example.com", []string{"0501112233@sms.example.com"}, "Subject: x\n\nloop\n")
	if c, enh := smtpCode(err); c != 451 || enh != "4.7.1" {
		t.Errorf("SMTP over the limit: %v, want 451 4.7.1", err)
	}
	// Another phone is not affected.
	if r := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "0501112234", "text": "ok"}`); r.Status != 202 {
		t.Errorf("other phone: %d", r.Status)
	}
	eventually(t, 5*time.Second, "4 sends", func() bool {
		n := 0
		for _, q := range e.voip.Requests() {
			n += len(q.To)
		}
		return n == 4
	})
	// Nothing queued: whatever was accepted has been sent, so the count
	// below is final.
	queueEmpty(t, e.d, 5*time.Second)
	n := 0
	for _, q := range e.voip.Requests() {
		n += len(q.To)
	}
	if n != 4 {
		t.Errorf("%d SMS sent, want 4: nothing over the limit may go out", n)
	}
}

func TestAccountRateLimit(t *testing.T) {
	e := newHTTPEnv(t, "")
	// messages_per_minute = 50: a burst of 60 distinct phones. The bucket
	// refills at 50 a minute meanwhile, so a slow run may admit a few more.
	start := time.Now()
	ok, limited := 0, 0
	for i := range 60 {
		r := call(t, "POST", e.base+"/v1/messages", opsToken, fmt.Sprintf(`{"to": "05020%05d", "text": "burst"}`, i))
		switch r.Status {
		case 202:
			ok++
		case 429:
			limited++
		default:
			t.Fatalf("%d %v", r.Status, r.Body)
		}
	}
	refilled := int(time.Since(start).Seconds() * 50 / 60)
	if ok < 50 || ok > 50+refilled || ok+limited != 60 {
		t.Errorf("accepted %d, limited %d in %v; want 50 (+%d refilled) and the rest limited", ok, limited, time.Since(start), refilled)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newHTTPEnv(t, "")
	if r := call(t, "GET", e.base+"/healthz", "", ""); r.Status != 200 {
		t.Errorf("healthz %d", r.Status)
	}
	if r := call(t, "GET", e.base+"/readyz", "", ""); r.Status != 200 {
		t.Errorf("readyz %d", r.Status)
	}
	call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "0501234567", "text": "hi"}`)
	call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "12", "text": "hi"}`)
	if _, err := sendMail(t, e.d.SMTPAddr(), "ops@example.com", []string{"0501234568@sms.example.com"}, "Subject: x\n\nhi\n"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "sends", func() bool { return len(e.voip.Requests()) == 2 })
	// The sends counter, the request histogram and the queue gauge are
	// updated at different moments after a send: wait until the scrape
	// shows all of them rather than reading once when the first moves.
	wants := []string{
		`smsbridge_sends_total{outcome="sent",provider="voip"} 2`,
		`smsbridge_messages_accepted_total{channel="http"} 1`,
		`smsbridge_messages_accepted_total{channel="smtp"} 1`,
		`smsbridge_messages_refused_total{channel="http",reason="bad_number"} 1`,
		`smsbridge_provider_request_seconds_count{provider="voip"} 2`,
		`smsbridge_queue_depth 0`,
		// voip adapts, from 8; held is fixed at 3.
		`smsbridge_provider_concurrency_limit{provider="voip"} 8`,
		`smsbridge_provider_concurrency_limit{provider="held"} 3`,
	}
	var text string
	missing := func() []string {
		var out []string
		for _, w := range wants {
			if !strings.Contains(text, w) {
				out = append(out, w)
			}
		}
		return out
	}
	eventually(t, 10*time.Second, "metrics with every counter of the two sends", func() bool {
		resp, err := http.Get(e.base + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(b)
		return len(missing()) == 0
	})
}

func TestAlertHooks(t *testing.T) {
	e := newHTTPEnv(t, "")
	grafana, err := os.ReadFile("../../webhook/alerts/testdata/grafana_firing.json")
	if err != nil {
		t.Fatal(err)
	}
	am, err := os.ReadFile("../../webhook/alerts/testdata/alertmanager_firing.json")
	if err != nil {
		t.Fatal(err)
	}
	// Grafana to the numbers in ?to=, Alertmanager to the account's on_call.
	if r := call(t, "POST", e.base+"/v1/hooks/grafana?to=0507770001,0507770002", opsToken, string(grafana)); r.Status != 202 {
		t.Fatalf("grafana: %d %v", r.Status, r.Body)
	}
	if r := call(t, "POST", e.base+"/v1/hooks/alertmanager", opsToken, string(am)); r.Status != 202 {
		t.Fatalf("alertmanager: %d %v", r.Status, r.Body)
	}
	eventually(t, 5*time.Second, "two provider calls", func() bool { return len(e.voip.Requests()) == 2 })
	got := map[string]string{}
	for _, q := range e.voip.Requests() {
		got[strings.Join(q.To, ",")] = q.Form.Get("msg")
	}
	want := map[string]string{
		"972507770001,972507770002": "[FIRING:2] High memory usage: This alert was triggered for zone us-1; High CPU usage: This alert was triggered for zone eu-1",
		"972500000001,972500000002": "[FIRING] ProbeFailure: BlackBox Probe Failure: https://server.example.org",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SMS = %v\nwant %v", got, want)
	}
	if r := call(t, "POST", e.base+"/v1/hooks/alertmanager", opsToken, `{"status": "firing"}`); r.Status != 400 || r.Body["field"] != "alerts" {
		t.Errorf("no alerts: %d %v", r.Status, r.Body)
	}
	if r := call(t, "POST", e.base+"/v1/hooks/grafana", "", string(grafana)); r.Status != 401 {
		t.Errorf("no token: %d", r.Status)
	}
}

// A client's retry with the same Idempotency-Key is answered with the
// first message but is not a second acceptance in the metrics.
func TestHTTPIdempotentReplayIsNotCounted(t *testing.T) {
	e := newHTTPEnv(t, "")
	body := `{"to": "0501234567", "text": "Order 19 shipped"}`
	for range 3 {
		if r := call(t, "POST", e.base+"/v1/messages", opsToken, body, "Idempotency-Key", "order-19"); r.Status != 202 {
			t.Fatalf("POST = %d %v", r.Status, r.Body)
		}
	}
	resp, err := http.Get(e.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `smsbridge_messages_accepted_total{channel="http"} 1` + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("metrics lack %q:\n%s", want, grepLines(string(b), "accepted_total"))
	}
}

func grepLines(text, sub string) string {
	var out []string
	for l := range strings.Lines(text) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
