package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

func testCompleteAtomic(t *testing.T, s Full) {
	ctx := context.Background()
	m := newMessage(base, base, phone1)
	m.Sender, m.ReplyTo = our1, "alice@clinic.example"
	enqueue(t, s, m)
	bounce := &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: m.ID, To: "alice@clinic.example", Data: []byte("bounce")}
	// One transaction: with an unknown recipient, neither the filing nor
	// the mail of the known one is kept.
	err := s.Complete(ctx, []bridge.Outcome{
		{RecipientID: m.Recipients[0].ID, State: bridge.StateFailed, Error: "no", At: base,
			Conversation: touch(m, phone1), Mail: bounce},
		{RecipientID: 1 << 40, State: bridge.StateSent, At: base},
	})
	if !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("Complete(unknown recipient) = %v, want ErrNotFound", err)
	}
	if c, err := s.Conversation(ctx, bridge.ConversationID(phone1, our1)); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("conversation of a failed Complete: %+v, %v", c, err)
	}
	if got, err := s.Mail(ctx, bounce.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("mail of a failed Complete: %+v, %v", got, err)
	}
	if r := get(t, s, m.ID).Recipients[0]; r.State != bridge.StateQueued {
		t.Errorf("recipient of a failed Complete is %s", r.State)
	}

	// An outcome's touch must name its conversation.
	err = s.Complete(ctx, []bridge.Outcome{{RecipientID: m.Recipients[0].ID, State: bridge.StateSent, At: base,
		Conversation: &bridge.ConversationTouch{Phone: phone1}}})
	if err == nil || bridge.IsTemporary(err) {
		t.Errorf("Complete with a touch without id = %v, want a permanent error", err)
	}
}

func testCompleteWithMail(t *testing.T, s Full) {
	ctx := context.Background()
	m := enqueue(t, s, newMessage(base, base, phone1, phone2))
	at := base.Add(time.Minute)
	bounce := &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: m.ID, To: "app@example.com",
		Data: []byte("From: <>\r\nSubject: Undelivered\r\n\r\n\x00\xff\r\n")}
	// A mail with times of its own keeps them.
	later := &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: m.ID, From: "postmaster@bridge.example",
		To: "ops@example.com", Data: []byte("x"), Created: base, NextAttempt: base.Add(time.Hour)}
	complete(t, s,
		bridge.Outcome{RecipientID: m.Recipients[0].ID, State: bridge.StateFailed, Error: "bad number", At: at, Mail: bounce},
		bridge.Outcome{RecipientID: m.Recipients[1].ID, State: bridge.StateFailed, Error: "expired", At: at, Mail: later},
	)
	want := *bounce
	want.State, want.Created, want.NextAttempt, want.Updated = bridge.MailQueued, at, at, at
	assertMail(t, s, want)
	want = *later
	want.State, want.Updated = bridge.MailQueued, base
	assertMail(t, s, want)

	// Recorded again (a retry after an unanswered commit): queued once.
	complete(t, s, bridge.Outcome{RecipientID: m.Recipients[0].ID, State: bridge.StateFailed, Error: "bad number",
		At: at.Add(time.Second), Mail: bounce})
	if st, err := s.MailStats(ctx); err != nil || st.Queued != 2 || !st.OldestQueued.Equal(base) {
		t.Errorf("MailStats = %+v, %v; want 2 queued, oldest %v", st, err, base)
	}
	if mails := claimMail(t, s, at, 10); len(mails) != 1 || mails[0].ID != bounce.ID {
		t.Errorf("due at %v: %v, want only the bounce", at, mailIDs(mails))
	}
}

// testCompleteConcurrentOnePhone is many dispatchers recording outcomes
// for one phone at once, as a load of mail to one number makes them: every
// Complete succeeds. Each round files under two conversations that do not
// exist yet (creating one is where concurrent writers meet: the race is
// narrow, hence the rounds), each Complete under both, named in either
// order, and from senders whose case differs (one conversation, see
// bridge.ConversationID).
func testCompleteConcurrentOnePhone(t *testing.T, s Full) {
	ctx := context.Background()
	const writers, rounds = 20, 60
	var wg sync.WaitGroup
	failed := 0
	for round := range rounds {
		phone := fmt.Sprintf("+1555%07d", round)
		ours := []string{"Clinic", "+15559990000"}
		m := newMessage(base, base, slices.Repeat([]string{phone}, 2*writers)...)
		m.ReplyTo = "reception@clinic.example"
		enqueue(t, s, m)
		start := make(chan struct{})
		errs := make([]error, writers)
		for w := range writers {
			at := base.Add(time.Duration(w) * time.Millisecond)
			var outs []bridge.Outcome
			for k, our := range ours {
				if w%2 == 1 {
					our = strings.ToUpper(our)
				}
				c := touch(m, phone)
				c.ID, c.Our = bridge.ConversationID(phone, our), our
				r := m.Recipients[2*w+k]
				outs = append(outs, bridge.Outcome{RecipientID: r.ID, State: bridge.StateSent, Provider: "p1",
					ProviderID: fmt.Sprintf("%s-%d", m.ID, r.ID), At: at, Conversation: c})
			}
			if w%2 == 1 {
				slices.Reverse(outs)
			}
			wg.Go(func() {
				<-start
				errs[w] = s.Complete(ctx, outs)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				failed++
				t.Errorf("round %d: Complete: %v", round, err)
			}
		}
		for _, our := range ours {
			c := conversation(t, s, bridge.ConversationID(phone, our))
			if want := base.Add((writers - 1) * time.Millisecond); !c.Updated.Equal(want) {
				t.Errorf("round %d: conversation with %s updated %v, want %v", round, our, c.Updated, want)
			}
			if n := len(conversationLog(t, s, c.ID, 0)); n != writers {
				t.Errorf("round %d: conversation with %s has %d entries, want %d", round, our, n, writers)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d Completes failed", failed, writers*rounds)
	}
}

// testCompleteConcurrentSameRecipients is Completes racing for the same
// recipients, named in different orders (a late outcome after a lease ran
// out, beside the new claimer's): all succeed, whatever order each names
// them in.
func testCompleteConcurrentSameRecipients(t *testing.T, s Full) {
	ctx := context.Background()
	const writers, rounds, n = 8, 20, 4
	var wg sync.WaitGroup
	for round := range rounds {
		m := enqueue(t, s, newMessage(base, base, slices.Repeat([]string{phone1}, n)...))
		start := make(chan struct{})
		errs := make([]error, writers)
		for w := range writers {
			var outs []bridge.Outcome
			for k := range n {
				r := m.Recipients[(k+w)%n]
				outs = append(outs, bridge.Outcome{RecipientID: r.ID, State: bridge.StateSent, Provider: "p1",
					ProviderID: fmt.Sprintf("w%d", w), At: base, Conversation: touch(m, phone1)})
			}
			if w%2 == 1 {
				slices.Reverse(outs)
			}
			wg.Go(func() {
				<-start
				errs[w] = s.Complete(ctx, outs)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Errorf("round %d: Complete: %v", round, err)
			}
		}
	}
}
