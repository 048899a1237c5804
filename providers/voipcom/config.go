package voipcom

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/config"
)

// Defaults for the keys the configuration may leave out.
const (
	DefaultBaseURL   = "https://voip-communications.net/api-v2/index.php"
	DefaultBatchSize = 100
	DefaultTimeZone  = "UTC"
)

// Config is one voip-communications account.
type Config struct {
	// BaseURL is the api-v2 root; the client posts to BaseURL + "/sms/send".
	BaseURL string `toml:"base_url"`
	// APIKey is the HTTP Basic user. It is a credential too: it never
	// reaches a log line or an error.
	APIKey string `toml:"api_key"`
	// APIPassword is the HTTP Basic password; APIPasswordFile reads it from
	// a file instead. Exactly one of the two must be set.
	APIPassword     config.Secret `toml:"api_password"`
	APIPasswordFile string        `toml:"api_password_file"`
	// Numbers are the account's SMS-enabled 2-way numbers, written any way
	// people write them ("+1 (713) 456-7890", "17134567890"). A message may
	// use one of them as its sender; without a sender it goes out as BULK.
	Numbers []string `toml:"numbers"`
	// BatchSize is how many recipients one API call carries. The API
	// documents no limit; 100 keeps a failed call's blast radius small.
	BatchSize int `toml:"batch_size"`
	// TimeZone is the IANA zone delivery_date is written in. The API does
	// not say which zone it reads delivery_date in; set this to the zone of
	// the voip-communications account (default UTC).
	TimeZone string `toml:"time_zone"`

	// Filled by Validate; unexported so TOML neither reads nor writes them.
	password config.Secret
	numbers  []string // Numbers as digits, in configured order
	loc      *time.Location
}

// Validate fills in defaults, reads api_password_file and reports every
// problem at once, each naming its key. It may be called more than once.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	// The URL itself stays out of the message: a careless one may carry
	// credentials.
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("base_url: must be an absolute https or http URL")
	} else if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		add("base_url: must not carry credentials, a query or a fragment (use api_key and api_password)")
	}

	switch {
	case strings.TrimSpace(c.APIKey) == "":
		add("api_key: must be set")
	case strings.Contains(c.APIKey, ":"):
		// RFC 7617: the Basic user-id cannot contain a colon.
		add("api_key: must not contain ':'")
	}

	pw, err := config.ResolveSecret("api_password", c.APIPassword, c.APIPasswordFile)
	switch {
	case err != nil:
		errs = append(errs, err)
	case pw == "":
		add("api_password: must be set (or api_password_file)")
	}
	c.password = pw

	c.numbers = nil
	for i, n := range c.Numbers {
		d, ok := phoneDigits(n)
		if !ok {
			add("numbers[%d]: %q is not a phone number", i, n)
			continue
		}
		c.numbers = append(c.numbers, d)
	}

	switch {
	case c.BatchSize == 0:
		c.BatchSize = DefaultBatchSize
	case c.BatchSize < 0:
		add("batch_size: must be at least 1")
	}

	if c.TimeZone == "" {
		c.TimeZone = DefaultTimeZone
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		add("time_zone: unknown time zone %q", c.TimeZone)
	}
	c.loc = loc

	return errors.Join(errs...)
}

// phoneDigits returns the digits of a phone number written with an
// optional leading '+' and the usual separators. E.164 allows at most 15
// digits; fewer than 7 is no phone number anyone sends SMS from.
func phoneDigits(s string) (string, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "+")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return "", false
		}
	}
	d := b.String()
	return d, len(d) >= 7 && len(d) <= 15
}
