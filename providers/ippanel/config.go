package ippanel

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/smsbridge/smsbridge/config"
)

// DefaultBaseURL is the IPPanel Edge API; every path below it starts /api/.
const DefaultBaseURL = "https://edge.ippanel.com/v1"

// DefaultBatchSize is how many recipients one webservice call carries
// unless batch_size says otherwise. The API documents no limit.
const DefaultBatchSize = 100

// Config is the configuration of one IPPanel Edge account.
type Config struct {
	BaseURL   string        `toml:"base_url"`
	Token     config.Secret `toml:"token"`      // sent as is in Authorization (no "Bearer")
	TokenFile string        `toml:"token_file"` // alternative to token
	Numbers   []string      `toml:"numbers"`    // our sender numbers, E.164; the first is the default
	BatchSize int           `toml:"batch_size"` // recipients per webservice call

	// token is Token or the content of TokenFile, set by Validate. Keeping
	// it apart leaves the decoded keys untouched, so Validate can run again
	// (New calls it) and a printed config still shows token_file.
	token config.Secret
}

// Validate fills in defaults, reads token_file and reports every problem at
// once, each starting with its key name.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") ||
		u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("base_url: must be an absolute https or http URL without query or fragment")
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")

	switch tok, err := config.ResolveSecret("token", c.Token, c.TokenFile); {
	case err != nil:
		errs = append(errs, err)
	case tok == "":
		bad("token: required (or token_file)")
	case strings.ContainsAny(tok.Value(), "\r\n"):
		// It goes into a header; the value itself is never echoed.
		bad("token: must be a single line")
	default:
		c.token = tok
	}

	if len(c.Numbers) == 0 {
		bad("numbers: at least one sender number is required")
	}
	for i, n := range c.Numbers {
		if !isE164(n) {
			bad("numbers[%d]: %q is not an E.164 number (+ and digits, e.g. +983000505)", i, n)
		}
	}

	switch {
	case c.BatchSize == 0:
		c.BatchSize = DefaultBatchSize
	case c.BatchSize < 0:
		bad("batch_size: must be positive")
	}
	return errors.Join(errs...)
}

// isE164 reports whether s has the E.164 form the API wants: "+", a
// non-zero digit, at most 15 digits in all. Numbers reach providers already
// normalised by the bridge, so the form is all that is checked here.
func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
