package bridge

import (
	"net/netip"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Every failed login costs one bcrypt comparison of the highest
// configured cost, whether the user is unknown, has no password or gave
// a wrong one: counted through the comparison hook, not by the clock.
func TestAuthenticateCost(t *testing.T) {
	hash := func(cost int) string {
		h, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), cost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	// Two costs that differ are all the test needs; low ones keep it
	// fast under -race, where a cost-11 comparison takes seconds.
	high := bcrypt.MinCost + 2
	accts := NewAccounts([]Account{
		{Name: "strong", PasswordHash: hash(high)},
		{Name: "weak", PasswordHash: hash(bcrypt.MinCost)},
		{Name: "nopass"},
	})
	var costs []int
	orig := compareHash
	compareHash = func(h, pw []byte) error {
		c, err := bcrypt.Cost(h)
		if err != nil {
			t.Errorf("compared against a non-bcrypt hash %q", h)
		}
		costs = append(costs, c)
		return orig(h, pw)
	}
	t.Cleanup(func() { compareHash = orig })

	for _, tc := range []struct {
		user, pass string
		want       int // the cost of the one comparison
		ok         bool
	}{
		{"nobody", "correct horse battery", high, false},
		{"nopass", "", high, false},
		{"nopass", "correct horse battery", high, false},
		{"strong", "wrong", high, false},
		{"strong", "correct horse battery", high, true},
		{"weak", "correct horse battery", bcrypt.MinCost, true},
	} {
		costs = nil
		acct, err := accts.Authenticate(tc.user, tc.pass)
		if (err == nil) != tc.ok || (acct != nil) != tc.ok {
			t.Errorf("%s/%q: %v, %v; want ok=%v", tc.user, tc.pass, acct, err, tc.ok)
		}
		if len(costs) != 1 || costs[0] != tc.want {
			t.Errorf("%s/%q: bcrypt comparisons at costs %v, want one at %d", tc.user, tc.pass, costs, tc.want)
		}
	}

	// Cheap hashes make a cheap dummy: the dummy's cost follows the
	// configuration, not bcrypt's default.
	costs = nil
	cheap := NewAccounts([]Account{{Name: "weak", PasswordHash: hash(bcrypt.MinCost)}})
	if _, err := cheap.Authenticate("nobody", "x"); err == nil || len(costs) != 1 || costs[0] != bcrypt.MinCost {
		t.Errorf("unknown user with only cost-%d hashes: %v, costs %v", bcrypt.MinCost, err, costs)
	}
}

func TestAccountTrusts(t *testing.T) {
	def := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	own := &Account{Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	none := &Account{Networks: []netip.Prefix{}}
	dflt := &Account{}
	for _, tc := range []struct {
		a    *Account
		addr string
		want bool
	}{
		{own, "192.0.2.9", true},
		{own, "127.0.0.1", false}, // its own list replaces the default
		{dflt, "127.0.0.1", true},
		{dflt, "127.0.0.2", false},
		{none, "127.0.0.1", false},
	} {
		if got := tc.a.Trusts(netip.MustParseAddr(tc.addr), def); got != tc.want {
			t.Errorf("%v trusts %s = %v, want %v", tc.a.Networks, tc.addr, got, tc.want)
		}
	}
}
