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

// Config is the console provider's own configuration.
type Config struct {
	// LogText logs each SMS's text. Off by default: message text is
	// personal data, logged only where the operator opts in.
	LogText bool `toml:"log_text"`
}

// Provider logs SMS instead of sending them.
type Provider struct {
	name    string
	logText bool
	log     *slog.Logger
}

// New returns a console provider.
func New(name string, cfg *Config, log *slog.Logger) *Provider {
	return &Provider{name: name, logText: cfg != nil && cfg.LogText, log: log.With("provider", name)}
}

func (p *Provider) Name() string  { return p.name }
func (p *Provider) MaxBatch() int { return 100 }

// Send logs one line per recipient: the text only with log_text, its
// length in parts always.
func (p *Provider) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	res := make([]bridge.Result, len(req.To))
	for i, to := range req.To {
		id := newID()
		attrs := []any{"id", id, "message", req.MessageID, "from", req.Sender, "to", to, "template", req.Template,
			"parts", bridge.CountSegments(req.Text).Count}
		if p.logText {
			attrs = append(attrs, "text", req.Text)
		}
		p.log.InfoContext(ctx, "sms", attrs...)
		res[i] = bridge.Result{ProviderID: id}
	}
	return res, nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "console-" + hex.EncodeToString(b[:])
}
