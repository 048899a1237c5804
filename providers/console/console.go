// Package console is a provider that only logs each SMS. It lets a newcomer
// run the bridge end to end without an account at any SMS provider.
package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"

	"github.com/smsbridge/smsbridge/bridge"
)

// Config is the console provider's own configuration (it has none).
type Config struct{}

// Provider logs SMS instead of sending them.
type Provider struct {
	name string
	log  *slog.Logger
}

// New returns a console provider.
func New(name string, _ *Config, log *slog.Logger) *Provider {
	return &Provider{name: name, log: log.With("provider", name)}
}

func (p *Provider) Name() string  { return p.name }
func (p *Provider) MaxBatch() int { return 100 }

// Send logs one line per recipient. Text is logged here on purpose: showing
// it is the whole point of this provider.
func (p *Provider) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	res := make([]bridge.Result, len(req.To))
	for i, to := range req.To {
		id := newID()
		p.log.InfoContext(ctx, "sms", "id", id, "message", req.MessageID,
			"from", req.Sender, "to", to, "template", req.Template, "text", req.Text)
		res[i] = bridge.Result{ProviderID: id}
	}
	return res, nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "console-" + hex.EncodeToString(b[:])
}
