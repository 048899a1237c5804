package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/mindcrm/mindcrmtest"
	"github.com/smsbridge/smsbridge/providers/providertest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// The credentials the fakes expect. Long and distinct, so that finding
// one in the output can only mean it leaked.
const (
	liveToken     = "edge-token-7d1c9a0b5e"
	liveVoipPass  = "voip-password-3f8e2a61"
	liveSmartPass = "smarthost-password-c4b7"
)

// live is a configuration for check-config -live, every value one a test
// may break.
type live struct {
	store, smtp, http        string
	edgeURL, edgeToken       string
	voipURL, voipPass        string
	crmURL                   string
	smarthost, smarthostPass string
}

func (l live) toml() string {
	return fmt.Sprintf(`
[store]
path = %q
[smtp]
listen = %q
domains = ["sms.example.com"]
[http]
listen = %q
[replies]
smarthost = %q
username = "bridge"
password = %q
[[accounts]]
name = "ops"
emails = ["*@example.com"]
[[providers]]
name = "edge"
type = "ippanel"
base_url = %q
token = %q
numbers = ["+983000505"]
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "voip-key"
api_password = %q
[[providers]]
name = "crm"
type = "mindcrm"
base_url = %q
[[providers]]
name = "console"
type = "console"
[[routes]]
prefix = "+"
provider = "console"
`, l.store, l.smtp, l.http, l.smarthost, l.smarthostPass, l.edgeURL, l.edgeToken, l.voipURL, l.voipPass, l.crmURL)
}

// liveFakes are the provider fakes and the smarthost a good configuration
// points at.
type liveFakes struct {
	edge      *ippaneltest.Server
	voip      *voipcomtest.Server
	crm       *mindcrmtest.Server
	smarthost *mailtest.Server
	certFile  string // the smarthost's certificate, trusted through SSL_CERT_FILE
}

func startLiveFakes(t *testing.T) (liveFakes, live) {
	f := liveFakes{
		edge:      ippaneltest.NewServer(t, liveToken, "+983000505"),
		voip:      voipcomtest.NewServer(t, "voip-key", liveVoipPass),
		crm:       mindcrmtest.NewServer(t),
		smarthost: mailtest.Start(t, mailtest.Options{STARTTLS: true, Username: "bridge", Password: liveSmartPass}),
		certFile:  filepath.Join(t.TempDir(), "smarthost.pem"),
	}
	if err := os.WriteFile(f.certFile, f.smarthost.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(t.TempDir(), "smsbridge.db")
	s, err := sqlite.Open(context.Background(), store, slog.New(slog.DiscardHandler)) // as serve left it
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return f, live{
		store: store, smtp: freePort(t), http: freePort(t),
		edgeURL: f.edge.URL, edgeToken: liveToken,
		voipURL: f.voip.URL, voipPass: liveVoipPass,
		crmURL:    f.crm.URL,
		smarthost: f.smarthost.Addr(), smarthostPass: liveSmartPass,
	}
}

// checkLive runs `smsbridge check-config -live` on cfg in a process of its
// own (the test binary, see TestMain), which trusts only certFile's
// certificate, and returns its exit status and output.
func checkLive(t *testing.T, cfg live, certFile string, args ...string) (code int, stdout string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "smsbridge.toml"), []byte(cfg.toml()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := daemonCmd(append([]string{"check-config", "-config", "smsbridge.toml", "-live"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+certFile)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	for _, secret := range []string{liveToken, liveVoipPass, liveSmartPass, cfg.edgeToken, cfg.voipPass, cfg.smarthostPass} {
		if strings.Contains(out.String()+errb.String(), secret) {
			t.Errorf("the output shows a secret:\n%s%s", out.String(), errb.String())
		}
	}
	t.Logf("$ smsbridge check-config -config smsbridge.toml %s; echo \"exit status $?\"\n%s%sexit status %d",
		strings.Join(append([]string{"-live"}, args...), " "), out.String(), errb.String(), code)
	return code, out.String()
}

// wantLines matches the output line by line, after the first (the file's
// syntax check), against regular expressions.
func wantLines(t *testing.T, stdout string, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != len(want)+1 || lines[0] != "smsbridge.toml: ok" {
		t.Fatalf("output:\n%s\nwant the syntax line and %d checks", stdout, len(want))
	}
	for i, w := range want {
		if !regexp.MustCompile("^" + w + "$").MatchString(lines[i+1]) {
			t.Errorf("line %d:\n  %s\nwant\n  %s", i+2, lines[i+1], w)
		}
	}
}

func TestCheckConfigLive(t *testing.T) {
	t.Run("good", func(t *testing.T) {
		f, cfg := startLiveFakes(t)
		code, out := checkLive(t, cfg, f.certFile)
		if code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		q := regexp.QuoteMeta
		wantLines(t, out,
			`store sqlite `+q(cfg.store)+`: ok \(schema version \d+, current\)`,
			`provider edge: ok \(credit 1234\.5\)`,
			`provider voip: ok \(api credentials accepted by sms/summary, 0 conversations on its first page\)`,
			`provider crm: ok \(reachable; MindCRM has no credentials to prove: the send API answered a call without parameters with stat_code 1 \(missing mandatory parameter\)\)`,
			`provider console: skip \(type console calls no API: nothing to check\)`,
			`smarthost `+q(cfg.smarthost)+`: ok \(STARTTLS, TLS 1\.3, certificate valid until \d{4}-\d\d-\d\d, AUTH PLAIN as bridge accepted\)`,
			`listener smtp `+q(cfg.smtp)+`: ok \(free: serve can listen there\)`,
			`listener http `+q(cfg.http)+`: ok \(free: serve can listen there\)`,
		)
		// Each check made its one harmless call, and nothing was sent.
		if n, sent := f.edge.CreditRequests(), len(f.edge.Requests()); n != 1 || sent != 0 {
			t.Errorf("IPPanel: %d credit reads, %d sends; want 1 and 0", n, sent)
		}
		if n, sent := f.voip.SummaryRequests(), len(f.voip.Requests()); n != 1 || sent != 0 {
			t.Errorf("voip-communications: %d summary reads, %d sends; want 1 and 0", n, sent)
		}
		if n, sent := len(f.crm.Rejected()), len(f.crm.Requests()); n != 1 || sent != 0 {
			t.Errorf("MindCRM: %d refused calls, %d sends; want 1 and 0", n, sent)
		}
		if logins, sent := f.smarthost.Logins(), len(f.smarthost.Messages()); len(logins) != 1 || !logins[0].TLS || sent != 0 {
			t.Errorf("smarthost: logins %v, %d mails; want one over TLS and none", logins, sent)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		f, cfg := startLiveFakes(t)
		notCRM := httptest.NewServer(http.NotFoundHandler())
		defer notCRM.Close()
		cfg.edgeToken, cfg.voipPass, cfg.smarthostPass = "not-"+liveToken, "not-"+liveVoipPass, "not-"+liveSmartPass
		cfg.crmURL = notCRM.URL
		cfg.store = filepath.Join(t.TempDir(), "gone", "smsbridge.db")
		cfg.smtp = "192.0.2.1:2525" // TEST-NET-1: on no host
		code, out := checkLive(t, cfg, f.certFile)
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		q := regexp.QuoteMeta
		gone := filepath.Dir(cfg.store)
		wantLines(t, out,
			`store sqlite `+q(cfg.store)+`: FAIL \(directory `+q(gone)+`: does not exist\)`,
			`provider edge: FAIL \(HTTP 401: invalid or expired token \(message_code 400-1\)\)`,
			`provider voip: FAIL \(invalid api credentials \(HTTP 401\): check api_key/api_password\)`,
			`provider crm: FAIL \(HTTP 404: .*\)`,
			`provider console: skip \(.*\)`,
			`smarthost `+q(cfg.smarthost)+`: FAIL \(AUTH PLAIN as bridge: 535 5\.7\.8 .*\)`,
			`listener smtp 192\.0\.2\.1:2525: FAIL \(listen tcp 192\.0\.2\.1:2525: bind: cannot assign requested address\)`,
			`listener http `+q(cfg.http)+`: ok \(free: serve can listen there\)`,
		)
		if len(f.smarthost.Logins()) != 0 || f.edge.CreditRequests() != 0 || f.voip.SummaryRequests() != 0 {
			t.Error("a fake accepted wrong credentials")
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		f, cfg := startLiveFakes(t)
		f.smarthost.Down()
		cfg.edgeURL = "http://" + freePort(t) + "/v1"              // nobody listens there
		f.voip.Faults.Push(providertest.Fault{Delay: time.Minute}) // answers too late
		held, err := net.Listen("tcp", cfg.http)                   // as a running daemon would
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		code, out := checkLive(t, cfg, f.certFile, "-timeout", "500ms")
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		q := regexp.QuoteMeta
		wantLines(t, out,
			`store sqlite .*: ok \(schema version \d+, current\)`,
			`provider edge: FAIL \(network error: dial tcp 127\.0\.0\.1:\d+: connect: connection refused\)`,
			`provider voip: FAIL \(no answer within 500ms: timeout\)`,
			`provider crm: ok \(.*\)`,
			`provider console: skip \(.*\)`,
			`smarthost `+q(cfg.smarthost)+`: FAIL \(connecting: dial tcp `+q(cfg.smarthost)+`: connect: connection refused\)`,
			`listener smtp `+q(cfg.smtp)+`: ok \(free: serve can listen there\)`,
			`listener http `+q(cfg.http)+`: skip \(in use, by a running smsbridge or another program\)`,
		)
	})
}

func TestCheckConfigLiveFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "-config", "../../config.example.toml", "-live", "-timeout", "0s"}, &out, &errb); code != 2 {
		t.Errorf("-timeout 0s: exit status %d, want 2", code)
	}
}
