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
