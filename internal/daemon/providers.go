package daemon

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/providers/console"
	"github.com/smsbridge/smsbridge/providers/ippanel"
	"github.com/smsbridge/smsbridge/providers/mindcrm"
	"github.com/smsbridge/smsbridge/providers/voipcom"
)

// providerType is what the daemon knows of one provider type.
type providerType struct {
	// settings returns a fresh struct for config to decode the type's own
	// keys into; build receives it back in config.Provider.Settings.
	settings func() any
	build    func(p config.Provider, hc *http.Client, log *slog.Logger) (bridge.Provider, error)
}

// providerTypes is every provider type this binary knows, by the name the
// configuration's `type` gives it. Config decoding (Kinds) and
// construction (NewProvider) both read this one table, so no type can be
// known to one and not the other.
var providerTypes = map[string]providerType{
	"console": {
		settings: func() any { return &console.Config{} },
		// Console writes to the log; it has no HTTP client to bound.
		build: func(p config.Provider, _ *http.Client, log *slog.Logger) (bridge.Provider, error) {
			s, err := settingsOf[console.Config](p)
			if err != nil {
				return nil, err
			}
			return console.New(p.Name, s, log), nil
		},
	},
	"mindcrm": httpType(mindcrm.New),
	"voipcom": httpType(voipcom.New),
	"ippanel": httpType(ippanel.New),
}

// httpType is the entry of a provider that speaks HTTP: its package's
// Config is the settings, its New the constructor.
func httpType[C any, P bridge.Provider](newP func(string, *C, *http.Client, *slog.Logger) (P, error)) providerType {
	return providerType{
		settings: func() any { return new(C) },
		build: func(p config.Provider, hc *http.Client, log *slog.Logger) (bridge.Provider, error) {
			s, err := settingsOf[C](p)
			if err != nil {
				return nil, err
			}
			prov, err := newP(p.Name, s, hc, log)
			if err != nil {
				// Not prov: a nil *Provider in an interface is not a nil interface.
				return nil, err
			}
			return prov, nil
		},
	}
}

// settingsOf is p's settings as the struct its type decodes into. They are
// something else only when the configuration was decoded with other Kinds
// than this binary's; that is an error, not a panic.
func settingsOf[C any](p config.Provider) (*C, error) {
	s, ok := p.Settings.(*C)
	if !ok {
		return nil, fmt.Errorf("provider %s: settings %T do not belong to type %q", p.Name, p.Settings, p.Type)
	}
	return s, nil
}

// Kinds is the config.Kinds of every provider type this binary knows.
func Kinds(typ string) (any, bool) {
	t, ok := providerTypes[typ]
	if !ok {
		return nil, false
	}
	return t.settings(), true
}

// NewProvider builds the provider a config entry describes, for the
// daemon and for the live check. Each provider package tags its own log
// records with its name. base_url is both a common key and each type's
// own; the common one has been validated, the type's struct carries it to
// the client.
func NewProvider(p config.Provider, log *slog.Logger) (bridge.Provider, error) {
	t, ok := providerTypes[p.Type]
	if !ok {
		return nil, fmt.Errorf("provider %s: unknown type %q", p.Name, p.Type)
	}
	return t.build(p, &http.Client{Timeout: p.Timeout, Transport: transport(p)}, log)
}

// transport is a provider's own HTTP transport, keeping as many idle
// connections as the provider may have calls under way. The default
// transport keeps two per host: every call beyond them would open a
// connection, and make a TLS handshake, of its own.
func transport(p config.Provider) *http.Transport {
	n := p.Concurrency
	if n <= 0 {
		n = p.MaxConcurrency
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = n // 0 (no config defaults applied): the default's 2
	tr.MaxIdleConns = max(tr.MaxIdleConns, n)
	return tr
}
