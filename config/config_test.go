package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/config"
)

// fakeSettings is a provider type's own keys, as a provider package has.
type fakeSettings struct {
	Token     config.Secret `toml:"token"`
	TokenFile string        `toml:"token_file"`
	Numbers   []string      `toml:"numbers"`
}

func (f *fakeSettings) Validate() error {
	var errs []error
	tok, err := config.ResolveSecret("token", f.Token, f.TokenFile)
	if err != nil {
		errs = append(errs, err)
	} else if tok == "" {
		errs = append(errs, errors.New("token: must be set"))
	}
	f.Token = tok
	if len(f.Numbers) == 0 {
		errs = append(errs, errors.New("numbers: at least one number is required"))
	}
	return errors.Join(errs...)
}

func kinds(typ string) (any, bool) {
	switch typ {
	case "console":
		return nil, true
	case "fake":
		return &fakeSettings{}, true
	}
	return nil, false
}

const minimal = `
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "ops"
emails = ["*@example.com"]
sender_ids = ["Ops"]
[[providers]]
name = "c"
type = "console"
[[routes]]
prefix = "+"
provider = "c"
`

func TestDefaults(t *testing.T) {
	c, err := config.Parse(minimal, kinds)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"store.path", c.Store.Path, "smsbridge.db"},
		{"smtp.listen", c.SMTP.Listen, "127.0.0.1:2525"},
		{"smtp.default_region", c.SMTP.DefaultRegion, "IL"},
		{"smtp.max_segments", c.SMTP.MaxSegments, 10},
		{"smtp.text", c.SMTP.Text, "body"},
		{"queue.retry_min", c.Queue.RetryMin, 30 * time.Second},
		{"queue.max_age", c.Queue.MaxAge, 24 * time.Hour},
		{"providers[0].concurrency", c.Providers[0].Concurrency, 0},
		{"providers[0].max_concurrency", c.Providers[0].MaxConcurrency, 64},
		{"http.max_connections", c.HTTP.MaxConnections, 256},
		{"http.max_header_bytes", c.HTTP.MaxHeaderBytes, 64 << 10},
		{"http.max_body_bytes", c.HTTP.MaxBodyBytes, int64(1 << 20)},
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout, 10 * time.Second},
		{"http.read_timeout", c.HTTP.ReadTimeout, 30 * time.Second},
		{"http.write_timeout", c.HTTP.WriteTimeout, 30 * time.Second},
		{"http.idle_timeout", c.HTTP.IdleTimeout, 2 * time.Minute},
		{"smtp.max_header_fields", c.SMTP.MaxHeaderFields, 1000},
		{"smtp.max_header_bytes", c.SMTP.MaxHeaderBytes, 65536},
		{"limits.schedule_horizon", c.Limits.ScheduleHorizon, 365 * 24 * time.Hour},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// TestSharedReplyNumber: two accounts may not share a number phones can
// answer, however it is written (the problem names both accounts and the
// number); alphanumeric sender IDs may be shared, and one account may list
// its number twice.
func TestSharedReplyNumber(t *testing.T) {
	accounts := func(a, b string) string {
		return strings.Replace(minimal, `sender_ids = ["Ops"]`, `sender_ids = [`+a+`]`, 1) + `
[[accounts]]
name = "shop"
emails = ["*@shop.example"]
sender_ids = [` + b + `]
`
	}
	for _, tc := range []struct{ a, b string }{
		{`"+972501234567"`, `"+972501234567"`},
		{`"Ops", "+972 50-123-4567"`, `"0501234567"`},
		{`"3000505"`, `"Shop", "3000505"`},
		{`"972501234567"`, `"+972501234567"`},
	} {
		_, err := config.Parse(accounts(tc.a, tc.b), kinds)
		var probs config.Problems
		if !errors.As(err, &probs) {
			t.Errorf("%s / %s: err = %v, want a problem", tc.a, tc.b, err)
			continue
		}
		if len(probs) != 1 || !strings.HasPrefix(probs[0], "accounts[1].sender_ids[") ||
			!strings.Contains(probs[0], `account "ops"`) || !strings.Contains(probs[0], `"shop"`) {
			t.Errorf("%s / %s: problems %q; want one naming accounts[1]'s sender ID and both accounts", tc.a, tc.b, probs)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{`"Ops", "Alerts"`, `"Alerts"`},                         // one-way: shared
		{`"+972501234567", "0501234567"`, `"+972501234568"`},    // the same account twice
		{`"+972501234567"`, `"Shop", "+17134567890", "Info.1"`}, // nothing shared
	} {
		if _, err := config.Parse(accounts(tc.a, tc.b), kinds); err != nil {
			t.Errorf("%s / %s: %v", tc.a, tc.b, err)
		}
	}
}

func TestDurationsAndProviderSettings(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := minimal + fmt.Sprintf(`
[queue]
retry_min = "5s"
retry_max = "2m"
[[providers]]
name = "f"
type = "fake"
base_url = "https://api.example.com/v1"
token_file = %q
numbers = ["+983000505"]
`, tokFile)
	c, err := config.Parse(text, kinds)
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue.RetryMin != 5*time.Second || c.Queue.RetryMax != 2*time.Minute {
		t.Errorf("durations = %v, %v", c.Queue.RetryMin, c.Queue.RetryMax)
	}
	f, ok := c.Providers[1].Settings.(*fakeSettings)
	if !ok {
		t.Fatalf("settings = %T", c.Providers[1].Settings)
	}
	if f.Token.Value() != "s3cret-token" || c.Providers[1].BaseURL != "https://api.example.com/v1" {
		t.Errorf("settings = %+v, base_url %q", f, c.Providers[1].BaseURL)
	}
	if s := fmt.Sprintf("%v %+v %#v", f.Token, f, f); strings.Contains(s, "s3cret") {
		t.Errorf("secret printed: %s", s)
	}
}

// Every problem is reported at once, each with its key path.
func TestProblemsNameTheirKeys(t *testing.T) {
	text := `
[store]
pth = "x.db"
retention = "90m"
[smtp]
domains = []
default_region = "XX"
text = "html"
[queue]
retry_min = "2h"
retry_max = "1h"
[[accounts]]
name = "a"
emails = ["not-an-address"]
reply_to = ["desk@partner.example", "x*@partner.example"]
sender_ids = ["bad sender id that is way too long", "Shop", "+972500000001"]
pool = ["+972500000002", "Shop", "+972500000001", "+972500000001"]
[replies]
ambiguous = "first"
[[providers]]
name = "f"
type = "fake"
base_url = "ftp://x"
colour = "blue"
[[providers]]
name = "g"
type = "nosuch"
[[routes]]
prefix = "972"
provider = "missing"
fallback = ["f", "nope"]
`
	_, err := config.Parse(text, kinds)
	var probs config.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v, want config.Problems", err)
	}
	want := []string{
		"store.pth: unknown key",
		"store.retention: must be at least 24h",
		"providers[0].colour: unknown key",
		"smtp.domains: at least one domain is required",
		"smtp.default_region:",
		"smtp.text:",
		"queue.retry_min: must not exceed",
		"accounts[0].emails[0]:",
		"accounts[0].reply_to[1]:",
		"accounts[0].sender_ids[0]:",
		"accounts[0].pool[0]: \"+972500000002\" is not one of the account's sender_ids",
		"accounts[0].pool[1]: \"Shop\" is not a phone number",
		"accounts[0].pool[3]: \"+972500000001\" is listed twice",
		"replies.ambiguous: must be last or catch_all, not \"first\"",
		"providers[0].base_url: must be an absolute https or http URL",
		"providers[0].token: must be set",
		"providers[0].numbers: at least one number is required",
		"providers[1].type: unknown provider type \"nosuch\"",
		"routes[0].prefix:",
		"routes[0].provider: unknown provider \"missing\"",
		"routes[0].fallback[1]: unknown provider \"nope\"",
	}
	for _, w := range want {
		if !slices.ContainsFunc(probs, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("missing problem %q in:\n%s", w, strings.Join(probs, "\n"))
		}
	}
}

// Every TOML mistake is reported at once with its full key path: values
// of the wrong type (decoding used to stop at the first), durations
// without a unit (15 nanoseconds to the TOML library), unknown keys with
// their array index, a misspelt section as one problem, ports no listener
// can use, a negative provider timeout.
func TestTOMLMistakesAllReported(t *testing.T) {
	text := `
[smpt]
listen = "127.0.0.1:25"
hostname = "x"
domains = ["a"]
[smtp]
domains = ["sms.example.com"]
max_recipients = "100"
listen = "127.0.0.1:99999"
require_auth = "yes"
[http]
listen = ":http-x"
[queue]
shutdown_grace = 15
retry_max = "1 hour"
send_timeout = 0
[[accounts]]
name = "ops"
emails = ["*@example.com"]
sender_ids = ["Ops"]
[[accounts]]
name = "b"
emails = ["b@example.com", 7]
colour = "blue"
messages_per_minute = 1.5
[[providers]]
name = "c"
type = "console"
timeout = "-1s"
[[providers]]
name = "f"
type = "fake"
token = "t"
numbers = ["+983000505"]
shade = "x"
[[routes]]
prefix = "+"
provider = "c"
[[ruotes]]
prefix = "+1"
`
	_, err := config.Parse(text, kinds)
	var probs config.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v, want config.Problems", err)
	}
	want := []string{
		"[smpt]: unknown section",
		"[[ruotes]]: unknown section",
		"smtp.max_recipients: must be an integer, not a string",
		"smtp.require_auth: must be true or false, not a string",
		`queue.shutdown_grace: 15 has no unit: write a string such as "15s" for 15 seconds`,
		`queue.retry_max: "1 hour" is not a duration`,
		"accounts[1].emails[1]: must be a string, not an integer",
		"accounts[1].colour: unknown key",
		"accounts[1].messages_per_minute: must be an integer, not a float",
		"providers[1].shade: unknown key",
		`smtp.listen: port "99999" must be a number from 0 to 65535`,
		`http.listen: port "http-x" must be a number from 0 to 65535`,
		"providers[0].timeout: must be positive",
	}
	for _, w := range want {
		if !slices.ContainsFunc(probs, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("missing problem %q in:\n%s", w, strings.Join(probs, "\n"))
		}
	}
	if len(probs) != len(want) {
		t.Errorf("%d problems, want %d (one per mistake):\n%s", len(probs), len(want), strings.Join(probs, "\n"))
	}
}

func TestSecretFileConflicts(t *testing.T) {
	_, err := config.ResolveSecret("token", "a", "/some/file")
	if err == nil || !strings.HasPrefix(err.Error(), "token and token_file") {
		t.Errorf("both set: err = %v", err)
	}
	_, err = config.ResolveSecret("token", "", filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.HasPrefix(err.Error(), "token_file:") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := config.Parse("[smtp\n", kinds)
	if err == nil {
		t.Fatal("want a syntax error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(minimal)
	f.Add("[smtp]\ndomains=[\"a\"]\n[[routes]]\nprefix=\"+1\"\n")
	f.Add("[[providers]]\nname=1\n")
	f.Add("[queue]\nshutdown_grace=15\n[smpt]\nx=1\n[[accounts]]\nemails=[1,{a=2}]\n")
	f.Add("providers=[1,{type=\"fake\",numbers=\"x\"}]\n[replies]\nbounces=1\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := config.Parse(text, kinds)
		if err == nil && (len(c.SMTP.Domains) == 0 || len(c.Routes) == 0 || len(c.Accounts) == 0) {
			t.Fatalf("accepted an incomplete config: %+v", c)
		}
	})
}

func TestAuthSettings(t *testing.T) {
	text := strings.Replace(minimal, `domains = ["sms.example.com"]`, "domains = [\"sms.example.com\"]\nrequire_auth = true", 1)
	text = strings.Replace(text, `sender_ids = ["Ops"]`, "sender_ids = [\"Ops\"]\nsmtp_password_hash = \"hunter2\"\napi_token_sha256 = \"abc\"", 1)
	_, err := config.Parse(text, kinds)
	var probs config.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{"smtp.require_auth: AUTH is offered only over TLS", "accounts[0].smtp_password_hash: not a bcrypt hash", "accounts[0].api_token_sha256[0]: must be 64 hex digits"} {
		if !slices.ContainsFunc(probs, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("missing %q in %v", w, probs)
		}
	}
}

func TestSMTPHardening(t *testing.T) {
	c, err := config.Parse(minimal, kinds)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.MaxConnectionsPerIP != 50 || c.SMTP.MaxBadCommands != 10 || c.SMTP.TLSListen != "" ||
		!slices.Equal(c.SMTP.AllowedNetworks, []string{"127.0.0.1/32", "::1/128"}) {
		t.Errorf("defaults: per IP %d, bad commands %d, tls_listen %q, networks %v; want 50 (above Postfix's 20 sessions), 10, \"\", loopback",
			c.SMTP.MaxConnectionsPerIP, c.SMTP.MaxBadCommands, c.SMTP.TLSListen, c.SMTP.AllowedNetworks)
	}
	if c.SMTP.MaxSessionDuration != 10*time.Minute || c.SMTP.MaxCommands != 1000 ||
		c.SMTP.AuthFailuresPerClient != 10 || c.SMTP.AuthFailuresPerAccount != 30 || c.Accounts[0].Networks != nil {
		t.Errorf("defaults: session %s, commands %d, auth failures %d/%d, account networks %v; want 10m, 1000, 10/30, unset",
			c.SMTP.MaxSessionDuration, c.SMTP.MaxCommands, c.SMTP.AuthFailuresPerClient, c.SMTP.AuthFailuresPerAccount, c.Accounts[0].Networks)
	}

	good := strings.Replace(minimal, `domains = ["sms.example.com"]`, `domains = ["sms.example.com"]
tls_cert = "cert.pem"
tls_key = "key.pem"
tls_listen = "0.0.0.0:465"
max_connections_per_ip = 5
max_bad_commands = 3
allowed_networks = ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]`, 1)
	c, err = config.Parse(good, kinds)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.TLSListen != "0.0.0.0:465" || c.SMTP.MaxConnectionsPerIP != 5 || c.SMTP.MaxBadCommands != 3 || len(c.SMTP.AllowedNetworks) != 3 {
		t.Errorf("decoded %+v", c.SMTP)
	}

	bad := strings.Replace(minimal, `domains = ["sms.example.com"]`, `domains = ["sms.example.com"]
tls_listen = "465"
max_connections_per_ip = -1
max_bad_commands = -2
allowed_networks = ["10.0.0.0/8", "10.1.2.3/8", "192.0.2.1", "example.com/24", "10.0.0.0/33"]`, 1)
	_, err = config.Parse(bad, kinds)
	var probs config.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v, want config.Problems", err)
	}
	want := []string{
		"smtp.tls_listen: must be host:port",
		"smtp.tls_listen: implicit TLS needs smtp.tls_cert and smtp.tls_key",
		"smtp.max_connections_per_ip: must be positive",
		"smtp.max_bad_commands: must be positive",
		`smtp.allowed_networks[1]: "10.1.2.3/8" has bits set past the prefix length: write 10.0.0.0/8, or /32`,
		`smtp.allowed_networks[2]: "192.0.2.1" is not a CIDR`,
		`smtp.allowed_networks[3]: "example.com/24" is not a CIDR`,
		`smtp.allowed_networks[4]: "10.0.0.0/33" is not a CIDR`,
	}
	for _, w := range want {
		if !slices.ContainsFunc(probs, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("missing problem %q in:\n%s", w, strings.Join(probs, "\n"))
		}
	}
	if slices.ContainsFunc(probs, func(p string) bool { return strings.HasPrefix(p, "smtp.allowed_networks[0]") }) {
		t.Errorf("a good CIDR was refused: %v", probs)
	}
}

func TestTwoWaySettings(t *testing.T) {
	c, err := config.Parse(minimal, kinds)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Replies
	if r.FromDomain != "sms.example.com" || r.ReplyWindow != 7*24*time.Hour || r.TLS != "starttls" ||
		r.MaxAge != 5*24*time.Hour || r.Subject != "SMS from {phone}" || r.SendBounces() {
		t.Errorf("defaults: %+v (bounces %v); want from_domain of smtp.domains[0], 168h window, starttls, 120h, no bounces without a smarthost", r, r.SendBounces())
	}

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("callback-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := minimal + fmt.Sprintf(`
[replies]
smarthost = "mail.example.com:587"
username = "bridge"
password = "pw"
catch_all = "sms-inbox@example.com"
reply_window = "48h"
[[providers]]
name = "v"
type = "console"
inbound_secret_file = %q
inbound_fields = { from = ["caller"], text = ["sms_body", "body2"] }
[[providers]]
name = "ipp"
type = "console"
`, secretFile)
	good = strings.Replace(good, "name = \"ipp\"\ntype = \"console\"", "name = \"ipp\"\ntype = \"ippanel\"", 1)
	ippKinds := func(typ string) (any, bool) {
		if typ == "ippanel" {
			return nil, true
		}
		return kinds(typ)
	}
	good += "poll_interval = \"30s\"\n"
	c, err = config.Parse(good, ippKinds)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Replies.SendBounces() || c.Replies.Password.Value() != "pw" || c.Replies.ReplyWindow != 48*time.Hour {
		t.Errorf("replies: %+v", c.Replies)
	}
	if c.Providers[1].InboundSecret.Value() != "callback-secret-0123456789" || c.Providers[1].InboundFields["text"][1] != "body2" {
		t.Errorf("provider v: %+v", c.Providers[1])
	}
	if c.Providers[2].PollInterval != 30*time.Second {
		t.Errorf("poll_interval = %v", c.Providers[2].PollInterval)
	}

	bad := minimal + `
[replies]
smarthost = "mail.example.com"
tls = "maybe"
username = "bridge"
catch_all = "Ops <ops@example.com>"
subject = "two\nlines"
reply_window = "-1h"
[[providers]]
name = "v"
type = "console"
inbound_secret = "short"
inbound_fields = { sender = ["x"], text = [] }
poll_interval = "30s"
`
	_, err = config.Parse(bad, kinds)
	var probs config.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v, want config.Problems", err)
	}
	for _, w := range []string{
		"replies.smarthost: must be host:port",
		`replies.tls: must be starttls, required, implicit or none, not "maybe"`,
		"replies.username: username and password must be set together",
		`replies.catch_all: "Ops <ops@example.com>" is not a mail address`,
		"replies.subject: must be one line",
		"replies.reply_window: must be positive",
		"providers[1].inbound_secret: must be at least 16 characters",
		"providers[1].inbound_fields.sender: unknown field",
		"providers[1].inbound_fields.text: name at least one request field",
		"providers[1].poll_interval: only ippanel providers are polled",
	} {
		if !slices.ContainsFunc(probs, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("missing problem %q in:\n%s", w, strings.Join(probs, "\n"))
		}
	}
}

func TestContentLimits(t *testing.T) {
	good := strings.Replace(minimal, `domains = ["sms.example.com"]`, `domains = ["sms.example.com"]
max_header_fields = 200
max_header_bytes = 32768
[limits]
schedule_horizon = "720h"`, 1)
	c, err := config.Parse(good, kinds)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.MaxHeaderFields != 200 || c.SMTP.MaxHeaderBytes != 32768 || c.Limits.ScheduleHorizon != 720*time.Hour {
		t.Errorf("decoded %+v %+v", c.SMTP, c.Limits)
	}
	bad := strings.Replace(minimal, `domains = ["sms.example.com"]`, `domains = ["sms.example.com"]
max_header_fields = -1
max_header_bytes = 100
[limits]
schedule_horizon = "-1h"`, 1)
	_, err = config.Parse(bad, kinds)
	var probs config.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v, want config.Problems", err)
	}
	for _, w := range []string{"smtp.max_header_fields: must be positive", "smtp.max_header_bytes: must be at least 1024", "limits.schedule_horizon: must be positive"} {
		if !slices.Contains(probs, w) {
			t.Errorf("missing problem %q in:\n%s", w, strings.Join(probs, "\n"))
		}
	}
}

// TestContradictoryLimits: an account's messages_per_minute below
// smtp.max_recipients makes legal messages impossible to send; the
// problem names both keys.
func TestContradictoryLimits(t *testing.T) {
	text := strings.Replace(minimal, "sender_ids = [\"Ops\"]", "sender_ids = [\"Ops\"]\nmessages_per_minute = 50", 1)
	_, err := config.Parse(text, kinds)
	var probs config.Problems
	if !errors.As(err, &probs) || len(probs) != 1 ||
		!strings.HasPrefix(probs[0], "accounts[0].messages_per_minute: 50 is less than smtp.max_recipients (100)") {
		t.Fatalf("err = %v; want one problem naming accounts[0].messages_per_minute and smtp.max_recipients", err)
	}
	for _, fix := range []string{"[smtp]\nmax_recipients = 50", "[smtp]\nmax_recipients = 20"} {
		if _, err := config.Parse(strings.Replace(text, "[smtp]", fix, 1), kinds); err != nil {
			t.Errorf("with %q: %v", fix, err)
		}
	}
	unlimited := strings.Replace(text, "messages_per_minute = 50", "messages_per_minute = 0", 1)
	if _, err := config.Parse(unlimited, kinds); err != nil {
		t.Errorf("messages_per_minute = 0 (unlimited): %v", err)
	}
}

// store.retention: 90 days unless set; 0, sub-day and shorter-than-the-
// reply-window values are refused, naming the key.
func TestRetention(t *testing.T) {
	c, err := config.Parse(minimal, kinds)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Retention != 90*24*time.Hour {
		t.Errorf("default retention %s, want 2160h", c.Store.Retention)
	}
	c, err = config.Parse("[store]\nretention = \"8760h\"\n"+minimal, kinds)
	if err != nil || c.Store.Retention != 8760*time.Hour {
		t.Fatalf("retention 8760h: %v, %v", c, err)
	}
	for _, bad := range []string{
		"[store]\nretention = \"0s\"\n",
		"[store]\nretention = \"-1h\"\n",
		"[store]\nretention = \"90m\"\n",
		"[store]\nretention = \"48h\"\n[replies]\nreply_window = \"72h\"\n",
	} {
		_, err := config.Parse(bad+minimal, kinds)
		if err == nil || !strings.Contains(err.Error(), "store.retention: ") {
			t.Errorf("%q: %v, want a problem naming store.retention", bad, err)
		}
	}
}

// TestLengthPolicySettings reads smart encoding (on unless turned off,
// per account too) and the per-account length policy, and names the key
// of a bad one.
func TestLengthPolicySettings(t *testing.T) {
	c, err := config.Parse(minimal, kinds)
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Accounts[0]; !c.SMTP.UseSmartEncoding() || a.SmartEncoding != nil || a.MaxSegments != 0 || a.Overflow != "" {
		t.Errorf("defaults: smart encoding %v, account %+v; want on, nothing overridden", c.SMTP.UseSmartEncoding(), a)
	}
	text := strings.Replace(minimal, `domains = ["sms.example.com"]`, `domains = ["sms.example.com"]
smart_encoding = false`, 1)
	text = strings.Replace(text, `sender_ids = ["Ops"]`, `sender_ids = ["Ops"]
smart_encoding = true
max_segments = 3
overflow = "truncate"`, 1)
	if c, err = config.Parse(text, kinds); err != nil {
		t.Fatal(err)
	}
	if a := c.Accounts[0]; c.SMTP.UseSmartEncoding() || a.SmartEncoding == nil || !*a.SmartEncoding || a.MaxSegments != 3 || a.Overflow != "truncate" {
		t.Errorf("smart encoding %v, account %+v; want off, overridden on, 3 segments, truncate", c.SMTP.UseSmartEncoding(), a)
	}
	bad := strings.Replace(minimal, `sender_ids = ["Ops"]`, `sender_ids = ["Ops"]
max_segments = -1
overflow = "drop"`, 1)
	_, err = config.Parse(bad, kinds)
	for _, want := range []string{"accounts[0].max_segments: must be positive", `accounts[0].overflow: must be refuse or truncate, not "drop"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
}

// A provider's pace: rate in recipients per second (an integer or a
// fraction), burst only with a rate; each mistake named by its key.
func TestProviderRate(t *testing.T) {
	for _, c := range []struct {
		keys  string
		rate  float64
		burst int
		want  string // "" for valid
	}{
		{"", 0, 0, ""},
		{"rate = 5", 5, 0, ""},
		{"rate = 0.5\nburst = 2", 0.5, 2, ""},
		{"rate = -1", 0, 0, "providers[0].rate: must be positive"},
		{"rate = nan", 0, 0, "providers[0].rate: must be positive"},
		{"rate = 20000", 0, 0, "providers[0].rate: 20000 is more than 10000"},
		{"rate = 0.0001", 0, 0, "providers[0].rate: 0.0001 is less than one recipient in 1000 s"},
		{"rate = 5\nburst = -1", 0, 0, "providers[0].burst: must be positive"},
		{"rate = 5\nburst = 100000", 0, 0, "providers[0].burst: 100000 is more than 10000"},
		{"burst = 5", 0, 0, "providers[0].burst: needs a rate"},
		{`rate = "5/s"`, 0, 0, "providers[0].rate: must be"},
	} {
		if p, ok := parseProvider(t, c.keys, c.want); ok && (p.Rate != c.rate || p.Burst != c.burst) {
			t.Errorf("%q: rate %v burst %v, want %v %v", c.keys, p.Rate, p.Burst, c.rate, c.burst)
		}
	}
}

// parseProvider parses the minimal configuration with keys added to its
// provider. With want "", it must be valid: it returns the provider, ok.
// Otherwise it must have one problem, starting with want.
func parseProvider(t *testing.T, keys, want string) (p config.Provider, ok bool) {
	t.Helper()
	text := strings.Replace(minimal, `type = "console"`, "type = \"console\"\n"+keys, 1)
	cfg, err := config.Parse(text, kinds)
	if want == "" {
		if err != nil {
			t.Errorf("%q: %v", keys, err)
			return p, false
		}
		return cfg.Providers[0], true
	}
	var probs config.Problems
	if !errors.As(err, &probs) || len(probs) != 1 || !strings.HasPrefix(probs[0], want) {
		t.Errorf("%q: err = %v, want one problem %q", keys, err, want)
	}
	return p, false
}

// A provider's concurrency: fixed if set, adaptive up to max_concurrency
// (default 64) if not; both bounded, each mistake named by its key.
func TestProviderConcurrency(t *testing.T) {
	for _, c := range []struct {
		keys      string
		fixed, to int
		want      string // "" for valid
	}{
		{"", 0, 64, ""},
		{"concurrency = 4", 4, 64, ""},
		{"max_concurrency = 16", 0, 16, ""},
		{"concurrency = 1024\nmax_concurrency = 1024", 1024, 1024, ""},
		{"concurrency = -1", 0, 0, "providers[0].concurrency: must be positive"},
		{"max_concurrency = -4", 0, 0, "providers[0].max_concurrency: must be positive"},
		{"concurrency = 5000", 0, 0, "providers[0].concurrency: 5000 is more than 1024 calls at a time"},
		{"max_concurrency = 1025", 0, 0, "providers[0].max_concurrency: 1025 is more than 1024 calls at a time"},
	} {
		if p, ok := parseProvider(t, c.keys, c.want); ok && (p.Concurrency != c.fixed || p.MaxConcurrency != c.to) {
			t.Errorf("%q: concurrency %d max_concurrency %d, want %d %d", c.keys, p.Concurrency, p.MaxConcurrency, c.fixed, c.to)
		}
	}
}

// Delivery notifications: queue.delay_warning defaults to 4h, 0 turns it
// off; accounts[].notify takes RFC 3461's keywords, "never" alone, each
// mistake named by its key.
func TestDSNSettings(t *testing.T) {
	c, err := config.Parse(minimal, kinds)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Queue.DelayWarningOrDefault(); d != 4*time.Hour || c.Accounts[0].Notify != nil {
		t.Errorf("defaults: delay_warning %s, notify %v; want 4h, unset", d, c.Accounts[0].Notify)
	}
	text := strings.Replace(minimal, `sender_ids = ["Ops"]`, `sender_ids = ["Ops"]
notify = ["success", "FAILURE", "delay"]`, 1) + "\n[queue]\ndelay_warning = \"0s\"\n"
	if c, err = config.Parse(text, kinds); err != nil {
		t.Fatal(err)
	}
	if d := c.Queue.DelayWarningOrDefault(); d != 0 || len(c.Accounts[0].Notify) != 3 {
		t.Errorf("delay_warning %s, notify %v; want 0, three values", d, c.Accounts[0].Notify)
	}
	for value, want := range map[string]string{
		`["never", "failure"]`: `accounts[0].notify: "never" cannot be combined with other values`,
		`["sucess"]`:           `accounts[0].notify: "sucess" is not one of success, failure, delay, never`,
		`["delay", "delay"]`:   `accounts[0].notify: "delay" given twice`,
	} {
		bad := strings.Replace(minimal, `sender_ids = ["Ops"]`, "sender_ids = [\"Ops\"]\nnotify = "+value, 1)
		if _, err := config.Parse(bad, kinds); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("notify = %s: error %v, want %q", value, err, want)
		}
	}
	bad := minimal + "\n[queue]\ndelay_warning = \"-1s\"\n"
	if _, err := config.Parse(bad, kinds); err == nil || !strings.Contains(err.Error(), "queue.delay_warning: must be positive") {
		t.Errorf("negative delay_warning: %v", err)
	}
}
