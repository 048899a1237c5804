package smtpin

import (
	"net/netip"
	"strings"
	"testing"
)

func TestClientKey(t *testing.T) {
	key := func(s string) netip.Prefix { return clientKey(netip.MustParseAddr(s)) }
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		// One IPv6 host usually owns its whole /64.
		{"2001:db8::1", "2001:db8::ffff:1", true},
		{"2001:db8::1", "2001:db8:0:1::1", false},
	} {
		if got := key(tc.a) == key(tc.b); got != tc.same {
			t.Errorf("clientKey(%s) == clientKey(%s) is %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// Whatever the address, localPart hands over only a local part free of
// routing syntax, taken from an address whose domain is exactly ours.
func FuzzLocalPart(f *testing.F) {
	s := &Server{cfg: Config{Domains: []string{"sms.example.com", "Link.Example"}}, domains: map[string]bool{}}
	for _, d := range s.cfg.Domains {
		s.domains[asciiLower(d)] = true
	}
	for _, seed := range []string{
		"0501234567@sms.example.com", "0501234567@SMS.EXAMPLE.COM", "0501234567@link.example",
		"user%other@sms.example.com", "evil.com!0501234567@sms.example.com",
		"0501234567@evil.com@sms.example.com", "0501234567@sms.example.com@evil.com",
		"0501234567@sms.example.com.", "0501234567@[127.0.0.1]", "0501234567@L\u0130N\u212A.example",
		"@sms.example.com", "", "@", "a@",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		local, err := s.localPart(addr)
		if err != nil {
			if local != "" {
				t.Errorf("localPart(%q) = %q and %v", addr, local, err)
			}
			return
		}
		domain, ok := strings.CutPrefix(addr, local+"@")
		if !ok || local == "" || strings.ContainsAny(local, "@%!:") {
			t.Fatalf("localPart(%q) = %q", addr, local)
		}
		if !strings.EqualFold(domain, "sms.example.com") && !strings.EqualFold(domain, "link.example") {
			t.Fatalf("localPart(%q) accepted domain %q", addr, domain)
		}
		for _, r := range domain {
			if r >= 0x80 {
				t.Fatalf("localPart(%q) accepted a non-ASCII domain", addr)
			}
		}
	})
}
