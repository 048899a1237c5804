package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

func newMail(created, next time.Time) *bridge.OutMail {
	return &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailReply, Ref: "ref", From: "+972501234567@sms.example",
		To: "alice@clinic.example", Data: []byte("Subject: hi\r\n\r\nhi\r\n"), Created: created, NextAttempt: next}
}

func queueMail(t *testing.T, s Full, m *bridge.OutMail) *bridge.OutMail {
	t.Helper()
	if err := s.QueueMail(context.Background(), m); err != nil {
		t.Fatalf("QueueMail(%s): %v", m.ID, err)
	}
	return m
}

func claimMail(t *testing.T, s Full, now time.Time, limit int) []bridge.OutMail {
	t.Helper()
	mails, err := s.ClaimMail(context.Background(), now, limit, time.Minute)
	if err != nil {
		t.Fatalf("ClaimMail(%v, %d): %v", now, limit, err)
	}
	return mails
}

func mailIDs(mails []bridge.OutMail) []string {
	ids := make([]string, len(mails))
	for i, m := range mails {
		ids[i] = m.ID
	}
	return ids
}

// assertMail checks the stored mail want.ID is want. Empty and nil data
// are the same.
func assertMail(t *testing.T, s Full, want bridge.OutMail) {
	t.Helper()
	got, err := s.Mail(context.Background(), want.ID)
	if err != nil {
		t.Fatalf("Mail(%s): %v", want.ID, err)
	}
	if len(got.Data) == 0 && len(want.Data) == 0 {
		got.Data, want.Data = nil, nil
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("mail:\n got %+v\nwant %+v", *got, want)
	}
}

func testMailRoundTrip(t *testing.T, s Full) {
	ctx := context.Background()
	// A bounce: the null sender, bytes as built, due at once.
	m := &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: "msg-1", To: "app@example.com",
		Data: []byte("From: <>\r\nSubject: =?UTF-8?B?16nXnNeV150=?=\r\n\r\n\x00\xff\xfe 😀\r\n"), Created: base}
	queueMail(t, s, m)
	want := *m
	want.State, want.NextAttempt, want.Updated = bridge.MailQueued, base, base
	assertMail(t, s, want)

	// Whatever state it comes in, a mail is queued afresh.
	used := newMail(base, base.Add(time.Hour))
	used.State, used.Attempts, used.Error, used.Data = bridge.MailSent, 3, "old", nil
	queueMail(t, s, used)
	want = *used
	want.State, want.Attempts, want.Error, want.Updated = bridge.MailQueued, 0, "", base
	assertMail(t, s, want)

	// Queued again (a retry): the first is kept.
	again := *m
	again.Data, again.To = []byte("other"), "other@example.com"
	queueMail(t, s, &again)
	want = *m
	want.State, want.NextAttempt, want.Updated = bridge.MailQueued, base, base
	assertMail(t, s, want)

	if got, err := s.Mail(ctx, "nosuchmail"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("Mail(unknown) = %+v, %v; want ErrNotFound", got, err)
	}
	for name, bad := range map[string]*bridge.OutMail{
		"no id": {Kind: bridge.MailReply, To: "a@example.com"},
		"no to": {ID: bridge.NewID(), Kind: bridge.MailReply},
	} {
		if err := s.QueueMail(ctx, bad); err == nil || bridge.IsTemporary(err) {
			t.Errorf("QueueMail(%s) = %v, want a permanent error", name, err)
		}
	}
}

func testClaimMail(t *testing.T, s Full) {
	now := base
	m1 := queueMail(t, s, newMail(base.Add(-20*time.Minute), now.Add(-time.Minute)))
	m2 := queueMail(t, s, newMail(base.Add(-time.Hour), now.Add(-3*time.Minute)))
	// m3 and m4 are due at once; m4 is older.
	m3 := queueMail(t, s, newMail(base.Add(-30*time.Minute), now.Add(-2*time.Minute)))
	m4 := queueMail(t, s, newMail(base.Add(-40*time.Minute), now.Add(-2*time.Minute)))
	future := queueMail(t, s, newMail(base, now.Add(time.Millisecond)))

	got := claimMail(t, s, now, 3)
	if ids, want := mailIDs(got), []string{m2.ID, m4.ID, m3.ID}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("first claim = %v, want %v", ids, want)
	}
	for _, m := range got {
		if m.Attempts != 1 || !m.NextAttempt.Equal(now.Add(time.Minute)) || m.State != bridge.MailQueued {
			t.Errorf("claimed %s: attempts %d, next %v, state %s; want 1, %v, queued", m.ID, m.Attempts, m.NextAttempt, m.State, now.Add(time.Minute))
		}
	}
	// The claim is recorded, the rest of the mail as it was.
	want := *m2
	want.State, want.Attempts, want.NextAttempt, want.Updated = bridge.MailQueued, 1, now.Add(time.Minute), now
	assertMail(t, s, want)
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("claimed mail:\n got %+v\nwant %+v", got[0], want)
	}

	if ids := mailIDs(claimMail(t, s, now, 10)); !reflect.DeepEqual(ids, []string{m1.ID}) {
		t.Fatalf("second claim = %v, want [%s] (not the future one, %s)", ids, m1.ID, future.ID)
	}
	if ids := mailIDs(claimMail(t, s, now.Add(time.Minute-time.Millisecond), 10)); len(ids) != 1 || ids[0] != future.ID {
		t.Fatalf("claim during the leases = %v, want only %s", ids, future.ID)
	}
	// The leases run out: due again, on their second attempt.
	again := claimMail(t, s, now.Add(time.Minute), 2)
	if ids := mailIDs(again); !reflect.DeepEqual(ids, []string{m2.ID, m4.ID}) {
		t.Fatalf("claim after the lease = %v, want [%s %s]", ids, m2.ID, m4.ID)
	}
	if again[0].Attempts != 2 {
		t.Errorf("attempts = %d, want 2", again[0].Attempts)
	}
	if got, err := s.ClaimMail(context.Background(), now.Add(time.Hour), 0, time.Minute); err != nil || len(got) != 0 {
		t.Errorf("ClaimMail with limit 0 = %v, %v; want nothing", mailIDs(got), err)
	}
}

func testClaimMailConcurrent(t *testing.T, s Full) {
	const mails, claimers = 60, 6
	want := map[string]bool{}
	for i := range mails {
		want[queueMail(t, s, newMail(base, base.Add(-time.Duration(i)*time.Second))).ID] = true
	}
	queues := make([]bridge.MailQueue, claimers)
	for i := range queues {
		queues[i] = s
	}
	CheckMailClaimedOnce(t, want, ClaimAllMail(t, base, 4, queues...))
}

// ClaimAllMail claims from every queue concurrently, limit at a time, until
// none hands out more, and counts how often each mail id was handed out.
// Stores test claims across instances with it (one queue per instance).
func ClaimAllMail(t *testing.T, now time.Time, limit int, queues ...bridge.MailQueue) map[string]int {
	t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for _, q := range queues {
		wg.Go(func() {
			for {
				ms, err := q.ClaimMail(context.Background(), now, limit, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					got[m.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got
}

// CheckMailClaimedOnce fails t unless got (from ClaimAllMail) holds every
// id of want exactly once and nothing else.
func CheckMailClaimedOnce(t *testing.T, want map[string]bool, got map[string]int) {
	t.Helper()
	for id, n := range got {
		if n != 1 || !want[id] {
			t.Errorf("mail %s handed out %d times (queued: %v)", id, n, want[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d mails handed out, want %d", len(got), len(want))
	}
}

func testCompleteMail(t *testing.T, s Full) {
	ctx := context.Background()
	sent := queueMail(t, s, newMail(base, base))
	failed := queueMail(t, s, newMail(base, base))
	retry := queueMail(t, s, newMail(base, base))
	if n := len(claimMail(t, s, base, 10)); n != 3 {
		t.Fatalf("claimed %d, want 3", n)
	}
	at, next := base.Add(time.Second), base.Add(10*time.Minute)
	for _, c := range []struct {
		m     *bridge.OutMail
		state bridge.MailState
		err   string
		next  time.Time
	}{
		{sent, bridge.MailSent, "", time.Time{}},
		{failed, bridge.MailFailed, "550 5.1.1 no such user", time.Time{}},
		{retry, bridge.MailQueued, "451 4.3.0 try later", next},
	} {
		if err := s.CompleteMail(ctx, c.m.ID, c.state, c.err, c.next, at); err != nil {
			t.Fatalf("CompleteMail(%s, %s): %v", c.m.ID, c.state, err)
		}
		want := *c.m
		want.State, want.Attempts, want.Error, want.NextAttempt, want.Updated = c.state, 1, c.err, c.next, at
		assertMail(t, s, want)
	}
	// Only the retry is claimed again, at its time.
	if ids := mailIDs(claimMail(t, s, next.Add(-time.Millisecond), 10)); len(ids) != 0 {
		t.Errorf("claimed before the retry time: %v", ids)
	}
	if ids := mailIDs(claimMail(t, s, next.Add(time.Hour), 10)); !reflect.DeepEqual(ids, []string{retry.ID}) {
		t.Errorf("claim after the retry time = %v, want [%s]", ids, retry.ID)
	}
	if err := s.CompleteMail(ctx, "nosuchmail", bridge.MailSent, "", time.Time{}, at); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("CompleteMail(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.CompleteMail(ctx, sent.ID, "delivered", "", time.Time{}, at); err == nil || bridge.IsTemporary(err) {
		t.Errorf("CompleteMail(bad state) = %v, want a permanent error", err)
	}
}

// testRecoverMail: after a crash, mail that was claimed and never
// completed is due at the restart, on its next attempt; mail completed
// for a retry keeps its time, and delivered mail is left alone.
func testRecoverMail(t *testing.T, s Full) {
	ctx := context.Background()
	sent := queueMail(t, s, newMail(base, base))
	retry := queueMail(t, s, newMail(base.Add(time.Millisecond), base))
	inFlight := queueMail(t, s, newMail(base.Add(2*time.Millisecond), base))
	if n := len(claimMail(t, s, base, 10)); n != 3 {
		t.Fatalf("claimed %d, want 3", n)
	}
	retryAt := base.Add(time.Hour)
	if err := s.CompleteMail(ctx, sent.ID, bridge.MailSent, "", time.Time{}, base); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteMail(ctx, retry.ID, bridge.MailQueued, "451 4.3.0 later", retryAt, base); err != nil {
		t.Fatal(err)
	}
	restart := base.Add(time.Second)
	if n, err := s.RecoverMail(ctx, restart); err != nil || n != 1 {
		t.Fatalf("RecoverMail = %d, %v; want 1 (the mail in flight)", n, err)
	}
	due := claimMail(t, s, restart, 10)
	if ids := mailIDs(due); !reflect.DeepEqual(ids, []string{inFlight.ID}) || due[0].Attempts != 2 {
		t.Fatalf("due after RecoverMail = %v, want [%s] on its 2nd attempt", ids, inFlight.ID)
	}
	got, err := s.Mail(ctx, retry.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.NextAttempt.Equal(retryAt) {
		t.Errorf("a scheduled retry moved to %v", got.NextAttempt)
	}
	// The claim just taken is open again: a second restart releases it.
	if n, err := s.RecoverMail(ctx, restart); err != nil || n != 1 {
		t.Errorf("second RecoverMail = %d, %v; want 1", n, err)
	}
}

func testMailStats(t *testing.T, s Full) {
	ctx := context.Background()
	check := func(queued int, oldest time.Time) {
		t.Helper()
		st, err := s.MailStats(ctx)
		if err != nil || st.Queued != queued || !st.OldestQueued.Equal(oldest) {
			t.Errorf("MailStats = %+v, %v; want %d queued, oldest %v", st, err, queued, oldest)
		}
	}
	check(0, time.Time{})
	older := queueMail(t, s, newMail(base.Add(-time.Hour), base.Add(time.Hour)))
	queueMail(t, s, newMail(base, base))
	check(2, base.Add(-time.Hour))
	// Claimed mail still waits.
	claimMail(t, s, base.Add(time.Hour), 10)
	check(2, base.Add(-time.Hour))
	if err := s.CompleteMail(ctx, older.ID, bridge.MailSent, "", time.Time{}, base); err != nil {
		t.Fatal(err)
	}
	check(1, base)
}
