package config

import (
	"fmt"
	"net/url"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// Alerts is an account's [accounts.alerts] table: what the phones its
// alert hooks page may do by answering (acknowledge, silence), against
// which Alertmanager or Grafana. Commanders and the durations set here
// apply to both hooks unless a hook's table sets its own.
type Alerts struct {
	// Commanders are the only numbers whose commands act; unset or
	// empty: every number the hook paged about the alert (on_call or ?to=).
	Commanders []string `toml:"commanders"`
	// DefaultSilence is how long "ACK" without a duration silences
	// (default 2h); MaxSilence the longest a command may ask for
	// (default 24h).
	DefaultSilence time.Duration `toml:"default_silence"`
	MaxSilence     time.Duration `toml:"max_silence"`
	// MaxSegments caps an alert SMS, in parts (default 2; never more
	// than the account's max_segments): as many alerts of a group as fit
	// are listed, the most severe first, and the rest counted.
	MaxSegments int `toml:"max_segments"`
	// SendResolved sends the notifications of groups that resolved
	// (default false: they are answered 200 and dropped).
	SendResolved bool `toml:"send_resolved"`
	// RepeatWindow drops a notification sent to the same phones, saying
	// the same (the same alerts in the same states), less than this long
	// ago (default 1h; 0 sends every one).
	RepeatWindow *time.Duration `toml:"repeat_window"`
	// Alertmanager and Grafana are the servers the silences of each
	// hook's alerts are made at; a hook without one sends alerts whose
	// answers are ordinary replies.
	Alertmanager *AlertServer `toml:"alertmanager"`
	Grafana      *AlertServer `toml:"grafana"`
}

// AlertServer is one hook's silencing server: [accounts.alerts.alertmanager]
// or [accounts.alerts.grafana].
type AlertServer struct {
	// URL is the server's base URL: Alertmanager's (with its route
	// prefix, if any), or Grafana's root.
	URL string `toml:"url"`
	// Basic credentials, or a bearer token (a Grafana service account
	// token); each secret has its *_file variant.
	Username     string `toml:"username"`
	Password     Secret `toml:"password"`
	PasswordFile string `toml:"password_file"`
	Token        Secret `toml:"token"`
	TokenFile    string `toml:"token_file"`
	// Timeout bounds one call (default 10s): it is made while the
	// provider's callback with the phone's SMS waits.
	Timeout time.Duration `toml:"timeout"`
	// Commanders, DefaultSilence and MaxSilence override the account's
	// for this hook.
	Commanders     []string      `toml:"commanders"`
	DefaultSilence time.Duration `toml:"default_silence"`
	MaxSilence     time.Duration `toml:"max_silence"`
}

// Defaults of [accounts.alerts].
const (
	DefaultAlertSegments = 2
	DefaultRepeatWindow  = time.Hour
	DefaultSilence       = 2 * time.Hour
	DefaultMaxSilence    = 24 * time.Hour
	DefaultAlertTimeout  = 10 * time.Second
	// maxSilenceLimit is the longest max_silence: the command parser's
	// own bound (silence.MaxDuration).
	maxSilenceLimit = 90 * 24 * time.Hour
)

// Window is repeat_window, or its default when unset (also for an
// account without [accounts.alerts]).
func (a *Alerts) Window() time.Duration {
	if a == nil || a.RepeatWindow == nil {
		return DefaultRepeatWindow
	}
	return *a.RepeatWindow
}

// Segments is max_segments, or its default, at most accountMax (the
// account's own cap on any SMS).
func (a *Alerts) Segments(accountMax int) int {
	n := DefaultAlertSegments
	if a != nil && a.MaxSegments > 0 {
		n = a.MaxSegments
	}
	if accountMax > 0 && n > accountMax {
		n = accountMax
	}
	return n
}

// Servers returns the hooks' servers by hook name, those configured only.
func (a *Alerts) Servers() map[string]*AlertServer {
	out := map[string]*AlertServer{}
	if a == nil {
		return out
	}
	if a.Alertmanager != nil {
		out["alertmanager"] = a.Alertmanager
	}
	if a.Grafana != nil {
		out["grafana"] = a.Grafana
	}
	return out
}

// Effective is what server s of these alerts uses: its own commanders
// and durations, else the account's, else the defaults.
func (a *Alerts) Effective(s *AlertServer) (commanders []string, def, max time.Duration) {
	commanders, def, max = a.Commanders, a.DefaultSilence, a.MaxSilence
	if s.Commanders != nil {
		commanders = s.Commanders
	}
	if s.DefaultSilence > 0 {
		def = s.DefaultSilence
	}
	if s.MaxSilence > 0 {
		max = s.MaxSilence
	}
	if def <= 0 {
		def = DefaultSilence
	}
	if max <= 0 {
		max = DefaultMaxSilence
	}
	return commanders, def, max
}

// validate checks the table at key, resolving the servers' secrets.
func (a *Alerts) validate(key, region string) Problems {
	var probs Problems
	add := func(k, format string, args ...any) {
		probs = append(probs, k+": "+fmt.Sprintf(format, args...))
	}
	commanders := func(k string, list []string) {
		for i, n := range list {
			if _, err := phonenumbers.Parse(n, region); err != nil {
				add(fmt.Sprintf("%s[%d]", k, i), "%q is not a phone number", n)
			}
		}
	}
	durations := func(k string, def, max time.Duration) {
		if def < 0 {
			add(k+".default_silence", "must be positive")
		}
		if max < 0 || max > maxSilenceLimit {
			add(k+".max_silence", "must be positive and at most %s (90 days)", maxSilenceLimit)
		}
	}
	commanders(key+".commanders", a.Commanders)
	durations(key, a.DefaultSilence, a.MaxSilence)
	if a.MaxSegments < 0 {
		add(key+".max_segments", "must be positive")
	}
	if a.RepeatWindow != nil && *a.RepeatWindow < 0 {
		add(key+".repeat_window", "must be positive (0 sends every repeat)")
	}
	for name, s := range a.Servers() {
		k := key + "." + name
		if u, err := url.Parse(s.URL); s.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(k+".url", "must be the server's absolute http or https URL")
		} else if u.User != nil {
			add(k+".url", "must not hold credentials: set username and password, or token")
		} else if u.RawQuery != "" || u.Fragment != "" {
			add(k+".url", "must not have a query or fragment")
		}
		pw, err := ResolveSecret("password", s.Password, s.PasswordFile)
		if err != nil {
			add(k, "%v", err)
		}
		tok, err := ResolveSecret("token", s.Token, s.TokenFile)
		if err != nil {
			add(k, "%v", err)
		}
		s.Password, s.Token = pw, tok
		switch {
		case (s.Username == "") != (pw == ""):
			add(k+".username", "username and password must be set together")
		case s.Username != "" && tok != "":
			add(k+".token", "set a token or username and password, not both")
		}
		if s.Timeout < 0 {
			add(k+".timeout", "must be positive")
		}
		commanders(k+".commanders", s.Commanders)
		durations(k, s.DefaultSilence, s.MaxSilence)
		if _, def, max := a.Effective(s); def > max {
			add(k+".default_silence", "%s is longer than max_silence (%s)", def, max)
		}
	}
	if _, def, max := a.Effective(&AlertServer{}); def > max {
		add(key+".default_silence", "%s is longer than max_silence (%s)", def, max)
	}
	return probs
}
