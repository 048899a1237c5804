package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// sendAll records m's recipients sent through provider, recipient i
// with providerIDs[i] at ats[i].
func sendAll(t *testing.T, s Full, m *bridge.Message, provider string, providerIDs []string, ats []time.Time) {
	t.Helper()
	var outs []bridge.Outcome
	for i, id := range providerIDs {
		outs = append(outs, bridge.Outcome{RecipientID: m.Recipients[i].ID, State: bridge.StateSent, Provider: provider,
			ProviderID: id, At: ats[i]})
	}
	complete(t, s, outs...)
}

func testReport(t *testing.T, s Full) {
	ctx := context.Background()
	// a and b share a provider id (one bulk send); c has its own; d is
	// queued and e failed, both with the provider id of an earlier try;
	// f went through another provider under the same id.
	m := newMessage(base, base, "+15550000001", "+15550000002", "+15550000003", "+15550000004", "+15550000005")
	m.Recipients[3].ProviderID = "bulk-1"
	enqueue(t, s, m)
	f := enqueue(t, s, newMessage(base, base, "+15550000006"))
	sendAll(t, s, m, "p1", []string{"bulk-1", "bulk-1", "c-1"}, []time.Time{base, base, base})
	complete(t, s, bridge.Outcome{RecipientID: m.Recipients[4].ID, State: bridge.StateFailed, Provider: "p1",
		ProviderID: "bulk-1", Error: "rejected", At: base})
	sendAll(t, s, f, "p2", []string{"bulk-1"}, []time.Time{base})

	report := func(r bridge.DeliveryReport, want int) {
		t.Helper()
		n, err := s.Report(ctx, r)
		if err != nil || n != want {
			t.Fatalf("Report(%+v) = %d, %v; want %d", r, n, err, want)
		}
	}
	check := func(states []bridge.State, errs []string, updated []time.Time) {
		t.Helper()
		rs := get(t, s, m.ID).Recipients
		for i, r := range rs {
			if r.State != states[i] || r.Error != errs[i] || !r.Updated.Equal(updated[i]) {
				t.Errorf("recipient %d: %s, %q, updated %v; want %s, %q, %v", i, r.State, r.Error, r.Updated,
					states[i], errs[i], updated[i])
			}
		}
		if r := get(t, s, f.ID).Recipients[0]; r.State != bridge.StateSent {
			t.Errorf("the other provider's recipient is %s", r.State)
		}
	}
	t1, t2, t3 := base.Add(time.Minute), base.Add(2*time.Minute), base.Add(3*time.Minute)

	// For one number of the bulk send.
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "bulk-1", To: "+15550000001",
		State: bridge.StateDelivered, Detail: "DELIVRD", At: t1}, 1)
	check([]bridge.State{bridge.StateDelivered, bridge.StateSent, bridge.StateSent, bridge.StateQueued, bridge.StateFailed},
		[]string{"", "", "", "", "rejected"}, []time.Time{t1, base, base, base, base})

	// For all of it: a later report wins over the first.
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "bulk-1",
		State: bridge.StateUndelivered, Detail: "EXPIRED", At: t2}, 2)
	check([]bridge.State{bridge.StateUndelivered, bridge.StateUndelivered, bridge.StateSent, bridge.StateQueued, bridge.StateFailed},
		[]string{"EXPIRED", "EXPIRED", "", "", "rejected"}, []time.Time{t2, t2, base, base, base})

	// Delivered after all: the reason goes.
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "bulk-1", State: bridge.StateDelivered, At: t3}, 2)
	check([]bridge.State{bridge.StateDelivered, bridge.StateDelivered, bridge.StateSent, bridge.StateQueued, bridge.StateFailed},
		[]string{"", "", "", "", "rejected"}, []time.Time{t3, t3, base, base, base})

	// Undelivered without a reason still says why.
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "c-1", State: bridge.StateUndelivered, At: t3}, 1)
	if r := get(t, s, m.ID).Recipients[2]; r.State != bridge.StateUndelivered || r.Error == "" {
		t.Errorf("undelivered without detail: %s, %q; want undelivered with an error", r.State, r.Error)
	}

	// Unknown ids, numbers and providers change nothing; nor does "no news".
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "nosuchid", State: bridge.StateDelivered, At: t3}, 0)
	report(bridge.DeliveryReport{Provider: "p1", ProviderID: "bulk-1", To: "+15559999999", State: bridge.StateUndelivered, At: t3}, 0)
	report(bridge.DeliveryReport{Provider: "p3", ProviderID: "bulk-1", State: bridge.StateUndelivered, At: t3}, 0)
	report(bridge.DeliveryReport{Provider: "p2", ProviderID: "bulk-1", State: bridge.StateSent, At: t3}, 0)
	if r := get(t, s, f.ID).Recipients[0]; r.State != bridge.StateSent || !r.Updated.Equal(base) {
		t.Errorf("a report of no news changed the recipient: %s, %v", r.State, r.Updated)
	}

	for _, r := range []bridge.DeliveryReport{
		{Provider: "p1", ProviderID: "bulk-1", State: bridge.StateFailed, At: t3},
		{Provider: "p1", ProviderID: "bulk-1", State: "", At: t3},
		{Provider: "p1", State: bridge.StateDelivered, At: t3},
		{ProviderID: "bulk-1", State: bridge.StateDelivered, At: t3},
	} {
		if _, err := s.Report(ctx, r); err == nil || bridge.IsTemporary(err) {
			t.Errorf("Report(%+v) = %v, want a permanent error", r, err)
		}
	}
}

func testOutstanding(t *testing.T, s Full) {
	ctx := context.Background()
	sec := func(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }
	m := newMessage(base, base, "+15550000001", "+15550000002", "+15550000003", "+15550000004",
		"+15550000005", "+15550000006", "+15550000007", "+15550000008")
	enqueue(t, s, m)
	// b was sent to two numbers, at 2s and 5s; "old" before since; d
	// reported already; the last two recipients are queued and sent
	// without a provider id.
	sendAll(t, s, m, "p1", []string{"a", "b", "c", "b", "old", "d", ""},
		[]time.Time{sec(1), sec(2), sec(3), sec(5), base.Add(-time.Hour), sec(1), sec(1)})
	other := enqueue(t, s, newMessage(base, base, "+15550000009"))
	sendAll(t, s, other, "p2", []string{"x"}, []time.Time{sec(1)})
	if n, err := s.Report(ctx, bridge.DeliveryReport{Provider: "p1", ProviderID: "d", State: bridge.StateDelivered, At: sec(2)}); err != nil || n != 1 {
		t.Fatalf("Report = %d, %v", n, err)
	}

	check := func(since, now time.Time, limit int, want []string) {
		t.Helper()
		got, err := s.Outstanding(ctx, "p1", since, now, limit)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Outstanding(p1, %v, %v, %d) = %v, %v; want %v", since, now, limit, got, err, want)
		}
	}
	t1, t2, t3, t4 := sec(10), sec(20), sec(30), sec(40)
	check(base, t1, 0, nil)
	check(sec(6), t1, 10, nil)
	// Never asked: oldest send first.
	check(base, t1, 2, []string{"a", "b"})
	// c was never asked about; a and b were, at t1.
	check(sec(1), t2, 10, []string{"c", "a", "b"}) // at or after since
	// All asked at t2: after 2.5s, b's latest send (5s) is newer than c (3s).
	check(base.Add(2500*time.Millisecond), t3, 10, []string{"c", "b"})
	// a, asked at t2, before b and c (t3).
	check(base, t4, 1, []string{"a"})
	check(base, t4, 10, []string{"b", "c", "a"})
	// A new send comes first, before every id asked about already.
	late := enqueue(t, s, newMessage(base, base, "+15550000010"))
	sendAll(t, s, late, "p1", []string{"e"}, []time.Time{sec(7)})
	check(base, t4, 1, []string{"e"})

	if got, err := s.Outstanding(ctx, "p2", base, t1, 10); err != nil || !reflect.DeepEqual(got, []string{"x"}) {
		t.Errorf("Outstanding(p2) = %v, %v; want [x]", got, err)
	}
	// Asking changes nothing a log or a report reads.
	if r := get(t, s, m.ID).Recipients[0]; r.State != bridge.StateSent || !r.Updated.Equal(sec(1)) {
		t.Errorf("recipient asked about: %s, updated %v; want sent, %v", r.State, r.Updated, sec(1))
	}
}

// testOutstandingFair is a poller's view of many sends that never get a
// final report: asking for a page each round, it gets every id within
// ceil(n/page) rounds, and a new send in the next round.
func testOutstandingFair(t *testing.T, s Full) {
	ctx := context.Background()
	const n, page = 250, 100
	var numbers, ids []string
	var ats []time.Time
	for i := range n {
		numbers = append(numbers, fmt.Sprintf("+1555%07d", i))
		ids = append(ids, fmt.Sprintf("stuck-%03d", i))
		ats = append(ats, base.Add(time.Duration(i)*time.Millisecond))
	}
	m := enqueue(t, s, newMessage(base, base, numbers...))
	sendAll(t, s, m, "p1", ids, ats)

	round := base.Add(time.Minute)
	asked := map[string]int{}
	poll := func() []string {
		t.Helper()
		round = round.Add(time.Minute)
		got, err := s.Outstanding(ctx, "p1", base, round, page)
		if err != nil || len(got) != page {
			t.Fatalf("Outstanding at %v = %d ids, %v; want %d", round, len(got), err, page)
		}
		for _, id := range got {
			asked[id]++
		}
		return got
	}
	for range (n + page - 1) / page {
		poll()
	}
	if len(asked) != n {
		t.Errorf("%d of %d ids asked about in %d rounds", len(asked), n, (n+page-1)/page)
	}
	for id, k := range asked {
		if k > 2 {
			t.Errorf("%s asked about %d times in 3 rounds", id, k)
		}
	}

	late := enqueue(t, s, newMessage(base, base, "+15559999999"))
	sendAll(t, s, late, "p1", []string{"late"}, []time.Time{round})
	if got := poll(); got[0] != "late" {
		t.Errorf("a new send waits behind %d sends that never got a report: %v...", n, got[:3])
	}
	// And the rounds go on through all of them: none asked twice before
	// every one was asked again.
	clear(asked)
	for range 3 {
		poll()
	}
	for _, id := range ids {
		if asked[id] == 0 {
			t.Errorf("%s not asked about again in 3 rounds", id)
			break
		}
	}
}
