package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/config"
)

func TestAccountNetworks(t *testing.T) {
	good := strings.Replace(minimal, `sender_ids = ["Ops"]`, `sender_ids = ["Ops"]
networks = ["192.0.2.0/24", "2001:db8::/32"]
[[accounts]]
name = "nobody"
emails = ["x@example.org"]
networks = []`, 1)
	good = strings.Replace(good, `domains = ["sms.example.com"]`, `domains = ["sms.example.com"]
allowed_networks = []
max_session_duration = "2m"
max_commands = 50
auth_failures_per_client = 3
auth_failures_per_account = 4`, 1)
	c, err := config.Parse(good, kinds)
	if err != nil {
		t.Fatal(err)
	}
	// An empty list is kept apart from an unset one: it trusts nobody.
	if c.SMTP.AllowedNetworks == nil || len(c.SMTP.AllowedNetworks) != 0 ||
		!slices.Equal(c.Accounts[0].Networks, []string{"192.0.2.0/24", "2001:db8::/32"}) ||
		c.Accounts[1].Networks == nil || len(c.Accounts[1].Networks) != 0 {
		t.Errorf("networks: smtp %#v, accounts %#v, %#v", c.SMTP.AllowedNetworks, c.Accounts[0].Networks, c.Accounts[1].Networks)
	}
	if s := c.SMTP; s.MaxSessionDuration.String() != "2m0s" || s.MaxCommands != 50 || s.AuthFailuresPerClient != 3 || s.AuthFailuresPerAccount != 4 {
		t.Errorf("decoded %+v", s)
	}

	bad := strings.Replace(minimal, `sender_ids = ["Ops"]`, `sender_ids = ["Ops"]
networks = ["10.0.0.0/8", "10.1.2.3/8", "host.example"]`, 1)
	bad = strings.Replace(bad, `domains = ["sms.example.com"]`, `domains = ["sms.example.com"]
max_session_duration = "-1s"
max_commands = -1
auth_failures_per_client = -1
auth_failures_per_account = -1`, 1)
	_, err = config.Parse(bad, kinds)
	var probs config.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v, want config.Problems", err)
	}
	for _, w := range []string{
		`accounts[0].networks[1]: "10.1.2.3/8" has bits set past the prefix length: write 10.0.0.0/8, or /32`,
		`accounts[0].networks[2]: "host.example" is not a CIDR`,
		"smtp.max_session_duration: must be positive",
		"smtp.max_commands: must be positive",
		"smtp.auth_failures_per_client: must be positive",
		"smtp.auth_failures_per_account: must be positive",
	} {
		if !slices.ContainsFunc(probs, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("missing problem %q in:\n%s", w, strings.Join(probs, "\n"))
		}
	}
	if len(probs) != 6 {
		t.Errorf("%d problems, want 6:\n%s", len(probs), strings.Join(probs, "\n"))
	}
}

// A listener off loopback that trusts unauthenticated mail from
// everywhere is warned about, key by key; nothing else is.
func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, smtp, account string
		want                []string
	}{
		{"defaults", "", "", nil},
		{"exposed, loopback trusted", `listen = "0.0.0.0:25"`, "", nil},
		{"everywhere, on loopback", `allowed_networks = ["0.0.0.0/0"]`, `networks = ["::/0"]`, nil},
		{"exposed, everywhere", "listen = \"0.0.0.0:25\"\nallowed_networks = [\"10.0.0.0/8\", \"0.0.0.0/0\"]", `networks = ["::/0"]`,
			[]string{"smtp.allowed_networks[1]: 0.0.0.0/0 trusts unauthenticated mail from everywhere, and smtp.listen 0.0.0.0:25 is not on loopback",
				"accounts[0].networks[0]: ::/0 trusts unauthenticated mail from everywhere, and smtp.listen 0.0.0.0:25 is not on loopback"}},
		{"implicit TLS exposed", "tls_cert = \"c\"\ntls_key = \"k\"\ntls_listen = \"[2001:db8::1]:465\"", `networks = ["0.0.0.0/0"]`,
			[]string{"accounts[0].networks[0]: 0.0.0.0/0 trusts unauthenticated mail from everywhere, and smtp.tls_listen [2001:db8::1]:465 is not on loopback"}},
		{"exposed, everywhere, but AUTH required", "listen = \":25\"\nrequire_auth = true\ntls_cert = \"c\"\ntls_key = \"k\"", `networks = ["0.0.0.0/0"]`, nil},
	} {
		text := strings.Replace(minimal, `domains = ["sms.example.com"]`, "domains = [\"sms.example.com\"]\n"+tc.smtp, 1)
		text = strings.Replace(text, `sender_ids = ["Ops"]`, "sender_ids = [\"Ops\"]\n"+tc.account, 1)
		c, err := config.Parse(text, kinds)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := c.Warnings()
		if len(got) != len(tc.want) {
			t.Errorf("%s: warnings %q, want %d", tc.name, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(got[i], w) {
				t.Errorf("%s: warning %q, want it to start %q", tc.name, got[i], w)
			}
		}
	}
}
