package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Account is a configured sender: who may send (by mail address), with
// which sender IDs, and to what.
type Account struct {
	Name string
	// Emails are addresses and "*@domain" patterns.
	Emails []string
	// SenderIDs the account may use; the first is the default.
	SenderIDs []string
	// Pool are the 2-way numbers, each one of SenderIDs, that new
	// conversations with a phone are spread over so that each writer has
	// their own number with each phone (see stickySender); empty: every
	// message without an explicit sender goes out from the default.
	Pool []string
	// AllowPhonebooks permits sends to whole provider phonebooks.
	AllowPhonebooks bool
	// TokenSHA256 are hex SHA-256 digests of the account's API tokens.
	TokenSHA256 []string
	// MessagesPerMinute caps SMS submitted per minute; 0 is unlimited.
	MessagesPerMinute int
	// SmartEncoding overrides Options.SmartEncoding for this account
	// (see SmartEncode); nil keeps it.
	SmartEncoding *bool
	// MaxSegments overrides Options.MaxSegments for this account; 0
	// keeps it. Overflow is what happens to a longer text ("" refuses).
	MaxSegments int
	Overflow    Overflow
	// Notify is the delivery notifications the account's mail gets when
	// it does not say (no NOTIFY at RCPT); 0 is failures only.
	Notify Notify
	// OnCall are the numbers alert hooks page by default.
	OnCall []string
	// PasswordHash is the bcrypt hash of the SMTP AUTH password.
	PasswordHash string
	// Admin accounts read every conversation and message, not only their own.
	Admin bool
	// Networks are the client networks whose unauthenticated mail may
	// claim this account by its envelope sender. nil leaves the choice to
	// the front end's default (smtp.allowed_networks); an empty, non-nil
	// list trusts no network: the account must authenticate.
	Networks []netip.Prefix
	// ReplyTo are addresses and "*@domain" patterns, beyond Emails, that
	// a mail's Reply-To or From (or an HTTP reply_to) may name as where
	// the phone's replies go.
	ReplyTo []string
	// HelpText answers a phone's HELP to one of the account's numbers
	// ("": the bridge's consent.help_text).
	HelpText string
	// Alerts configures the account's alert hooks and the answers to
	// their SMS (alertcmd.go).
	Alerts AlertOptions
}

// Trusts reports whether an unauthenticated client at addr may send as
// the account, given the front end's default networks for an account
// that names none.
func (a *Account) Trusts(addr netip.Addr, def []netip.Prefix) bool {
	nets := a.Networks
	if nets == nil {
		nets = def
	}
	for _, p := range nets {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Owns reports whether addr is one of the account's addresses (Emails):
// the only addresses a bounce about its messages may go to.
func (a *Account) Owns(addr string) bool { return matchAddress(a.Emails, addr) }

// MayReplyTo reports whether the phone's replies to the account's
// messages may be mailed to addr: one of its own addresses or one its
// reply_to list allows. Anything else would let whoever writes a mail's
// Reply-To collect the answers meant for the account.
func (a *Account) MayReplyTo(addr string) bool {
	return a.Owns(addr) || matchAddress(a.ReplyTo, addr)
}

// matchAddress reports whether addr is one of patterns: addresses and
// "*@domain" patterns, compared ignoring case as Accounts does.
func matchAddress(patterns []string, addr string) bool {
	addr = strings.ToLower(strings.TrimSpace(addr))
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return false
	}
	for _, p := range patterns {
		p = strings.ToLower(p)
		if d, ok := strings.CutPrefix(p, "*@"); ok {
			if addr[at+1:] == d {
				return true
			}
		} else if p == addr {
			return true
		}
	}
	return false
}

// DefaultSender is the sender ID used when none is asked for.
func (a *Account) DefaultSender() string {
	if len(a.SenderIDs) == 0 {
		return ""
	}
	return a.SenderIDs[0]
}

// MaySend reports whether sender is one of the account's sender IDs.
func (a *Account) MaySend(sender string) bool {
	for _, s := range a.SenderIDs {
		if s == sender {
			return true
		}
	}
	return false
}

// InPool reports whether sender is one of the account's pool numbers.
func (a *Account) InPool(sender string) bool { return slices.Contains(a.Pool, sender) }

// Accounts finds accounts by mail address. Exact addresses win over
// *@domain patterns; comparison ignores case, as mail systems do in
// practice even though local parts may be case-sensitive.
type Accounts struct {
	exact  map[string]*Account
	domain map[string]*Account
	tokens map[[sha256.Size]byte]*Account
	names  map[string]*Account
	order  []*Account // as configured
	// cost is the highest bcrypt cost among the accounts' password
	// hashes: every failed login is made to cost that much (see
	// Authenticate).
	cost int
}

// NewAccounts indexes accounts by their addresses and patterns.
func NewAccounts(list []Account) *Accounts {
	a := &Accounts{exact: map[string]*Account{}, domain: map[string]*Account{}, tokens: map[[sha256.Size]byte]*Account{}, names: map[string]*Account{}}
	for i := range list {
		acct := &list[i]
		a.names[acct.Name] = acct
		a.order = append(a.order, acct)
		if c, err := bcrypt.Cost([]byte(acct.PasswordHash)); err == nil && c > a.cost {
			a.cost = c
		}
		for _, h := range acct.TokenSHA256 {
			var sum [sha256.Size]byte
			if b, err := hex.DecodeString(h); err == nil && len(b) == sha256.Size {
				copy(sum[:], b)
				a.tokens[sum] = acct
			}
		}
		for _, e := range acct.Emails {
			e = strings.ToLower(e)
			if d, ok := strings.CutPrefix(e, "*@"); ok {
				a.domain[d] = acct
			} else {
				a.exact[e] = acct
			}
		}
	}
	if a.cost == 0 {
		a.cost = bcrypt.DefaultCost // no passwords: no login can succeed anyway
	} else {
		// Made now rather than at the first unknown user, whose answer
		// would otherwise take twice as long.
		dummyHash(a.cost)
	}
	return a
}

// ByEmail returns the account that addr belongs to.
func (a *Accounts) ByEmail(addr string) (*Account, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	if acct, ok := a.exact[addr]; ok {
		return acct, nil
	}
	if i := strings.LastIndexByte(addr, '@'); i > 0 {
		if acct, ok := a.domain[addr[i+1:]]; ok {
			return acct, nil
		}
	}
	if addr == "" {
		return nil, Permanent(ReasonUnknownAccount, "from", "the null sender may not send SMS")
	}
	return nil, Permanent(ReasonUnknownAccount, "from", "%s is not allowed to send SMS", addr)
}

// ByToken returns the account an API token belongs to. Only digests are
// configured, so the lookup is by the token's digest: a map lookup leaks
// nothing useful about a token through timing, as an attacker cannot
// choose digests.
func (a *Accounts) ByToken(token string) (*Account, error) {
	if token == "" {
		return nil, Permanent(ReasonUnknownAccount, "Authorization", "no API token")
	}
	if acct, ok := a.tokens[sha256.Sum256([]byte(token))]; ok {
		return acct, nil
	}
	return nil, Permanent(ReasonUnknownAccount, "Authorization", "unknown API token")
}

// compareHash is bcrypt's comparison; tests replace it to count the
// comparisons and their cost, which wall-clock time would only blur.
var compareHash = bcrypt.CompareHashAndPassword

// dummyHashes holds, per bcrypt cost, a hash no password matches. A
// failed login for an unknown user, or for an account without a
// password, is checked against the one of the highest configured cost,
// so it takes as long as a wrong password for the slowest real account:
// timing reveals neither account names nor which accounts have
// passwords. (A dummy of bcrypt.DefaultCost against cost-12 account
// hashes answered unknown users 4x faster.)
var dummyHashes struct {
	sync.Mutex
	byCost map[int][]byte
}

func dummyHash(cost int) []byte {
	dummyHashes.Lock()
	defer dummyHashes.Unlock()
	if h, ok := dummyHashes.byCost[cost]; ok {
		return h
	}
	h, err := bcrypt.GenerateFromPassword([]byte("not a password"), cost)
	if err != nil {
		// Only an invalid cost fails, and costs come from parsed hashes.
		h, _ = bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)
	}
	if dummyHashes.byCost == nil {
		dummyHashes.byCost = map[int][]byte{}
	}
	dummyHashes.byCost[cost] = h
	return h
}

// Authenticate checks an SMTP AUTH login: the user name is the account
// name, the password is checked against its bcrypt hash. Every attempt
// runs exactly one bcrypt comparison, of the highest configured cost
// when the account is unknown or has no password.
func (a *Accounts) Authenticate(user, password string) (*Account, error) {
	acct := a.names[user]
	var hash []byte
	if acct != nil && acct.PasswordHash != "" {
		hash = []byte(acct.PasswordHash)
	} else {
		hash = dummyHash(a.cost)
	}
	err := compareHash(hash, []byte(password))
	if acct == nil || acct.PasswordHash == "" || err != nil {
		return nil, Permanent(ReasonUnknownAccount, "user", "authentication failed")
	}
	return acct, nil
}

// Route sends numbers starting with Prefix through Providers, the first
// preferred and the others as fallbacks.
type Route struct {
	Prefix    string
	Providers []string
}

// Routes picks providers by longest matching E.164 prefix.
type Routes struct{ list []Route }

// NewRoutes sorts routes so the longest prefix is found first.
func NewRoutes(list []Route) *Routes {
	r := &Routes{list: append([]Route(nil), list...)}
	sort.SliceStable(r.list, func(i, j int) bool { return len(r.list[i].Prefix) > len(r.list[j].Prefix) })
	return r
}

// Lookup returns the providers for an E.164 number, nil if no route matches.
func (r *Routes) Lookup(number string) []string {
	for _, rt := range r.list {
		if strings.HasPrefix(number, rt.Prefix) {
			return rt.Providers
		}
	}
	return nil
}

// All returns every provider named by any route, in route order, once.
func (r *Routes) All() []string {
	var out []string
	seen := map[string]bool{}
	for _, rt := range r.list {
		for _, p := range rt.Providers {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// ByName returns the account called name, or nil.
func (a *Accounts) ByName(name string) *Account { return a.names[name] }

// All returns the accounts in configuration order.
func (a *Accounts) All() []*Account { return a.order }
