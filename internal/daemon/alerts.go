package daemon

import (
	"fmt"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/silence"
)

// alertOptions builds an account's alert hooks' settings: a silence
// client per configured server, commanders in E.164.
func alertOptions(cfg *config.Config, a config.Account) (bridge.AlertOptions, error) {
	accountMax := a.MaxSegments
	if accountMax <= 0 {
		accountMax = cfg.SMTP.MaxSegments
	}
	opt := bridge.AlertOptions{Sources: map[string]*bridge.AlertSource{}, MaxSegments: a.Alerts.Segments(accountMax),
		RepeatWindow: a.Alerts.Window(), SendResolved: a.Alerts != nil && a.Alerts.SendResolved}
	for name, s := range a.Alerts.Servers() {
		key := fmt.Sprintf("accounts %s: alerts.%s", a.Name, name)
		o := silence.Options{Timeout: s.Timeout, Auth: silence.Auth{Username: s.Username, Password: s.Password.Value(),
			Token: s.Token.Value()}}
		if o.Timeout <= 0 {
			o.Timeout = config.DefaultAlertTimeout
		}
		newClient := silence.NewAlertmanager
		if name == "grafana" {
			newClient = silence.NewGrafana
		}
		client, err := newClient(s.URL, o)
		if err != nil {
			return opt, fmt.Errorf("%s: %w", key, err)
		}
		commanders, def, max := a.Alerts.Effective(s)
		src := &bridge.AlertSource{Silencer: client, DefaultSilence: def, MaxSilence: max}
		for _, n := range commanders {
			e164, err := bridge.ParseNumber(n, cfg.SMTP.DefaultRegion)
			if err != nil {
				return opt, fmt.Errorf("%s: commanders: %q is not a phone number", key, n)
			}
			src.Commanders = append(src.Commanders, e164)
		}
		opt.Sources[name] = src
	}
	return opt, nil
}
