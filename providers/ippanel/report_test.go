package ippanel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers/ippanel"
	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/providertest"
)

// afterInbox runs hook once, right after the first messages-inbox answer
// arrives: a message received while the client pages.
type afterInbox struct {
	once sync.Once
	hook func()
}

func (a *afterInbox) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/api/report/messages-inbox") {
		a.once.Do(a.hook)
	}
	return resp, err
}

func inboxIDs(msgs []ippanel.InboxMessage) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// drain polls the inbox from cursor 0 the way a poller does, until it is
// empty, and returns every id in the order received.
func drain(t *testing.T, p *ippanel.Provider, perPage int) []int64 {
	t.Helper()
	var all []int64
	cursor := int64(0)
	for range 100 {
		msgs, err := p.Inbox(context.Background(), cursor, perPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return all
		}
		for _, m := range msgs {
			all = append(all, m.ID)
		}
		cursor = msgs[len(msgs)-1].ID
	}
	t.Fatal("the inbox never ran dry")
	return nil
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestInbox(t *testing.T) {
	s := newSetup(t)
	ctx := context.Background()
	if msgs, err := s.p.Inbox(ctx, 0, 10); err != nil || len(msgs) != 0 {
		t.Fatalf("empty inbox: %v, %v", msgs, err)
	}
	at := time.Date(2025, 5, 21, 6, 15, 25, 0, time.UTC)
	a := s.fake.AddInboundAt(alice, number1, "سلام", at)
	b := s.fake.AddInboundAt("09350000000", "983000505", "national numbers", at.Add(time.Minute))
	c := s.fake.AddInboundAt("9190000000", "3000505", "no trunk prefix", at.Add(2*time.Minute))

	msgs, err := s.p.Inbox(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []ippanel.InboxMessage{
		{ID: a, From: alice, Number: number1, Text: "سلام", Time: at},
		{ID: b, From: bob, Number: number1, Text: "national numbers", Time: at.Add(time.Minute)},
		{ID: c, From: carol, Number: number1, Text: "no trunk prefix", Time: at.Add(2 * time.Minute)},
	}
	for i := range msgs {
		// Raw is the entry as the API wrote it, national numbers and all.
		var raw map[string]any
		if err := json.Unmarshal([]byte(msgs[i].Raw), &raw); err != nil || raw["messages_inbox_id"] != float64(msgs[i].ID) {
			t.Errorf("raw %q", msgs[i].Raw)
		}
		msgs[i].Raw = ""
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("got  %+v\nwant %+v", msgs, want)
	}
	// from_id is exclusive: the last id seen fetches nothing again.
	if msgs, err := s.p.Inbox(ctx, c, 10); err != nil || len(msgs) != 0 {
		t.Errorf("from the last id: %+v, %v", msgs, err)
	}
	if msgs, err := s.p.Inbox(ctx, a, 10); err != nil || !reflect.DeepEqual(inboxIDs(msgs), []int64{b, c}) {
		t.Errorf("from the first id: %+v, %v", msgs, err)
	}

	reqs := s.fake.ReportRequests()
	got, _ := json.Marshal(reqs[1].Body)
	jsonEqual(t, got, `{"page":1,"per_page":10,"filters":{"from_id":0}}`)
	got, _ = json.Marshal(reqs[len(reqs)-1].Body)
	jsonEqual(t, got, `{"page":1,"per_page":10,"filters":{"from_id":`+id(a)+`}}`)
}

// The API lists newest first, so the oldest unseen messages are on the
// last page: a poller gets every message once, in order, a page at a time.
func TestInboxPaging(t *testing.T) {
	s := newSetup(t)
	for range 25 {
		s.fake.AddInbound(alice, number1, "m")
	}
	msgs, err := s.p.Inbox(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := inboxIDs(msgs); !reflect.DeepEqual(got, seq(1, 5)) {
		t.Errorf("first batch %v, want the 5 oldest", got)
	}
	var pages []any
	for _, r := range s.fake.ReportRequests() {
		pages = append(pages, r.Body["page"])
	}
	if !reflect.DeepEqual(pages, []any{json.Number("1"), json.Number("3")}) {
		t.Errorf("pages asked %v, want 1 then the last (3)", pages)
	}
	if got := drain(t, s.p, 10); !reflect.DeepEqual(got, seq(1, 25)) {
		t.Errorf("drained %v", got)
	}
	// The default page size is used for 0.
	if _, err := s.p.Inbox(context.Background(), 0, 0); err != nil {
		t.Fatal(err)
	}
	reqs := s.fake.ReportRequests()
	if pp := reqs[len(reqs)-1].Body["per_page"]; pp != json.Number("100") {
		t.Errorf("per_page %v for 0", pp)
	}
}

// Messages that arrive between the first page and the last shift every
// page back; the client must notice rather than take a page of newer
// messages and skip the oldest for good.
func TestInboxMovesWhileRead(t *testing.T) {
	fake := ippaneltest.NewServer(t, token, number1)
	for range 25 {
		fake.AddInbound(alice, number1, "before")
	}
	hook := &afterInbox{hook: func() {
		for range 6 {
			fake.AddInbound(bob, number1, "during")
		}
	}}
	p, err := ippanel.New("ippanel", &ippanel.Config{BaseURL: fake.URL, Token: token, Numbers: []string{number1}},
		&http.Client{Transport: hook, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := p.Inbox(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := inboxIDs(msgs); !reflect.DeepEqual(got, []int64{1}) {
		t.Errorf("got %v, want [1]: the only message on the new last page", got)
	}
	if got := drain(t, p, 10); !reflect.DeepEqual(got, seq(1, 31)) {
		t.Errorf("drained %v", got)
	}
}

func TestInboxFailures(t *testing.T) {
	ctx := context.Background()
	s := newSetup(t)
	s.fake.AddInbound(alice, number1, "x")

	s.fake.Faults.Push(providertest.Fault{Status: 503, RetryAfter: 7 * time.Second})
	_, err := s.p.Inbox(ctx, 0, 10)
	var be *bridge.Error
	if !errors.As(err, &be) || !be.Temp || be.Reason != bridge.ReasonProviderDown || be.RetryAfter != 7*time.Second {
		t.Errorf("503: %#v", err)
	}
	s.fake.Faults.Push(providertest.Fault{Status: 200, Body: `<html>maintenance</html>`})
	if _, err := s.p.Inbox(ctx, 0, 10); !errors.As(err, &be) || !be.Temp {
		t.Errorf("garbage: %v", err)
	}
	s.fake.Faults.Push(providertest.Fault{Status: 200, Body: `{"data":[{"from":"+989120000000","message":"no id"}],"meta":{"status":true,"last_page":1}}`})
	if _, err := s.p.Inbox(ctx, 0, 10); !errors.As(err, &be) || !be.Temp {
		t.Errorf("item without id: %v", err)
	}
	if _, err := s.p.Inbox(ctx, -1, 10); bridge.IsTemporary(err) {
		t.Errorf("negative cursor: %v", err)
	}

	wrong, err := ippanel.New("ippanel", &ippanel.Config{BaseURL: s.fake.URL, Token: "not-the-token", Numbers: []string{number1}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Inbox(ctx, 0, 10); bridge.ReasonOf(err) != bridge.ReasonProviderAuth || bridge.IsTemporary(err) {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := wrong.Recipients(ctx, "1"); bridge.ReasonOf(err) != bridge.ReasonProviderAuth {
		t.Errorf("wrong token: %v", err)
	}
}

func TestRecipients(t *testing.T) {
	s := newSetup(t)
	ctx := context.Background()
	res := sendOK(t, s, &bridge.SendRequest{Text: "hi", To: []string{alice, bob, carol}})
	bulk := res[0].ProviderID
	bulkID := s.fake.Requests()[0].OutboxID
	s.fake.SetStatus(bulkID, alice, 2)
	s.fake.SetStatus(bulkID, bob, 3)
	s.fake.SetStatus(bulkID, carol, 4)

	before := time.Now().UTC()
	reps, err := s.p.Recipients(ctx, bulk)
	if err != nil {
		t.Fatal(err)
	}
	want := []bridge.DeliveryReport{
		{Provider: "ippanel", ProviderID: bulk, To: alice, State: bridge.StateDelivered, Detail: "delivered"},
		{Provider: "ippanel", ProviderID: bulk, To: bob, State: bridge.StateUndelivered, Detail: "not delivered"},
		{Provider: "ippanel", ProviderID: bulk, To: carol, State: bridge.StateUndelivered, Detail: "blacklisted"},
	}
	for i := range reps {
		if reps[i].At.Before(before) || reps[i].At.After(time.Now()) {
			t.Errorf("report %d at %v", i, reps[i].At)
		}
		reps[i].At = time.Time{}
	}
	if !reflect.DeepEqual(reps, want) {
		t.Errorf("got  %+v\nwant %+v", reps, want)
	}
	q := s.fake.ReportRequests()[0].Query
	if q.Get("bulk_id") != bulk || q.Get("page") != "1" || q.Get("per_page") != "100" {
		t.Errorf("query %v", q)
	}

	// 0 and 1 are still with the operator: no news.
	s.fake.SetStatus(bulkID, alice, 0)
	s.fake.SetStatus(bulkID, bob, 1)
	reps, err = s.p.Recipients(ctx, bulk)
	if err != nil || reps[0].State != bridge.StateSent || reps[1].State != bridge.StateSent {
		t.Errorf("0 and 1: %+v, %v", reps, err)
	}

	if reps, err := s.p.Recipients(ctx, "999"); err != nil || len(reps) != 0 {
		t.Errorf("unknown bulk: %+v, %v", reps, err)
	}
	for _, bad := range []string{"", "abc", "0", "-4", "12.5"} {
		if _, err := s.p.Recipients(ctx, bad); bridge.ReasonOf(err) != bridge.ReasonInvalid || bridge.IsTemporary(err) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// A bulk of 250 recipients takes three pages of 100; every recipient is
// reported once.
func TestRecipientsPaging(t *testing.T) {
	s := newSetup(t)
	const bulk = 4_000_000_123
	var want []string
	for i := range 250 {
		n := "+98912" + strings.Repeat("0", 3) + id(int64(1000+i))
		s.fake.SetStatus(bulk, n, i%5)
		want = append(want, n)
	}
	// A national number in the report comes back E.164.
	s.fake.SetStatus(bulk, "09351112222", 2)
	want = append(want, "+989351112222")

	reps, err := s.p.Recipients(context.Background(), id(bulk))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range reps {
		got = append(got, r.To)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%d recipients, want %d", len(got), len(want))
	}
	if reps[4].State != bridge.StateUndelivered || reps[4].Detail != "blacklisted" || reps[2].State != bridge.StateDelivered {
		t.Errorf("states %+v %+v", reps[2], reps[4])
	}
	var pages []string
	for _, r := range s.fake.ReportRequests() {
		pages = append(pages, r.Query.Get("page"))
	}
	if !reflect.DeepEqual(pages, []string{"1", "2", "3"}) {
		t.Errorf("pages %v", pages)
	}
}

// PollInbox is Inbox for the bridge's poller: the cursor is the last
// DedupeKey, and one poll works off a backlog of several pages.
func TestPollInbox(t *testing.T) {
	s := newSetup(t)
	ctx := context.Background()
	for range 150 {
		s.fake.AddInbound("09120000000", number1, "m")
	}
	got, err := s.p.PollInbox(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 150 || got[0].DedupeKey != "1" || got[149].DedupeKey != "150" {
		t.Fatalf("%d messages", len(got))
	}
	for i, in := range got {
		if in.DedupeKey != id(int64(i+1)) || in.From != alice || in.To != number1 || in.Text != "m" || in.Received.IsZero() || in.Raw == "" {
			t.Fatalf("message %d: %+v", i, in)
		}
	}
	s.fake.AddInbound(bob, number2, "later")
	if got, err := s.p.PollInbox(ctx, "150"); err != nil || len(got) != 1 || got[0].DedupeKey != "151" || got[0].From != bob {
		t.Errorf("from 150: %+v, %v", got, err)
	}
	if _, err := s.p.PollInbox(ctx, "c1"); bridge.IsTemporary(err) {
		t.Errorf("bad cursor: %v", err)
	}
	// A failure after some pages still hands over what was fetched.
	s.fake.Faults.Push(providertest.Fault{}, providertest.Fault{}, providertest.Fault{Status: 500})
	for range 120 {
		s.fake.AddInbound(carol, number1, "burst")
	}
	got, err = s.p.PollInbox(ctx, "151")
	if err != nil || len(got) != 20 || got[0].DedupeKey != "152" {
		t.Errorf("partial poll: %d messages, %v", len(got), err)
	}
}

func TestPollReports(t *testing.T) {
	s := newSetup(t)
	s.fake.SetStatus(77, alice, 2)
	got, err := s.p.PollReports(context.Background(), "77")
	if err != nil || len(got) != 1 || got[0].To != alice || got[0].State != bridge.StateDelivered || got[0].ProviderID != "77" {
		t.Errorf("%+v, %v", got, err)
	}
}

// inboxFromIDs returns filters.from_id of each messages-inbox request
// made since the n-th.
func inboxFromIDs(t *testing.T, fake *ippaneltest.Server, n int) []string {
	t.Helper()
	var out []string
	for _, r := range fake.ReportRequests()[n:] {
		if r.Path != "/api/report/messages-inbox" {
			continue
		}
		f, _ := r.Body["filters"].(map[string]any)
		out = append(out, fmt.Sprint(f["from_id"]))
	}
	return out
}

func inboundKeys(in []bridge.Inbound) []string {
	out := []string{}
	for _, m := range in {
		out = append(out, m.DedupeKey)
	}
	return out
}

// An inbox message that cannot be taken (no sender, a field of the wrong
// type) neither blocks the ones around it nor, when it is the newest,
// keeps the cursor before it: the next poll asks from past it, and it is
// warned about once, not on every poll. What the bridge has not recorded
// yet is never skipped.
func TestInboxPassesUnreadableMessages(t *testing.T) {
	ctx := context.Background()
	s := newSetup(t)
	s.fake.AddInbound(alice, number1, "one")
	s.fake.AddInbound("", number1, "from nobody") // id 2, the newest

	got, err := s.p.PollInbox(ctx, "")
	if err != nil || !reflect.DeepEqual(inboundKeys(got), []string{"1"}) {
		t.Fatalf("first poll = %v, %v; want [1]", inboundKeys(got), err)
	}
	// The bridge did not record 1 (a store error): it comes again.
	got, err = s.p.PollInbox(ctx, "")
	if err != nil || !reflect.DeepEqual(inboundKeys(got), []string{"1"}) {
		t.Fatalf("poll before 1 was recorded = %v, %v; want [1] again", inboundKeys(got), err)
	}
	// 1 recorded: the poll goes on from past the unreadable 2.
	n := len(s.fake.ReportRequests())
	for range 3 {
		got, err = s.p.PollInbox(ctx, "1")
		if err != nil || len(got) != 0 {
			t.Fatalf("poll after 1 = %v, %v; want nothing", inboundKeys(got), err)
		}
	}
	if ids := inboxFromIDs(t, s.fake, n); !reflect.DeepEqual(ids, []string{"2", "2", "2"}) {
		t.Errorf("from_id asked after 1 was recorded: %v, want 2 each time", ids)
	}
	s.fake.AddInbound(bob, number1, "three")
	got, err = s.p.PollInbox(ctx, "1")
	if err != nil || !reflect.DeepEqual(inboundKeys(got), []string{"3"}) {
		t.Fatalf("poll with a new message = %v, %v; want [3]", inboundKeys(got), err)
	}

	// A field of the wrong type between two good messages.
	s.fake.Faults.Push(providertest.Fault{Status: 200, Body: `{"data":[
		{"messages_inbox_id":12,"from":"+989120000000","number":"+983000505","message":"b","time":1700000000},
		{"messages_inbox_id":11,"from":"+989120000000","number":"+983000505","message":{"text":"?"}},
		{"messages_inbox_id":10,"from":"+989120000000","number":"+983000505","message":"a","time":1700000000}],
		"meta":{"status":true,"last_page":1}}`})
	got, err = s.p.PollInbox(ctx, "3")
	if err != nil || !reflect.DeepEqual(inboundKeys(got), []string{"10", "12"}) {
		t.Fatalf("page with a bad field = %v, %v; want [10 12]", inboundKeys(got), err)
	}
	warns := 0
	for _, l := range s.logs.levels(t) {
		if l == "WARN" {
			warns++
		}
	}
	if warns != 2 {
		t.Errorf("%d warnings, want 2: one per unreadable message, not one per poll", warns)
	}
}
