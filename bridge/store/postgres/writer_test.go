package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// hold stops s's writer inside a transaction until release is called,
// so that the writes made meanwhile wait to form the next group.
func hold(t *testing.T, s *Store) (release func()) {
	t.Helper()
	entered, gate, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.writes.Do(context.Background(), &write{
			after: func() ([]stmt, error) {
				close(entered)
				<-gate
				return nil, nil
			},
			fail: func(err error) error { return err },
		})
	}()
	<-entered
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("held write: %v", err)
		}
	}
}

// waitQueued returns once n writes wait for s's writer. (The writer is
// held, so the number only grows; nothing to wait for but the callers'
// goroutines being scheduled.)
func waitQueued(s *Store, n int) {
	for s.writes.Waiting() < n {
		runtime.Gosched()
	}
}

// goAll runs fs concurrently; wait returns their errors in order.
func goAll(fs ...func() error) (wait func() []error) {
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Go(func() { errs[i] = f() })
	}
	return func() []error {
		wg.Wait()
		return errs
	}
}

func enqueueFunc(s *Store, m *bridge.Message) func() error {
	return func() error { return s.Enqueue(context.Background(), m) }
}

func TestConcurrentEnqueuesShareOneTransaction(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	release := hold(t, s)
	var msgs []*bridge.Message
	var fs []func() error
	for i := range 10 {
		m := message(fmt.Sprintf("+1555000%04d", i))
		msgs = append(msgs, m)
		fs = append(fs, enqueueFunc(s, m))
	}
	wait := goAll(fs...)
	waitQueued(s, len(fs))
	before := s.commits.Load()
	release()
	for i, err := range wait() {
		if err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	if n := s.commits.Load() - before; n != 2 {
		t.Errorf("%d commits, want 2: the held write's, then one for the ten enqueues", n)
	}
	for _, m := range msgs {
		got, err := s.Message(context.Background(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Recipients) != 1 || got.Recipients[0].ID != m.Recipients[0].ID || m.Recipients[0].ID == 0 {
			t.Errorf("%s: stored %+v, enqueued with recipient id %d", m.ID, got.Recipients, m.Recipients[0].ID)
		}
	}
}

// A duplicate idempotency key, and an outcome for a recipient that does
// not exist, fail their own callers; the rest of the group is stored, in
// one commit.
func TestFailureInAGroupFailsOnlyItsCaller(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	ctx := context.Background()
	taken := message("+15550000001")
	taken.IdempotencyKey = "k1"
	if err := s.Enqueue(ctx, taken); err != nil {
		t.Fatal(err)
	}
	a, dup, c := message("+15550000002"), message("+15550000003"), message("+15550000004")
	dup.IdempotencyKey, c.IdempotencyKey = "k1", "k2"

	release := hold(t, s)
	wait := goAll(enqueueFunc(s, a), enqueueFunc(s, dup), enqueueFunc(s, c),
		func() error {
			return s.Complete(ctx, []bridge.Outcome{{RecipientID: 999_999, State: bridge.StateSent, At: time.UnixMilli(1_900_000_000_000)}})
		},
		func() error {
			return s.Complete(ctx, []bridge.Outcome{{RecipientID: taken.Recipients[0].ID, State: bridge.StateSent,
				ProviderID: "p-1", At: time.UnixMilli(1_900_000_000_000)}})
		})
	waitQueued(s, 5)
	before := s.commits.Load()
	release()
	errs := wait()
	if errs[0] != nil || errs[2] != nil || errs[4] != nil {
		t.Fatalf("the writes that were fine failed: %v", errs)
	}
	if !errors.Is(errs[1], bridge.ErrDuplicateKey) {
		t.Errorf("duplicate key: %v, want bridge.ErrDuplicateKey", errs[1])
	}
	if !errors.Is(errs[3], bridge.ErrNotFound) {
		t.Errorf("unknown recipient: %v, want bridge.ErrNotFound", errs[3])
	}
	if n := s.commits.Load() - before; n != 2 {
		t.Errorf("%d commits, want 2: the held write's, then one for the group", n)
	}
	for _, m := range []*bridge.Message{a, c} {
		if _, err := s.Message(ctx, m.ID); err != nil {
			t.Errorf("%s: %v", m.ID, err)
		}
	}
	if _, err := s.Message(ctx, dup.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("the duplicate was stored: %v", err)
	}
	got, err := s.Message(ctx, taken.ID)
	if err != nil || got.Recipients[0].State != bridge.StateSent || got.Recipients[0].ProviderID != "p-1" {
		t.Errorf("outcome not recorded: %+v, %v", got, err)
	}
}

func TestCancelledEnqueueIsNotWritten(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	release := hold(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	gone := message("+15550000001")
	wait := goAll(func() error { return s.Enqueue(ctx, gone) })
	waitQueued(s, 1)
	cancel()
	if err := wait()[0]; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Enqueue returned %v", err)
	}
	release()
	// Requests are taken in order: once a later one has committed, the
	// writer has passed the cancelled one.
	if err := s.Enqueue(context.Background(), message("+15550000002")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Message(context.Background(), gone.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("the cancelled message was written: %v", err)
	}
}

func TestCloseCommitsWritesHandedOver(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	other := openTest(t, u)
	release := hold(t, s)
	var msgs []*bridge.Message
	var fs []func() error
	for i := range 5 {
		m := message(fmt.Sprintf("+1555000%04d", i))
		msgs = append(msgs, m)
		fs = append(fs, enqueueFunc(s, m))
	}
	wait := goAll(fs...)
	waitQueued(s, len(fs))
	closed := goAll(s.Close)
	release()
	closed()
	for i, err := range wait() {
		if err != nil {
			t.Errorf("enqueue %d, handed over before Close: %v", i, err)
		}
	}
	for _, m := range msgs {
		if _, err := other.Message(context.Background(), m.ID); err != nil {
			t.Errorf("%s: %v", m.ID, err)
		}
	}
	if err := s.Enqueue(context.Background(), message("+15550000009")); err == nil {
		t.Error("Enqueue after Close succeeded")
	}
}

// Claim runs beside the writer, not behind it, and concurrent Claims,
// each in its transaction, take distinct recipients.
func TestClaimDoesNotWaitForTheWriter(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	ctx := context.Background()
	m := message("+15550000001", "+15550000002", "+15550000003", "+15550000004", "+15550000005")
	if err := s.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	now := m.Created.Add(time.Second)
	lease := func(int) time.Duration { return time.Minute }
	release := hold(t, s)
	defer release()
	jobs := make([][]bridge.Job, 2)
	errs := goAll(
		func() (err error) { jobs[0], err = s.Claim(ctx, now, 3, nil, lease); return err },
		func() (err error) { jobs[1], err = s.Claim(ctx, now, 3, nil, lease); return err })()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]bool{}
	for _, js := range jobs {
		for _, j := range js {
			if seen[j.Recipient.ID] {
				t.Fatalf("recipient %d handed out twice: %v", j.Recipient.ID, jobs)
			}
			seen[j.Recipient.ID] = true
		}
	}
	if len(seen) != len(m.Recipients) {
		t.Errorf("claimed %d of %d", len(seen), len(m.Recipients))
	}
}
