package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// An outcome waits up to maxJoin for an enqueue to share its commit; one
// that nothing joins commits alone when maxJoin has passed.
func TestOutcomeJoinsTheNextEnqueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
		m := testMessage("+15550000001")
		mustEnqueue(t, s, m)
		outcome := func(state bridge.State) <-chan error {
			done := make(chan error, 1)
			go func() {
				done <- s.Complete(bridge.Late(ctx), []bridge.Outcome{{RecipientID: m.Recipients[0].ID, State: state,
					Provider: m.Recipients[0].Provider, NextAttempt: time.Now().Add(time.Minute), At: time.Now()}})
			}()
			return done
		}

		before, start := s.commits.Load(), time.Now()
		done := outcome(bridge.StateQueued)
		synctest.Wait() // the outcome is in the writer, waiting for company
		if got := s.commits.Load() - before; got != 0 {
			t.Fatalf("%d commits before anything joined the outcome, want 0", got)
		}
		mustEnqueue(t, s, testMessage("+15550000002"))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := s.commits.Load() - before; got != 1 {
			t.Errorf("%d commits for an outcome and an enqueue, want 1", got)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("the enqueue waited %v for the outcome's company, want 0", waited)
		}

		before, start = s.commits.Load(), time.Now()
		if err := <-outcome(bridge.StateSent); err != nil {
			t.Fatal(err)
		}
		if got, waited := s.commits.Load()-before, time.Since(start); got != 1 || waited != maxJoin {
			t.Errorf("a lone outcome: %d commits after %v, want 1 after maxJoin (%v)", got, waited, maxJoin)
		}
		got, err := s.Message(ctx, m.ID)
		if err != nil || got.Recipients[0].State != bridge.StateSent {
			t.Fatalf("Message = %+v, %v; want the outcome recorded", got, err)
		}
	})
}
