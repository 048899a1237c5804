package bridge_test

import (
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
)

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in, region, want string
	}{
		{"+972-50-123-4567", "IL", "+972501234567"},
		{"0501234567", "IL", "+972501234567"},
		{"(050) 123 4567", "IL", "+972501234567"},
		{"00972501234567", "IL", "+972501234567"},
		{"050.123.4567", "IL", "+972501234567"},
		{"+1 713 456 7890", "IL", "+17134567890"},
		{"00989120000000", "US", "+989120000000"},
		{"09120000000", "IR", "+989120000000"},
		{"(713) 456-7890", "US", "+17134567890"},
		// Bare international digits: the national reading in the
		// region is not a valid number, the international one is.
		{"12812345678", "IL", "+12812345678"},
		{"1-281-234-5678", "IL", "+12812345678"},
		{"447911123456", "IL", "+447911123456"},
		{"989120000000", "IL", "+989120000000"},
		{"972501234567", "IL", "+972501234567"},
		// A national reading that is valid or the only possible one
		// stays national.
		{"12812345678", "US", "+12812345678"},
		{"2812345678", "US", "+12812345678"},
		{"501234567", "IL", "+972501234567"},
		{"5012345678", "IL", "+9725012345678"},
	} {
		got, err := bridge.ParseNumber(tc.in, tc.region)
		if err != nil || got != tc.want {
			t.Errorf("ParseNumber(%q, %s) = %q, %v; want %q", tc.in, tc.region, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "abc", "12", "+972", "050123456789012", "+972-50-123-456x", "050%123@x", "1-800-FLOWERS", "+0501234567"} {
		_, err := bridge.ParseNumber(in, "IL")
		if bridge.ReasonOf(err) != bridge.ReasonBadNumber {
			t.Errorf("ParseNumber(%q): err = %v, want bad_number", in, err)
		}
	}
}

func TestParseDestination(t *testing.T) {
	for in, want := range map[string]string{
		"phonebook-123":       "phonebook:123",
		"Phonebook-456-1-2-3": "phonebook:456:1,2,3",
		"0501234567":          "+972501234567",
	} {
		got, err := bridge.ParseDestination(in, "IL")
		if err != nil || got != want {
			t.Errorf("ParseDestination(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"phonebook-", "phonebook-12-", "phonebook-a1", "phonebook-1--2"} {
		if _, err := bridge.ParseDestination(in, "IL"); bridge.ReasonOf(err) != bridge.ReasonBadNumber {
			t.Errorf("ParseDestination(%q): err = %v, want bad_number", in, err)
		}
	}
	p, ok := bridge.ParsePhonebook("phonebook:456:1,2")
	if !ok || p.ID != "456" || strings.Join(p.NumberIDs, ",") != "1,2" {
		t.Errorf("ParsePhonebook = %+v, %v", p, ok)
	}
}

func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"+972-50-123-4567", "0501234567", "(050) 123 4567", "00972501234567", "phonebook-1-2", "+", "00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := bridge.ParseDestination(s, "IL")
		if err != nil {
			if bridge.ReasonOf(err) != bridge.ReasonBadNumber {
				t.Fatalf("error without bad_number reason: %v", err)
			}
			return
		}
		if strings.HasPrefix(got, "phonebook:") {
			if _, ok := bridge.ParsePhonebook(got); !ok {
				t.Fatalf("%q -> %q does not parse back", s, got)
			}
			return
		}
		if got[0] != '+' || strings.Trim(got[1:], "0123456789") != "" {
			t.Fatalf("%q -> %q is not E.164", s, got)
		}
		// E.164 is a fixed point.
		if again, err := bridge.ParseNumber(got, "IL"); err != nil || again != got {
			t.Fatalf("%q -> %q -> %q, %v", s, got, again, err)
		}
	})
}

func TestRoutesLongestPrefix(t *testing.T) {
	r := bridge.NewRoutes([]bridge.Route{
		{Prefix: "+", Providers: []string{"default"}},
		{Prefix: "+972", Providers: []string{"il"}},
		{Prefix: "+97250", Providers: []string{"il50", "il"}},
	})
	for num, want := range map[string]string{
		"+972501234567": "il50",
		"+972521234567": "il",
		"+17134567890":  "default",
	} {
		if got := r.Lookup(num); len(got) == 0 || got[0] != want {
			t.Errorf("Lookup(%s) = %v, want %s first", num, got, want)
		}
	}
	if got := bridge.NewRoutes([]bridge.Route{{Prefix: "+1", Providers: []string{"us"}}}).Lookup("+972501234567"); got != nil {
		t.Errorf("no route: got %v", got)
	}
}

func TestAccounts(t *testing.T) {
	a := bridge.NewAccounts([]bridge.Account{
		{Name: "ops", Emails: []string{"*@example.com"}},
		{Name: "ceo", Emails: []string{"Boss@Example.com"}},
	})
	for addr, want := range map[string]string{
		"alice@example.com": "ops",
		"boss@example.com":  "ceo",
		"ALICE@EXAMPLE.COM": "ops",
	} {
		acct, err := a.ByEmail(addr)
		if err != nil || acct.Name != want {
			t.Errorf("ByEmail(%s) = %v, %v; want %s", addr, acct, err, want)
		}
	}
	for _, addr := range []string{"", "x@example.org", "x@sub.example.com", "example.com"} {
		if _, err := a.ByEmail(addr); bridge.ReasonOf(err) != bridge.ReasonUnknownAccount {
			t.Errorf("ByEmail(%q): err = %v, want unknown_account", addr, err)
		}
	}
}
