// Package config loads smsbridge's TOML configuration. Unknown keys are
// errors; every problem is reported with its key path, all at once, so an
// operator fixes a file in one pass. Each provider type decodes its own keys
// into its own struct, supplied by the caller (see Kinds), so this package
// knows nothing about provider APIs.
package config

import (
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/nyaruka/phonenumbers"
	"golang.org/x/crypto/bcrypt"

	"github.com/smsbridge/smsbridge/bridge"
)

// Config is the whole configuration file.
type Config struct {
	Store     Store      `toml:"store"`
	Log       Log        `toml:"log"`
	SMTP      SMTP       `toml:"smtp"`
	HTTP      HTTP       `toml:"http"`
	Queue     Queue      `toml:"queue"`
	Limits    Limits     `toml:"limits"`
	Replies   Replies    `toml:"replies"`
	Consent   Consent    `toml:"consent"`
	Accounts  []Account  `toml:"accounts"`
	Providers []Provider `toml:"-"` // decoded in two steps, see Load
	Routes    []Route    `toml:"routes"`
}

// Store selects and configures persistence.
type Store struct {
	Path string `toml:"path"` // SQLite file
	// URL selects PostgreSQL instead ("postgres://user@host/db"), shared
	// by several instances; SQLite stays the default when it is empty.
	URL Secret `toml:"url"`
	// Retention is how long finished records (messages, the conversation
	// log, inbound SMS, delivered mail) are kept: message text and phone
	// numbers are personal data. Default 90 days; there is no "forever".
	Retention time.Duration `toml:"retention"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Message text is logged only at
	// debug, which the operator must opt into.
	Level string `toml:"level"`
}

// SMTP configures the mail listener.
type SMTP struct {
	Listen          string   `toml:"listen"`
	Hostname        string   `toml:"hostname"` // name in the greeting
	Domains         []string `toml:"domains"`
	DefaultRegion   string   `toml:"default_region"` // ISO 3166 region for numbers without a country code
	RequireAuth     bool     `toml:"require_auth"`
	TLSCert         string   `toml:"tls_cert"`
	TLSKey          string   `toml:"tls_key"`
	MaxMessageBytes int64    `toml:"max_message_bytes"`
	MaxRecipients   int      `toml:"max_recipients"`
	MaxSegments     int      `toml:"max_segments"`
	// SmartEncoding replaces typographic look-alikes (curly quotes,
	// dashes, no-break spaces…) by GSM-7 characters when that makes a
	// text GSM-7 (default true); accounts may override it.
	SmartEncoding  *bool         `toml:"smart_encoding"`
	Text           string        `toml:"text"` // body, subject or subject+body
	ReadTimeout    time.Duration `toml:"read_timeout"`
	WriteTimeout   time.Duration `toml:"write_timeout"`
	MaxConnections int           `toml:"max_connections"`
	// TLSListen is a second listener speaking TLS from the first byte
	// (SMTPS, port 465); "" is none. It needs tls_cert and tls_key.
	TLSListen string `toml:"tls_listen"`
	// MaxConnectionsPerIP caps the open connections from one client
	// (IPv4 address, IPv6 /64).
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// MaxBadCommands is how many refused commands (bad recipients,
	// failed AUTH…) a connection may collect before it is dropped.
	MaxBadCommands int `toml:"max_bad_commands"`
	// AllowedNetworks are the CIDRs whose unauthenticated mail may
	// claim an account that names no networks of its own. Unset is
	// loopback only (DefaultNetworks); an empty list is none: every
	// client must authenticate. Authenticated clients may send from
	// anywhere.
	AllowedNetworks []string `toml:"allowed_networks"`
	// MaxSessionDuration bounds one SMTP connection's lifetime, and
	// MaxCommands the command lines (NOOP, RSET... included) it may send
	// without a message being accepted.
	MaxSessionDuration time.Duration `toml:"max_session_duration"`
	MaxCommands        int           `toml:"max_commands"`
	// AuthFailuresPerClient and AuthFailuresPerAccount are the failed
	// AUTH attempts allowed per hour from one client address and for one
	// user name, across connections; more are answered 454 4.7.0.
	AuthFailuresPerClient  int `toml:"auth_failures_per_client"`
	AuthFailuresPerAccount int `toml:"auth_failures_per_account"`
	// MaxHeaderFields and MaxHeaderBytes bound the header block of a mail
	// and of each of its MIME parts (552 5.3.4 beyond).
	MaxHeaderFields int `toml:"max_header_fields"`
	MaxHeaderBytes  int `toml:"max_header_bytes"`
}

// DefaultNetworks is smtp.allowed_networks when it is not set: mail
// programs on this host only.
var DefaultNetworks = []string{"127.0.0.1/32", "::1/128"}

// HTTP configures the HTTP listener (API, callbacks, health).
type HTTP struct {
	Listen    string `toml:"listen"`
	PublicURL string `toml:"public_url"`
	// What one client can make the listener spend: connections open at
	// once (more wait to be accepted), header and body sizes, and how long
	// a request may take to arrive, to be answered, and a connection may
	// idle between requests.
	MaxConnections    int           `toml:"max_connections"`
	MaxHeaderBytes    int           `toml:"max_header_bytes"`
	MaxBodyBytes      int64         `toml:"max_body_bytes"`
	ReadHeaderTimeout time.Duration `toml:"read_header_timeout"`
	ReadTimeout       time.Duration `toml:"read_timeout"`
	WriteTimeout      time.Duration `toml:"write_timeout"`
	IdleTimeout       time.Duration `toml:"idle_timeout"`
	// Console serves the web console at /ui/ (default true); see
	// ConsoleEnabled.
	Console *bool `toml:"console"`
}

// ConsoleEnabled reports whether the web console is served: unless
// console = false.
func (h HTTP) ConsoleEnabled() bool { return h.Console == nil || *h.Console }

// Queue configures the dispatcher.
type Queue struct {
	// Workers is obsolete: kept so that configurations naming it still
	// load, it limits nothing, and setting it draws a warning (see
	// Warnings). Provider calls are limited per provider only
	// (providers[].concurrency, or the adaptive limit up to
	// providers[].max_concurrency): a shared limit let a provider at its
	// limit, hanging, hold the calls every other provider needed. nil:
	// not set.
	Workers       *int          `toml:"workers"`
	MaxAge        time.Duration `toml:"max_age"`        // give up on a recipient this long after acceptance
	RetryMin      time.Duration `toml:"retry_min"`      // first backoff step
	RetryMax      time.Duration `toml:"retry_max"`      // backoff cap
	SendTimeout   time.Duration `toml:"send_timeout"`   // one provider call
	ShutdownGrace time.Duration `toml:"shutdown_grace"` // how long in-flight sends may finish on SIGTERM
	// DelayWarning is how long a recipient that asked for NOTIFY=DELAY
	// waits before it is told its SMS is delayed (once), like Postfix's
	// delay_warning_time; unset is 4h, 0 never.
	DelayWarning *time.Duration `toml:"delay_warning"`
}

// DefaultDelayWarning is queue.delay_warning when unset.
const DefaultDelayWarning = 4 * time.Hour

// Account is someone allowed to send.
type Account struct {
	Name string `toml:"name"`
	// Emails holds addresses and "*@domain" patterns matched against MAIL FROM.
	Emails []string `toml:"emails"`
	// ReplyTo holds addresses and "*@domain" patterns, beyond Emails, that
	// a mail's Reply-To or From (or the HTTP reply_to) may name as where
	// the phone's replies go; any other address is ignored (mail: replies
	// go to the envelope sender) or refused (HTTP: 422).
	ReplyTo []string `toml:"reply_to"`
	// SenderIDs are the sender IDs / numbers this account may use; the
	// first is the default.
	SenderIDs []string `toml:"sender_ids"`
	// Pool are 2-way numbers, each one of SenderIDs, that the account's
	// conversations are spread over: a writer texting a phone gets a
	// number no other writer's live conversation with that phone uses,
	// and keeps it (sticky sender). Empty: no pool.
	Pool []string `toml:"pool"`
	// AllowPhonebooks lets the account send to whole provider phonebooks.
	AllowPhonebooks bool `toml:"allow_phonebooks"`
	// Admin accounts may read every conversation and message through the
	// HTTP API; others read only their own.
	Admin bool `toml:"admin"`
	// APITokenSHA256 holds the hex SHA-256 of each HTTP API token of the
	// account (a string or a list, so tokens can be rotated). The config
	// never holds a token itself.
	APITokenSHA256 StringList `toml:"api_token_sha256"`
	// MessagesPerMinute limits the SMS (recipients) the account may
	// submit per minute; 0 is unlimited.
	MessagesPerMinute int `toml:"messages_per_minute"`
	// SmartEncoding overrides smtp.smart_encoding; unset keeps it.
	SmartEncoding *bool `toml:"smart_encoding"`
	// MaxSegments overrides smtp.max_segments; 0 keeps it.
	MaxSegments int `toml:"max_segments"`
	// Overflow is what a longer text gets: "refuse" (the default) or
	// "truncate" (cut at a word boundary, with a marker).
	Overflow string `toml:"overflow"`
	// Notify is the delivery notifications (RFC 3461 NOTIFY) the
	// account's mail gets when the client sets none: any of "success",
	// "failure", "delay", or "never" alone; unset is ["failure"].
	Notify []string `toml:"notify"`
	// OnCall are the numbers alert hooks page when the request names none.
	OnCall []string `toml:"on_call"`
	// SMTPPasswordHash is the bcrypt hash of the account's SMTP AUTH
	// password (user name: the account name); make one with
	// `smsbridge hash-password`.
	SMTPPasswordHash string `toml:"smtp_password_hash"`
	// Networks are the CIDRs whose unauthenticated mail may claim this
	// account by its envelope sender; unset is smtp.allowed_networks, an
	// empty list none (the account must authenticate).
	Networks []string `toml:"networks"`
	// HelpText answers a phone's HELP to one of the account's numbers
	// ("": consent.help_text).
	HelpText string `toml:"help_text"`
	// Alerts configures the account's alert hooks: silencing by SMS
	// (alerts.go).
	Alerts *Alerts `toml:"alerts"`
}

// Replies configures mail going out: replies from phones and bounces.
type Replies struct {
	// Smarthost is the host:port replies and bounces are handed to; empty
	// means inbound SMS are only logged and no bounces are sent.
	Smarthost    string `toml:"smarthost"`
	TLS          string `toml:"tls"` // starttls (when offered), required, implicit or none
	Username     string `toml:"username"`
	Password     Secret `toml:"password"`
	PasswordFile string `toml:"password_file"`
	// FromDomain is the domain of reply senders (<phone>@from_domain);
	// default: the first smtp.domains entry, so answering reaches us.
	FromDomain string `toml:"from_domain"`
	// Subject of a reply when the conversation has no subject to answer
	// ("Re: ..."); {phone} and {to} are replaced.
	Subject     string        `toml:"subject"`
	ReplyWindow time.Duration `toml:"reply_window"` // how long the last writer gets the replies
	CatchAll    string        `toml:"catch_all"`    // replies nobody is waiting for; "" logs them only
	// Ambiguous is where a reply goes that more than one writer may be
	// meant for (a pool ran out, or an explicit sender was taken): "last"
	// (the default; the writer who wrote last) or "catch_all".
	Ambiguous string        `toml:"ambiguous"`
	Bounces   *bool         `toml:"bounces"` // RFC 3464 notices of failed SMS (default true)
	RetryMin  time.Duration `toml:"retry_min"`
	RetryMax  time.Duration `toml:"retry_max"`
	MaxAge    time.Duration `toml:"max_age"` // give up on a mail this long after it was queued
}

// UseSmartEncoding reports whether smtp.smart_encoding is on (the default).
func (s SMTP) UseSmartEncoding() bool { return s.SmartEncoding == nil || *s.SmartEncoding }

// SendBounces reports whether failed SMS are reported by mail.
func (r Replies) SendBounces() bool { return r.Smarthost != "" && (r.Bounces == nil || *r.Bounces) }

// The answers to STOP and START when the configuration gives none.
const (
	DefaultConfirmation      = "You are unsubscribed and will get no more messages from this number. Reply START to subscribe again."
	DefaultOptInConfirmation = "You are subscribed again. Reply STOP to unsubscribe."
)

// Consent is the [consent] section: what an inbound SMS that is only a
// keyword does (opt-out, opt-in, help).
type Consent struct {
	// Keyword lists; a list left out takes the built-in one (English,
	// Hebrew and Persian words), an empty list disables the keyword.
	OptOut []string `toml:"opt_out"`
	OptIn  []string `toml:"opt_in"`
	Help   []string `toml:"help"`
	// Scope is what an opt-out stops: "number" (SMS from the number the
	// phone wrote to), "account" (from the account that number is
	// configured for) or "all".
	Scope string `toml:"scope"`
	// Answers sent back through the same provider and number; "" sends none.
	Confirmation      *string `toml:"confirmation"`
	OptInConfirmation *string `toml:"opt_in_confirmation"`
	HelpText          string  `toml:"help_text"`
	// MaxPerAccount caps the suppressions the API and the CLI may add to
	// one account (and to every account's list); retention never purges
	// them. Opt-outs sent by phones are always kept.
	MaxPerAccount int `toml:"max_per_account"`
}

// Limits protects phones and budgets from runaway senders.
type Limits struct {
	// DestinationPerMinute caps SMS to any one number per minute, so a
	// looping script cannot flood a phone; 0 is unlimited.
	DestinationPerMinute int `toml:"destination_per_minute"`
	// ScheduleHorizon is how far ahead X-SMS-Send-At / send_at may be.
	ScheduleHorizon time.Duration `toml:"schedule_horizon"`
}

// StringList decodes from a TOML string or array of strings.
type StringList []string

// UnmarshalTOML implements toml.Unmarshaler.
func (l *StringList) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*l = StringList{v}
	case []any:
		out := make(StringList, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("want a string or a list of strings, got %T in the list", e)
			}
			out = append(out, s)
		}
		*l = out
	default:
		return fmt.Errorf("want a string or a list of strings, got %T", v)
	}
	return nil
}

// Provider is one configured provider instance. The keys common to all
// types are here; Settings holds the type's own keys.
type Provider struct {
	Name    string `toml:"name"`
	Type    string `toml:"type"`
	BaseURL string `toml:"base_url"`
	// Concurrency, if set, is a fixed limit on simultaneous calls to this
	// provider. Unset (0), the limit adapts to how the provider answers,
	// up to MaxConcurrency (default bridge.DefaultMaxConcurrency).
	Concurrency    int           `toml:"concurrency"`
	MaxConcurrency int           `toml:"max_concurrency"`
	Timeout        time.Duration `toml:"timeout"` // HTTP client timeout for one call
	// Rate paces the sends (recipients per second, per instance; 0: no
	// pacing): at most Burst in any Burst/Rate seconds. Burst defaults to
	// Rate rounded down (at least 1): "at most Rate a second".
	Rate  float64 `toml:"rate"`
	Burst int     `toml:"burst"`

	// InboundSecret guards this provider's callback URLs
	// (/v1/providers/<name>/inbound and /status, ?secret=...); without
	// one those URLs answer 404.
	InboundSecret     Secret `toml:"inbound_secret"`
	InboundSecretFile string `toml:"inbound_secret_file"`
	// InboundFields and StatusFields name extra request fields for the
	// logical fields of an inbound SMS (from, to, text, id, received) and
	// of a delivery report (id, to, status, detail).
	InboundFields map[string][]string `toml:"inbound_fields"`
	StatusFields  map[string][]string `toml:"status_fields"`
	// PollInterval is how often providers without callbacks (ippanel)
	// are asked for inbound SMS and delivery reports; 0 turns polling off.
	PollInterval time.Duration `toml:"poll_interval"`
	// Settings is the pointer returned by Kinds for Type, decoded from the
	// same table. Nil for types without settings.
	Settings any `toml:"-"`
}

// maxRate and maxBurst bound a provider's pace: the dispatcher keeps the
// start time of each send within the last Burst, and a pace above what
// one instance can claim is a mistake (no provider allows it per account).
// maxConcurrency bounds the calls (goroutines, connections) under way to
// one provider, fixed or adaptive.
const (
	maxRate        = 10000
	maxBurst       = 10000
	maxConcurrency = 1024
)

// checkRate validates a provider's rate and burst.
func checkRate(key string, p Provider, add func(key, format string, args ...any)) {
	switch {
	case math.IsNaN(p.Rate) || p.Rate < 0:
		add(key+".rate", "must be positive (recipients per second; 0 or absent: not paced)")
	case p.Rate > maxRate:
		add(key+".rate", "%g is more than %d recipients per second", p.Rate, maxRate)
	case p.Rate > 0 && p.Rate < 0.001:
		add(key+".rate", "%g is less than one recipient in 1000 s; remove the provider from the routes instead", p.Rate)
	}
	switch {
	case p.Burst < 0:
		add(key+".burst", "must be positive")
	case p.Burst > maxBurst:
		add(key+".burst", "%d is more than %d", p.Burst, maxBurst)
	case p.Burst > 0 && p.Rate == 0:
		add(key+".burst", "needs a rate")
	}
}

// Route sends numbers starting with Prefix to Provider, then to the
// Fallback providers in order when it keeps failing.
type Route struct {
	Prefix   string   `toml:"prefix"` // "+" and digits; "+" alone matches every number
	Provider string   `toml:"provider"`
	Fallback []string `toml:"fallback"`
}

// Kinds returns a pointer to a fresh settings struct for a provider type,
// or ok=false for an unknown type. A settings struct with a
// `Validate() error` method has it called after decoding; each error it
// returns (errors.Join is unwrapped) must start with its key name.
type Kinds func(typ string) (settings any, ok bool)

// Load reads, decodes, defaults and validates the file at path.
func Load(path string, kinds Kinds) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(string(b), kinds)
}

// Problems is every problem found in a configuration, each prefixed with
// its key path.
type Problems []string

func (p Problems) Error() string {
	return "config: " + strings.Join(p, "; ")
}

// Parse decodes a configuration from TOML text. The TOML syntax is read
// by BurntSushi/toml into a generic document; the decoder in decode.go
// then fills the structs, so that every unknown key and every value of the
// wrong type is reported, with its full path, together with the
// validation problems.
func Parse(text string, kinds Kinds) (*Config, error) {
	var doc map[string]any
	if _, err := toml.Decode(text, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var (
		c Config
		d decoder
	)
	// Providers are decoded in two steps: the common keys, then the
	// keys of the type named in the table.
	rawProviders, hasProviders := doc["providers"]
	delete(doc, "providers")
	d.table("", doc, true, reflect.ValueOf(&c).Elem())
	if hasProviders {
		c.Providers = d.providers(rawProviders, kinds)
	}
	// 0 reads as "keep forever" to some and "keep nothing" to others, so
	// the one who wrote it must say which; defaults() would make it 90
	// days, so look before.
	var retentionZero bool
	if st, ok := doc["store"].(map[string]any); ok {
		_, set := st["retention"]
		retentionZero = set && c.Store.Retention == 0 && !d.covers("store.retention: ")
	}
	c.defaults()
	probs := d.probs
	if retentionZero {
		probs = append(probs, "store.retention: must be a duration such as \"2160h\" (90 days); to keep records for years, write them out (\"87600h\" is ten years)")
	}
	for _, p := range c.validate() {
		if !d.covers(p) {
			probs = append(probs, p)
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return &c, nil
}

// providers decodes the [[providers]] tables: the keys every type has
// into Provider, and the same table into the settings struct of its type.
func (d *decoder) providers(raw any, kinds Kinds) []Provider {
	var tables []map[string]any
	switch a := raw.(type) {
	case []map[string]any:
		tables = a
	case []any:
		for i, e := range a {
			m, ok := e.(map[string]any)
			if !ok {
				d.mismatch(fmt.Sprintf("providers[%d]", i), "a table", e)
				continue
			}
			tables = append(tables, m)
		}
	default:
		d.mismatch("providers", "an array of tables ([[providers]])", raw)
		return nil
	}
	var out []Provider
	for i, tbl := range tables {
		key := fmt.Sprintf("providers[%d]", i)
		var p Provider
		dsts := []reflect.Value{reflect.ValueOf(&p).Elem()}
		typ, _ := tbl["type"].(string)
		strict := true
		switch s, ok := kinds(typ); {
		case typ == "":
			if _, set := tbl["type"]; !set {
				d.add(key+".type", "must be set")
			}
			strict = false
		case !ok:
			d.add(key+".type", "unknown provider type %q", typ)
			strict = false
		case s != nil:
			p.Settings = s
			dsts = append(dsts, reflect.ValueOf(s).Elem())
		}
		d.table(key, tbl, strict, dsts...)
		out = append(out, p)
	}
	return out
}

func (c *Config) defaults() {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Store.Path, "smsbridge.db")
	defDur(&c.Store.Retention, 90*24*time.Hour)
	def(&c.Log.Level, "info")
	def(&c.SMTP.Listen, "127.0.0.1:2525")
	def(&c.SMTP.Hostname, "localhost")
	def(&c.SMTP.DefaultRegion, "IL")
	def(&c.SMTP.Text, "body")
	if c.SMTP.MaxMessageBytes == 0 {
		c.SMTP.MaxMessageBytes = 1 << 20
	}
	defInt(&c.SMTP.MaxRecipients, 100)
	defInt(&c.SMTP.MaxSegments, 10)
	defInt(&c.SMTP.MaxConnections, 200)
	// Above Postfix's default_destination_concurrency_limit (20), so an
	// MTA relaying through us never meets the cap in normal work.
	defInt(&c.SMTP.MaxConnectionsPerIP, 50)
	defInt(&c.SMTP.MaxBadCommands, 10)
	defInt(&c.SMTP.MaxHeaderFields, 1000)
	defInt(&c.SMTP.MaxHeaderBytes, 64<<10)
	defDur(&c.SMTP.ReadTimeout, time.Minute)
	defDur(&c.SMTP.WriteTimeout, time.Minute)
	defDur(&c.SMTP.MaxSessionDuration, 10*time.Minute)
	defInt(&c.SMTP.MaxCommands, 1000)
	defInt(&c.SMTP.AuthFailuresPerClient, 10)
	defInt(&c.SMTP.AuthFailuresPerAccount, 30)
	if c.SMTP.AllowedNetworks == nil {
		// An explicit empty list stays empty: no network is trusted.
		c.SMTP.AllowedNetworks = slices.Clone(DefaultNetworks)
	}
	defDur(&c.Limits.ScheduleHorizon, 365*24*time.Hour)
	def(&c.Consent.Scope, "number")
	defInt(&c.Consent.MaxPerAccount, 100_000)
	if c.Consent.Confirmation == nil {
		s := DefaultConfirmation
		c.Consent.Confirmation = &s
	}
	if c.Consent.OptInConfirmation == nil {
		s := DefaultOptInConfirmation
		c.Consent.OptInConfirmation = &s
	}
	def(&c.HTTP.Listen, "127.0.0.1:8025")
	defInt(&c.HTTP.MaxConnections, 256)
	defInt(&c.HTTP.MaxHeaderBytes, 64<<10)
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = 1 << 20
	}
	defDur(&c.HTTP.ReadHeaderTimeout, 10*time.Second)
	defDur(&c.HTTP.ReadTimeout, 30*time.Second)
	defDur(&c.HTTP.WriteTimeout, 30*time.Second)
	defDur(&c.HTTP.IdleTimeout, 2*time.Minute)
	defDur(&c.Queue.MaxAge, 24*time.Hour)
	defDur(&c.Queue.RetryMin, 30*time.Second)
	defDur(&c.Queue.RetryMax, time.Hour)
	defDur(&c.Queue.SendTimeout, 30*time.Second)
	defDur(&c.Queue.ShutdownGrace, 15*time.Second)
	if c.Queue.DelayWarning == nil {
		d := DefaultDelayWarning
		c.Queue.DelayWarning = &d
	}
	for i := range c.Providers {
		defInt(&c.Providers[i].MaxConcurrency, bridge.DefaultMaxConcurrency)
		defDur(&c.Providers[i].Timeout, 30*time.Second)
	}
	def(&c.Replies.TLS, "starttls")
	if len(c.SMTP.Domains) > 0 {
		def(&c.Replies.FromDomain, c.SMTP.Domains[0])
	}
	def(&c.Replies.Subject, "SMS from {phone}")
	defDur(&c.Replies.ReplyWindow, 7*24*time.Hour)
	defDur(&c.Replies.RetryMin, time.Minute)
	defDur(&c.Replies.RetryMax, time.Hour)
	defDur(&c.Replies.MaxAge, 5*24*time.Hour)
}

var (
	routePrefix = regexp.MustCompile(`^\+[0-9]*$`)
	senderID    = regexp.MustCompile(`^[\p{L}\p{N} +._-]{1,16}$`)
)

// twoWay is the number a sender ID stands for when phones can answer it
// (digits, optionally with "+" and separators: a phone number or a short
// code), in one spelling for all the ways of writing it; ok is false for
// an alphanumeric sender ID, which phones cannot answer.
func twoWay(id, region string) (key string, ok bool) {
	digits := strings.NewReplacer(" ", "", "-", "", ".", "").Replace(strings.TrimSpace(id))
	rest := strings.TrimPrefix(digits, "+")
	if rest == "" || strings.Trim(rest, "0123456789") != "" {
		return "", false
	}
	// As bridge.OurKey reads a number: international digits may come
	// without the "+", a national number has its leading 0.
	if !strings.HasPrefix(digits, "+") && !strings.HasPrefix(digits, "0") {
		if len(digits) < 6 {
			return digits, true // a short code
		}
		digits = "+" + digits
	}
	if n, err := phonenumbers.Parse(digits, region); err == nil {
		return phonenumbers.Format(n, phonenumbers.E164), true
	}
	return digits, true
}

// sharedNumbers finds sender numbers that phones can answer and that more
// than one account may send from. The answer to such a number belongs to
// whichever account wrote last, so each account would read the other's
// conversation: refused. Alphanumeric sender IDs are one-way and may be
// shared.
func (c *Config) sharedNumbers() Problems {
	var probs Problems
	type owner struct {
		account string
		index   int
	}
	owners := map[string]owner{}
	for i, a := range c.Accounts {
		for j, id := range a.SenderIDs {
			key, ok := twoWay(id, c.SMTP.DefaultRegion)
			if !ok {
				continue
			}
			first, taken := owners[key]
			switch {
			case !taken:
				owners[key] = owner{a.Name, i}
			case first.index != i:
				probs = append(probs, fmt.Sprintf("accounts[%d].sender_ids[%d]: number %q is also a sender ID of account %q (accounts[%d]); "+
					"phones answer a number, so it may belong to one account only, or account %q would read %q's conversations and the reverse",
					i, j, id, first.account, first.index, a.Name, first.account))
			}
		}
	}
	return probs
}

func (c *Config) validate() Problems {
	var probs Problems
	add := func(key, format string, args ...any) {
		probs = append(probs, key+": "+fmt.Sprintf(format, args...))
	}
	checkAddr := func(key, v string) {
		if err := checkHostPort(v); err != nil {
			add(key, "%v", err)
		}
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}

	if u := c.Store.URL.Value(); u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		add("store.url", "must be a postgres:// URL")
	}
	switch {
	case c.Store.Retention < 24*time.Hour:
		// Go durations have no days: "90m" meant as 90 days would purge
		// every message an hour and a half after it was sent.
		add("store.retention", "must be at least 24h (durations have no days: 90 days is \"2160h\"), not %s", c.Store.Retention)
	case c.Store.Retention < c.Replies.ReplyWindow:
		add("store.retention", "must be at least replies.reply_window (%s): a conversation purged sooner loses its replies' way back", c.Replies.ReplyWindow)
	}
	checkAddr("smtp.listen", c.SMTP.Listen)
	if len(c.SMTP.Domains) == 0 {
		add("smtp.domains", "at least one domain is required")
	}
	for i, d := range c.SMTP.Domains {
		if d == "" || strings.ContainsAny(d, "@ \t") || strings.HasSuffix(d, ".") {
			add(fmt.Sprintf("smtp.domains[%d]", i), "%q is not a domain name", d)
		}
	}
	if !phonenumbers.GetSupportedRegions()[strings.ToUpper(c.SMTP.DefaultRegion)] {
		add("smtp.default_region", "%q is not an ISO 3166 region known to libphonenumber", c.SMTP.DefaultRegion)
	}
	c.SMTP.DefaultRegion = strings.ToUpper(c.SMTP.DefaultRegion)
	if (c.SMTP.TLSCert == "") != (c.SMTP.TLSKey == "") {
		add("smtp.tls_cert", "tls_cert and tls_key must be set together")
	}
	if c.SMTP.RequireAuth && c.SMTP.TLSCert == "" {
		add("smtp.require_auth", "AUTH is offered only over TLS: set smtp.tls_cert and smtp.tls_key")
	}
	switch c.SMTP.Text {
	case "body", "subject", "subject+body":
	default:
		add("smtp.text", "must be body, subject or subject+body, not %q", c.SMTP.Text)
	}
	positive := func(key string, v int64) {
		if v < 0 {
			add(key, "must be positive")
		}
	}
	positive("smtp.max_message_bytes", c.SMTP.MaxMessageBytes)
	positive("smtp.max_recipients", int64(c.SMTP.MaxRecipients))
	positive("smtp.max_segments", int64(c.SMTP.MaxSegments))
	positive("smtp.max_connections", int64(c.SMTP.MaxConnections))
	positive("smtp.max_connections_per_ip", int64(c.SMTP.MaxConnectionsPerIP))
	positive("smtp.max_bad_commands", int64(c.SMTP.MaxBadCommands))
	positive("smtp.max_header_fields", int64(c.SMTP.MaxHeaderFields))
	positive("smtp.max_header_bytes", int64(c.SMTP.MaxHeaderBytes))
	if c.SMTP.MaxHeaderBytes > 0 && c.SMTP.MaxHeaderBytes < 1024 {
		// Less would refuse ordinary mail: one Received line is 200 bytes.
		add("smtp.max_header_bytes", "must be at least 1024")
	}
	if c.SMTP.TLSListen != "" {
		checkAddr("smtp.tls_listen", c.SMTP.TLSListen)
		if c.SMTP.TLSCert == "" {
			add("smtp.tls_listen", "implicit TLS needs smtp.tls_cert and smtp.tls_key")
		}
	}
	checkNetworks := func(key string, list []string) {
		for i, n := range list {
			key := fmt.Sprintf("%s[%d]", key, i)
			p, err := netip.ParsePrefix(n)
			switch {
			case err != nil:
				add(key, "%q is not a CIDR such as 192.0.2.0/24 or 2001:db8::/32 (a single host is 192.0.2.1/32)", n)
			case p != p.Masked():
				// 10.1.2.3/8 means 10.0.0.0/8 to the parser, which is
				// rarely what was meant: make the operator say which.
				add(key, "%q has bits set past the prefix length: write %s, or /%d for the single host", n, p.Masked(), p.Addr().BitLen())
			}
		}
	}
	checkNetworks("smtp.allowed_networks", c.SMTP.AllowedNetworks)
	positive("smtp.max_commands", int64(c.SMTP.MaxCommands))
	positive("smtp.auth_failures_per_client", int64(c.SMTP.AuthFailuresPerClient))
	positive("smtp.auth_failures_per_account", int64(c.SMTP.AuthFailuresPerAccount))
	if c.SMTP.MaxSessionDuration < 0 {
		add("smtp.max_session_duration", "must be positive")
	}

	checkAddr("http.listen", c.HTTP.Listen)
	if c.HTTP.PublicURL != "" {
		if u, err := url.Parse(c.HTTP.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("http.public_url", "must be an absolute http or https URL")
		}
	}
	positive("http.max_connections", int64(c.HTTP.MaxConnections))
	positive("http.max_header_bytes", int64(c.HTTP.MaxHeaderBytes))
	positive("http.max_body_bytes", c.HTTP.MaxBodyBytes)
	for key, d := range map[string]time.Duration{
		"http.read_header_timeout": c.HTTP.ReadHeaderTimeout, "http.read_timeout": c.HTTP.ReadTimeout,
		"http.write_timeout": c.HTTP.WriteTimeout, "http.idle_timeout": c.HTTP.IdleTimeout,
	} {
		if d < 0 {
			add(key, "must be positive")
		}
	}

	if c.Queue.RetryMin > c.Queue.RetryMax {
		add("queue.retry_min", "must not exceed queue.retry_max (%s)", c.Queue.RetryMax)
	}
	for key, d := range map[string]time.Duration{
		"queue.max_age": c.Queue.MaxAge, "queue.retry_min": c.Queue.RetryMin, "queue.retry_max": c.Queue.RetryMax,
		"queue.send_timeout": c.Queue.SendTimeout, "queue.shutdown_grace": c.Queue.ShutdownGrace,
		"queue.delay_warning": c.Queue.DelayWarningOrDefault(),
	} {
		if d < 0 {
			add(key, "must be positive")
		}
	}

	if len(c.Accounts) == 0 {
		add("accounts", "at least one account is required")
	}
	names := map[string]bool{}
	tokens := map[string]bool{}
	positive("limits.destination_per_minute", int64(c.Limits.DestinationPerMinute))
	if c.Limits.ScheduleHorizon < 0 {
		add("limits.schedule_horizon", "must be positive")
	}
	positive("consent.max_per_account", int64(c.Consent.MaxPerAccount))
	switch c.Consent.Scope {
	case "number", "account", "all":
	default:
		add("consent.scope", "must be number, account or all, not %q", c.Consent.Scope)
	}
	seen := map[string]string{}
	for _, l := range []struct {
		key   string
		words []string
	}{{"consent.opt_out", c.Consent.OptOut}, {"consent.opt_in", c.Consent.OptIn}, {"consent.help", c.Consent.Help}} {
		for i, w := range l.words {
			key := fmt.Sprintf("%s[%d]", l.key, i)
			n := strings.ToLower(strings.Join(strings.Fields(w), " "))
			switch {
			case n == "":
				add(key, "a keyword cannot be empty")
			case len(w) > 64:
				add(key, "a keyword is at most 64 bytes")
			case seen[n] != "" && seen[n] != l.key:
				add(key, "%q is also in %s", w, seen[n])
			default:
				seen[n] = l.key
			}
		}
	}
	for key, v := range map[string]string{"consent.confirmation": *c.Consent.Confirmation,
		"consent.opt_in_confirmation": *c.Consent.OptInConfirmation, "consent.help_text": c.Consent.HelpText} {
		if len(v) > 640 {
			add(key, "at most 640 bytes (an answer is one short SMS)")
		}
	}
	for i, a := range c.Accounts {
		key := fmt.Sprintf("accounts[%d]", i)
		if a.Alerts != nil {
			probs = append(probs, a.Alerts.validate(key+".alerts", c.SMTP.DefaultRegion)...)
		}
		if a.Name == "" {
			add(key+".name", "must be set")
		} else if names[a.Name] {
			add(key+".name", "duplicate account %q", a.Name)
		}
		names[a.Name] = true
		if len(a.Emails) == 0 {
			add(key+".emails", "at least one address or *@domain pattern is required")
		}
		for j, e := range a.Emails {
			if !addressPattern(e) {
				add(fmt.Sprintf("%s.emails[%d]", key, j), "%q is not an address or *@domain pattern", e)
			}
		}
		for j, e := range a.ReplyTo {
			if !addressPattern(e) {
				add(fmt.Sprintf("%s.reply_to[%d]", key, j), "%q is not an address or *@domain pattern", e)
			}
		}
		for j, h := range a.APITokenSHA256 {
			if len(h) != 64 || strings.Trim(strings.ToLower(h), "0123456789abcdef") != "" {
				add(fmt.Sprintf("%s.api_token_sha256[%d]", key, j), "must be 64 hex digits (sha256sum of the token), not the token itself")
			} else if tokens[strings.ToLower(h)] {
				add(fmt.Sprintf("%s.api_token_sha256[%d]", key, j), "token already belongs to another account")
			}
			tokens[strings.ToLower(h)] = true
		}
		positive(key+".messages_per_minute", int64(a.MessagesPerMinute))
		if len(a.HelpText) > 640 {
			add(key+".help_text", "at most 640 bytes (an answer is one short SMS)")
		}
		if a.MessagesPerMinute > 0 && a.MessagesPerMinute < c.SMTP.MaxRecipients {
			// A message counts against the limit whole: one with more
			// recipients than the limit is legal and never fits.
			add(key+".messages_per_minute", "%d is less than smtp.max_recipients (%d): a message to more recipients "+
				"would be accepted by the limit on recipients and refused for ever by this one; raise it or lower smtp.max_recipients",
				a.MessagesPerMinute, c.SMTP.MaxRecipients)
		}
		positive(key+".max_segments", int64(a.MaxSegments))
		switch a.Overflow {
		case "", "refuse", "truncate":
		default:
			add(key+".overflow", "must be refuse or truncate, not %q", a.Overflow)
		}
		if _, err := bridge.ParseNotify(a.Notify); err != nil {
			add(key+".notify", "%s", err)
		}
		if a.SMTPPasswordHash != "" {
			if _, err := bcrypt.Cost([]byte(a.SMTPPasswordHash)); err != nil {
				add(key+".smtp_password_hash", "not a bcrypt hash (make one with `smsbridge hash-password`)")
			}
		}
		checkNetworks(key+".networks", a.Networks)
		for j, s := range a.SenderIDs {
			if !senderID.MatchString(s) {
				add(fmt.Sprintf("%s.sender_ids[%d]", key, j), "%q is not a sender ID (letters, digits, +, at most 16)", s)
			}
		}
		for j, n := range a.Pool {
			k := fmt.Sprintf("%s.pool[%d]", key, j)
			switch _, twoway := twoWay(n, c.SMTP.DefaultRegion); {
			case !slices.Contains(a.SenderIDs, n):
				add(k, "%q is not one of the account's sender_ids", n)
			case !twoway:
				add(k, "%q is not a phone number: phones cannot answer a sender ID, so it cannot keep a conversation apart", n)
			case slices.Index(a.Pool, n) < j:
				add(k, "%q is listed twice", n)
			}
		}
	}

	probs = append(probs, c.sharedNumbers()...)

	provs := map[string]bool{}
	for i, p := range c.Providers {
		key := fmt.Sprintf("providers[%d]", i)
		if p.Name == "" {
			add(key+".name", "must be set")
		} else if provs[p.Name] {
			add(key+".name", "duplicate provider %q", p.Name)
		}
		provs[p.Name] = true
		if p.BaseURL != "" {
			if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(key+".base_url", "must be an absolute https or http URL")
			}
		}
		for _, c := range []struct {
			key string
			n   int
		}{{".concurrency", p.Concurrency}, {".max_concurrency", p.MaxConcurrency}} {
			if c.n > maxConcurrency {
				add(key+c.key, "%d is more than %d calls at a time", c.n, maxConcurrency)
			}
			positive(key+c.key, int64(c.n))
		}
		if p.Timeout < 0 {
			add(key+".timeout", "must be positive")
		}
		checkRate(key, p, add)
		if sec, err := ResolveSecret("inbound_secret", p.InboundSecret, p.InboundSecretFile); err != nil {
			add(key, "%v", err) // the error starts with the key that is wrong
		} else {
			c.Providers[i].InboundSecret = sec
			if sec != "" && len(sec.Value()) < 16 {
				add(key+".inbound_secret", "must be at least 16 characters: it is the only thing guarding the callback URLs")
			}
		}
		for name, fields := range map[string]map[string][]string{"inbound_fields": p.InboundFields, "status_fields": p.StatusFields} {
			known := inboundFieldNames
			if name == "status_fields" {
				known = statusFieldNames
			}
			for f, names := range fields {
				if !slices.Contains(known, f) {
					add(key+"."+name+"."+f, "unknown field; the fields are %s", strings.Join(known, ", "))
				}
				if len(names) == 0 {
					add(key+"."+name+"."+f, "name at least one request field")
				}
			}
		}
		if p.PollInterval < 0 {
			add(key+".poll_interval", "must be positive")
		} else if p.PollInterval > 0 && p.PollInterval < time.Second {
			add(key+".poll_interval", "must be at least 1s")
		} else if p.PollInterval > 0 && p.Type != "ippanel" {
			add(key+".poll_interval", "only ippanel providers are polled; %s calls back (inbound_secret)", p.Type)
		}
		if v, ok := p.Settings.(interface{ Validate() error }); ok {
			for _, err := range flatten(v.Validate()) {
				probs = append(probs, key+"."+err.Error())
			}
		}
	}
	if len(c.Providers) == 0 {
		add("providers", "at least one provider is required")
	}

	probs = append(probs, c.Replies.validate()...)

	if len(c.Routes) == 0 {
		add("routes", "at least one route is required")
	}
	prefixes := map[string]bool{}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if !routePrefix.MatchString(r.Prefix) {
			add(key+".prefix", "%q must be + followed by digits (E.164), or + alone for every number", r.Prefix)
		} else if prefixes[r.Prefix] {
			add(key+".prefix", "duplicate prefix %q", r.Prefix)
		}
		prefixes[r.Prefix] = true
		if !provs[r.Provider] {
			add(key+".provider", "unknown provider %q", r.Provider)
		}
		// A provider named twice would have failover go back to it (with
		// fallback = ["p"] on p, a refusal moved the recipient to p again
		// at once, for ever).
		seen := map[string]bool{r.Provider: true}
		for j, f := range r.Fallback {
			switch {
			case !provs[f]:
				add(fmt.Sprintf("%s.fallback[%d]", key, j), "unknown provider %q", f)
			case seen[f]:
				add(fmt.Sprintf("%s.fallback[%d]", key, j), "provider %q is already in this route", f)
			}
			seen[f] = true
		}
	}
	return probs
}

// The logical fields of provider callbacks that inbound_fields and
// status_fields may name more request fields for.
var (
	inboundFieldNames = []string{"from", "to", "text", "id", "received"}
	statusFieldNames  = []string{"id", "to", "status", "detail"}
)

func (r *Replies) validate() Problems {
	var probs Problems
	add := func(key, format string, args ...any) {
		probs = append(probs, "replies."+key+": "+fmt.Sprintf(format, args...))
	}
	if r.Smarthost != "" {
		if err := checkHostPort(r.Smarthost); err != nil {
			add("smarthost", "%v", err)
		}
	}
	switch r.TLS {
	case "starttls", "required", "implicit", "none":
	default:
		add("tls", "must be starttls, required, implicit or none, not %q", r.TLS)
	}
	pw, err := ResolveSecret("password", r.Password, r.PasswordFile)
	if err != nil {
		add("password", "%v", err)
	}
	r.Password = pw
	if (r.Username == "") != (pw == "") {
		add("username", "username and password must be set together")
	}
	if r.Username != "" && r.TLS == "none" {
		add("tls", "AUTH sends the password: use starttls, required or implicit")
	}
	if r.FromDomain == "" || strings.ContainsAny(r.FromDomain, "@ \t<>") {
		add("from_domain", "%q is not a domain name", r.FromDomain)
	}
	if strings.ContainsAny(r.Subject, "\r\n") {
		add("subject", "must be one line")
	}
	if r.CatchAll != "" {
		if a, err := mail.ParseAddress(r.CatchAll); err != nil || a.Name != "" {
			add("catch_all", "%q is not a mail address", r.CatchAll)
		}
	}
	switch r.Ambiguous {
	case "", "last", "catch_all":
	default:
		add("ambiguous", "must be last or catch_all, not %q", r.Ambiguous)
	}
	for key, d := range map[string]time.Duration{"reply_window": r.ReplyWindow, "retry_min": r.RetryMin, "retry_max": r.RetryMax, "max_age": r.MaxAge} {
		if d < 0 {
			add(key, "must be positive")
		}
	}
	if r.RetryMin > r.RetryMax {
		add("retry_min", "must not exceed replies.retry_max (%s)", r.RetryMax)
	}
	return probs
}

// checkHostPort accepts host:port with a numeric port, which is what a
// listener or dialer can use without a services database: ":http-x" or
// "127.0.0.1:99999" would otherwise pass check-config and fail at start.
func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("must be host:port: %w", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q must be a number from 0 to 65535", port)
	}
	return nil
}

// flatten undoes errors.Join so each problem gets its own key path.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// addressPattern reports whether e is an address or a "*@domain" pattern.
func addressPattern(e string) bool {
	local, domain, ok := strings.Cut(e, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") &&
		(!strings.Contains(local, "*") || local == "*")
}

// DelayWarningOrDefault is queue.delay_warning, or its default when unset.
func (q Queue) DelayWarningOrDefault() time.Duration {
	if q.DelayWarning == nil {
		return DefaultDelayWarning
	}
	return *q.DelayWarning
}
