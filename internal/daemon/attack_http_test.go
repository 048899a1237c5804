package daemon_test

// Attacks on the HTTP side and on what crosses it (issue 12): a provider
// speaking for another provider's conversations, one account reading
// another's, requests that make the daemon spend without bound, and an
// Idempotency-Key reused for another request. Each runs against the real
// daemon on 127.0.0.1:0 through real HTTP round trips.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

const (
	rogueSecret = "rogue-secret-abcdef0123456789"
	bobToken    = "bob-token-for-attack-tests"
)

// TestAttackProviderPlantsReply: provider "rogue" (its callback secret
// leaked, or its operator is hostile) reports SMS from a phone to voip's
// number: one before anybody wrote to the phone, one after alice did
// through voip. Neither reaches alice nor her thread: both go to the
// catch-all. Nor may rogue mark voip's SMS delivered.
func TestAttackProviderPlantsReply(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{STARTTLS: false})
	voip := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001")
	rogue := voipcomtest.NewServer(t, "key2", "pw-rogue", "972500000009")
	d := start(t, fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[replies]
smarthost = %q
catch_all = "desk@example.com"
retry_min = "100ms"
retry_max = "200ms"
[[accounts]]
name = "alice"
emails = ["alice@example.com"]
sender_ids = ["972500000001"]
api_token_sha256 = %q
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
`, capture.Addr(), sha(aliceToken), voip.URL, callbackSecret, rogue.URL, rogueSecret))

	// Before anyone wrote: rogue opens the phone's thread on voip's
	// number, for whoever writes from it next to find.
	first := url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {"Hi, new number, call me"}, "smsid": {"r-0"}}
	if code, body := postCallback(t, rogue, d, "/v1/providers/rogue/inbound", rogueSecret, first); code != 200 {
		t.Fatalf("rogue inbound: %d %v", code, body)
	}
	eventually(t, 5*time.Second, "the first planted SMS mailed", func() bool { return len(capture.Messages()) == 1 })

	reply, err := sendMail(t, d.SMTPAddr(), "alice@example.com", []string{"050-123-4567@sms.example.com"},
		"From: alice@example.com\nMessage-ID: <dinner@example.com>\nSubject: Dinner\n\nAre you coming at 8?\n")
	if err != nil {
		t.Fatal(err)
	}
	_, msgID, _ := strings.Cut(reply, "queued as ")
	var sent *bridge.Message
	eventually(t, 5*time.Second, "the SMS sent", func() bool {
		sent, err = d.Store().Message(t.Context(), msgID)
		return err == nil && sent.Recipients[0].State == bridge.StateSent
	})

	// Through rogue's endpoint, with rogue's own (valid) secret.
	planted := url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {"Send the door code to this number"}, "smsid": {"r-1"}}
	if code, body := postCallback(t, rogue, d, "/v1/providers/rogue/inbound", rogueSecret, planted); code != 200 {
		t.Fatalf("rogue inbound: %d %v", code, body)
	}
	status := url.Values{"smsid": {sent.Recipients[0].ProviderID}, "status": {"UNDELIV"}}
	if code, body := postCallback(t, rogue, d, "/v1/providers/rogue/status", rogueSecret, status); code != 200 || body["updated"] != float64(0) {
		t.Errorf("rogue's report of voip's SMS: %d %v; want 200, 0 updated", code, body)
	}
	eventually(t, 5*time.Second, "the planted SMS mailed", func() bool { return len(capture.Messages()) == 2 })
	for _, m := range capture.Messages() {
		if len(m.To) != 1 || m.To[0] != "desk@example.com" {
			t.Errorf("rogue's SMS mailed to %v; want only the catch-all", m.To)
		}
	}
	if m, _ := d.Store().Message(t.Context(), msgID); m.Recipients[0].State != bridge.StateSent {
		t.Errorf("voip's SMS is %s after rogue's report", m.Recipients[0].State)
	}

	// Alice's thread holds her SMS only; the real answer, through voip,
	// is hers.
	conv := bridge.ConversationID("+972501234567", "+972500000001")
	answer := url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {"Yes, at 8"}, "smsid": {"v-1"}}
	if code, body := postCallback(t, voip, d, "/v1/providers/voip/inbound", callbackSecret, answer); code != 200 {
		t.Fatalf("voip inbound: %d %v", code, body)
	}
	eventually(t, 5*time.Second, "the answer mailed", func() bool { return len(capture.Messages()) == 3 })
	if to := capture.Messages()[2].To; len(to) != 1 || to[0] != "alice@example.com" {
		t.Errorf("voip's answer mailed to %v, want alice", to)
	}
	r := call(t, "GET", "http://"+d.HTTPAddr()+"/v1/conversations/"+conv, aliceToken, "")
	log, _ := r.Body["log"].([]any)
	if r.Status != 200 || len(log) != 2 {
		t.Fatalf("alice's conversation: %d %v; want her SMS and voip's answer", r.Status, r.Body)
	}
	for _, e := range log {
		if e := e.(map[string]any); e["provider"] == "rogue" || e["direction"] == "in" && e["text"] != "Yes, at 8" {
			t.Errorf("rogue's SMS in alice's thread: %v", e)
		}
	}
}

// tenantConfig has two accounts sharing the one-way sender ID "Acme"
// (allowed) and each its own number.
func tenantConfig(voipURL string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "alice"
emails = ["alice@example.com"]
sender_ids = ["+17134567890", "Acme"]
api_token_sha256 = %q
[[accounts]]
name = "bob"
emails = ["bob@example.org"]
sender_ids = ["Acme", "+17134567891"]
api_token_sha256 = %q
[[providers]]
name = "held"
type = "console"
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "k"
api_password = "p"
numbers = ["+17134567890", "+17134567891"]
[[routes]]
prefix = "+1"
provider = "held"
[[routes]]
prefix = "+972"
provider = "voip"
`, sha(aliceToken), sha(bobToken), voipURL)
}

// TestAttackTenantCrossReads: bob tries to read and cancel alice's
// messages and conversations over every endpoint. What is another
// account's does not exist for him: 404, as for an unknown id (a 403
// would tell him the id is taken). Where they share the sender ID "Acme"
// with a phone, bob's view of the conversation holds his SMS only.
func TestAttackTenantCrossReads(t *testing.T) {
	voip := voipcomtest.NewServer(t, "k", "p", "17134567890", "17134567891")
	d := start(t, tenantConfig(voip.URL))
	base := "http://" + d.HTTPAddr()
	phone := "+12025550143"

	// alice writes to the phone, scheduled far ahead so that she could
	// still cancel it; then both write from Acme.
	tomorrow := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	later := call(t, "POST", base+"/v1/messages", aliceToken,
		`{"to": "`+phone+`", "text": "alice: payroll on Friday", "send_at": "`+tomorrow+`"}`)
	secret := call(t, "POST", base+"/v1/messages", aliceToken,
		`{"to": "`+phone+`", "text": "alice: the vault code is 4711", "sender": "Acme", "reply_to": "alice@example.com"}`)
	if later.Status != 202 || secret.Status != 202 {
		t.Fatalf("alice's sends: %d %v, %d %v", later.Status, later.Body, secret.Status, secret.Body)
	}
	conv := bridge.ConversationID(phone, "Acme")
	eventually(t, 5*time.Second, "alice's SMS filed", func() bool {
		c, err := d.Store().Conversation(t.Context(), conv)
		return err == nil && c.Account == "alice"
	})
	mine := call(t, "POST", base+"/v1/messages", bobToken,
		`{"to": "`+phone+`", "text": "bob: hello", "sender": "Acme", "reply_to": "bob@example.org"}`)
	if mine.Status != 202 {
		t.Fatalf("bob's send: %d %v", mine.Status, mine.Body)
	}
	eventually(t, 5*time.Second, "bob's SMS routing the conversation", func() bool {
		c, err := d.Store().Conversation(t.Context(), conv)
		return err == nil && c.Account == "bob"
	})

	for _, id := range []string{later.Body["id"].(string), secret.Body["id"].(string)} {
		if r := call(t, "GET", base+"/v1/messages/"+id, bobToken, ""); r.Status != 404 || r.Body["reason"] != "not_found" {
			t.Errorf("bob GET alice's message: %d %v; want 404 not_found", r.Status, r.Body)
		}
		if r := call(t, "DELETE", base+"/v1/messages/"+id, bobToken, ""); r.Status != 404 {
			t.Errorf("bob DELETE alice's message: %d %v; want 404", r.Status, r.Body)
		}
	}
	if r := call(t, "GET", base+"/v1/messages/"+later.Body["id"].(string), aliceToken, ""); r.Status != 200 ||
		r.Body["recipients"].([]any)[0].(map[string]any)["state"] != "queued" {
		t.Errorf("alice's scheduled message after bob's cancel: %d %v; want it still queued", r.Status, r.Body)
	}
	r := call(t, "GET", base+"/v1/conversations/"+conv, bobToken, "")
	if r.Status != 200 {
		t.Fatalf("bob's shared-sender conversation: %d %v", r.Status, r.Body)
	}
	log, _ := r.Body["log"].([]any)
	if len(log) != 1 || log[0].(map[string]any)["message_id"] != mine.Body["id"] {
		t.Errorf("bob sees in the shared-sender conversation %v; want his own SMS only", log)
	}
	if r := call(t, "GET", base+"/v1/conversations?account=alice", bobToken, ""); r.Status != 200 || len(r.Body["conversations"].([]any)) != 0 {
		t.Errorf("bob lists alice's conversations: %d %v; want none", r.Status, r.Body)
	}
	// The conversation is bob's now (he wrote last): alice no longer
	// sees it at all, rather than seeing bob's SMS.
	if r := call(t, "GET", base+"/v1/conversations/"+conv, aliceToken, ""); r.Status != 404 {
		t.Errorf("alice reads the conversation bob wrote last: %d %v; want 404", r.Status, r.Body)
	}
}

// TestAttackHTTPToListCap: a send whose to list is longer than
// smtp.max_recipients is refused with 422 naming to, before a single
// entry is resolved: the answer is one error, not one per entry.
func TestAttackHTTPToListCap(t *testing.T) {
	e := newHTTPEnv(t, "")
	var b strings.Builder
	b.WriteString(`{"text": "hi", "to": [`)
	for i := range 40_000 { // ~240 kB, under the body cap
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"12"`)
	}
	b.WriteString(`]}`)
	body, n := rawCall(t, "POST", e.base+"/v1/messages", opsToken, b.String())
	if !strings.Contains(body, `"reason":"too_many_recipients"`) || !strings.Contains(body, `"field":"to"`) || n != 422 {
		t.Errorf("40,000 destinations: %d %.300s; want 422 too_many_recipients on to", n, body)
	}
	if len(body) > 2048 {
		t.Errorf("the refusal is %d bytes; want one bounded error", len(body))
	}
	t.Logf("40,000 destinations refused in %d bytes", len(body))
	// An alert hook's ?to= is capped too.
	q := strings.Repeat("12,", 150)
	body, n = rawCall(t, "POST", e.base+"/v1/hooks/grafana?to="+q, opsToken, `{"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull"}}]}`)
	if n != 422 || !strings.Contains(body, `"reason":"too_many_recipients"`) {
		t.Errorf("150 alert numbers: %d %.300s; want 422 too_many_recipients", n, body)
	}
	if got := len(e.voip.Requests()); got != 0 {
		t.Errorf("%d provider calls", got)
	}
}

// TestAttackHTTPErrorBodyBounded: an error quotes what the client sent
// only up to a bound; a 100 kB field name or value does not come back.
func TestAttackHTTPErrorBodyBounded(t *testing.T) {
	e := newHTTPEnv(t, "")
	huge := strings.Repeat("A", 100_000)
	for name, req := range map[string]string{
		"unknown field": `{"to": "0501234567", "` + huge + `": 1}`,
		"bad reply_to":  `{"to": "0501234567", "text": "hi", "reply_to": "` + huge + `"}`,
		"bad number":    `{"to": ["` + huge + `"], "text": "hi"}`,
	} {
		body, n := rawCall(t, "POST", e.base+"/v1/messages", opsToken, req)
		if n < 400 || len(body) > 2048 {
			t.Errorf("%s: %d with a %d-byte body; want an error of at most 2 kB", name, n, len(body))
		}
	}
	body, n := rawCall(t, "GET", e.base+"/v1/conversations?"+strings.Repeat("b", 30_000)+"=1", opsToken, "")
	if n != 400 || len(body) > 2048 {
		t.Errorf("unknown parameter: %d with a %d-byte body; want 400 of at most 2 kB", n, len(body))
	}
}

// rawCall is call for answers that may not be JSON or may be large: the
// body as text and the status.
func rawCall(t *testing.T, method, u, token, body string) (string, int) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

// TestAttackIdempotencyKeyReuse: the same key with another request is a
// conflict naming the key, never the first request's message (which
// would tell the client its different SMS was sent); the same request
// again still gets the first result.
func TestAttackIdempotencyKeyReuse(t *testing.T) {
	e := newHTTPEnv(t, "")
	first := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "0501234567", "text": "Order 17 shipped"}`, "Idempotency-Key", "order-17")
	if first.Status != 202 {
		t.Fatalf("first: %d %v", first.Status, first.Body)
	}
	other := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "0501234567", "text": "Order 17 cancelled"}`, "Idempotency-Key", "order-17")
	if other.Status != http.StatusConflict || other.Body["reason"] != "idempotency_conflict" || other.Body["field"] != "Idempotency-Key" ||
		!strings.Contains(fmt.Sprint(other.Body["error"]), "order-17") || other.Body["id"] != nil {
		t.Errorf("same key, other request: %d %v; want 409 idempotency_conflict naming the key", other.Status, other.Body)
	}
	// Spelt differently, the same request: the first result.
	again := call(t, "POST", e.base+"/v1/messages", opsToken, `{"text":"Order 17 shipped","to":["0501234567"]}`, "Idempotency-Key", "order-17")
	if again.Status != 202 || again.Body["id"] != first.Body["id"] {
		t.Errorf("same key, same request: %d %v; want 202 with %v", again.Status, again.Body, first.Body["id"])
	}
	// Keys are per account: another account's same key is its own.
	mine := call(t, "POST", e.base+"/v1/messages", otherToken, `{"to": "+17135550100", "text": "x", "sender": "Other"}`, "Idempotency-Key", "order-17")
	if mine.Status != 202 || mine.Body["id"] == first.Body["id"] {
		t.Errorf("other account, same key: %d %v", mine.Status, mine.Body)
	}
	eventually(t, 5*time.Second, "one send", func() bool { return len(e.voip.Requests()) == 1 })
}

// limitedHTTP starts a daemon with tight [http] limits.
func limitedHTTP(t *testing.T, limits string) string {
	voip := voipcomtest.NewServer(t, "k", "p", "17134567890")
	edge := ippaneltest.NewServer(t, "edge-token", "+983000505")
	cfg := httpConfig(voip.URL, edge.URL, "")
	cfg = strings.Replace(cfg, "[smtp]", "[http]\n"+limits+"\n[smtp]", 1)
	return start(t, cfg).HTTPAddr()
}

// closedWithin reads conn until the server closes it, and fails the test
// if that takes longer than limit (a generous bound, many times the
// configured timeout: the default timeouts are minutes).
func closedWithin(t *testing.T, conn net.Conn, limit time.Duration, what string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the connection was still open after %s", what, limit)
	}
}

// TestAttackHTTPSlowClients: a client that trickles its headers, or holds
// a kept-alive connection doing nothing, is cut off after
// http.read_header_timeout / http.idle_timeout.
func TestAttackHTTPSlowClients(t *testing.T) {
	addr := limitedHTTP(t, `read_header_timeout = "300ms"`+"\n"+`idle_timeout = "300ms"`)

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprint(slow, "GET /healthz HTTP/1.1\r\nHost: bridge\r\nX-Slow: ")
	closedWithin(t, slow, 5*time.Second, "headers never finished")

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprint(idle, "GET /healthz HTTP/1.1\r\nHost: bridge\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v, %v", resp, err)
	}
	resp.Body.Close()
	closedWithin(t, idle, 5*time.Second, "kept alive and idle")
}

// TestAttackHTTPHeaderCap: headers beyond http.max_header_bytes get 431.
func TestAttackHTTPHeaderCap(t *testing.T) {
	addr := limitedHTTP(t, `max_header_bytes = 4096`)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// net/http allows 4 kB over the configured size; 32 kB is well past.
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: bridge\r\nX-Big: %s\r\n\r\n", strings.Repeat("h", 32<<10))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("32 kB of headers: %d, want 431", resp.StatusCode)
	}
}

// TestAttackHTTPConnectionCap: past http.max_connections, further
// connections wait to be accepted (they cost the daemon nothing) until
// one of those held closes.
func TestAttackHTTPConnectionCap(t *testing.T) {
	addr := limitedHTTP(t, `max_connections = 2`)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A request, answered: the connection is accepted and stays open.
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: bridge\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		held = append(held, c)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/healthz", nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a third connection was served (%d) while two were held", resp.StatusCode)
	}
	held[0].Close()
	req, _ = http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/healthz", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("after one held connection closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
}
