// Package mindcrm sends SMS through a MindCRM instance's send API
// (GET /api/send_sms.php, ../shared/provider-docs/mindcrm-send-sms.txt).
//
// The API takes one phone per call, in one of two modes: a raw message
// (source_number + message) or a stored template (sms_template_id), where
// any parameter given explicitly overrides the template's value. It has no
// credentials: the worker id (user_id) only selects the account the message
// is logged against.
package mindcrm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

// DefaultTimeZone is the zone scheduled sends are expressed in when
// time_zone is not set: MindCRM is an Israeli product and its date/time
// parameters carry no offset.
const DefaultTimeZone = "Asia/Jerusalem"

// Documented limits.
const (
	maxText   = 500 // "message ... Max 500 characters."
	maxSender = 12  // "source_number ... Alphanumeric only, max 12 characters."
)

// Config is a MindCRM provider's own configuration.
type Config struct {
	BaseURL            string `toml:"base_url"`             // required: each customer has their own instance
	UserID             int64  `toml:"user_id"`              // worker id, sent as user_id when > 0
	RepositoryAssignID int64  `toml:"repository_assign_id"` // optional, sent when > 0
	TimeZone           string `toml:"time_zone"`            // default "Asia/Jerusalem"; scheduled date/time are in it
}

// Validate fills defaults and returns every problem joined, each starting
// with its key name.
func (c *Config) Validate() error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("base_url: must be set to the address of the customer's MindCRM instance"))
	} else if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("base_url: must be an absolute http or https URL"))
	} else if u.RawQuery != "" || u.Fragment != "" {
		// The query is ours to build; anything here would be dropped.
		errs = append(errs, errors.New("base_url: must not have a query or fragment"))
	}
	if c.UserID < 0 {
		errs = append(errs, errors.New("user_id: must not be negative"))
	}
	if c.RepositoryAssignID < 0 {
		errs = append(errs, errors.New("repository_assign_id: must not be negative"))
	}
	if c.TimeZone == "" {
		c.TimeZone = DefaultTimeZone
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("time_zone: %q is not a known IANA time zone: %w", c.TimeZone, err))
	}
	return errors.Join(errs...)
}

// Provider sends SMS through one MindCRM instance. It is safe for
// concurrent use.
type Provider struct {
	name     string
	cfg      Config
	endpoint *url.URL
	loc      *time.Location
	hc       *http.Client
	log      *slog.Logger
	now      func() time.Time
}

var (
	_ bridge.Provider         = (*Provider)(nil)
	_ bridge.RecipientChecker = (*Provider)(nil)
	_ bridge.RequestChecker   = (*Provider)(nil)
	_ bridge.Batcher          = (*Provider)(nil)
)

// New returns a MindCRM provider named name. cfg is validated (and
// defaulted) on a copy. A nil hc gets a client with a 30s timeout; a nil
// log discards.
func New(name string, cfg *Config, hc *http.Client, log *slog.Logger) (*Provider, error) {
	if cfg == nil {
		return nil, fmt.Errorf("mindcrm %s: no configuration", name)
	}
	c := *cfg
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("mindcrm %s: %w", name, err)
	}
	base, _ := url.Parse(c.BaseURL)         // checked by Validate
	loc, _ := time.LoadLocation(c.TimeZone) // checked by Validate
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		name:     name,
		cfg:      c,
		endpoint: base.JoinPath("api", "send_sms.php"),
		loc:      loc,
		hc:       hc,
		log:      log,
		now:      time.Now,
	}, nil
}

// Name is the configured name of this provider.
func (p *Provider) Name() string { return p.name }

// MaxBatch is 1: the API takes one phone per call.
func (p *Provider) MaxBatch() int { return 1 }

// Send makes one API call per recipient, in order. Every recipient's
// outcome, success or failure, is in its Result; one failing does not stop
// the others. Send itself fails only when ctx is done before anything was
// attempted.
func (p *Provider) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, bridge.Temporary(bridge.ReasonProviderDown, err, "%s: not sent", p.name)
	}
	q, qerr := p.query(req)
	res := make([]bridge.Result, len(req.To))
	for i, to := range req.To {
		switch {
		case qerr != nil:
			res[i].Err = qerr
		case ctx.Err() != nil:
			res[i].Err = bridge.Temporary(bridge.ReasonProviderDown, ctx.Err(), "%s: not sent", p.name)
		default:
			res[i] = p.sendOne(ctx, req, q, to)
		}
	}
	return res, nil
}

// query builds the parameters shared by every recipient of req.
func (p *Provider) query(req *bridge.SendRequest) (url.Values, error) {
	if err := p.CheckRequest(req); err != nil {
		return nil, err
	}
	q := url.Values{}
	if req.Template == "" {
		q.Set("source_number", req.Sender)
		q.Set("message", req.Text)
	} else {
		id, _ := templateID(req.Template) // checked by CheckRequest
		q.Set("sms_template_id", strconv.FormatUint(id, 10))
		// Explicit parameters override the template's own values, so
		// send them only when the sender asked for an override.
		if req.Sender != "" {
			q.Set("source_number", req.Sender)
		}
		if req.Text != "" {
			q.Set("message", req.Text)
		}
	}
	if p.cfg.UserID > 0 {
		q.Set("user_id", strconv.FormatInt(p.cfg.UserID, 10))
	}
	if p.cfg.RepositoryAssignID > 0 {
		q.Set("repository_assign_id", strconv.FormatInt(p.cfg.RepositoryAssignID, 10))
	}
	if !req.SendAt.IsZero() {
		at := req.SendAt.In(p.loc)
		q.Set("date", at.Format(time.DateOnly))
		q.Set("time", at.Format(time.TimeOnly))
	}
	return q, nil
}

// sendOne makes the call for one recipient.
func (p *Provider) sendOne(ctx context.Context, req *bridge.SendRequest, shared url.Values, to string) bridge.Result {
	phone, err := p.phone(to)
	if err != nil {
		return bridge.Result{Err: err}
	}
	q := maps.Clone(shared)
	q.Set("phone", phone)
	u := *p.endpoint
	u.RawQuery = q.Encode()

	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return bridge.Result{Err: fmt.Errorf("%s: building request: %w", p.name, err)}
	}
	hreq.Header.Set("Accept", "application/json")
	p.log.DebugContext(ctx, "mindcrm send", "provider", p.name, "message", req.MessageID, "to", to, "text", req.Text)

	var res bridge.Result
	resp, err := providers.Do(ctx, p.hc, p.name, hreq)
	if err == nil {
		if err = providers.Classify(p.name, resp, p.detail(resp.Body), p.now()); err == nil {
			res.Info, err = p.verdict(resp.Body)
		}
	}
	res.Err = err

	attrs := []any{"provider", p.name, "message", req.MessageID, "to", to,
		"user_id", p.cfg.UserID, "template", req.Template}
	if !req.SendAt.IsZero() {
		attrs = append(attrs, "date", q.Get("date"), "time", q.Get("time"))
	}
	if err != nil {
		p.log.WarnContext(ctx, "mindcrm send failed", append(attrs, "temporary", bridge.IsTemporary(err), "err", err)...)
	} else {
		p.log.InfoContext(ctx, "mindcrm sent", attrs...)
	}
	return res
}

// detail is what a non-2xx answer says about itself, for the error text.
func (p *Provider) detail(body []byte) string {
	if r, err := parseResponse(body); err == nil {
		return fmt.Sprintf("stat_code %d: %s", *r.StatCode, providers.Snippet([]byte(r.Description), 200))
	}
	return providers.Snippet(body, 80)
}

// CheckRecipient refuses anything but an Israeli mobile number with one of
// the prefixes the API accepts.
func (p *Provider) CheckRecipient(to string) error {
	_, err := p.phone(to)
	return err
}

// phone converts an E.164 Israeli mobile number ("+972501234567") to the
// national form the API wants ("0501234567").
func (p *Provider) phone(to string) (string, error) {
	if strings.HasPrefix(to, "phonebook:") {
		return "", bridge.Permanent(bridge.ReasonNoRoute, "to",
			"%s: MindCRM has no phonebooks; it sends only to Israeli mobile numbers (prefixes %s)", p.name, prefixes)
	}
	rest, ok := strings.CutPrefix(to, "+972")
	if !ok || len(rest) != 9 || !allDigits(rest) || rest[0] != '5' || !strings.ContainsRune("01234589", rune(rest[1])) {
		return "", bridge.Permanent(bridge.ReasonNoRoute, "to",
			"%s: %q is not an Israeli mobile number MindCRM can reach (prefixes %s, 10 digits)", p.name, to, prefixes)
	}
	return "0" + rest, nil
}

// prefixes are the documented valid mobile prefixes, for error messages.
const prefixes = "050, 051, 052, 053, 054, 055, 058, 059"

// CheckRequest refuses what the API would refuse whatever the recipient:
// a raw message without a valid sender or text, text over 500 characters,
// a template id that is not a positive integer, template parameters.
func (p *Provider) CheckRequest(req *bridge.SendRequest) error {
	if len(req.Params) > 0 {
		return bridge.Permanent(bridge.ReasonInvalid, "params",
			"%s: MindCRM templates take no parameters (their placeholders are filled from the customer record)", p.name)
	}
	raw := req.Template == ""
	if !raw {
		if _, err := templateID(req.Template); err != nil {
			return bridge.Permanent(bridge.ReasonTemplateUnknown, "template",
				"%s: template %q is not a MindCRM sms_template_id (a positive integer)", p.name, req.Template)
		}
	}
	switch {
	case raw && req.Sender == "":
		return bridge.Permanent(bridge.ReasonSenderNotAllowed, "sender",
			"%s: a sender is required without a template: MindCRM's source_number is mandatory for a raw message", p.name)
	case req.Sender != "" && !validSender(req.Sender):
		return bridge.Permanent(bridge.ReasonSenderNotAllowed, "sender",
			"%s: sender %q is not accepted: MindCRM's source_number must be \"alphanumeric only, max 12 characters\"", p.name, req.Sender)
	}
	switch n := utf8.RuneCountInString(req.Text); {
	case raw && strings.TrimSpace(req.Text) == "":
		return bridge.Permanent(bridge.ReasonEmpty, "text", "%s: the message is empty", p.name)
	case n > maxText:
		return bridge.Permanent(bridge.ReasonTooLong, "text",
			"%s: the message is %d characters; MindCRM accepts at most %d", p.name, n, maxText)
	}
	return nil
}

// templateID parses a template name as the API's sms_template_id.
func templateID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, err
	}
	if id == 0 {
		return 0, errors.New("template id 0")
	}
	return id, nil
}

// validSender is the documented source_number rule: ASCII letters and
// digits, at most 12.
func validSender(s string) bool {
	if s == "" || len(s) > maxSender {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ReportsDelivery implements bridge.ReportsDelivery: the MindCRM API has
// no delivery reports (neither callback nor query), so its acceptance of
// an SMS is the last word on it: NOTIFY=SUCCESS is answered "relayed".
func (p *Provider) ReportsDelivery() bool { return false }
