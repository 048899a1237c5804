package console_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// until waits for cond, which reads the daemon's state through its API
// (the dispatcher works apart from the test), failing after 20 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// send submits an SMS through the API and returns its id.
func (e *env) send(t *testing.T, token, body string) string {
	t.Helper()
	code, resp := e.api(t, "POST", "/v1/messages", token, body)
	if code != 202 {
		t.Fatalf("send %s: %d %s", body, code, resp)
	}
	var m struct{ ID string }
	if err := json.Unmarshal([]byte(resp), &m); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// recipient is the first recipient of message id as the API shows it.
type recipient struct {
	State      string `json:"state"`
	ProviderID string `json:"provider_id"`
}

func (e *env) recipient(t *testing.T, token, id string) recipient {
	t.Helper()
	_, body := e.api(t, "GET", "/v1/messages/"+id, token, "")
	var m struct{ Recipients []recipient }
	_ = json.Unmarshal([]byte(body), &m)
	if len(m.Recipients) == 0 {
		return recipient{}
	}
	return m.Recipients[0]
}

// sent sends an SMS and waits until it is in state.
func (e *env) sent(t *testing.T, token, body, state string) (id string, r recipient) {
	t.Helper()
	id = e.send(t, token, body)
	until(t, "message "+id+" "+state, func() bool {
		r = e.recipient(t, token, id)
		return r.State == state
	})
	return id, r
}

// callback posts form to one of the voip provider's callback URLs
// (inbound, status).
func (e *env) callback(t *testing.T, kind string, form url.Values) {
	t.Helper()
	resp, err := e.voip.PostInbound(t.Context(), e.base+"/v1/providers/voip/"+kind+"?secret="+inboundToken, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s callback: %d", kind, resp.StatusCode)
	}
}

// conversationCount is the number of conversations admin's listing shows.
func (e *env) conversationCount(t *testing.T) int {
	t.Helper()
	_, body := e.api(t, "GET", "/v1/conversations", adminToken, "")
	var page struct{ Conversations []struct{ ID string } }
	_ = json.Unmarshal([]byte(body), &page)
	return len(page.Conversations)
}

// listed returns the phones the conversation list shows, in its order.
func listed(t *testing.T, ctx context.Context) []string {
	t.Helper()
	phones, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#conversations .phone"), e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	return phones
}

// pageText is where the browser is and what it shows, for a failure.
func pageText(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
	if err != nil {
		return err.Error()
	}
	return text
}

// stale marks the page shown, so that newPage can tell the one a form
// or a key brings apart from it.
var stale = chromedp.Evaluate[chromedp.Void](`document.body.setAttribute("data-stale", "")`)

// newPage waits for a page that stale has not marked.
var newPage = chromedp.WaitReady(`//body[not(@data-stale)]`)

// filterBy submits the conversation filters with these values and waits
// for the page that answers them.
func filterBy(provider, state string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.SetValue(chromedp.ID("provider"), provider),
		chromedp.SetValue(chromedp.ID("state"), state),
		stale,
		chromedp.Submit(chromedp.ID("state")),
		newPage,
		chromedp.WaitVisible(chromedp.ID("conversations")),
	}
}

// TestBrowserFilters: the conversation list filters by provider and by
// the state of each conversation's newest SMS, chosen with the keyboard
// as well as the mouse.
func TestBrowserFilters(t *testing.T) {
	ctx := newBrowser(t)
	e := startDaemon(t)
	// delivered: sent through voip, then reported delivered.
	_, r := e.sent(t, deskToken, `{"to": "050-111-1111", "text": "Your results are ready", "reply_to": "desk@example.com"}`, "sent")
	e.callback(t, "status", url.Values{"smsid": {r.ProviderID}, "status": {"DELIVRD"}})
	// failed: the provider refuses the number for good.
	e.voip.FailRecipient("972502222222", 400, "number is blacklisted")
	e.sent(t, deskToken, `{"to": "050-222-2222", "text": "Reminder: 9:00", "reply_to": "desk@example.com"}`, "failed")
	// sent through the held (console) provider.
	e.sent(t, deskToken, `{"to": "+1 713 555 0100", "text": "See you soon"}`, "sent")
	// received: the phone wrote first.
	e.callback(t, "inbound", url.Values{"from": {"972503333333"}, "to": {"972500000001"}, "msg": {"Can I move my appointment?"}, "smsid": {"in-1"}})
	until(t, "four conversations", func() bool { return e.conversationCount(t) == 4 })

	if err := chromedp.Do(ctx, signIn(e, adminToken)...); err != nil {
		t.Fatal(err)
	}
	all := listed(t, ctx)
	slices.Sort(all)
	if want := []string{"+17135550100", "+972501111111", "+972502222222", "+972503333333"}; !slices.Equal(all, want) {
		t.Fatalf("unfiltered list: %v, want %v", all, want)
	}
	for _, tt := range []struct {
		provider, state string
		want            []string
	}{
		{"", "failed", []string{"+972502222222"}},
		{"", "received", []string{"+972503333333"}},
		{"", "delivered", []string{"+972501111111"}},
		{"held", "", []string{"+17135550100"}},
		{"voip", "sent", nil},
		{"held", "sent", []string{"+17135550100"}},
		{"voip", "", []string{"+972503333333", "+972502222222", "+972501111111"}},
	} {
		if err := chromedp.Do(ctx, filterBy(tt.provider, tt.state)...); err != nil {
			t.Fatalf("filter provider %q state %q: %v\n%s", tt.provider, tt.state, err, pageText(ctx))
		}
		if got := listed(t, ctx); !slices.Equal(got, tt.want) {
			t.Errorf("provider %q state %q: %v, want %v", tt.provider, tt.state, got, tt.want)
		}
	}

	// The keyboard alone: Tab from the phone box through the account,
	// provider and state filters to the button, a letter picks the
	// state, Enter searches.
	var order []string
	acts := []chromedp.Action[chromedp.Void]{chromedp.Navigate(e.base + "/ui/"), chromedp.WaitVisible(chromedp.ID("conversations")),
		chromedp.Focus(chromedp.ID("phone"))}
	for range 4 {
		acts = append(acts, chromedp.KeyEvent(kb.Tab), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			id, err := chromedp.Evaluate[string](`document.activeElement.id || document.activeElement.textContent`)(ctx, tg)
			order = append(order, id)
			return err
		}))
	}
	if err := chromedp.Do(ctx, acts...); err != nil {
		t.Fatal(err)
	}
	if want := []string{"acct", "provider", "state", "Search"}; !slices.Equal(order, want) {
		t.Fatalf("Tab order from the phone box: %v, want %v", order, want)
	}
	if err := chromedp.Do(ctx,
		chromedp.Focus(chromedp.ID("state")),
		chromedp.KeyEvent("f"), // type-ahead: failed
		chromedp.KeyEvent(kb.Tab),
		stale,
		chromedp.KeyEvent(kb.Enter),
		newPage,
		chromedp.WaitReady(`//select[@id="state"]/option[@value="failed"][@selected]`),
	); err != nil {
		t.Fatalf("filtering with the keyboard: %v", err)
	}
	if got := listed(t, ctx); !slices.Equal(got, []string{"+972502222222"}) {
		t.Errorf("keyboard filter failed: %v", got)
	}

	// A state that is none is said beside the box, not a broken page.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/ui/?state=stuck"), chromedp.WaitVisible(chromedp.ID("error"))); err != nil {
		t.Fatal(err)
	}
	if msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error"))); err != nil || !strings.Contains(msg, "not a conversation state") {
		t.Errorf("state=stuck: %q, %v", msg, err)
	}
}

// cells returns the text of each cell of the rows of the table's body.
func cells(t *testing.T, ctx context.Context, table string) [][]string {
	t.Helper()
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("#`+table+` tbody tr"),
		r => Array.from(r.cells, c => c.textContent.replace(/\s+/g, " ").trim()))`))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestBrowserOps: an admin reaches the operations page from the menu and
// sees the queue, the mail queue, each provider's circuit and last hour,
// following sends live; another account has neither the menu entry nor
// the page.
func TestBrowserOps(t *testing.T) {
	ctx := newBrowser(t)
	e := startDaemon(t)
	e.sent(t, deskToken, `{"to": "050-111-1111", "text": "Your results are ready"}`, "sent")
	later := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	e.send(t, deskToken, `{"to": "+1 713 555 0100", "text": "later", "send_at": "`+later+`"}`)

	if err := chromedp.Do(ctx, signIn(e, adminToken,
		chromedp.Click(`//nav//a[.="Operations"]`),
		chromedp.WaitVisible(chromedp.ID("providers")),
	)...); err != nil {
		t.Fatalf("opening Operations from the menu: %v\n%s", err, pageText(ctx))
	}
	depth, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("queue-depth")))
	if err != nil || depth != "1" {
		t.Errorf("queue depth %q, %v; want 1 (the scheduled SMS)", depth, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("mail-off"))); err != nil {
		t.Errorf("no word that there is no smarthost: %v", err)
	}
	want := [][]string{{"voip", "closed", "1", "0", "0"}, {"held", "closed", "0", "0", "0"}, {"edge", "closed", "0", "0", "0"}}
	if got := cells(t, ctx, "providers"); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("providers: %v, want %v", got, want)
	}
	// edge is polled from the start: its round shows when it is over.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`//table[@id="pollers"]//tr[th="edge"]/td[@data-label="Result"][.="ok"]`)); err != nil {
		t.Errorf("edge's poll round: %v; pollers %v", err, cells(t, ctx, "pollers"))
	}
	// Another send: the page follows without a reload.
	e.send(t, deskToken, `{"to": "050-222-2222", "text": "Reminder: 9:00"}`)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`//table[@id="providers"]//tr[th="voip"]/td[@data-label="Sent"][.="2"]`)); err != nil {
		t.Fatalf("the second send did not show: %v; providers %v", err, cells(t, ctx, "providers"))
	}

	desk := newBrowser(t)
	if err := chromedp.Do(desk, signIn(e, deskToken)...); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(desk, chromedp.Evaluate[int](`document.querySelectorAll('a[href="/ui/ops"]').length`)); err != nil || n != 0 {
		t.Errorf("desk's menu links to Operations %d times, %v", n, err)
	}
	if err := chromedp.Do(desk, chromedp.Navigate(e.base+"/ui/ops"), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatal(err)
	}
	if h1, err := chromedp.Run(desk, chromedp.Text(chromedp.CSS("h1"))); err != nil || h1 != "Not found" {
		t.Errorf("desk at /ui/ops sees %q, %v; want Not found", h1, err)
	}
	if n, err := chromedp.Run(desk, chromedp.Evaluate[int](`document.querySelectorAll("#providers, #queue-depth").length`)); err != nil || n != 0 {
		t.Errorf("desk sees %d of the operations figures, %v", n, err)
	}
}

// TestBrowserSuppressions: an account adds a phone to its opt-outs (a
// refusal said beside the form first), a reply to the phone is then
// refused in the thread, and once removed from the list it goes out.
func TestBrowserSuppressions(t *testing.T) {
	ctx := newBrowser(t)
	e := startDaemon(t)
	e.sent(t, deskToken, `{"to": "050-123-4567", "text": "Your appointment is at 9", "reply_to": "desk@example.com"}`, "sent")
	calls := len(e.voip.Requests())

	if err := chromedp.Do(ctx, signIn(e, deskToken,
		chromedp.Click(`//nav//a[.="Opt-outs"]`),
		chromedp.WaitVisible(chromedp.ID("s-phone")),
		chromedp.SendKeys(chromedp.ID("s-phone"), "nonsense"),
		stale,
		chromedp.Submit(chromedp.ID("s-phone")),
		newPage,
		chromedp.WaitVisible(chromedp.ID("error")),
	)...); err != nil {
		t.Fatalf("adding a number that is none: %v\n%s", err, pageText(ctx))
	}
	msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error")))
	kept, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("s-phone")))
	invalid, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("s-phone").getAttribute("aria-invalid")`))
	if !strings.Contains(msg, "not a phone number") || kept != "nonsense" || invalid != "true" {
		t.Errorf("refusal: %q, box %q, aria-invalid %q", msg, kept, invalid)
	}

	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("s-phone").value = ""`),
		chromedp.SendKeys(chromedp.ID("s-phone"), "050-123 4567"),
		chromedp.SendKeys(chromedp.ID("s-reason"), "asked on the phone"),
		stale,
		chromedp.Submit(chromedp.ID("s-phone")),
		newPage,
		chromedp.WaitVisible(chromedp.ID("notice")),
	); err != nil {
		t.Fatalf("adding: %v\n%s", err, pageText(ctx))
	}
	if n, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("notice"))); !strings.HasPrefix(n, "Added +972501234567.") {
		t.Errorf("notice %q", n)
	}
	if rows := cells(t, ctx, "suppressions"); len(rows) != 1 || rows[0][0] != "+972501234567" || rows[0][1] != "from account desk" || rows[0][2] != "asked on the phone" {
		t.Errorf("list: %v", rows)
	}
	if _, body := e.api(t, "GET", "/v1/suppressions", deskToken, ""); !strings.Contains(body, `"phone":"+972501234567"`) || !strings.Contains(body, `"source":"console"`) {
		t.Errorf("the API does not list it: %s", body)
	}
	if _, body := e.api(t, "GET", "/v1/suppressions", otherToken, ""); strings.Contains(body, "+972501234567") {
		t.Errorf("another account sees desk's: %s", body)
	}

	// A reply to the phone is refused, in the thread.
	reply := []chromedp.Action[chromedp.Void]{
		chromedp.Click(`//nav//a[.="Conversations"]`),
		chromedp.WaitVisible(`//ul[@id="conversations"]//a[span[@class="phone"]="+972501234567"]`),
		chromedp.Click(`//ul[@id="conversations"]//a[span[@class="phone"]="+972501234567"]`),
		chromedp.WaitVisible(chromedp.ID("text")),
		chromedp.SendKeys(chromedp.ID("text"), "Are you there?"),
		stale,
		chromedp.Submit(chromedp.ID("text")),
		newPage,
	}
	if err := chromedp.Do(ctx, append(reply, chromedp.WaitVisible(chromedp.ID("error")))...); err != nil {
		t.Fatalf("reply to a suppressed phone: %v\n%s", err, pageText(ctx))
	}
	if msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error"))); !strings.Contains(msg, "opted out") {
		t.Errorf("refusal %q, want it to say the phone opted out", msg)
	}
	if n := len(e.voip.Requests()); n != calls {
		t.Fatalf("the provider was called %d times for a suppressed phone", n-calls)
	}

	// Removed, the reply goes out.
	if err := chromedp.Do(ctx,
		chromedp.Click(`//nav//a[.="Opt-outs"]`),
		chromedp.WaitVisible(`//table[@id="suppressions"]//button[.="Remove"]`),
		stale,
		chromedp.Click(`//table[@id="suppressions"]//tr[th="+972501234567"]//button[.="Remove"]`),
		newPage,
		chromedp.WaitVisible(chromedp.ID("notice")),
	); err != nil {
		t.Fatalf("removing: %v\n%s", err, pageText(ctx))
	}
	if rows := cells(t, ctx, "suppressions"); len(rows) != 1 || !strings.HasPrefix(rows[0][0], "No phone is on the list") {
		t.Errorf("list after removal: %v", rows)
	}
	if err := chromedp.Do(ctx, append(reply, chromedp.WaitVisible(bubble("out", "Are you there?", "sent")))...); err != nil {
		t.Fatalf("reply after the removal: %v\n%s", err, pageText(ctx))
	}
}

// TestBrowserCSRFMissing: a form sent without its CSRF token is refused
// and changes nothing, whichever form it is.
func TestBrowserCSRFMissing(t *testing.T) {
	ctx := newBrowser(t)
	e := startDaemon(t)
	e.sent(t, deskToken, `{"to": "050-123-4567", "text": "Your appointment is at 9", "reply_to": "desk@example.com"}`, "sent")
	calls := len(e.voip.Requests())
	dropToken := chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('input[name="csrf"]').forEach(e => e.remove())`)
	refused := func(what string) {
		t.Helper()
		if h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1"))); err != nil || h1 != "Refused" {
			t.Errorf("%s without a CSRF token: %q, %v; want Refused", what, h1, err)
		}
	}

	if err := chromedp.Do(ctx, signIn(e, deskToken,
		chromedp.Click(`//ul[@id="conversations"]//a[span[@class="phone"]="+972501234567"]`),
		chromedp.WaitVisible(chromedp.ID("text")),
		chromedp.SendKeys(chromedp.ID("text"), "forged"),
		dropToken, stale,
		chromedp.Submit(chromedp.ID("text")),
		newPage,
	)...); err != nil {
		t.Fatal(err)
	}
	refused("a reply")
	if _, body := e.api(t, "GET", "/v1/conversations?phone=%2B972501234567", deskToken, ""); e.conversationCount(t) != 1 || len(e.voip.Requests()) != calls {
		t.Errorf("the reply went out: %s", body)
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/ui/suppressions"),
		chromedp.WaitVisible(chromedp.ID("s-phone")),
		chromedp.SendKeys(chromedp.ID("s-phone"), "0501234567"),
		dropToken, stale,
		chromedp.Submit(chromedp.ID("s-phone")),
		newPage,
	); err != nil {
		t.Fatal(err)
	}
	refused("an opt-out")
	if _, body := e.api(t, "GET", "/v1/suppressions", deskToken, ""); strings.Contains(body, "+972501234567") {
		t.Errorf("the suppression was added: %s", body)
	}
}
