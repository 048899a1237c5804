// Package voipcom sends SMS through the voip-communications api-v2:
// POST {base_url}/sms/send, HTTP Basic auth, a form-encoded body, and a
// JSON send_log with one entry per recipient
// (shared/provider-docs/voip-communications-sms-send.txt).
//
// A message without a sender goes out as BULK; a sender must be one of the
// account's SMS-enabled 2-way numbers. The API has no templates and no
// phonebooks.
package voipcom

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

// deliveryDateLayout is the documented delivery_date format.
const deliveryDateLayout = "2006-01-02 15:04"

// defaultTimeout bounds a call when New is given no *http.Client.
const defaultTimeout = 30 * time.Second

// Provider is a configured voip-communications account. It is safe for
// concurrent use.
type Provider struct {
	name     string
	base     string // base_url without a trailing slash
	apiKey   string
	password string
	secrets  []string // everything redacted from provider-supplied text
	numbers  []string // SMS-enabled numbers as digits, for messages
	allowed  map[string]bool
	batch    int
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
	_ bridge.NumberOwner      = (*Provider)(nil)
)

// New returns a provider for cfg, validating it first (Validate may already
// have run; running it again is harmless). A nil hc gets a client with a 30
// second timeout; a nil log discards.
func New(name string, cfg *Config, hc *http.Client, log *slog.Logger) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", name, err)
	}
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pw := cfg.password.Value()
	p := &Provider{
		name:     name,
		base:     strings.TrimRight(cfg.BaseURL, "/"),
		apiKey:   cfg.APIKey,
		password: pw,
		// A provider that echoes our Authorization header must not leak
		// it either, so its base64 form is redacted too.
		secrets: []string{pw, cfg.APIKey, base64.StdEncoding.EncodeToString([]byte(cfg.APIKey + ":" + pw))},
		numbers: append([]string(nil), cfg.numbers...),
		allowed: make(map[string]bool, len(cfg.numbers)),
		batch:   cfg.BatchSize,
		loc:     cfg.loc,
		hc:      hc,
		log:     log.With("provider", name),
		now:     time.Now,
	}
	for _, n := range cfg.numbers {
		p.allowed[n] = true
	}
	return p, nil
}

// Name is the configured name of this provider.
func (p *Provider) Name() string { return p.name }

// Numbers are the account's SMS-enabled numbers: only SMS to them come
// through this provider (bridge.NumberOwner).
func (p *Provider) Numbers() []string { return slices.Clone(p.numbers) }

// MaxBatch is the configured batch_size.
func (p *Provider) MaxBatch() int { return p.batch }

// CheckRequest refuses what the API can never send: templates, an empty
// text, and a sender that is not one of the account's SMS-enabled numbers.
func (p *Provider) CheckRequest(req *bridge.SendRequest) error {
	if req.Template != "" || len(req.Params) > 0 {
		return bridge.Permanent(bridge.ReasonTemplateUnknown, "template",
			"%s: voip-communications has no templates", p.name)
	}
	if strings.TrimSpace(req.Text) == "" {
		return bridge.Permanent(bridge.ReasonEmpty, "text", "%s: empty text", p.name)
	}
	_, err := p.from(req.Sender)
	return err
}

// from returns the form's `from` for sender: "" for BULK, else the digits
// of one of our SMS-enabled numbers.
func (p *Provider) from(sender string) (string, error) {
	if sender == "" {
		return "", nil
	}
	if d, ok := phoneDigits(sender); ok && p.allowed[d] {
		return d, nil
	}
	if len(p.numbers) == 0 {
		return "", bridge.Permanent(bridge.ReasonSenderNotAllowed, "sender",
			"%s: sender %q not allowed: no SMS-enabled numbers are configured; send without a sender (BULK)",
			p.name, p.redact(sender))
	}
	return "", bridge.Permanent(bridge.ReasonSenderNotAllowed, "sender",
		"%s: sender %q not allowed: use one of the SMS-enabled numbers %s, or no sender (BULK)",
		p.name, p.redact(sender), strings.Join(p.numbers, ", "))
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// CheckRecipient accepts E.164 numbers only: the API has no phonebooks.
func (p *Provider) CheckRecipient(to string) error {
	if strings.HasPrefix(to, "phonebook:") {
		return bridge.Permanent(bridge.ReasonNoRoute, "to",
			"%s: voip-communications has no phonebooks", p.name)
	}
	if !e164.MatchString(to) {
		return bridge.Permanent(bridge.ReasonBadNumber, "to",
			"%s: %q is not an E.164 number", p.name, to)
	}
	return nil
}

// Send submits req in one sms/send call and maps the send_log back to the
// recipients. Recipients the API can never reach fail on their own without
// being sent.
func (p *Provider) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	// The request was checked before acceptance, but the configuration
	// (numbers) may have changed since.
	if err := p.CheckRequest(req); err != nil {
		return nil, err
	}
	from, _ := p.from(req.Sender)

	results := make([]bridge.Result, len(req.To))
	var to []string // digits, as sent
	var idx []int   // index in req.To of each element of to
	for i, r := range req.To {
		if err := p.CheckRecipient(r); err != nil {
			results[i].Err = err
			continue
		}
		to = append(to, strings.TrimPrefix(r, "+"))
		idx = append(idx, i)
	}
	if len(to) == 0 {
		return results, nil
	}

	form := url.Values{"to": {strings.Join(to, ",")}, "msg": {req.Text}}
	if from != "" {
		form.Set("from", from)
	}
	if dd := p.deliveryDate(req.SendAt); dd != "" {
		form.Set("delivery_date", dd)
	}
	start := p.now()
	resp, err := p.post(ctx, "sms/send", form)
	if err != nil {
		return nil, err
	}
	p.log.DebugContext(ctx, "sms/send answered", "message", req.MessageID,
		"recipients", len(to), "status", resp.Status, "elapsed", p.now().Sub(start))

	switch {
	case resp.Status == http.StatusUnauthorized:
		// Every later call would fail the same way until someone fixes
		// the configuration, so say so loudly.
		p.log.ErrorContext(ctx, "voip-communications refused the api credentials", "status", resp.Status)
		return nil, p.credentialsRefused()
	case resp.Status < 200 || resp.Status > 299:
		return nil, providers.Classify(p.name, resp, errorDetail(resp.Body, p.redact), p.now())
	}

	entries, err := parseSendLog(resp.Body)
	if err != nil {
		// The provider may or may not have sent; retrying is the lesser
		// evil (a duplicate rather than a lost message).
		msg := fmt.Sprintf("%s: unexpected answer (HTTP %d)", p.name, resp.Status)
		if d := errorDetail(resp.Body, p.redact); d != "" {
			msg += ": " + d
		}
		return nil, &bridge.Error{Reason: bridge.ReasonProviderDown, Temp: true, Msg: msg}
	}
	matched, stray := match(entries, to)
	if stray > 0 {
		p.log.WarnContext(ctx, "send_log entries matched no recipient", "message", req.MessageID, "count", stray)
	}
	for k, e := range matched {
		results[idx[k]] = p.result(req.To[idx[k]], e)
	}
	return results, nil
}

// deliveryDate formats a scheduled time for the API, or returns "" to send
// now. The API takes minutes only, so the time is rounded up: a message is
// never sent before the time asked for. A time already past is sent now:
// what the API does with a past delivery_date is not documented.
func (p *Provider) deliveryDate(at time.Time) string {
	if at.IsZero() || !at.After(p.now()) {
		return ""
	}
	if t := at.Truncate(time.Minute); !t.Equal(at) {
		at = t.Add(time.Minute)
	}
	return at.In(p.loc).Format(deliveryDateLayout)
}

// result turns one recipient's send_log entry into its Result.
func (p *Provider) result(to string, e *entry) bridge.Result {
	if e == nil {
		return bridge.Result{Err: bridge.Temporary(bridge.ReasonProviderDown, nil,
			"%s: no send_log entry for %s", p.name, to)}
	}
	code, ok := e.code()
	switch {
	case !ok:
		return bridge.Result{Err: bridge.Temporary(bridge.ReasonProviderDown, nil,
			"%s: send_log entry for %s has no valid code (%q)", p.name, to, p.redact(string(e.Code)))}
	case code != 200:
		return bridge.Result{Err: bridge.Permanent(bridge.ReasonProviderRejected, "",
			"%s: %s refused: code %d: %s", p.name, to, code, p.redact(string(e.CodeDesc)))}
	}
	info := map[string]string{}
	for k, v := range map[string]lenient{"status": e.Status, "sale": e.Sale, "country": e.Country, "type": e.Type} {
		if v != "" {
			info[k] = p.redact(string(v))
		}
	}
	// The price is the provider's word, but a value that is not a sane
	// price (negative, huge, not a number) is kept in info only: it
	// must not reach the cost metrics.
	cost, ok := bridge.ParseCost(string(e.Sale))
	if !ok && e.Sale != "" {
		p.log.Warn("send_log sale is not a price", "smsid", string(e.SMSID), "sale", info["sale"])
	}
	return bridge.Result{ProviderID: string(e.SMSID), Cost: cost, Info: info}
}

// credentialsRefused is the error of a call answered 401, the documented
// answer to wrong credentials.
func (p *Provider) credentialsRefused() error {
	return bridge.Permanent(bridge.ReasonProviderAuth, "",
		"%s: invalid api credentials (HTTP 401): check api_key/api_password", p.name)
}

// post makes one api-v2 call: form posted to path below base_url, with
// the account's Basic credentials.
func (p *Provider) post(ctx context.Context, path string, form url.Values) (*providers.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/"+path, strings.NewReader(form.Encode()))
	if err != nil {
		// Only a malformed base_url gets here, and Validate refuses those.
		return nil, bridge.Permanent(bridge.ReasonInvalid, "", "%s: cannot build request", p.name)
	}
	hreq.SetBasicAuth(p.apiKey, p.password)
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.Header.Set("Accept", "application/json")
	return providers.Do(ctx, p.hc, p.name, hreq)
}

func (p *Provider) redact(s string) string { return providers.Redact(s, p.secrets...) }
