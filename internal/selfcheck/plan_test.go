package selfcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/internal/daemon"
)

const planConfig = `
[store]
path = %q
[smtp]
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"
domains = ["sms.example.com"]
[http]
listen = "127.0.0.1:0"
[replies]
smarthost = "127.0.0.1:1"
username = "bridge"
password = "smarthost-password-123"
[[accounts]]
name = "a"
emails = ["*@example.com"]
[[providers]]
name = "edge"
type = "ippanel"
base_url = "http://127.0.0.1:1/v1"
token_file = %q
numbers = ["+983000505"]
[[providers]]
name = "voip"
type = "voipcom"
base_url = "http://127.0.0.1:1/api-v2/index.php"
api_key = "k"
api_password = "voip-password-456"
[[providers]]
name = "console"
type = "console"
inbound_secret = "console-callback-secret-789"
[[routes]]
prefix = "+"
provider = "console"
`

func loadPlanConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("edge-token-from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(fmt.Sprintf(planConfig, filepath.Join(dir, "s.db"), tok), daemon.Kinds)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPlan(t *testing.T) {
	cfg := loadPlanConfig(t)
	var names []string
	for _, it := range Plan(cfg) {
		names = append(names, it.Name)
		if it.Name == "provider console" && (it.Checker != nil || it.Skip == "") {
			t.Errorf("console: %+v, want a skip", it)
		}
	}
	want := []string{"store sqlite " + cfg.Store.Path, "provider edge", "provider voip", "provider console",
		"smarthost 127.0.0.1:1", "listener smtp 127.0.0.1:0", "listener smtps 127.0.0.1:0", "listener http 127.0.0.1:0"}
	if !slices.Equal(names, want) {
		t.Errorf("plan %q\nwant %q", names, want)
	}
}

func TestRedactor(t *testing.T) {
	cfg := loadPlanConfig(t)
	cfg.Store.URL = "postgres://bridge:store-password-000@db.example.com/x"
	redact := Redactor(cfg)
	for _, secret := range []string{"edge-token-from-a-file", "voip-password-456", "console-callback-secret-789",
		"smarthost-password-123", "store-password-000"} {
		if got := redact("said " + secret + "."); got != "said [REDACTED]." {
			t.Errorf("%s: %q", secret, got)
		}
	}
}
