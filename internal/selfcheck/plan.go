package selfcheck

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/internal/daemon"
)

// Plan lists the checks of cfg, in the order they are printed: the store,
// every provider as configured, the smarthost, every listener.
func Plan(cfg *config.Config) []Item {
	items := []Item{storeItem(cfg.Store)}
	// The checks' results are their output; the providers' own log
	// records would only say the same again.
	quiet := slog.New(slog.DiscardHandler)
	for _, pc := range cfg.Providers {
		items = append(items, providerItem(pc, quiet))
	}
	items = append(items, smarthostItem(cfg), listenItem("smtp", cfg.SMTP.Listen))
	if cfg.SMTP.TLSListen != "" {
		items = append(items, listenItem("smtps", cfg.SMTP.TLSListen))
	}
	return append(items, listenItem("http", cfg.HTTP.Listen))
}

// providerItem checks a provider through its package's Check, the
// cheapest harmless call its API offers (see each package).
func providerItem(pc config.Provider, log *slog.Logger) Item {
	it := Item{Name: "provider " + pc.Name}
	p, err := daemon.NewProvider(pc, log)
	if err != nil {
		it.Checker = failure(err)
		return it
	}
	if c, ok := p.(Checker); ok {
		it.Checker = c
	} else {
		it.Skip = fmt.Sprintf("type %s calls no API: nothing to check", pc.Type)
	}
	return it
}

// smarthostItem checks the smarthost with a session that sends no mail.
func smarthostItem(cfg *config.Config) Item {
	if cfg.Replies.Smarthost == "" {
		return Item{Name: "smarthost", Skip: "replies.smarthost is not set: replies and bounces are not mailed"}
	}
	it := Item{Name: "smarthost " + cfg.Replies.Smarthost}
	c, err := daemon.Smarthost(cfg)
	if err != nil {
		it.Checker = failure(err)
	} else {
		it.Checker = c
	}
	return it
}

// failure is a check that fails with err: what could not even be built.
func failure(err error) Checker {
	return CheckFunc(func(context.Context) (string, error) { return "", err })
}
