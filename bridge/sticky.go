package bridge

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Sticky senders. An account with a pool of 2-way numbers (Account.Pool)
// gives each writer (Writer: the reply address) their own number with
// each phone, so that the phone's answer on that number can belong to one
// writer only. Who holds which number with which phone is a SenderClaim,
// made at acceptance (Submit) in the store, one transaction per choice
// that no other choice for the same phones runs beside (on every instance
// sharing the store): two writers accepted at the same instant never get
// the same free number.

// Ambiguous is what happens to a phone's reply on a number that more than
// one writer's live claim holds with that phone (the pool ran out, or a
// writer asked for a taken number explicitly).
type Ambiguous string

const (
	// AmbiguousLast mails it to the writer who wrote last (as without a
	// pool), saying that it may be meant for someone else.
	AmbiguousLast Ambiguous = "last"
	// AmbiguousCatchAll mails it to the catch-all instead (only logged
	// when there is none), saying who it may be meant for.
	AmbiguousCatchAll Ambiguous = "catch_all"
)

// SenderClaim is one writer's hold on one of our numbers with one phone:
// until Until (their last message's acceptance, or its scheduled time,
// plus the reply window) the phone's SMS to Our may answer them.
type SenderClaim struct {
	Phone  string // E.164
	Our    string // OurKey of the number
	Writer string // see Writer
	Until  time.Time
}

// SenderClaims is the store side of sticky senders. Both stores implement
// it beside Conversations; without it, pools are not used (every message
// goes out from the account's default sender).
type SenderClaims interface {
	// ClaimSenders calls choose with the claims on phones that are live
	// at now (Until at or after now), in no particular order, and stores
	// the claims choose returns (one per phone and number and writer: a
	// later Until replaces an earlier one, an earlier one is ignored), in
	// one transaction that no other ClaimSenders naming any of phones
	// overlaps, so that choose sees every claim made before it. Claims
	// on phones that ran out before now may be deleted. An error from
	// choose is returned, and nothing is stored.
	ClaimSenders(ctx context.Context, phones []string, now time.Time, choose func(live []SenderClaim) ([]SenderClaim, error)) error
	// LiveClaims returns the claims on phone's conversation with our that
	// are live at at.
	LiveClaims(ctx context.Context, phone, our string, at time.Time) ([]SenderClaim, error)
}

// Writer is whom a message's replies belong to: its reply address
// (compared ignoring case), or for a message without one (an HTTP client
// that named no reply_to) its account, whose replies then go nowhere but
// must not take another writer's number either. An account name has no
// "@", so it never equals an address.
func Writer(account, replyTo string) string {
	if replyTo != "" {
		return strings.ToLower(strings.TrimSpace(replyTo))
	}
	return "account:" + account
}

// pickSender chooses the sender of a message from writer to phones among
// pool (the configured numbers, in order; keys their OurKeys), given the
// live claims on phones:
//
//   - a number the writer holds with every phone that another writer
//     does not, or that no other writer holds: the one the writer holds
//     with the most phones, then the first in pool order;
//   - when every number is another writer's with some phone (the pool is
//     exhausted), the one the fewest phones make shared, then the one
//     whose other writers' claims run out first, then pool order.
//
// It reports how many of phones end up with the number shared.
func pickSender(pool, keys []string, writer string, phones []string, live []SenderClaim) (sender string, shared int) {
	type score struct {
		own, taken  int
		othersUntil time.Time
	}
	scores := make([]score, len(pool))
	for i, key := range keys {
		for _, phone := range phones {
			mine, other := false, false
			for _, c := range live {
				if c.Phone != phone || c.Our != key {
					continue
				}
				if c.Writer == writer {
					mine = true
				} else {
					other = true
					if c.Until.After(scores[i].othersUntil) {
						scores[i].othersUntil = c.Until
					}
				}
			}
			if mine {
				scores[i].own++
			}
			if other {
				scores[i].taken++
			}
		}
	}
	best := 0
	for i := 1; i < len(pool); i++ {
		a, b := scores[i], scores[best]
		switch {
		case a.taken != b.taken:
			if a.taken < b.taken {
				best = i
			}
		case a.own != b.own:
			if a.own > b.own {
				best = i
			}
		case a.taken > 0 && !a.othersUntil.Equal(b.othersUntil):
			if a.othersUntil.Before(b.othersUntil) {
				best = i
			}
		}
	}
	return pool[best], scores[best].taken
}

// stickySender chooses (with sender == "") or confirms (an explicit
// sender, or the number of the conversation an answer continues) the
// sender of s's message, and records the writer's claim on it with each
// of s's phones. It returns sender unchanged when the account has no
// pool, the store keeps no claims, or no recipient is a phone.
//
// An explicit sender always wins: a number another writer holds with the
// phone is then shared, and the phone's replies on it are ambiguous (see
// Ambiguous).
func (b *Bridge) stickySender(ctx context.Context, pol *policy, s *Submission, sender string) (string, error) {
	claims, ok := b.store.(SenderClaims)
	if !ok || len(s.Account.Pool) == 0 || (sender == "" && s.Template != "") {
		return sender, nil
	}
	var phones []string
	for _, r := range s.Recipients {
		if strings.HasPrefix(r.To, "+") && !slices.Contains(phones, r.To) {
			phones = append(phones, r.To)
		}
	}
	if len(phones) == 0 {
		return sender, nil
	}
	our := sender
	if our != "" && !s.Account.InPool(our) {
		// A sender ID outside the pool (one-way, alphanumeric): its
		// replies, if any, go to whoever wrote last, as without a pool.
		return sender, nil
	}
	keys := make([]string, len(s.Account.Pool))
	for i, n := range s.Account.Pool {
		keys[i] = pol.key(b, n)
	}
	writer := Writer(s.Account.Name, s.ReplyTo)
	now := b.opt.Now()
	until := now
	if s.SendAt.After(until) {
		until = s.SendAt
	}
	until = until.Add(b.opt.ReplyWindow)
	var shared int
	err := claims.ClaimSenders(ctx, phones, now, func(live []SenderClaim) ([]SenderClaim, error) {
		chosen := our
		if chosen == "" {
			chosen, shared = pickSender(s.Account.Pool, keys, writer, phones, live)
		}
		key := pol.key(b, chosen)
		out := make([]SenderClaim, len(phones))
		for i, p := range phones {
			out[i] = SenderClaim{Phone: p, Our: key, Writer: writer, Until: until}
		}
		sender = chosen
		return out, nil
	})
	if err != nil {
		return "", fmt.Errorf("claiming a sender from the pool: %w", err)
	}
	if shared > 0 {
		b.opt.Log.InfoContext(ctx, "sender pool exhausted: the number is shared with another writer",
			"account", s.Account.Name, "sender", sender, "phones_shared", shared)
	}
	return sender, nil
}

// key is the OurKey of a configured sender ID.
func (pol *policy) key(b *Bridge, id string) string {
	if k, ok := pol.ourKeys[id]; ok {
		return k
	}
	return b.OurKey(id)
}

// replyWriters reports how many writers hold c's number with its phone at
// at (see SenderClaims); 0 when the store keeps no claims or could not
// say.
func (b *Bridge) replyWriters(ctx context.Context, c *Conversation, at time.Time) int {
	claims, ok := b.store.(SenderClaims)
	if !ok || c.Our == "" || !strings.HasPrefix(c.Phone, "+") {
		return 0
	}
	live, err := claims.LiveClaims(ctx, c.Phone, c.Our, at)
	if err != nil {
		b.opt.Log.WarnContext(ctx, "reading sender claims; the reply is routed as if unambiguous", "conversation", c.ID, "err", err)
		return 0
	}
	writers := map[string]bool{}
	for _, cl := range live {
		writers[cl.Writer] = true
	}
	return len(writers)
}
