package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Suppressing is a store that keeps the suppression list.
type Suppressing interface {
	bridge.Store
	bridge.Suppressions
}

// RunSuppressions runs the contract suite of bridge.Suppressions. open is
// as for Run.
func RunSuppressions(t *testing.T, open func(t *testing.T) Suppressing) {
	tests := []struct {
		name string
		fn   func(*testing.T, Suppressing)
	}{
		{"Scopes", testSuppressionScopes},
		{"Idempotent", testSuppressIdempotent},
		{"CancelsQueued", testSuppressCancelsQueued},
		{"HeldAtProvider", testHeldAtProvider},
		{"Unsuppress", testUnsuppress},
		{"ListAndHistory", testSuppressionListAndHistory},
		{"Concurrent", testSuppressConcurrent},
		{"Invalid", testSuppressInvalid},
		{"Count", testCountSuppressions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

func change(phone, our, account string, at time.Time) bridge.SuppressionChange {
	return bridge.SuppressionChange{Suppression: bridge.Suppression{Phone: phone, Our: our, Account: account,
		Reason: "SMS STOP", Source: "sms", By: phone, Created: at}, At: at}
}

func suppress(t *testing.T, s Suppressing, c bridge.SuppressionChange) (bool, int) {
	t.Helper()
	added, n, err := s.Suppress(context.Background(), c)
	if err != nil {
		t.Fatalf("Suppress(%+v): %v", c.Suppression, err)
	}
	return added, n
}

func suppressed(t *testing.T, s Suppressing, account, our string, phones ...string) []bridge.Suppression {
	t.Helper()
	got, err := s.Suppressed(context.Background(), account, our, phones)
	if err != nil {
		t.Fatalf("Suppressed: %v", err)
	}
	return got
}

func testSuppressionScopes(t *testing.T, s Suppressing) {
	suppress(t, s, change(phone1, our2, "", base))              // number
	suppress(t, s, change(phone2, "", "acme", base))            // account
	suppress(t, s, change("+972500000003", "", "", base))       // all
	suppress(t, s, change("+972500000004", our2, "acme", base)) // the account's sends from the number
	for _, c := range []struct {
		account, our, phone string
		want                bool
	}{
		{"acme", our2, phone1, true},
		{"other", our2, phone1, true},
		{"acme", our1, phone1, false},
		{"acme", "", phone1, false},
		{"acme", our1, phone2, true},
		{"other", our1, phone2, false},
		{"other", our1, "+972500000003", true},
		{"", "", "+972500000003", true},
		{"acme", our2, "+972500000004", true},
		{"other", our2, "+972500000004", false},
		{"acme", our1, "+972500000004", false},
		{"acme", our2, "+972500000099", false},
	} {
		got := suppressed(t, s, c.account, c.our, c.phone)
		if (len(got) == 1) != c.want || len(got) > 1 {
			t.Errorf("Suppressed(%q, %q, %s) = %+v, want suppressed %v", c.account, c.our, c.phone, got, c.want)
		}
	}
	got := suppressed(t, s, "acme", our2, phone1, phone2, "+972500000003", "+972500000099")
	if len(got) != 3 {
		t.Fatalf("Suppressed of 4 phones, 3 of them suppressed: %+v", got)
	}
	if got[0].Reason != "SMS STOP" || got[0].Source != "sms" || got[0].By == "" || !got[0].Created.Equal(base) {
		t.Errorf("stored suppression %+v: who, when and why not kept", got[0])
	}
}

func testSuppressIdempotent(t *testing.T, s Suppressing) {
	if added, _ := suppress(t, s, change(phone1, our2, "", base)); !added {
		t.Fatal("first Suppress: added false")
	}
	if added, _ := suppress(t, s, change(phone1, our2, "", base.Add(time.Minute))); added {
		t.Error("second Suppress of the same phone, number and account: added true")
	}
	h, err := s.SuppressionHistory(context.Background(), bridge.SuppressionFilter{Phone: phone1})
	if err != nil || len(h) != 1 {
		t.Fatalf("history after a repeated Suppress = %+v, %v; want one add", h, err)
	}
}

func testSuppressCancelsQueued(t *testing.T, s Suppressing) {
	ctx := context.Background()
	later := base.Add(time.Hour) // scheduled
	fromNumber := newMessage(base, later, phone1, phone2)
	fromNumber.Sender = "0599000001" // as configured; OurKey is our2
	enqueue(t, s, fromNumber)
	fromOther := newMessage(base, later, phone1)
	fromOther.Sender = our1
	enqueue(t, s, fromOther)
	claimedMsg := newMessage(base, base, phone1)
	claimedMsg.Sender = our2
	enqueue(t, s, claimedMsg)
	if jobs := claim(t, s, base, 10); len(jobs) != 1 {
		t.Fatalf("claimed %d, want the one due", len(jobs))
	}

	c := change(phone1, our2, "", base.Add(time.Second))
	c.Senders = []string{our2, "0599000001"}
	_, n := suppress(t, s, c)
	if n != 1 {
		t.Errorf("Suppress cancelled %d recipients, want 1 (the queued one from the number)", n)
	}
	m := get(t, s, fromNumber.ID)
	for _, r := range m.Recipients {
		want := bridge.StateQueued
		if r.To == phone1 {
			want = bridge.StateCancelled
		}
		if r.State != want {
			t.Errorf("recipient %s of the number's message: %s, want %s", r.To, r.State, want)
		}
		if r.To == phone1 && (r.Error == "" || !r.Updated.Equal(c.At)) {
			t.Errorf("cancelled recipient: error %q, updated %v; want why and when", r.Error, r.Updated)
		}
	}
	if st := get(t, s, fromOther.ID).Recipients[0].State; st != bridge.StateQueued {
		t.Errorf("message from another sender: %s, want queued", st)
	}
	if st := get(t, s, claimedMsg.ID).Recipients[0].State; st != bridge.StateQueued {
		t.Errorf("claimed recipient: %s, want left to its dispatcher (queued)", st)
	}

	// Account scope cancels all of that account's, whatever the sender;
	// another account's stay.
	acme := newMessage(base, later, phone2)
	acme.Sender = our1
	enqueue(t, s, acme)
	other := newMessage(base, later, phone2)
	other.Account = "other"
	enqueue(t, s, other)
	if _, n := suppress(t, s, change(phone2, "", "acme", base.Add(2*time.Second))); n != 2 {
		t.Errorf("account-scope Suppress cancelled %d, want 2 (fromNumber's and acme's)", n)
	}
	if st := get(t, s, other.ID).Recipients[0].State; st != bridge.StateQueued {
		t.Errorf("another account's message: %s, want queued", st)
	}
	if _, err := s.Message(ctx, acme.ID); err != nil {
		t.Fatal(err)
	}
}

func testUnsuppress(t *testing.T, s Suppressing) {
	ctx := context.Background()
	suppress(t, s, change(phone1, our2, "", base))
	suppress(t, s, change(phone1, "", "acme", base))
	suppress(t, s, change(phone1, "", "", base))
	suppress(t, s, change(phone1, our1, "", base))
	suppress(t, s, change(phone1, "", "other", base))

	exact := change(phone1, "", "other", base.Add(time.Minute))
	exact.Source, exact.By, exact.Reason = "api", "admin", "imported by mistake"
	if n, err := s.Unsuppress(ctx, exact, false); err != nil || n != 1 {
		t.Fatalf("Unsuppress exact = %d, %v; want 1", n, err)
	}
	if n, err := s.Unsuppress(ctx, exact, false); err != nil || n != 0 {
		t.Fatalf("Unsuppress of a row gone = %d, %v; want 0", n, err)
	}
	// START to our2, conversation of acme: everything that stops acme's
	// sends from our2 goes; the suppression of our1 stays.
	start := change(phone1, our2, "acme", base.Add(2*time.Minute))
	start.Reason = "SMS START"
	if n, err := s.Unsuppress(ctx, start, true); err != nil || n != 3 {
		t.Fatalf("Unsuppress covering = %d, %v; want 3", n, err)
	}
	if got := suppressed(t, s, "acme", our2, phone1); len(got) != 0 {
		t.Errorf("still suppressed after START: %+v", got)
	}
	if got := suppressed(t, s, "acme", our1, phone1); len(got) != 1 {
		t.Errorf("suppression from another number lifted too: %+v", got)
	}
	h, err := s.SuppressionHistory(ctx, bridge.SuppressionFilter{Phone: phone1, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var adds, removes int
	for _, e := range h {
		switch e.Action {
		case "add":
			adds++
		case "remove":
			removes++
			if e.Reason == "SMS STOP" || e.By == phone1 && e.Reason != "SMS START" || !e.At.After(base) {
				t.Errorf("remove event %+v: not the remover's who/when/why", e)
			}
		}
	}
	if adds != 5 || removes != 4 {
		t.Errorf("history: %d adds, %d removes; want 5 and 4", adds, removes)
	}
	if h[0].Action != "remove" || h[len(h)-1].Action != "add" || h[0].ID <= h[len(h)-1].ID {
		t.Errorf("history not newest first: %+v", h)
	}
}

func testSuppressionListAndHistory(t *testing.T, s Suppressing) {
	ctx := context.Background()
	suppress(t, s, change(phone1, our2, "", base))
	suppress(t, s, change(phone2, "", "acme", base.Add(time.Second)))
	suppress(t, s, change(phone2, "", "other", base.Add(2*time.Second)))
	suppress(t, s, change("+972500000003", "", "", base.Add(3*time.Second)))
	suppress(t, s, change("+972500000004", our1, "", base.Add(4*time.Second)))

	all, err := s.ListSuppressions(ctx, bridge.SuppressionFilter{})
	if err != nil || len(all) != 5 {
		t.Fatalf("ListSuppressions() = %d, %v; want 5", len(all), err)
	}
	if all[0].Phone != "+972500000004" || all[4].Phone != phone1 {
		t.Errorf("not newest first: %+v", all)
	}
	// acme sends from our2 only: it sees its own, our2's and everyone's.
	mine, err := s.ListSuppressions(ctx, bridge.SuppressionFilter{Account: "acme", Ours: []string{our2}})
	if err != nil || len(mine) != 3 {
		t.Fatalf("acme's = %+v, %v; want 3", mine, err)
	}
	for _, x := range mine {
		if x.Account == "other" || x.Our == our1 {
			t.Errorf("acme sees %+v", x)
		}
	}
	one, err := s.ListSuppressions(ctx, bridge.SuppressionFilter{Phone: phone2})
	if err != nil || len(one) != 2 {
		t.Fatalf("by phone = %+v, %v; want 2", one, err)
	}
	lim, err := s.ListSuppressions(ctx, bridge.SuppressionFilter{Limit: 2})
	if err != nil || len(lim) != 2 {
		t.Fatalf("limit 2 = %d, %v", len(lim), err)
	}
	h, err := s.SuppressionHistory(ctx, bridge.SuppressionFilter{Account: "acme", Ours: []string{our2}})
	if err != nil || len(h) != 3 {
		t.Fatalf("acme's history = %+v, %v; want 3", h, err)
	}
}

func testSuppressConcurrent(t *testing.T, s Suppressing) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	added := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := s.Suppress(context.Background(), change(phone1, our2, "", base.Add(time.Duration(i)*time.Millisecond)))
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				added++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if added != 1 {
		t.Errorf("8 concurrent Suppress of one phone: %d added, want 1", added)
	}
	h, err := s.SuppressionHistory(context.Background(), bridge.SuppressionFilter{Phone: phone1})
	if err != nil || len(h) != 1 {
		t.Errorf("history = %d events, %v; want 1", len(h), err)
	}
}

func testSuppressInvalid(t *testing.T, s Suppressing) {
	ctx := context.Background()
	c := change("0501234567", "", "", base)
	if _, _, err := s.Suppress(ctx, c); bridge.ReasonOf(err) != bridge.ReasonBadNumber {
		t.Errorf("Suppress of a national number: %v, want bad_number", err)
	}
	c = change(phone1, "", "", base)
	c.Source = ""
	if _, _, err := s.Suppress(ctx, c); err == nil || bridge.IsTemporary(err) {
		t.Errorf("Suppress without a source: %v, want a permanent error", err)
	}
	if got, err := s.Suppressed(ctx, "acme", our1, nil); err != nil || len(got) != 0 {
		t.Errorf("Suppressed of no phones = %v, %v", got, err)
	}
	if _, err := s.Unsuppress(ctx, c, true); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("Unsuppress without a source: %v", err)
	}
}

func testHeldAtProvider(t *testing.T, s Suppressing) {
	ctx := context.Background()
	later := base.Add(time.Hour)
	// Sent with a future SendAt: a provider holds them.
	held := func(sender, account, phone string, sendAt time.Time) *bridge.Message {
		m := newMessage(base, base, phone)
		m.Sender, m.Account, m.SendAt = sender, account, sendAt
		enqueue(t, s, m)
		complete(t, s, bridge.Outcome{RecipientID: m.Recipients[0].ID, State: bridge.StateSent, Provider: "p1",
			ProviderID: "pid-" + m.ID, At: base})
		return m
	}
	fromNumber := held("0599000001", "acme", phone1, later)
	held(our1, "acme", phone1, later)         // another sender
	held("0599000001", "acme", phone1, base)  // due already: gone out
	held("0599000001", "acme", phone2, later) // another phone
	queued := newMessage(base, later, phone1) // still ours to cancel
	queued.Sender, queued.SendAt = "0599000001", later
	enqueue(t, s, queued)

	c := change(phone1, our2, "", base.Add(time.Second))
	c.Senders = []string{our2, "0599000001"}
	got, err := s.HeldAtProvider(ctx, c, base.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].MessageID != fromNumber.ID || got[0].ProviderID != "pid-"+fromNumber.ID || got[0].Provider != "p1" ||
		got[0].To != phone1 || got[0].ID != fromNumber.Recipients[0].ID {
		t.Errorf("HeldAtProvider(number scope) = %+v, want the one scheduled send from the number", got)
	}
	all, err := s.HeldAtProvider(ctx, change(phone1, "", "acme", base), base.Add(time.Second))
	if err != nil || len(all) != 2 {
		t.Errorf("HeldAtProvider(account scope) = %+v, %v; want both senders' scheduled sends", all, err)
	}
	if none, err := s.HeldAtProvider(ctx, change(phone1, "", "other", base), base.Add(time.Second)); err != nil || len(none) != 0 {
		t.Errorf("HeldAtProvider(another account) = %+v, %v", none, err)
	}
}

// testCountSuppressions: the count the per-account cap reads is of the
// account's own rows, those a phone's SMS added left out.
func testCountSuppressions(t *testing.T, s Suppressing) {
	at := time.UnixMilli(1_700_000_000_000)
	api := func(phone, our, account string) bridge.SuppressionChange {
		c := change(phone, our, account, at)
		c.Source, c.By = "api", "admin"
		return c
	}
	suppress(t, s, api("+17136641231", "", "ops"))
	suppress(t, s, api("+17136641232", "SMSBridge", "ops"))
	suppress(t, s, change("+17136641233", "", "ops", at)) // a phone's STOP
	suppress(t, s, api("+17136641234", "", "other"))
	suppress(t, s, api("+17136641235", "", ""))
	for account, want := range map[string]int{"ops": 2, "other": 1, "": 1, "none": 0} {
		if n, err := s.CountSuppressions(context.Background(), account); err != nil || n != want {
			t.Errorf("CountSuppressions(%q) = %d, %v; want %d", account, n, err, want)
		}
	}
}
