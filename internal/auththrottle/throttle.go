// Package auththrottle limits failed password attempts, shared by SMTP
// AUTH and the web console's sign-in so that a guesser gains nothing by
// switching from one to the other.
package auththrottle

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxThrottled bounds the entries of each throttle table: clients come
// from everywhere and, without a known list, user names are whatever
// clients type.
const maxThrottled = 10000

// Throttle limits failed AUTH attempts per client (IPv4 address,
// IPv6 /64) and per user name, across connections: each failure takes a
// token from both buckets, and while either is empty an attempt is
// refused before its password is looked at, so a guesser spends no
// bcrypt time of ours. A success takes nothing.
type Throttle struct {
	perClient, perAccount int // failures per hour, and the burst; 0: no limit
	known                 func(user string) bool

	mu       sync.Mutex
	clients  map[netip.Prefix]*rate.Limiter
	accounts map[string]*rate.Limiter
}

// New returns a throttle allowing perClient and perAccount failures an
// hour (and as a burst); 0 is no limit. known, if set, tells the user
// names that can sign in at all: only they get a bucket of their own.
// A guess at any other name cannot succeed, and the client's bucket
// counts it; keeping such names out means a flood of made-up ones (from
// many clients) cannot push a real account's emptied bucket out of a
// full table and so reset it.
func New(perClient, perAccount int, known func(user string) bool) *Throttle {
	return &Throttle{perClient: perClient, perAccount: perAccount, known: known,
		clients: map[netip.Prefix]*rate.Limiter{}, accounts: map[string]*rate.Limiter{}}
}

// Allowed reports whether an attempt from client as user may be checked.
// user is "" when it is not known yet (the client check alone).
func (t *Throttle) Allowed(client netip.Prefix, user string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l := t.clients[client]; l != nil && l.TokensAt(now) < 1 {
		return false
	}
	if l := t.accounts[user]; user != "" && l != nil && l.TokensAt(now) < 1 {
		return false
	}
	return true
}

// Failed takes a token from the client's and the user's buckets.
func (t *Throttle) Failed(client netip.Prefix, user string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	take(t.clients, client, t.perClient, now)
	if user != "" && (t.known == nil || t.known(user)) {
		take(t.accounts, user, t.perAccount, now)
	}
}

func take[K comparable](m map[K]*rate.Limiter, k K, perHour int, now time.Time) {
	if perHour <= 0 {
		return
	}
	l := m[k]
	if l == nil {
		if len(m) >= maxThrottled {
			prune(m, perHour, now)
		}
		l = rate.NewLimiter(rate.Limit(float64(perHour)/3600), perHour)
		m[k] = l
	}
	l.AllowN(now, 1)
}

// prune forgets buckets that have refilled (they hold no history worth
// keeping) and, if the table is still nearly full, arbitrary others, a
// tenth of the table at once so the scan is not repeated for every new
// entry: a flood of fresh names can then reset some account's bucket,
// but the per-client bucket still holds the flood itself.
func prune[K comparable](m map[K]*rate.Limiter, burst int, now time.Time) {
	for k, l := range m {
		if l.TokensAt(now) >= float64(burst) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < maxThrottled*9/10 {
			break
		}
		delete(m, k)
	}
}

// ClientKey is the bucket of a client address: the address itself for
// IPv4, its /64 for IPv6 (one host usually holds a whole /64).
func ClientKey(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}
