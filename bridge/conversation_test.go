package bridge_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// listStore records the filters it is asked to list by; with slow set it
// answers only when the caller gives up, as a store reading a million
// conversations would.
type listStore struct {
	bridge.ConversationStore
	slow     bool
	asked    []bridge.ConversationFilter
	deadline []bool // whether each listing had one
}

func (s *listStore) ListConversations(ctx context.Context, f bridge.ConversationFilter) ([]bridge.Conversation, error) {
	s.asked = append(s.asked, f)
	_, ok := ctx.Deadline()
	s.deadline = append(s.deadline, ok)
	if s.slow {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, nil
}

func newListBridge(t *testing.T, s *listStore) *bridge.Bridge {
	t.Helper()
	b, err := bridge.New(s, nil, nil, []bridge.Account{{Name: "desk", Emails: []string{"desk@example.com"}}},
		bridge.Options{Region: "IL"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConversationsStateFilter(t *testing.T) {
	s := &listStore{}
	b := newListBridge(t, s)
	desk, admin := &bridge.Account{Name: "desk"}, &bridge.Account{Name: "ops", Admin: true}

	if _, err := b.Conversations(t.Context(), desk, bridge.ConversationFilter{State: "stuck"}); bridge.ReasonOf(err) != bridge.ReasonInvalid {
		t.Fatalf("state stuck: %v, want invalid", err)
	}
	if _, err := b.Conversations(t.Context(), desk, bridge.ConversationFilter{State: bridge.StateQueued}); bridge.ReasonOf(err) != bridge.ReasonInvalid {
		t.Fatalf("state queued (never filed): %v, want invalid", err)
	}
	if len(s.asked) != 0 {
		t.Fatalf("a refused filter reached the store: %+v", s.asked)
	}
	for _, st := range bridge.ConversationStates {
		if _, err := b.Conversations(t.Context(), desk, bridge.ConversationFilter{State: st, Provider: "voip"}); err != nil {
			t.Fatalf("state %s: %v", st, err)
		}
	}
	// A non-admin's filter is its own account's, so only its SMS count.
	if f := s.asked[0]; f.Account != "desk" || f.Provider != "voip" || f.State != bridge.StateReceived {
		t.Fatalf("desk's filter reached the store as %+v", f)
	}
	if _, err := b.Conversations(t.Context(), admin, bridge.ConversationFilter{State: bridge.StateFailed}); err != nil {
		t.Fatal(err)
	}
	if f := s.asked[len(s.asked)-1]; f.Account != "" {
		t.Fatalf("an admin's filter without an account became %+v", f)
	}
}

// A listing by state that would read too much stops at its deadline with
// an error naming the state filter, not a store failure.
func TestConversationsStateFilterDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &listStore{slow: true}
		b := newListBridge(t, s)
		start := time.Now()
		_, err := b.Conversations(t.Context(), &bridge.Account{Name: "ops", Admin: true}, bridge.ConversationFilter{State: bridge.StateFailed})
		var be *bridge.Error
		if bridge.ReasonOf(err) != bridge.ReasonInvalid || !errors.As(err, &be) || be.Field != "state" {
			t.Fatalf("slow listing: %v, want invalid state", err)
		}
		if took := time.Since(start); took != bridge.StateListTimeout {
			t.Fatalf("gave up after %v, want %v", took, bridge.StateListTimeout)
		}
		// Without a state the listing is an index walk: no deadline.
		s.slow = false
		if _, err := b.Conversations(t.Context(), &bridge.Account{Name: "ops", Admin: true}, bridge.ConversationFilter{Phone: "0501234567"}); err != nil {
			t.Fatal(err)
		}
		if s.deadline[len(s.deadline)-1] {
			t.Fatal("a listing without a state got a deadline")
		}
	})
}
