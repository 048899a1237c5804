package console_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/internal/daemon"
	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

const (
	deskToken    = "desk-console-token-0001"
	otherToken   = "other-console-token-0002"
	inboundToken = "voip-inbound-secret-0003"
	adminToken   = "admin-console-token-0004"
)

// browser finds Debian's chromium (or another Chrome). Without one the
// test is skipped, saying so, except under CI, where it fails: CI
// installs chromium (.ci/run) and a silent skip would hide the tests.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium found: CI must install it (.ci/run: apt-get install chromium)")
	}
	t.Skip("no chromium found: install Debian's chromium to run the console's browser tests")
	return ""
}

// newBrowser starts headless chromium with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	path := browser(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	// A ceiling so that a broken page fails the test instead of hanging
	// it; every step waits on the page's own state, not on time.
	ctx, cancelTimeout := context.WithTimeout(bctx, 60*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

type env struct {
	base string
	voip *voipcomtest.Server

	mu   sync.Mutex
	gate chan struct{} // closed: the provider answers
}

// hold makes the provider's answers wait until the returned func is
// called.
func (e *env) hold() (release func()) {
	ch := make(chan struct{})
	e.mu.Lock()
	e.gate = ch
	e.mu.Unlock()
	return sync.OnceFunc(func() { close(ch) })
}

func (e *env) open() chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gate
}

func sha(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }

// startDaemon runs the whole daemon: accounts desk, other and admin (an
// admin), +972 routed to a voip-communications fake behind a gate the
// test opens, so that a send is seen queued before it is seen sent, +1 to
// a console provider, "held", and +98 to an IPPanel fake, "edge", polled.
func startDaemon(t *testing.T) *env {
	voip := voipcomtest.NewServer(t, "k", "p", "972500000001")
	edge := ippaneltest.NewServer(t, "edge-token", "+983000505")
	e := &env{voip: voip, gate: make(chan struct{})}
	close(e.gate) // open until a test holds it
	target, _ := url.Parse(voip.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-e.open():
		case <-r.Context().Done():
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(gate.Close)
	cfgText := fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "desk"
emails = ["desk@example.com"]
sender_ids = ["+972500000001"]
api_token_sha256 = %q
[[accounts]]
name = "other"
emails = ["x@other.example"]
sender_ids = ["Other"]
api_token_sha256 = %q
[[accounts]]
name = "admin"
emails = ["admin@example.com"]
admin = true
api_token_sha256 = %q
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "k"
api_password = "p"
numbers = ["972500000001"]
inbound_secret = %q
[[providers]]
name = "held"
type = "console"
[[providers]]
name = "edge"
type = "ippanel"
base_url = %q
token = "edge-token"
numbers = ["+983000505"]
poll_interval = "1h"
[[routes]]
prefix = "+972"
provider = "voip"
[[routes]]
prefix = "+1"
provider = "held"
[[routes]]
prefix = "+98"
provider = "edge"
`, sha(deskToken), sha(otherToken), sha(adminToken), gate.URL, inboundToken, edge.URL)
	cfg, err := config.Parse(cfgText, daemon.Kinds)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.Path = filepath.Join(t.TempDir(), "smsbridge.db")
	cfg.SMTP.Listen, cfg.HTTP.Listen = "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	e.base = "http://" + d.HTTPAddr()
	return e
}

func (e *env) api(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// signIn signs in through the form, as a person would.
func signIn(e *env, token string, then ...chromedp.Action[chromedp.Void]) []chromedp.Action[chromedp.Void] {
	return append([]chromedp.Action[chromedp.Void]{
		chromedp.Navigate(e.base + "/ui/"),
		chromedp.WaitVisible(chromedp.ID("secret")),
		chromedp.SendKeys(chromedp.ID("secret"), token),
		chromedp.Submit(chromedp.ID("secret")),
		chromedp.WaitVisible(chromedp.ID("conversations")),
	}, then...)
}

// bubble is the XPath of the outgoing bubble with text in state.
func bubble(dir, text, state string) string {
	x := fmt.Sprintf(`//ol[@id="thread"]/li[contains(@class,%q)][p[@class="text"]=%q]`, dir, text)
	if state != "" {
		x += fmt.Sprintf(`//span[contains(@class,"state-%s")]`, state)
	}
	return x
}

func TestBrowserConversation(t *testing.T) {
	ctx := newBrowser(t)
	e := startDaemon(t)
	if code, body := e.api(t, "POST", "/v1/messages", deskToken, `{"to": "050-123-4567", "text": "Your appointment is at 9", "reply_to": "desk@example.com"}`); code != 202 {
		t.Fatalf("send: %d %s", code, body)
	}

	err := chromedp.Do(ctx, signIn(e, deskToken,
		// The conversation appears once the SMS is sent (no reload: the
		// list follows the outcome live).
		chromedp.WaitVisible(`//ul[@id="conversations"]//a[span[@class="phone"]="+972501234567"]`),
		chromedp.Click(`//ul[@id="conversations"]//a[span[@class="phone"]="+972501234567"]`),
		chromedp.WaitVisible(bubble("out", "Your appointment is at 9", "sent")),
	)...)
	if err != nil {
		t.Fatalf("open the conversation: %v", err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	path := u.Path

	// A reply from the compose box: queued while the provider has not
	// answered, then sent, on the same page.
	release := e.hold()
	defer release() // if the test fails before it does
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("text"), "See you then"),
		chromedp.Submit(chromedp.ID("text")),
		chromedp.WaitVisible(bubble("out", "See you then", "queued")),
	); err != nil {
		_, conv := e.api(t, "GET", "/v1/conversations/"+strings.TrimPrefix(path, "/ui/c/"), deskToken, "")
		t.Fatalf("reply queued: %v; the conversation: %s", err, conv)
	}
	release()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(bubble("out", "See you then", "sent"))); err != nil {
		t.Fatalf("reply sent: %v", err)
	}
	if reqs := e.voip.Requests(); len(reqs) != 2 || reqs[1].Form.Get("msg") != "See you then" {
		t.Fatalf("provider got %d requests", len(reqs))
	}

	// The phone answers: the bubble appears without a reload.
	resp, err := e.voip.PostInbound(t.Context(), e.base+"/v1/providers/voip/inbound?secret="+inboundToken,
		url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {"Thanks!"}, "smsid": {"in-1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("inbound callback: %d", resp.StatusCode)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(bubble("in", "Thanks!", ""))); err != nil {
		t.Fatalf("inbound live: %v", err)
	}

	// Another account's browser gets 404 for this thread.
	other := newBrowser(t)
	if err := chromedp.Do(other, signIn(e, otherToken, chromedp.Navigate(e.base+path))...); err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(other, chromedp.Text(chromedp.CSS("h1")))
	if err != nil {
		t.Fatal(err)
	}
	if status != "Not Found" {
		t.Fatalf("other account at %s sees %q, want Not Found", path, status)
	}
}

func TestBrowserCancelScheduled(t *testing.T) {
	ctx := newBrowser(t)
	e := startDaemon(t)
	at := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	code, body := e.api(t, "POST", "/v1/messages", deskToken, `{"to": "+1 713 555 0100", "text": "later", "send_at": "`+at+`"}`)
	if code != 202 {
		t.Fatalf("send: %d %s", code, body)
	}
	id := body[strings.Index(body, `"id":"`)+6:]
	id = id[:strings.IndexByte(id, '"')]
	if err := chromedp.Do(ctx, signIn(e, deskToken,
		chromedp.Navigate(e.base+"/ui/m/"+id),
		chromedp.WaitVisible(`//table[@id="recipients"]//span[contains(@class,"state-queued")]`),
		chromedp.Click(`//button[normalize-space()="Cancel the queued recipients"]`),
		chromedp.WaitVisible(`//table[@id="recipients"]//span[contains(@class,"state-cancelled")]`),
	)...); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if _, body := e.api(t, "GET", "/v1/messages/"+id, deskToken, ""); !strings.Contains(body, `"state":"cancelled"`) {
		t.Fatalf("after cancel: %s", body)
	}
}
