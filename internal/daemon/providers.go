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

// Kinds is the config.Kinds of every provider type this binary knows.
func Kinds(typ string) (any, bool) {
	switch typ {
	case "console":
		return &console.Config{}, true
	case "mindcrm":
		return &mindcrm.Config{}, true
	case "voipcom":
		return &voipcom.Config{}, true
	case "ippanel":
		return &ippanel.Config{}, true
	}
	return nil, false
}

// newProvider builds the provider a config entry describes. Each provider
// package tags its own log records with its name. base_url is
// both a common key and each type's own; the common one has been
// validated, the type's struct carries it to the client.
func newProvider(p config.Provider, log *slog.Logger) (bridge.Provider, error) {
	hc := &http.Client{Timeout: p.Timeout}
	switch s := p.Settings.(type) {
	case *console.Config:
		return console.New(p.Name, s, log), nil
	case *mindcrm.Config:
		return mindcrm.New(p.Name, s, hc, log)
	case *voipcom.Config:
		return voipcom.New(p.Name, s, hc, log)
	case *ippanel.Config:
		return ippanel.New(p.Name, s, hc, log)
	}
	return nil, fmt.Errorf("provider %s: unknown type %q", p.Name, p.Type)
}
