package daemon

import (
	"io"
	"log/slog"
	"reflect"
	"testing"

	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/providers/console"
	"github.com/smsbridge/smsbridge/providers/ippanel"
	"github.com/smsbridge/smsbridge/providers/mindcrm"
	"github.com/smsbridge/smsbridge/providers/voipcom"
)

// Every type the configuration accepts is one the daemon builds, as the
// package that type names.
func TestProviderTypesDecodeAndBuild(t *testing.T) {
	cfg, err := config.Parse(`
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "ops"
emails = ["*@example.com"]
sender_ids = ["Ops"]
[[providers]]
name = "c"
type = "console"
[[providers]]
name = "m"
type = "mindcrm"
base_url = "https://crm.example.com"
[[providers]]
name = "v"
type = "voipcom"
base_url = "https://voip.example.com/api-v2/index.php"
api_key = "k"
api_password = "p"
[[providers]]
name = "i"
type = "ippanel"
base_url = "https://edge.example.com/v1"
token = "t"
numbers = ["+983000505"]
[[routes]]
prefix = "+"
provider = "c"
`, Kinds)
	if err != nil {
		t.Fatal(err)
	}
	provs, err := providers(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	want := []any{&console.Provider{}, &mindcrm.Provider{}, &voipcom.Provider{}, &ippanel.Provider{}}
	if len(provs) != len(want) {
		t.Fatalf("%d providers built, want %d", len(provs), len(want))
	}
	for i, p := range provs {
		if reflect.TypeOf(p) != reflect.TypeOf(want[i]) || p.Name() != cfg.Providers[i].Name {
			t.Errorf("providers[%d] (%s): built %T named %q", i, cfg.Providers[i].Type, p, p.Name())
		}
	}
	if len(providerTypes) != len(want) {
		t.Errorf("%d provider types registered, this test builds %d", len(providerTypes), len(want))
	}
}

// A configuration decoded with other Kinds than the daemon's is an error
// naming the provider, not a panic.
func TestNewProviderRefusesForeignSettings(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, p := range []config.Provider{
		{Name: "edge", Type: "ippanel", Settings: &mindcrm.Config{}},
		{Name: "c", Type: "console"},
		{Name: "x", Type: "carrier-pigeon", Settings: &console.Config{}},
	} {
		if prov, err := NewProvider(p, log); err == nil || prov != nil {
			t.Errorf("%s (%s, %T): %v, %v; want an error", p.Name, p.Type, p.Settings, prov, err)
		}
	}
}
