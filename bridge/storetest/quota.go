package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// onRoute is newMessage with every recipient at provider, on route.
func onRoute(due time.Time, provider string, route []string, numbers ...string) *bridge.Message {
	m := newMessage(base.Add(-time.Hour), due, numbers...)
	for i := range m.Recipients {
		m.Recipients[i].Provider, m.Recipients[i].Providers = provider, route
	}
	return m
}

func claimQuota(t *testing.T, s bridge.Store, now time.Time, limit int, quota map[string]int) []bridge.Job {
	t.Helper()
	jobs, err := s.Claim(context.Background(), now, limit, quota, lease)
	if err != nil {
		t.Fatalf("Claim(%v, %d, %v): %v", now, limit, quota, err)
	}
	return jobs
}

// A quota bounds each named provider's share of a claim; providers it
// does not name share what is left of the limit; the jobs come oldest
// first across providers.
func testClaimQuota(t *testing.T, s bridge.Store) {
	now := base
	hang := onRoute(now.Add(-time.Hour), "hang", []string{"hang"}, "+15550000001", "+15550000002", "+15550000003")
	fast := onRoute(now.Add(-time.Minute), "fast", []string{"fast"}, "+15550000004", "+15550000005")
	gone := onRoute(now.Add(-2*time.Minute), "gone", []string{"gone"}, "+15550000006")
	for _, m := range []*bridge.Message{hang, fast, gone} {
		enqueue(t, s, m)
	}

	// hang's backlog is the oldest, but its quota is used up: fast's and
	// gone's recipients are claimed, oldest first.
	jobs := claimQuota(t, s, now, 10, map[string]int{"hang": 0, "fast": 5})
	want := []int64{gone.Recipients[0].ID, fast.Recipients[0].ID, fast.Recipients[1].ID}
	if got := recipientIDs(jobs); !reflect.DeepEqual(got, want) {
		t.Fatalf("claim = %v, want %v (gone, then fast; none of hang)", got, want)
	}

	// A quota of 2 for hang: its two oldest, and nothing for providers
	// not named when the limit is used up by the named ones.
	more := onRoute(now.Add(-time.Second), "gone", []string{"gone"}, "+15550000007")
	enqueue(t, s, more)
	jobs = claimQuota(t, s, now, 2, map[string]int{"hang": 2, "fast": 5})
	want = []int64{hang.Recipients[0].ID, hang.Recipients[1].ID}
	if got := recipientIDs(jobs); !reflect.DeepEqual(got, want) {
		t.Fatalf("claim = %v, want %v", got, want)
	}

	// nil quota: no per-provider bound.
	jobs = claimQuota(t, s, now, 10, nil)
	want = []int64{hang.Recipients[2].ID, more.Recipients[0].ID}
	if got := recipientIDs(jobs); !reflect.DeepEqual(got, want) {
		t.Fatalf("claim = %v, want %v", got, want)
	}
}

// ProviderAttempts counts claims at the current provider; an outcome that
// moves the recipient to another provider starts it again at zero, one
// that keeps (or does not name) the provider leaves it.
func testProviderAttempts(t *testing.T, s bridge.Store) {
	now := base
	m := enqueue(t, s, onRoute(now, "a", []string{"a", "b"}, "+15550000001"))
	id := m.Recipients[0].ID
	step := func(at time.Time, provider string) bridge.Recipient {
		t.Helper()
		jobs := claimQuota(t, s, at, 1, nil)
		if len(jobs) != 1 {
			t.Fatalf("claim at %v: %d jobs, want 1", at, len(jobs))
		}
		complete(t, s, bridge.Outcome{RecipientID: id, State: bridge.StateQueued, Provider: provider,
			Error: "HTTP 503", NextAttempt: at.Add(time.Second), At: at})
		return jobs[0].Recipient
	}
	check := func(r bridge.Recipient, attempts, atProvider int) {
		t.Helper()
		if r.Attempts != attempts || r.ProviderAttempts != atProvider {
			t.Errorf("claimed with attempts %d, at provider %d; want %d, %d", r.Attempts, r.ProviderAttempts, attempts, atProvider)
		}
	}
	check(step(now, "a"), 1, 1)
	check(step(now.Add(time.Second), ""), 2, 2)
	check(step(now.Add(2*time.Second), "b"), 3, 3) // the claim was at a; the outcome moves it to b
	if r := get(t, s, m.ID).Recipients[0]; r.Provider != "b" || r.ProviderAttempts != 0 || r.Attempts != 3 {
		t.Errorf("after failover: provider %s, attempts %d, at provider %d; want b, 3, 0", r.Provider, r.Attempts, r.ProviderAttempts)
	}
	check(step(now.Add(3*time.Second), "b"), 4, 1)
}

// NextDue leaves out the providers it is told to skip.
func testNextDueSkips(t *testing.T, s bridge.Store) {
	ctx := context.Background()
	enqueue(t, s, onRoute(base, "hang", []string{"hang"}, "+15550000001"))
	enqueue(t, s, onRoute(base.Add(time.Minute), "fast", []string{"fast"}, "+15550000002"))
	enqueue(t, s, onRoute(base.Add(2*time.Minute), "other", []string{"other"}, "+15550000003"))
	for _, c := range []struct {
		skip []string
		want time.Time
		ok   bool
	}{
		{nil, base, true},
		{[]string{"hang"}, base.Add(time.Minute), true},
		{[]string{"fast", "hang"}, base.Add(2 * time.Minute), true},
		{[]string{"fast", "hang", "other"}, time.Time{}, false},
	} {
		next, ok, err := s.NextDue(ctx, c.skip...)
		if err != nil || ok != c.ok || !next.Equal(c.want) {
			t.Errorf("NextDue(%v) = %v, %v, %v; want %v, %v", c.skip, next, ok, err, c.want, c.ok)
		}
	}
}

// RetryNow (a provider is back) does not pull a scheduled message's
// recipients forward: they wait for their time, not for the provider.
// (Each pull made the dispatcher claim and hold them again, an attempt at
// the provider each, which then failed over for no failure.)
func testRetryNowLeavesScheduled(t *testing.T, s bridge.Store) {
	r, ok := s.(bridge.Rescheduler)
	if !ok {
		t.Skip("not a Rescheduler")
	}
	later := base.Add(time.Hour)
	scheduled := onRoute(later, "p", []string{"p"}, "+15550000001")
	scheduled.SendAt = later
	enqueue(t, s, scheduled)
	retry := enqueue(t, s, onRoute(base.Add(time.Minute), "p", []string{"p"}, "+15550000002"))
	n, err := r.RetryNow(context.Background(), "p", base)
	if err != nil || n != 1 {
		t.Fatalf("RetryNow = %d, %v; want 1", n, err)
	}
	if got := get(t, s, scheduled.ID).Recipients[0].NextAttempt; !got.Equal(later) {
		t.Errorf("scheduled recipient due %v, want %v", got, later)
	}
	if got := get(t, s, retry.ID).Recipients[0].NextAttempt; !got.Equal(base) {
		t.Errorf("waiting recipient due %v, want %v", got, base)
	}
}
