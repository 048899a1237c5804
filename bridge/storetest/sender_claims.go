package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// senderClaims is s as a bridge.SenderClaims; every store that keeps
// conversations must keep claims too, or pools would silently go unused.
func senderClaims(t *testing.T, s Full) bridge.SenderClaims {
	t.Helper()
	c, ok := s.(bridge.SenderClaims)
	if !ok {
		t.Fatalf("%T does not implement bridge.SenderClaims", s)
	}
	return c
}

func sortClaims(cs []bridge.SenderClaim) {
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Phone != b.Phone {
			return a.Phone < b.Phone
		}
		if a.Our != b.Our {
			return a.Our < b.Our
		}
		return a.Writer < b.Writer
	})
}

// testSenderClaims: a claim is stored and read back while live; a later
// end replaces an earlier one and an earlier one is ignored; a claim
// past its end is neither live nor shown to the chooser; a chooser's
// error stores nothing; a claim for a phone the call did not name is
// refused; claims that ran out are deleted, of any phone.
func testSenderClaims(t *testing.T, s Full) {
	ctx := context.Background()
	sc := senderClaims(t, s)
	const phone, other = "+15550000001", "+15550000002"
	until := base.Add(time.Hour)
	claim := func(now time.Time, phones []string, want []bridge.SenderClaim, cs ...bridge.SenderClaim) {
		t.Helper()
		err := sc.ClaimSenders(ctx, phones, now, func(live []bridge.SenderClaim) ([]bridge.SenderClaim, error) {
			sortClaims(live)
			for i := range live {
				live[i].Until = live[i].Until.UTC()
			}
			if !slices.Equal(live, want) {
				t.Errorf("chooser saw %+v, want %+v", live, want)
			}
			return cs, nil
		})
		if err != nil {
			t.Fatalf("ClaimSenders: %v", err)
		}
	}
	alice := bridge.SenderClaim{Phone: phone, Our: "+15559990001", Writer: "alice@example.com", Until: until}
	bob := bridge.SenderClaim{Phone: phone, Our: "+15559990002", Writer: "bob@example.com", Until: until.Add(time.Minute)}
	carol := bridge.SenderClaim{Phone: other, Our: "+15559990001", Writer: "carol@example.com", Until: until}
	claim(base, []string{phone, other}, nil, alice, bob, carol)
	earlier := alice
	earlier.Until = base.Add(time.Minute)
	claim(base, []string{phone}, []bridge.SenderClaim{alice, bob}, earlier)

	live, err := sc.LiveClaims(ctx, phone, alice.Our, base)
	if err != nil || len(live) != 1 || live[0].Writer != alice.Writer || !live[0].Until.Equal(until) {
		t.Fatalf("LiveClaims = %+v, %v; want alice's until %s (an earlier end does not shorten it)", live, err, until)
	}
	later := alice
	later.Until = until.Add(2 * time.Minute)
	claim(base, []string{phone}, []bridge.SenderClaim{alice, bob}, later)
	if live, _ := sc.LiveClaims(ctx, phone, alice.Our, until.Add(time.Minute)); len(live) != 1 || !live[0].Until.Equal(later.Until) {
		t.Fatalf("LiveClaims after extending = %+v; want alice's until %s", live, later.Until)
	}
	// Past bob's end and alice's first end, only alice's extended claim
	// is live.
	after := until.Add(90 * time.Second)
	later.Until = later.Until.UTC()
	claim(after, []string{phone}, []bridge.SenderClaim{later})
	if live, _ := sc.LiveClaims(ctx, phone, bob.Our, after); len(live) != 0 {
		t.Fatalf("LiveClaims of a claim past its end = %+v; want none", live)
	}
	// The claim of the other phone, nobody's business since, ran out
	// too: the call deleted it (read at a time it was live, it is gone).
	if live, _ := sc.LiveClaims(ctx, other, carol.Our, base); len(live) != 0 {
		t.Fatalf("a claim of another phone past its end = %+v; want it deleted by a later claim", live)
	}

	boom := errors.New("boom")
	err = sc.ClaimSenders(ctx, []string{other}, base, func([]bridge.SenderClaim) ([]bridge.SenderClaim, error) {
		return []bridge.SenderClaim{{Phone: other, Our: "+15559990002", Writer: "dave@example.com", Until: until}}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("ClaimSenders with a failing chooser = %v; want its error", err)
	}
	err = sc.ClaimSenders(ctx, []string{other}, base, func([]bridge.SenderClaim) ([]bridge.SenderClaim, error) {
		return []bridge.SenderClaim{{Phone: phone, Our: "+15559990002", Writer: "dave@example.com", Until: until}}, nil
	})
	if err == nil {
		t.Fatal("ClaimSenders stored a claim for a phone it did not name")
	}
	if live, _ := sc.LiveClaims(ctx, other, "+15559990002", base); len(live) != 0 {
		t.Fatalf("claims after refused calls = %+v; want none", live)
	}
	if err := sc.ClaimSenders(ctx, nil, base, func([]bridge.SenderClaim) ([]bridge.SenderClaim, error) { return nil, nil }); err == nil {
		t.Fatal("ClaimSenders for no phone succeeded")
	}

	// Retention takes the claims nobody's next claim deleted: those
	// that ran out, a batch at a time, and no live one.
	cp, ok := s.(bridge.ClaimPurger)
	if !ok {
		t.Fatalf("%T does not implement bridge.ClaimPurger", s)
	}
	var dead []bridge.SenderClaim
	for i := range 3 {
		dead = append(dead, bridge.SenderClaim{Phone: fmt.Sprintf("+1555300000%d", i), Our: "+15559990001", Writer: "erin@example.com", Until: after})
	}
	for _, c := range dead {
		claim(after, []string{c.Phone}, nil, c)
	}
	end := after.Add(10 * time.Second) // before alice's extended claim ends
	if n, err := cp.PurgeDeadClaims(ctx, end, 2); err != nil || n != 2 {
		t.Fatalf("PurgeDeadClaims(limit 2) = %d, %v; want 2", n, err)
	}
	if n, err := cp.PurgeDeadClaims(ctx, end, 2); err != nil || n != 1 {
		t.Fatalf("PurgeDeadClaims again = %d, %v; want the last 1", n, err)
	}
	for _, c := range dead {
		if live, _ := sc.LiveClaims(ctx, c.Phone, c.Our, after); len(live) != 0 {
			t.Fatalf("claim %+v survived PurgeDeadClaims", live)
		}
	}
	if live, _ := sc.LiveClaims(ctx, phone, alice.Our, end); len(live) != 1 {
		t.Fatalf("alice's live claim after PurgeDeadClaims: %+v; want it kept", live)
	}
}

// testSenderClaimsConcurrent: many writers choose a number for one phone
// at the same instant from a pool of two, each taking a number nobody
// holds; exactly two get one, and not the same. A store whose choices
// overlapped would let several see both numbers free.
func testSenderClaimsConcurrent(t *testing.T, s Full) {
	ctx := context.Background()
	sc := senderClaims(t, s)
	pool := []string{"+15559990001", "+15559990002"}
	const writers, rounds = 12, 5
	exhausted := errors.New("pool exhausted")
	for round := range rounds {
		phone := fmt.Sprintf("+1555100%04d", round)
		start := make(chan struct{})
		got := make([]string, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			writer := fmt.Sprintf("w%d@example.com", w)
			wg.Go(func() {
				<-start
				errs[w] = sc.ClaimSenders(ctx, []string{phone, "+15552000000"}, base, func(live []bridge.SenderClaim) ([]bridge.SenderClaim, error) {
					for _, n := range pool {
						if !slices.ContainsFunc(live, func(c bridge.SenderClaim) bool { return c.Phone == phone && c.Our == n }) {
							got[w] = n
							return []bridge.SenderClaim{{Phone: phone, Our: n, Writer: writer, Until: base.Add(time.Hour)}}, nil
						}
					}
					got[w] = ""
					return nil, exhausted
				})
			})
		}
		close(start)
		wg.Wait()
		var won []string
		for w, err := range errs {
			switch {
			case err == nil:
				won = append(won, got[w])
			case !errors.Is(err, exhausted):
				t.Fatalf("round %d writer %d: %v", round, w, err)
			}
		}
		slices.Sort(won)
		if !slices.Equal(won, pool) {
			t.Fatalf("round %d: writers got %v; want each of %v exactly once", round, won, pool)
		}
		for _, n := range pool {
			if live, err := sc.LiveClaims(ctx, phone, n, base); err != nil || len(live) != 1 {
				t.Fatalf("round %d: claims on %s = %+v, %v; want one", round, n, live, err)
			}
		}
	}
}
