package daemon_test

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/providertest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

const rootToken = "tok-root-admin-91d2"

// closedAddr is a TCP address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

var providerRow = regexp.MustCompile(`(?s)<tr><th scope="row">voip</th>\s*<td[^>]*>(.*?)</td>\s*<td class="num"[^>]*>(\d+)</td><td class="num"[^>]*>(\d+)</td>`)

// The operations page, for an admin: the circuit of a provider that is
// down opens, a poller that cannot reach its provider says why, and a
// reply mail the smarthost does not take waits in the mail queue. Anyone
// else gets the 404 of a page that does not exist.
func TestConsoleOps(t *testing.T) {
	voip := voipcomtest.NewServer(t, "key", "pw", "972500000001")
	d := start(t, fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[queue]
retry_min = "10ms"
retry_max = "50ms"
[replies]
smarthost = %q
catch_all = "desk@example.com"
[[accounts]]
name = "root"
emails = ["root@example.com"]
admin = true
api_token_sha256 = %q
[[accounts]]
name = "desk"
emails = ["desk@example.com"]
sender_ids = ["972500000001"]
api_token_sha256 = %q
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "key"
api_password = "pw"
numbers = ["972500000001"]
inbound_secret = %q
[[providers]]
name = "edge"
type = "ippanel"
base_url = "http://%s"
token = "edge-token"
numbers = ["+983000505"]
poll_interval = "1h"
[[routes]]
prefix = "+972"
provider = "voip"
`, closedAddr(t), sha(rootToken), sha(opsToken), voip.URL, callbackSecret, closedAddr(t)))
	base := "http://" + d.HTTPAddr()

	root := newConsoleUser(t, base)
	root.post("/ui/login", url.Values{"secret": {rootToken}})
	desk := newConsoleUser(t, base)
	desk.post("/ui/login", url.Values{"secret": {opsToken}})
	if p := newConsoleUser(t, base).get("/ui/ops"); p.URL != "/ui/login" {
		t.Fatalf("signed out /ui/ops ends at %s", p.URL)
	}
	if p := desk.get("/ui/ops"); p.Status != http.StatusNotFound || strings.Contains(p.Body, `id="providers"`) {
		t.Fatalf("desk's /ui/ops: %d", p.Status)
	}
	if p := desk.get("/ui/nonesuch"); p.Status != http.StatusNotFound {
		t.Fatalf("desk's /ui/nonesuch: %d", p.Status)
	}

	// The poller ran at start and failed.
	eventually(t, 10*time.Second, "the poller's failed round", func() bool {
		p := root.get("/ui/ops")
		return p.Status == 200 && strings.Contains(p.Body, `<tr><th scope="row">edge</th><td data-label="Every">1h</td>`) &&
			strings.Contains(p.Body, `state-failed">failed</span> <span class="reason">(`)
	})

	// voip answers 503 to everything for a while: its circuit opens.
	for range 300 {
		voip.Faults.Push(providertest.Fault{Status: http.StatusServiceUnavailable})
	}
	if r := call(t, "POST", base+"/v1/messages", opsToken, `{"to": "0501234567", "text": "anyone?"}`); r.Status != http.StatusAccepted {
		t.Fatalf("send: %d %v", r.Status, r.Body)
	}
	eventually(t, 10*time.Second, "voip's circuit open", func() bool {
		m := providerRow.FindStringSubmatch(root.get("/ui/ops").Body)
		return m != nil && strings.Contains(m[1], "open: not called")
	})
	p := root.get("/ui/ops")
	if m := providerRow.FindStringSubmatch(p.Body); m == nil || m[2] != "0" || m[3] == "0" {
		t.Errorf("voip row %q: want 0 sent, some retried", m)
	}
	if !strings.Contains(p.Body, `<p class="big" id="queue-depth">1</p>`) {
		t.Errorf("queue depth is not 1 while voip is down")
	}

	// A phone writes; the mail carrying it waits for the smarthost.
	if code, body := postCallback(t, voip, d, "/v1/providers/voip/inbound", callbackSecret,
		url.Values{"from": {"972507654321"}, "to": {"972500000001"}, "msg": {"hello"}, "smsid": {"in-1"}}); code != 200 {
		t.Fatalf("inbound: %d %v", code, body)
	}
	eventually(t, 10*time.Second, "a mail waiting", func() bool {
		return strings.Contains(root.get("/ui/ops").Body, `<p class="big" id="mail-depth">1</p>`)
	})
}

// The opt-out pages mirror the API's rules: an account lists and changes
// its own suppressions only, may not remove one of everyone's, and every
// change needs the session's CSRF token.
func TestConsoleSuppressionRules(t *testing.T) {
	e := consoleEnv(t, fmt.Sprintf(`
[[accounts]]
name = "root"
emails = ["root@example.com"]
admin = true
api_token_sha256 = %q
`, sha(rootToken)))
	ops := newConsoleUser(t, e.base)
	csrf := csrfOf(t, ops.post("/ui/login", url.Values{"secret": {opsToken}}))
	root := newConsoleUser(t, e.base)
	rootCSRF := csrfOf(t, root.post("/ui/login", url.Values{"secret": {rootToken}}))

	// No token, a forged one: refused, nothing added.
	for _, token := range []string{"", "forged"} {
		form := url.Values{"phone": {"0501234567"}}
		if token != "" {
			form.Set("csrf", token)
		}
		if p := ops.post("/ui/suppressions", form); p.Status != http.StatusForbidden {
			t.Errorf("add with csrf %q: %d", token, p.Status)
		}
		form.Set("account", "ops")
		if p := ops.post("/ui/suppressions/remove", form); p.Status != http.StatusForbidden {
			t.Errorf("remove with csrf %q: %d", token, p.Status)
		}
	}
	if r := call(t, "GET", e.base+"/v1/suppressions", opsToken, ""); len(r.Body["suppressions"].([]any)) != 0 {
		t.Fatalf("added without a token: %v", r.Body)
	}

	// Another account's name in the form is refused, as in the API.
	p := ops.post("/ui/suppressions", url.Values{"csrf": {csrf}, "phone": {"0501234567"}, "account": {"other"}})
	if p.Status != http.StatusOK || p.URL != "/ui/suppressions" || !strings.Contains(html.UnescapeString(p.Body), "Added +972501234567.") {
		t.Fatalf("add: %d at %s", p.Status, p.URL)
	}
	r := call(t, "GET", e.base+"/v1/suppressions", opsToken, "")
	list := r.Body["suppressions"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["account"] != "ops" {
		t.Fatalf("ops's add with account=other stored %v", list)
	}
	// A number that is not ops's: refused beside the form, kept.
	p = ops.post("/ui/suppressions", url.Values{"csrf": {csrf}, "phone": {"0507654321"}, "number": {"Other"}})
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, `role="alert"`) || !strings.Contains(p.Body, `value="0507654321"`) {
		t.Fatalf("add from another's sender ID: %d", p.Status)
	}

	// Everyone's suppression, an admin's: listed to ops, not removable.
	if p := root.post("/ui/suppressions", url.Values{"csrf": {rootCSRF}, "phone": {"0521111111"}}); p.Status != http.StatusOK {
		t.Fatalf("root's add: %d", p.Status)
	}
	p = ops.get("/ui/suppressions")
	if b := html.UnescapeString(p.Body); !strings.Contains(b, "+972521111111") || !strings.Contains(b, "from everyone") {
		t.Fatalf("ops does not see everyone's suppression")
	}
	if p := ops.post("/ui/suppressions/remove", url.Values{"csrf": {csrf}, "phone": {"+972521111111"}}); p.Status == http.StatusOK {
		t.Fatalf("ops removed everyone's suppression: %d", p.Status)
	}
	if r := call(t, "GET", e.base+"/v1/suppressions?phone=%2B972521111111", rootToken, ""); len(r.Body["suppressions"].([]any)) != 1 {
		t.Fatalf("everyone's suppression after ops's remove: %v", r.Body)
	}
	// other sees everyone's (it stops other's sends too), not ops's.
	other := newConsoleUser(t, e.base)
	other.post("/ui/login", url.Values{"secret": {otherToken}})
	p = other.get("/ui/suppressions")
	if b := html.UnescapeString(p.Body); strings.Contains(b, "+972501234567") || !strings.Contains(b, "+972521111111") {
		t.Fatalf("other's list: ops's shown or everyone's missing")
	}
}
