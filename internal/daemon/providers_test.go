package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/providers/console"
	"github.com/smsbridge/smsbridge/providers/ippanel"
	"github.com/smsbridge/smsbridge/providers/mindcrm"
	"github.com/smsbridge/smsbridge/providers/voipcom"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
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

// A provider's calls reuse their connections, as many as it may have
// under way at once: five rounds of 16 calls at once open about 16
// connections, not one per call past the second.
func TestProviderKeepsItsConnections(t *testing.T) {
	fake := voipcomtest.NewHandler("k", "p")
	fake.Latency = 20 * time.Millisecond // so that a round's calls overlap
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(fake)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	cfg, err := config.Parse(fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "ops"
emails = ["*@example.com"]
[[providers]]
name = "v"
type = "voipcom"
base_url = %q
api_key = "k"
api_password = "p"
max_concurrency = 16
[[routes]]
prefix = "+"
provider = "v"
`, srv.URL+voipcomtest.BasePath), Kinds)
	if err != nil {
		t.Fatal(err)
	}
	provs, err := providers(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				to := fmt.Sprintf("+9725070000%02d", i)
				if _, err := provs[0].Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{to}}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if got := len(fake.Requests()); got != 80 {
		t.Fatalf("the fake took %d sends, want 80", got)
	}
	if n := opened.Load(); n > 20 {
		t.Errorf("80 calls, at most 16 at once, opened %d connections, want at most 20", n)
	}
}
