// Package packaging holds what the Debian package installs besides the
// binary and the unit (nfpm.yaml, the maintainer scripts, the conffile);
// its tests keep the conffile in step with config.example.toml.
package packaging

import (
	"bytes"
	"flag"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/internal/daemon"
	"github.com/smsbridge/smsbridge/providers/console"
)

var update = flag.Bool("update", false, "rewrite smsbridge.toml from config.example.toml")

// packagedEdits turn the example, which is made for trying the bridge
// from a checkout, into the configuration a package installs: the store
// in the state directory, and no credential or secret anyone could read
// in this repository. Each edit must match exactly once, so that a change
// to the example that one of them no longer fits fails the test instead
// of shipping the example's development token.
var packagedEdits = []struct{ old, new string }{
	{"# Runnable as is: `go run ./cmd/smsbridge serve -config config.example.toml`\n",
		"# Installed by the smsbridge package as /etc/smsbridge/smsbridge.toml, a conffile: upgrades\n" +
			"# keep your edits. As installed it listens on loopback only, sends through the console\n" +
			"# provider (SMS are only logged) and has no API token, password or callback secret.\n" +
			"# After editing: smsbridge check-config -config /etc/smsbridge/smsbridge.toml\n" +
			"#                systemctl restart smsbridge\n"},
	{`path = "smsbridge.db"` + "\n", `path = "/var/lib/smsbridge/smsbridge.db"` + "\n"},
	{"# This one is the digest of \"dev-token-change-me\": curl -H 'Authorization: Bearer dev-token-change-me' …\n" +
		`api_token_sha256 = ["f01d2474fd375b4c5eb46064b550034167661b86322f1e1d3cb7645512a06607"]` + "\n",
		"api_token_sha256 = []\n"},
	{"log_text = true\n", "log_text = false\n"},
	{"# Replies from phones can be played with curl (see README): the callback URL's secret.\n" +
		`inbound_secret = "dev-callback-secret-change-me"` + "\n",
		"# The callback URLs' secret (see README \"Provider callback URLs\"); unset: no callbacks.\n" +
			`# inbound_secret = "at least 16 characters"` + "\n"},
}

func packagedConfig(t *testing.T, example []byte) []byte {
	t.Helper()
	out := example
	for _, e := range packagedEdits {
		if n := bytes.Count(out, []byte(e.old)); n != 1 {
			t.Fatalf("config.example.toml has %d copies of %q, want 1: update packagedEdits", n, e.old)
		}
		out = bytes.Replace(out, []byte(e.old), []byte(e.new), 1)
	}
	return out
}

// TestConfigFollowsTheExample: smsbridge.toml is config.example.toml with
// packagedEdits applied, so it documents every key the same way.
// `go test ./packaging -update` rewrites it after the example changed.
func TestConfigFollowsTheExample(t *testing.T) {
	example, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := packagedConfig(t, example)
	if *update {
		if err := os.WriteFile("smsbridge.toml", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("smsbridge.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("packaging/smsbridge.toml is not config.example.toml with packagedEdits: run go test ./packaging -update")
	}
}

// TestConfigIsSafeToInstall: the installed configuration loads without a
// problem or a warning, keeps its store in the state directory and
// cannot be used from another host or with a credential published here.
func TestConfigIsSafeToInstall(t *testing.T) {
	cfg, err := config.Load("smsbridge.toml", daemon.Kinds)
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Warnings(); len(w) > 0 {
		t.Errorf("warnings: %q", w)
	}
	if cfg.Store.Path != "/var/lib/smsbridge/smsbridge.db" || cfg.Store.URL != "" {
		t.Errorf("store %q %q, want SQLite in /var/lib/smsbridge (the unit's StateDirectory)", cfg.Store.Path, cfg.Store.URL.Value())
	}
	for key, addr := range map[string]string{"smtp.listen": cfg.SMTP.Listen, "http.listen": cfg.HTTP.Listen} {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Errorf("%s = %q, want a loopback address", key, addr)
		}
	}
	if cfg.SMTP.TLSListen != "" {
		t.Errorf("smtp.tls_listen = %q, want off", cfg.SMTP.TLSListen)
	}
	for _, a := range cfg.Accounts {
		if len(a.APITokenSHA256) > 0 || a.SMTPPasswordHash != "" {
			t.Errorf("account %s has a credential: %q %q", a.Name, a.APITokenSHA256, a.SMTPPasswordHash)
		}
		for _, n := range a.Networks {
			if _, ipnet, err := net.ParseCIDR(n); err != nil || !ipnet.IP.IsLoopback() {
				t.Errorf("account %s trusts %s, want loopback only", a.Name, n)
			}
		}
	}
	for _, n := range cfg.SMTP.AllowedNetworks {
		if _, ipnet, err := net.ParseCIDR(n); err != nil || !ipnet.IP.IsLoopback() {
			t.Errorf("smtp.allowed_networks has %s, want loopback only", n)
		}
	}
	for _, p := range cfg.Providers {
		if p.InboundSecret != "" {
			t.Errorf("provider %s has an inbound secret", p.Name)
		}
		if c, ok := p.Settings.(*console.Config); ok && c.LogText {
			t.Errorf("provider %s logs message text (personal data)", p.Name)
		}
		if p.Type != "console" {
			t.Errorf("provider %s is %s; an installed daemon sends nothing before it is configured", p.Name, p.Type)
		}
	}
	if strings.Contains(string(mustRead(t, "smsbridge.toml")), "change-me") {
		t.Error("smsbridge.toml still mentions a development secret")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
