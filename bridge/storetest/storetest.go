// Package storetest is the contract every bridge.Store must keep, as a
// test suite: a store package's tests call Run with a function that opens
// a fresh, empty store, and RunConversations likewise if the store also
// keeps the conversation log and the mail queue.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Run runs the contract suite. open must return a new, empty store each
// time it is called, and close it when t's test ends (t.Cleanup).
//
// Stores must keep times to at least millisecond precision, so the suite
// uses whole milliseconds; times are compared as instants.
func Run(t *testing.T, open func(t *testing.T) bridge.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, bridge.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"RoundTripMinimal", testRoundTripMinimal},
		{"MessageNotFound", testMessageNotFound},
		{"DuplicateID", testDuplicateID},
		{"ClaimDueOldestFirst", testClaimDueOldestFirst},
		{"ClaimLease", testClaimLease},
		{"ClaimConcurrent", testClaimConcurrent},
		{"Complete", testComplete},
		{"CompleteUnknownRecipient", testCompleteUnknownRecipient},
		{"Scheduled", testScheduled},
		{"NextDueAndStats", testNextDueAndStats},
		{"EnqueueConcurrent", testEnqueueConcurrent},
		{"EnqueueCancelled", testEnqueueCancelled},
		{"Recover", testRecover},
		{"IdempotencyKey", testIdempotencyKey},
		{"Cancel", testCancel},
		{"RetryNow", testRetryNow},
		{"ClaimQuota", testClaimQuota},
		{"ProviderAttempts", testProviderAttempts},
		{"NextDueSkips", testNextDueSkips},
		{"RetryNowLeavesScheduled", testRetryNowLeavesScheduled},
		{"EnqueueClaim", testEnqueueClaim},
		{"Release", testRelease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// base is the suite's "now": a fixed instant with whole milliseconds.
var base = time.Date(2030, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

// lease is the lease function the suite claims with: a minute per attempt.
func lease(attempts int) time.Duration { return time.Duration(attempts) * time.Minute }

var seq struct {
	sync.Mutex
	n int
}

// newMessage returns a queued message with one recipient per number, due at due.
func newMessage(created, due time.Time, numbers ...string) *bridge.Message {
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	m := &bridge.Message{
		ID:      fmt.Sprintf("msg%06d%s", n, bridge.NewID()),
		Channel: bridge.ChannelHTTP,
		Account: "acme",
		Text:    "hello",
		Created: created,
	}
	for _, num := range numbers {
		m.Recipients = append(m.Recipients, bridge.Recipient{
			To: num, Providers: []string{"p1"}, Provider: "p1",
			State: bridge.StateQueued, NextAttempt: due, Updated: created,
		})
	}
	return m
}

func enqueue(t *testing.T, s bridge.Store, m *bridge.Message) *bridge.Message {
	t.Helper()
	if err := s.Enqueue(context.Background(), m); err != nil {
		t.Fatalf("Enqueue(%s): %v", m.ID, err)
	}
	return m
}

func get(t *testing.T, s bridge.Store, id string) *bridge.Message {
	t.Helper()
	m, err := s.Message(context.Background(), id)
	if err != nil {
		t.Fatalf("Message(%s): %v", id, err)
	}
	return m
}

func claim(t *testing.T, s bridge.Store, now time.Time, limit int) []bridge.Job {
	t.Helper()
	jobs, err := s.Claim(context.Background(), now, limit, nil, lease)
	if err != nil {
		t.Fatalf("Claim(%v, %d): %v", now, limit, err)
	}
	return jobs
}

func complete(t *testing.T, s bridge.Store, outcomes ...bridge.Outcome) {
	t.Helper()
	if err := s.Complete(context.Background(), outcomes); err != nil {
		t.Fatalf("Complete: %v", err)
	}
}

func recipientIDs(jobs []bridge.Job) []int64 {
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.Recipient.ID
	}
	return ids
}

// normalize makes equal messages deeply equal: times as UTC instants (the
// zero time stays zero), empty maps and lists as nil.
func normalize(m bridge.Message) bridge.Message {
	utc := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.UTC()
	}
	m.SendAt, m.Created = utc(m.SendAt), utc(m.Created)
	if len(m.Params) == 0 {
		m.Params = nil
	}
	rs := make([]bridge.Recipient, len(m.Recipients))
	for i, r := range m.Recipients {
		r.NextAttempt, r.Updated = utc(r.NextAttempt), utc(r.Updated)
		if len(r.Providers) == 0 {
			r.Providers = nil
		}
		rs[i] = r
	}
	if len(rs) == 0 {
		rs = nil
	}
	m.Recipients = rs
	return m
}

func assertMessage(t *testing.T, got, want *bridge.Message) {
	t.Helper()
	g, w := normalize(*got), normalize(*want)
	gr, wr := g.Recipients, w.Recipients
	g.Recipients, w.Recipients = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("message:\n got %+v\nwant %+v", g, w)
	}
	if len(gr) != len(wr) {
		t.Fatalf("%d recipients, want %d", len(gr), len(wr))
	}
	for i := range gr {
		if !reflect.DeepEqual(gr[i], wr[i]) {
			t.Errorf("recipient %d:\n got %+v\nwant %+v", i, gr[i], wr[i])
		}
	}
}

func testRoundTrip(t *testing.T, s bridge.Store) {
	jerusalem := time.FixedZone("IST", 2*3600)
	m := &bridge.Message{
		ID:            bridge.NewID(),
		Channel:       bridge.ChannelSMTP,
		Account:       "clinic",
		EnvelopeFrom:  "reception@clinic.example",
		MailMessageID: "<20300314.1234@clinic.example>",
		ReplyTo:       "Reception <reception+replies@clinic.example>",
		Headers:       "From: Reception <reception@clinic.example>\r\nSubject: =?UTF-8?B?16rXldeo?=\r\nX-Empty:\r\n",
		Subject:       "תור",
		Sender:        "Clinic",
		Text:          "שלום דוד, התור שלך אושר. سلام، نوبت شما تأیید شد ۱۴۰۳ 😀\n-- \nend",
		SMSText:       "Shalom David - it's confirmed...",
		Encoding:      bridge.GSM7,
		Parts:         3,
		Template:      "appt-confirm",
		Params:        map[string]string{"name": "דוד", "code": "۱۲۳۴", "empty": "", "quote": `"x" <y> & 'z'`},
		SendAt:        base.Add(2 * time.Hour).In(jerusalem),
		Created:       base.In(jerusalem),
		Recipients: []bridge.Recipient{
			{To: "+972501234567", Providers: []string{"mindcrm", "voipcom"}, Provider: "mindcrm",
				State: bridge.StateQueued, NextAttempt: base.Add(2 * time.Hour), Updated: base},
			{To: "phonebook:42:7,9", Providers: []string{"ippanel"}, Provider: "ippanel",
				State: bridge.StateQueued, Attempts: 2, NextAttempt: base.Add(time.Minute),
				ProviderID: "prev-1", Error: "earlier error", Updated: base.Add(time.Second)},
		},
	}
	want := *m
	want.Recipients = append([]bridge.Recipient(nil), m.Recipients...)
	enqueue(t, s, m)

	seen := map[int64]bool{}
	for i, r := range m.Recipients {
		if r.ID == 0 || seen[r.ID] {
			t.Errorf("recipient %d: ID %d not assigned or not unique", i, r.ID)
		}
		seen[r.ID] = true
		if r.MessageID != m.ID {
			t.Errorf("recipient %d: MessageID = %q, want %q", i, r.MessageID, m.ID)
		}
		want.Recipients[i].ID, want.Recipients[i].MessageID = r.ID, m.ID
	}
	assertMessage(t, get(t, s, m.ID), &want)
}

func testRoundTripMinimal(t *testing.T, s bridge.Store) {
	// Zero times stay zero, empty maps and lists stay empty, and a
	// recipient without a state is queued.
	m := &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelHTTP, Account: "a", Text: "x",
		Recipients: []bridge.Recipient{{To: "+15551234567"}}}
	enqueue(t, s, m)
	got := get(t, s, m.ID)
	want := bridge.Message{ID: m.ID, Channel: bridge.ChannelHTTP, Account: "a", Text: "x",
		Recipients: []bridge.Recipient{{ID: m.Recipients[0].ID, MessageID: m.ID, To: "+15551234567", State: bridge.StateQueued}}}
	assertMessage(t, got, &want)
	if !got.SendAt.IsZero() || !got.Created.IsZero() || !got.Recipients[0].NextAttempt.IsZero() {
		t.Errorf("zero times came back as %v, %v, %v", got.SendAt, got.Created, got.Recipients[0].NextAttempt)
	}
	if m.Recipients[0].State != bridge.StateQueued {
		t.Errorf("written-back State = %q, want queued", m.Recipients[0].State)
	}

	// A message without recipients is stored too.
	bare := &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelSMTP, Account: "a", Created: base}
	enqueue(t, s, bare)
	assertMessage(t, get(t, s, bare.ID), bare)
}

func testMessageNotFound(t *testing.T, s bridge.Store) {
	enqueue(t, s, newMessage(base, base, "+15551234567"))
	_, err := s.Message(context.Background(), "nosuchid")
	if !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("Message(unknown) error = %v, want ErrNotFound", err)
	}
}

func testDuplicateID(t *testing.T, s bridge.Store) {
	m := enqueue(t, s, newMessage(base, base, "+15551234567"))
	dup := newMessage(base, base, "+15559876543", "+15550000000")
	dup.ID = m.ID
	if err := s.Enqueue(context.Background(), dup); err == nil {
		t.Fatal("Enqueue with a taken id succeeded")
	}
	// The first is intact, and nothing of the second was kept.
	assertMessage(t, get(t, s, m.ID), m)
	if jobs := claim(t, s, base, 10); len(jobs) != 1 || jobs[0].Recipient.ID != m.Recipients[0].ID {
		t.Fatalf("claimed %v, want only recipient %d", recipientIDs(jobs), m.Recipients[0].ID)
	}
	// And the store still takes new messages.
	enqueue(t, s, newMessage(base, base, "+15551111111"))
}

func testClaimDueOldestFirst(t *testing.T, s bridge.Store) {
	now := base
	m1 := enqueue(t, s, newMessage(base.Add(-time.Hour), now.Add(-1*time.Minute), "+15550000001"))
	m2 := enqueue(t, s, newMessage(base.Add(-time.Hour), now.Add(-3*time.Minute), "+15550000002", "+15550000003"))
	m3 := enqueue(t, s, newMessage(base.Add(-time.Hour), now.Add(-2*time.Minute), "+15550000004"))
	future := enqueue(t, s, newMessage(base.Add(-time.Hour), now.Add(time.Millisecond), "+15550000005"))
	atNow := enqueue(t, s, newMessage(base.Add(-time.Hour), now, "+15550000006"))

	// m2's two recipients share a due time: the lower id comes first.
	jobs := claim(t, s, now, 2)
	want := []int64{m2.Recipients[0].ID, m2.Recipients[1].ID}
	if got := recipientIDs(jobs); !reflect.DeepEqual(got, want) {
		t.Fatalf("first claim = %v, want %v", got, want)
	}
	if jobs[0].Message != jobs[1].Message {
		t.Error("recipients of one message do not share one *Message")
	}
	wantMsg := *m2
	wantMsg.Recipients = nil
	assertMessage(t, jobs[0].Message, &wantMsg)
	for i, j := range jobs {
		r := m2.Recipients[i]
		r.Attempts, r.ProviderAttempts, r.NextAttempt, r.Updated = 1, 1, now.Add(lease(1)), now
		w := normalize(bridge.Message{Recipients: []bridge.Recipient{r}}).Recipients[0]
		g := normalize(bridge.Message{Recipients: []bridge.Recipient{j.Recipient}}).Recipients[0]
		// Updated is the store's business; compare the rest.
		g.Updated, w.Updated = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("job %d recipient:\n got %+v\nwant %+v", i, g, w)
		}
	}

	// The claim is recorded.
	stored := get(t, s, m2.ID).Recipients[0]
	if stored.Attempts != 1 || !stored.NextAttempt.Equal(now.Add(lease(1))) || stored.State != bridge.StateQueued {
		t.Errorf("stored after claim: attempts %d, next %v, state %s; want 1, %v, queued",
			stored.Attempts, stored.NextAttempt, stored.State, now.Add(lease(1)))
	}

	jobs = claim(t, s, now, 10)
	want = []int64{m3.Recipients[0].ID, m1.Recipients[0].ID, atNow.Recipients[0].ID}
	if got := recipientIDs(jobs); !reflect.DeepEqual(got, want) {
		t.Fatalf("second claim = %v, want %v (not the future one, %d)", got, want, future.Recipients[0].ID)
	}
	if jobs := claim(t, s, now, 10); len(jobs) != 0 {
		t.Fatalf("third claim = %v, want none", recipientIDs(jobs))
	}
	if jobs, err := s.Claim(context.Background(), now.Add(time.Hour), 0, nil, lease); err != nil || len(jobs) != 0 {
		t.Fatalf("Claim with limit 0 = %v, %v; want nothing", recipientIDs(jobs), err)
	}
}

func testClaimLease(t *testing.T, s bridge.Store) {
	m := enqueue(t, s, newMessage(base, base, "+15551234567"))
	id := m.Recipients[0].ID
	if got := recipientIDs(claim(t, s, base, 10)); !reflect.DeepEqual(got, []int64{id}) {
		t.Fatalf("claim = %v, want [%d]", got, id)
	}
	// Claimed and never completed, as after a crash: invisible until
	// the lease (1 minute for attempt 1) runs out, then due again.
	if got := claim(t, s, base.Add(59*time.Second+999*time.Millisecond), 10); len(got) != 0 {
		t.Fatalf("claimed again during its lease: %v", recipientIDs(got))
	}
	again := base.Add(time.Minute)
	jobs := claim(t, s, again, 10)
	if len(jobs) != 1 || jobs[0].Recipient.ID != id {
		t.Fatalf("after the lease, claim = %v, want [%d]", recipientIDs(jobs), id)
	}
	if r := jobs[0].Recipient; r.Attempts != 2 || !r.NextAttempt.Equal(again.Add(lease(2))) {
		t.Errorf("second claim: attempts %d, next %v; want 2, %v", r.Attempts, r.NextAttempt, again.Add(lease(2)))
	}
}

func testClaimConcurrent(t *testing.T, s bridge.Store) {
	const messages, perMessage, claimers = 25, 8, 8
	want := map[int64]bool{}
	for i := range messages {
		var nums []string
		for j := range perMessage {
			nums = append(nums, fmt.Sprintf("+1555%03d%04d", i, j))
		}
		m := enqueue(t, s, newMessage(base, base.Add(-time.Duration(i)*time.Second), nums...))
		for _, r := range m.Recipients {
			want[r.ID] = true
		}
	}
	var mu sync.Mutex
	got := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, claimers)
	for range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				jobs, err := s.Claim(context.Background(), base, 7, nil, func(int) time.Duration { return time.Hour })
				if err != nil {
					errs <- err
					return
				}
				if len(jobs) == 0 {
					return
				}
				mu.Lock()
				for _, j := range jobs {
					got[j.Recipient.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Claim: %v", err)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("recipient %d handed out %d times", id, n)
		}
		if !want[id] {
			t.Errorf("recipient %d handed out but never enqueued", id)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d recipients handed out, want %d", len(got), len(want))
	}
}

func testComplete(t *testing.T, s bridge.Store) {
	m := enqueue(t, s, newMessage(base, base, "+15550000001", "+15550000002", "+15550000003", "+15550000004"))
	jobs := claim(t, s, base, 10)
	if len(jobs) != 4 {
		t.Fatalf("claimed %d, want 4", len(jobs))
	}
	at := base.Add(3 * time.Second)
	retryAt := base.Add(5 * time.Minute)
	sent, failed, retry, keep := jobs[0].Recipient, jobs[1].Recipient, jobs[2].Recipient, jobs[3].Recipient
	complete(t, s,
		bridge.Outcome{RecipientID: sent.ID, State: bridge.StateSent, Provider: "p2", ProviderID: "prov-123", Cost: "0.05",
			Info: map[string]string{"status": "accepted", "cost": "0.05"}, At: at},
		bridge.Outcome{RecipientID: failed.ID, State: bridge.StateFailed, Provider: "p1", Error: "invalid number", At: at},
		bridge.Outcome{RecipientID: retry.ID, State: bridge.StateQueued, Provider: "p1", Error: "timeout",
			NextAttempt: retryAt, At: at},
		// No provider given: the recorded one stays.
		bridge.Outcome{RecipientID: keep.ID, State: bridge.StateCancelled, Error: "cancelled", At: at},
	)
	got := get(t, s, m.ID).Recipients
	check := func(r bridge.Recipient, state bridge.State, provider, providerID, errText string, next time.Time) {
		t.Helper()
		if r.State != state || r.Provider != provider || r.ProviderID != providerID || r.Error != errText ||
			!r.NextAttempt.Equal(next) || !r.Updated.Equal(at) || r.Attempts != 1 {
			t.Errorf("recipient %d = state %s, provider %q, provider id %q, error %q, next %v, updated %v, attempts %d;\n"+
				"want %s, %q, %q, %q, %v, %v, 1", r.ID, r.State, r.Provider, r.ProviderID, r.Error, r.NextAttempt, r.Updated, r.Attempts,
				state, provider, providerID, errText, next, at)
		}
	}
	check(got[0], bridge.StateSent, "p2", "prov-123", "", time.Time{})
	check(got[1], bridge.StateFailed, "p1", "", "invalid number", time.Time{})
	check(got[2], bridge.StateQueued, "p1", "", "timeout", retryAt)
	check(got[3], bridge.StateCancelled, "p1", "", "cancelled", time.Time{})
	for i, want := range []string{"0.05", "", "", ""} {
		if got[i].Cost != want {
			t.Errorf("recipient %d: cost %q, want %q", got[i].ID, got[i].Cost, want)
		}
	}

	// Final states are never claimed; the retry waits for its time.
	if jobs := claim(t, s, retryAt.Add(-time.Millisecond), 10); len(jobs) != 0 {
		t.Fatalf("claimed %v before the retry time", recipientIDs(jobs))
	}
	if got := recipientIDs(claim(t, s, base.Add(24*time.Hour), 10)); !reflect.DeepEqual(got, []int64{retry.ID}) {
		t.Fatalf("claim after retry time = %v, want [%d]", got, retry.ID)
	}
	if err := s.Complete(context.Background(), nil); err != nil {
		t.Fatalf("Complete(nil) = %v", err)
	}
}

func testCompleteUnknownRecipient(t *testing.T, s bridge.Store) {
	m := enqueue(t, s, newMessage(base, base, "+15551234567"))
	// One transaction: the known recipient's outcome is not kept either.
	err := s.Complete(context.Background(), []bridge.Outcome{
		{RecipientID: m.Recipients[0].ID, State: bridge.StateSent, ProviderID: "x", At: base},
		{RecipientID: 1 << 40, State: bridge.StateSent, At: base},
	})
	if !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("Complete(unknown recipient) = %v, want ErrNotFound", err)
	}
	if r := get(t, s, m.ID).Recipients[0]; r.State != bridge.StateQueued || r.ProviderID != "" {
		t.Fatalf("recipient in a failed Complete: state %s, provider id %q; want it unchanged", r.State, r.ProviderID)
	}
}

func testScheduled(t *testing.T, s bridge.Store) {
	sendAt := base.Add(90 * time.Minute)
	m := newMessage(base, sendAt, "+15551234567")
	m.SendAt = sendAt
	enqueue(t, s, m)
	if jobs := claim(t, s, base.Add(89*time.Minute), 10); len(jobs) != 0 {
		t.Fatalf("scheduled recipient claimed early: %v", recipientIDs(jobs))
	}
	next, ok, err := s.NextDue(context.Background())
	if err != nil || !ok || !next.Equal(sendAt) {
		t.Fatalf("NextDue = %v, %v, %v; want %v, true", next, ok, err, sendAt)
	}
	if got := recipientIDs(claim(t, s, sendAt, 10)); !reflect.DeepEqual(got, []int64{m.Recipients[0].ID}) {
		t.Fatalf("claim at send time = %v, want [%d]", got, m.Recipients[0].ID)
	}
}

func testNextDueAndStats(t *testing.T, s bridge.Store) {
	ctx := context.Background()
	if next, ok, err := s.NextDue(ctx); err != nil || ok {
		t.Fatalf("empty store: NextDue = %v, %v, %v; want not ok", next, ok, err)
	}
	if st, err := s.Stats(ctx); err != nil || st != (bridge.QueueStats{}) {
		t.Fatalf("empty store: Stats = %+v, %v; want zero", st, err)
	}

	older := enqueue(t, s, newMessage(base.Add(-2*time.Hour), base.Add(time.Hour), "+15550000001", "+15550000002"))
	newer := enqueue(t, s, newMessage(base.Add(-time.Hour), base.Add(30*time.Minute), "+15550000003"))
	check := func(queued int, oldest, next time.Time) {
		t.Helper()
		st, err := s.Stats(ctx)
		if err != nil || st.Queued != queued || !st.OldestQueued.Equal(oldest) {
			t.Errorf("Stats = %+v, %v; want %d queued, oldest %v", st, err, queued, oldest)
		}
		n, ok, err := s.NextDue(ctx)
		if err != nil || ok != !next.IsZero() || !n.Equal(next) {
			t.Errorf("NextDue = %v, %v, %v; want %v", n, ok, err, next)
		}
	}
	check(3, older.Created, newer.Recipients[0].NextAttempt)

	// Claimed recipients are still queued; their due time is the lease.
	now := base.Add(time.Hour)
	jobs := claim(t, s, now, 10)
	if len(jobs) != 3 {
		t.Fatalf("claimed %d, want 3", len(jobs))
	}
	check(3, older.Created, now.Add(lease(1)))

	var outs []bridge.Outcome
	for _, r := range older.Recipients {
		outs = append(outs, bridge.Outcome{RecipientID: r.ID, State: bridge.StateSent, Provider: "p1", ProviderID: "x", At: now})
	}
	complete(t, s, outs...)
	check(1, newer.Created, now.Add(lease(1)))

	complete(t, s, bridge.Outcome{RecipientID: newer.Recipients[0].ID, State: bridge.StateFailed, Error: "no", At: now})
	check(0, time.Time{}, time.Time{})
}

func testEnqueueConcurrent(t *testing.T, s bridge.Store) {
	const n = 50
	msgs := make([]*bridge.Message, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		msgs[i] = newMessage(base, base, fmt.Sprintf("+1555000%04d", i), fmt.Sprintf("+1555100%04d", i))
		msgs[i].Text = fmt.Sprintf("message %d: שלום", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Enqueue(context.Background(), msgs[i])
		}()
	}
	wg.Wait()
	var ids []int64
	for i, m := range msgs {
		if errs[i] != nil {
			t.Fatalf("Enqueue %d: %v", i, errs[i])
		}
		assertMessage(t, get(t, s, m.ID), m)
		for _, r := range m.Recipients {
			ids = append(ids, r.ID)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			t.Fatalf("recipient id %d assigned twice", ids[i])
		}
	}
	if st, err := s.Stats(context.Background()); err != nil || st.Queued != 2*n {
		t.Fatalf("Stats = %+v, %v; want %d queued", st, err, 2*n)
	}
}

func testEnqueueCancelled(t *testing.T, s bridge.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := newMessage(base, base, "+15551234567")
	start := time.Now()
	err := s.Enqueue(ctx, m)
	if err == nil {
		t.Fatal("Enqueue with a cancelled context succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Enqueue took %v to notice the cancelled context", d)
	}
	// A store must not commit a message for a caller that had given up
	// before it called.
	if _, err := s.Message(context.Background(), m.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("message of a cancelled Enqueue: Message = %v, want ErrNotFound", err)
	}

	// A deadline that passes while many writers compete returns promptly
	// too, stored or not.
	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Enqueue(context.Background(), newMessage(base, base, fmt.Sprintf("+1555200%04d", i)))
		}()
	}
	start = time.Now()
	for s.Enqueue(ctx, newMessage(base, base, "+15559999999")) == nil {
		if time.Since(start) > 5*time.Second {
			t.Fatal("Enqueue kept succeeding after its deadline")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Enqueue took %v to notice its deadline", d)
	}
	wg.Wait()
}

// testRecover: claims left open by a crashed run become due at once;
// completed and retry-scheduled recipients keep their times.
func testRecover(t *testing.T, s bridge.Store) {
	m := enqueue(t, s, newMessage(base, base, "+972500000001", "+972500000002", "+972500000003"))
	jobs := claim(t, s, base, 3)
	if len(jobs) != 3 {
		t.Fatalf("claimed %d, want 3", len(jobs))
	}
	retryAt := base.Add(time.Hour)
	complete(t, s,
		bridge.Outcome{RecipientID: m.Recipients[0].ID, State: bridge.StateSent, ProviderID: "x", At: base},
		bridge.Outcome{RecipientID: m.Recipients[1].ID, State: bridge.StateQueued, NextAttempt: retryAt, At: base},
	)
	// Recipient 2 is still claimed: its send was in flight at the "crash".
	restart := base.Add(time.Second)
	n, err := s.Recover(context.Background(), restart)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("Recover released %d claims, want 1", n)
	}
	due := claim(t, s, restart, 10)
	if len(due) != 1 || due[0].Recipient.ID != m.Recipients[2].ID || due[0].Recipient.Attempts != 2 {
		t.Fatalf("due after Recover = %v, want recipient %d on its 2nd attempt", recipientIDs(due), m.Recipients[2].ID)
	}
	got := get(t, s, m.ID)
	if !got.Recipients[1].NextAttempt.Equal(retryAt) {
		t.Errorf("a scheduled retry moved to %v", got.Recipients[1].NextAttempt)
	}
	if n, err := s.Recover(context.Background(), restart); err != nil || n != 1 {
		// The claim just taken is open again; a second Recover (a second
		// restart) releases it too.
		t.Errorf("second Recover = %d, %v; want 1", n, err)
	}
}

func testIdempotencyKey(t *testing.T, s bridge.Store) {
	ctx := context.Background()
	first := newMessage(base, base, "+972500000001")
	first.IdempotencyKey = "order-17"
	enqueue(t, s, first)
	again := newMessage(base, base, "+972500000001")
	again.IdempotencyKey = "order-17"
	if err := s.Enqueue(ctx, again); !errors.Is(err, bridge.ErrDuplicateKey) {
		t.Fatalf("second Enqueue with the key: %v, want ErrDuplicateKey", err)
	}
	if _, err := s.Message(ctx, again.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("the refused message was stored: %v", err)
	}
	got, err := s.MessageByKey(ctx, first.Account, "order-17")
	if err != nil || got.ID != first.ID {
		t.Fatalf("MessageByKey = %v, %v; want %s", got, err, first.ID)
	}
	if _, err := s.MessageByKey(ctx, "other-account", "order-17"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("keys are per account: %v", err)
	}
	other := newMessage(base, base, "+972500000001")
	other.Account, other.IdempotencyKey = "other-account", "order-17"
	enqueue(t, s, other)
}

func testCancel(t *testing.T, s bridge.Store) {
	ctx := context.Background()
	m := enqueue(t, s, newMessage(base, base.Add(time.Hour), "+972500000001", "+972500000002", "+972500000003"))
	// One is sent, one is in a dispatcher's hands, one is waiting.
	claimed := claim(t, s, base.Add(time.Hour), 2)
	complete(t, s, bridge.Outcome{RecipientID: claimed[0].Recipient.ID, State: bridge.StateSent, At: base})
	n, err := s.Cancel(ctx, m.ID, base)
	if err != nil || n != 1 {
		t.Fatalf("Cancel = %d, %v; want 1", n, err)
	}
	states := map[bridge.State]int{}
	for _, r := range get(t, s, m.ID).Recipients {
		states[r.State]++
	}
	if states[bridge.StateSent] != 1 || states[bridge.StateQueued] != 1 || states[bridge.StateCancelled] != 1 {
		t.Errorf("states after Cancel = %v", states)
	}
	if jobs := claim(t, s, base.Add(48*time.Hour), 10); len(jobs) != 1 || jobs[0].Recipient.ID != claimed[1].Recipient.ID {
		t.Errorf("a cancelled recipient was claimed: %v", recipientIDs(jobs))
	}
}

// testRetryNow: when a provider is back, its waiting recipients become due
// at once; those held by a dispatcher, sent, or at another provider stay.
func testRetryNow(t *testing.T, s bridge.Store) {
	r, ok := s.(bridge.Rescheduler)
	if !ok {
		t.Skip("store does not implement bridge.Rescheduler")
	}
	later := base.Add(time.Hour)
	waiting := enqueue(t, s, newMessage(base, later, "+972501111111", "+972502222222"))
	other := newMessage(base, later, "+972503333333")
	other.Recipients[0].Provider, other.Recipients[0].Providers = "p2", []string{"p2"}
	enqueue(t, s, other)
	held := enqueue(t, s, newMessage(base, base, "+972504444444"))
	jobs := claim(t, s, base, 10)
	if len(jobs) != 1 || jobs[0].Message.ID != held.ID {
		t.Fatalf("claimed %d, want only the one due", len(jobs))
	}
	complete(t, s, bridge.Outcome{RecipientID: waiting.Recipients[1].ID, State: bridge.StateSent, Provider: "p1", ProviderID: "x", At: base})

	n, err := r.RetryNow(context.Background(), "p1", base)
	if err != nil || n != 1 {
		t.Fatalf("RetryNow = %d, %v; want the one waiting, unheld, queued p1 recipient", n, err)
	}
	jobs = claim(t, s, base, 10)
	if len(jobs) != 1 || jobs[0].Recipient.ID != waiting.Recipients[0].ID {
		t.Fatalf("due after RetryNow: %v, want recipient %d", recipientIDs(jobs), waiting.Recipients[0].ID)
	}
}
