package bridge_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

const phoneA, phoneB = "+972501234567", "+972507654321"

var pool3 = []string{"972500000001", "972500000002", "972500000003"}

type pooled struct {
	st   *sqlite.Store
	b    *bridge.Bridge
	comp *composer
	now  time.Time
}

// newPooled is a bridge whose account "clinic" (anyone at example.com)
// has pool as its pool, after the one-way sender ID "Clinic".
func newPooled(t *testing.T, pool []string, ambiguous bridge.Ambiguous) *pooled {
	t.Helper()
	st, log := openStore(t)
	var err error
	p := &pooled{st: st, comp: &composer{}, now: time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)}
	accounts := []bridge.Account{{Name: "clinic", Emails: []string{"*@example.com"},
		SenderIDs: append([]string{"Clinic"}, pool...), Pool: pool}}
	p.b, err = bridge.New(st, []bridge.Provider{&scripted{name: "p", batch: 10}}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}},
		accounts, bridge.Options{Region: "IL", Log: log, ReplyWindow: 24 * time.Hour, CatchAll: "desk@example.org",
			Ambiguous: ambiguous, Composer: p.comp, Now: func() time.Time { return p.now }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// send submits writer's message to phones (sender: an explicit sender ID,
// or "") and returns the sender it got.
func (p *pooled) send(t *testing.T, writer, sender string, phones ...string) string {
	t.Helper()
	got, err := p.submit(t, writer, sender, phones...)
	if err != nil {
		t.Fatalf("%s: %v", writer, err)
	}
	return got
}

func (p *pooled) submit(t *testing.T, writer, sender string, phones ...string) (string, error) {
	acct, err := p.b.Account(writer)
	if err != nil {
		return "", err
	}
	s := &bridge.Submission{Account: acct, Channel: bridge.ChannelSMTP, EnvelopeFrom: writer, ReplyTo: writer,
		Sender: sender, Text: "hello"}
	for _, ph := range phones {
		r, err := p.b.Resolve(acct, ph)
		if err != nil {
			return "", err
		}
		s.Recipients = append(s.Recipients, r)
	}
	m, err := p.b.Submit(t.Context(), s)
	if err != nil {
		return "", err
	}
	return m.Sender, nil
}

// TestStickySenderChoice: each new writer with a phone gets a number no
// live writer uses with it, and keeps it; when the pool is exhausted the
// one whose other writers' claims run out first is shared; a claim past
// the reply window frees its number; a message to two phones gets a
// number free with both; a template without a sender keeps the
// template's.
func TestStickySenderChoice(t *testing.T) {
	p := newPooled(t, pool3, bridge.AmbiguousLast)
	alice := p.send(t, "alice@example.com", "", phoneA)
	p.now = p.now.Add(time.Minute)
	bob := p.send(t, "Bob@Example.com", "", phoneA)
	p.now = p.now.Add(time.Minute)
	carol := p.send(t, "carol@example.com", "", phoneA)
	if alice != pool3[0] || bob != pool3[1] || carol != pool3[2] {
		t.Fatalf("alice, bob, carol got %s, %s, %s; want the pool in order", alice, bob, carol)
	}
	p.now = p.now.Add(time.Minute)
	if again := p.send(t, "bob@example.com", "", phoneA); again != bob {
		t.Fatalf("bob (as another spelling) got %s, want his %s", again, bob)
	}
	if again := p.send(t, "alice@example.com", "", phoneA); again != alice {
		t.Fatalf("alice got %s, want her %s", again, alice)
	}
	// Exhausted: carol's claim (made before bob's and alice's last
	// messages) runs out first.
	if dave := p.send(t, "dave@example.com", "", phoneA); dave != carol {
		t.Fatalf("dave got %s; want carol's %s, whose claim ends first", dave, carol)
	}
	// Another phone: everyone starts afresh.
	if erin := p.send(t, "erin@example.com", "", phoneB); erin != pool3[0] {
		t.Fatalf("erin, first to write to another phone, got %s", erin)
	}
	// Two phones: every number is another writer's with one of them
	// (erin holds pool3[0] with phoneB, bob and carol the others with
	// phoneA); of those, the one alice holds with the other phone.
	if both := p.send(t, "alice@example.com", "", phoneA, phoneB); both != pool3[0] {
		t.Fatalf("alice to both phones got %s, want %s (hers with one, shared with one)", both, pool3[0])
	}
	// A day later every claim has run out: the first number is free.
	p.now = p.now.Add(25 * time.Hour)
	if frank := p.send(t, "frank@example.com", "", phoneA); frank != pool3[0] {
		t.Fatalf("frank, after the reply window, got %s, want %s", frank, pool3[0])
	}
	// A sender ID outside the pool is used as asked, and claims nothing.
	if s := p.send(t, "gina@example.com", "Clinic", phoneA); s != "Clinic" {
		t.Fatalf("explicit one-way sender: %s", s)
	}
	if s := p.send(t, "gina@example.com", "", phoneA); s != pool3[1] {
		t.Fatalf("gina after an explicit one-way sender got %s, want the next free %s", s, pool3[1])
	}
}

// TestStickySenderExplicitWins: a writer naming another writer's number
// gets it; the phone's reply on it is then ambiguous, and says how many
// writers it may be meant for; with catch_all it goes to the catch-all.
func TestStickySenderExplicitWins(t *testing.T) {
	for _, tc := range []struct {
		policy bridge.Ambiguous
		to     string
	}{{bridge.AmbiguousLast, "desk@example.org"}, {bridge.AmbiguousCatchAll, "desk@example.org"}} {
		t.Run(string(tc.policy), func(t *testing.T) {
			p := newPooled(t, pool3[:2], tc.policy)
			alice := p.send(t, "alice@example.com", "", phoneA)
			if bob := p.send(t, "bob@example.com", alice, phoneA); bob != alice {
				t.Fatalf("bob asked for %s and got %s", alice, bob)
			}
			// Nothing was sent, so the conversation names no writer and
			// "last" has nobody either: both go to the catch-all; what
			// differs is that the reply counts two writers.
			in := &bridge.Inbound{Provider: "p", DedupeKey: "k1", From: phoneA, To: alice, Text: "who is this?"}
			if _, err := p.b.Receive(t.Context(), in); err != nil {
				t.Fatal(err)
			}
			if in.MailTo != tc.to || !slices.Equal(p.comp.writers, []int{2}) {
				t.Fatalf("reply mailed to %q with writers %v; want %s, 2", in.MailTo, p.comp.writers, tc.to)
			}
			// The other number is nobody's: a reply there is unambiguous.
			in = &bridge.Inbound{Provider: "p", DedupeKey: "k2", From: phoneA, To: pool3[1], Text: "hello?"}
			if _, err := p.b.Receive(t.Context(), in); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.comp.writers, []int{2, 0}) {
				t.Fatalf("writers %v; want the second reply unambiguous", p.comp.writers)
			}
		})
	}
}

// TestStickySenderConcurrent: writers submitting to one phone at the same
// instant each get their own number while the pool lasts.
func TestStickySenderConcurrent(t *testing.T) {
	p := newPooled(t, pool3, bridge.AmbiguousLast)
	got := make([]string, len(pool3))
	errs := make([]error, len(pool3))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range got {
		writer := string(rune('a'+i)) + "@example.com"
		wg.Go(func() {
			<-start
			got[i], errs[i] = p.submit(t, writer, "", phoneA)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, pool3) {
		t.Fatalf("concurrent writers got %v; want each of %v once", got, pool3)
	}
}

// TestStickySenderClaimsPurged: the retention purge deletes claims that
// ran out, of a phone nobody writes to again, and keeps live ones.
func TestStickySenderClaimsPurged(t *testing.T) {
	p := newPooled(t, pool3, bridge.AmbiguousLast)
	start := p.now
	p.send(t, "alice@example.com", "", phoneA)
	p.now = p.now.Add(23 * time.Hour)
	if got := p.send(t, "bob@example.com", "", phoneB); got != pool3[0] {
		t.Fatalf("bob got %s", got)
	}
	p.now = p.now.Add(2 * time.Hour) // alice's claim ran out an hour ago, bob's runs
	r := &bridge.Retention{Store: p.st, Keep: 90 * 24 * time.Hour, Now: func() time.Time { return p.now }}
	n, err := r.Purge(t.Context())
	if err != nil || n[bridge.PurgeClaims] != 1 {
		t.Fatalf("Purge = %v, %v; want 1 sender claim deleted", n, err)
	}
	if live, _ := p.st.LiveClaims(t.Context(), phoneA, "+"+pool3[0], start); len(live) != 0 {
		t.Fatalf("alice's claim, run out, is still there: %+v", live)
	}
	if live, _ := p.st.LiveClaims(t.Context(), phoneB, "+"+pool3[0], p.now); len(live) != 1 {
		t.Fatalf("bob's live claim: %+v; want it kept", live)
	}
}
