// Package ippanel sends SMS through the IPPanel Edge API
// (../shared/provider-docs/ippanel-edge-send-*.txt and README.md).
//
// One endpoint, POST {base_url}/api/send, has three sending types; Send
// picks one from the request:
//
//   - webservice: a text (SendRequest.Text) to E.164 numbers, up to
//     batch_size of them in one call, optionally scheduled (send_time, UTC).
//   - pattern: a stored pattern (SendRequest.Template is its code) filled in
//     from SendRequest.Params. The API takes one recipient per call, so a
//     request with several numbers makes one call each. Patterns take no
//     text and cannot be scheduled.
//   - phonebook: a text to a phonebook kept at IPPanel, whole
//     ("phonebook:<id>") or some of its entries ("phonebook:<id>:<n1>,<n2>",
//     see bridge.Phonebook). Each target is its own call, so each gets its
//     own outbox id.
//
// A pattern send may also save its recipient to a phonebook. The API takes
// that as a `phonebook` object beside the pattern parameters; a
// SendRequest only has flat string parameters, so these reserved keys are
// taken out of Params and become that object:
//
//	phonebook.id              → phonebook.id (an integer; required with any other key)
//	phonebook.name            → phonebook.name
//	phonebook.pre             → phonebook.pre ("mr", "ms", ...)
//	phonebook.email           → phonebook.email
//	phonebook.options.<field> → phonebook.options["<field>"] (a custom field id)
//
// Any other key starting "phonebook." is refused rather than sent as a
// pattern parameter, so a typo does not silently drop the contact.
//
// Provider ids are the API's message_outbox_id, in decimal. A webservice
// call to several numbers may answer with a single bulk id; every recipient
// of that call then gets it (see Send).
//
// The API has no callbacks: Inbox polls the SMS received on the account's
// numbers and Recipients the delivery state of one bulk (report.go).
package ippanel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

// The sending types of POST /api/send.
const (
	typeWebservice = "webservice"
	typePattern    = "pattern"
	typePhonebook  = "phonebook"
)

// sendTimeLayout is send_time's documented form, in UTC.
const sendTimeLayout = "2006-01-02 15:04:05"

// Provider is an IPPanel Edge account. It is safe for concurrent use.
type Provider struct {
	name          string
	token         string
	numbers       []string
	batch         int
	sendURL       string
	cancelURL     string
	inboxURL      string
	recipientsURL string
	creditURL     string
	hc            *http.Client
	log           *slog.Logger
	skip          inboxSkip
}

var (
	_ bridge.Provider         = (*Provider)(nil)
	_ bridge.RecipientChecker = (*Provider)(nil)
	_ bridge.RequestChecker   = (*Provider)(nil)
	_ bridge.Batcher          = (*Provider)(nil)
	_ bridge.Canceller        = (*Provider)(nil)
	_ bridge.NumberOwner      = (*Provider)(nil)
)

// New returns a provider for cfg, validating it first. A nil hc gets a
// client with a 30 second timeout; a nil log discards.
func New(name string, cfg *Config, hc *http.Client, log *slog.Logger) (*Provider, error) {
	if cfg == nil {
		return nil, fmt.Errorf("ippanel %s: no configuration", name)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ippanel %s: %w", name, err)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		name:          name,
		token:         cfg.token.Value(),
		numbers:       slices.Clone(cfg.Numbers),
		batch:         cfg.BatchSize,
		sendURL:       cfg.BaseURL + "/api/send",
		cancelURL:     cfg.BaseURL + "/api/send/cancel",
		inboxURL:      cfg.BaseURL + "/api/report/messages-inbox",
		recipientsURL: cfg.BaseURL + "/api/report/recipients",
		creditURL:     cfg.BaseURL + "/api/payment/credit/mine",
		hc:            hc,
		log:           log,
	}, nil
}

func (p *Provider) Name() string { return p.name }

// Numbers are the account's numbers: only SMS to them come through this
// provider (bridge.NumberOwner).
func (p *Provider) Numbers() []string { return slices.Clone(p.numbers) }

// MaxBatch is batch_size: the recipients of one webservice call. Pattern
// requests are split into one call per recipient inside Send.
func (p *Provider) MaxBatch() int { return p.batch }

// CheckRecipient accepts E.164 numbers and phonebook targets.
func (p *Provider) CheckRecipient(to string) error {
	if isE164(to) {
		return nil
	}
	if _, ok := bridge.ParsePhonebook(to); ok {
		return nil
	}
	return bridge.Permanent(bridge.ReasonNoRoute, "to",
		"%s: %q is neither an E.164 number nor a phonebook target", p.name, to)
}

// CheckRequest refuses what the API would never accept: a sender that is
// not one of our numbers, a pattern with text or a schedule or a malformed
// phonebook block, a plain send without text. When req.To is set it also
// checks every recipient (Send relies on that).
func (p *Provider) CheckRequest(req *bridge.SendRequest) error {
	if req.Sender != "" && !slices.Contains(p.numbers, req.Sender) {
		return bridge.Permanent(bridge.ReasonSenderNotAllowed, "sender",
			"%s: sender %q is not one of this account's numbers", p.name, req.Sender)
	}
	if req.Template != "" {
		if req.Text != "" {
			return bridge.Permanent(bridge.ReasonInvalid, "text", "IPPanel patterns take parameters, not text")
		}
		if !req.SendAt.IsZero() {
			// The pattern document has no send_time.
			return bridge.Permanent(bridge.ReasonInvalid, "send_at", "IPPanel patterns cannot be scheduled")
		}
		if _, _, err := splitParams(req.Params); err != nil {
			return err
		}
	} else if strings.TrimSpace(req.Text) == "" {
		return bridge.Permanent(bridge.ReasonEmpty, "text", "%s: the message has no text", p.name)
	}
	for _, to := range req.To {
		if err := p.CheckRecipient(to); err != nil {
			return err
		}
		if _, ok := bridge.ParsePhonebook(to); ok && req.Template != "" {
			return bridge.Permanent(bridge.ReasonInvalid, "to",
				"%s: patterns go to one number each, not to phonebook %q", p.name, to)
		}
	}
	return nil
}

// call is one POST /api/send: its body and the indexes in SendRequest.To
// of the recipients it carries.
type call struct {
	kind string // sending_type
	to   []int
	body any
}

// Send submits req in as many calls as the API needs: one webservice call
// per batch_size numbers, one pattern call per number, one phonebook call
// per phonebook target. When the request is a single webservice or
// phonebook call, its failure is Send's error: it applies to every
// recipient of the call. Otherwise each call's failure goes to its
// recipients' Result.Err and the remaining calls are still made, so one bad
// number in a pattern request does not hold back the others.
func (p *Provider) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	if len(req.To) == 0 {
		return nil, bridge.Permanent(bridge.ReasonInvalid, "to", "%s: no recipients", p.name)
	}
	calls, err := p.plan(req)
	if err != nil {
		return nil, err
	}
	results := make([]bridge.Result, len(req.To))
	for _, c := range calls {
		ids, err := p.post(ctx, req.MessageID, c)
		if err != nil {
			if len(calls) == 1 && c.kind != typePattern {
				return nil, err
			}
			for _, i := range c.to {
				results[i].Err = err
			}
			continue
		}
		for n, i := range c.to {
			// One id per recipient is mapped in order. Any other count
			// means the API gave the call one bulk id (webservice answers
			// a single message_outbox_id for many numbers): it identifies
			// every recipient's SMS, for reports and cancelling alike.
			id := ids[0]
			if len(ids) == len(c.to) {
				id = ids[n]
			}
			results[i] = bridge.Result{
				ProviderID: strconv.FormatInt(id, 10),
				Info:       map[string]string{"sending_type": c.kind},
			}
		}
	}
	return results, nil
}

// Request bodies, with fields in the documents' order.
type (
	webserviceBody struct {
		SendingType string           `json:"sending_type"`
		FromNumber  string           `json:"from_number"`
		Message     string           `json:"message"`
		Params      webserviceParams `json:"params"`
		SendTime    string           `json:"send_time,omitempty"`
	}
	webserviceParams struct {
		Recipients []string `json:"recipients"`
	}
	patternBody struct {
		SendingType string            `json:"sending_type"`
		FromNumber  string            `json:"from_number"`
		Code        string            `json:"code"`
		Recipients  []string          `json:"recipients"`
		Params      map[string]string `json:"params"`
		Phonebook   *contact          `json:"phonebook,omitempty"`
	}
	// contact is a pattern send's optional `phonebook` object.
	contact struct {
		ID      int64             `json:"id"`
		Name    string            `json:"name,omitempty"`
		Pre     string            `json:"pre,omitempty"`
		Email   string            `json:"email,omitempty"`
		Options map[string]string `json:"options,omitempty"`
	}
	phonebookBody struct {
		SendingType string            `json:"sending_type"`
		FromNumber  string            `json:"from_number"`
		Message     string            `json:"message"`
		Params      []phonebookTarget `json:"params"`
		SendTime    string            `json:"send_time,omitempty"`
	}
	// phonebookTarget is type "all" (PhonebookIDs) or "detail"
	// (PhonebookID and NumberIDs).
	phonebookTarget struct {
		PhonebookIDs []string `json:"phonebook_ids,omitempty"`
		PhonebookID  string   `json:"phonebook_id,omitempty"`
		Type         string   `json:"type"`
		NumberIDs    []string `json:"number_ids,omitempty"`
	}
)

// plan checks req and lays out its calls.
func (p *Provider) plan(req *bridge.SendRequest) ([]call, error) {
	if err := p.CheckRequest(req); err != nil {
		return nil, err
	}
	from := req.Sender
	if from == "" {
		from = p.numbers[0]
	}
	var sendTime string
	if !req.SendAt.IsZero() {
		sendTime = req.SendAt.UTC().Format(sendTimeLayout)
	}

	var calls []call
	if req.Template != "" {
		params, book, _ := splitParams(req.Params) // checked by CheckRequest
		for i, to := range req.To {
			calls = append(calls, call{kind: typePattern, to: []int{i}, body: patternBody{
				SendingType: typePattern, FromNumber: from, Code: req.Template,
				Recipients: []string{to}, Params: params, Phonebook: book,
			}})
		}
		return calls, nil
	}

	var numbers []int
	for i, to := range req.To {
		pb, ok := bridge.ParsePhonebook(to)
		if !ok {
			numbers = append(numbers, i)
			continue
		}
		t := phonebookTarget{PhonebookIDs: []string{pb.ID}, Type: "all"}
		if len(pb.NumberIDs) > 0 {
			t = phonebookTarget{PhonebookID: pb.ID, Type: "detail", NumberIDs: pb.NumberIDs}
		}
		calls = append(calls, call{kind: typePhonebook, to: []int{i}, body: phonebookBody{
			SendingType: typePhonebook, FromNumber: from, Message: req.Text,
			Params: []phonebookTarget{t}, SendTime: sendTime,
		}})
	}
	for batch := range slices.Chunk(numbers, p.batch) {
		rcpts := make([]string, len(batch))
		for n, i := range batch {
			rcpts[n] = req.To[i]
		}
		calls = append(calls, call{kind: typeWebservice, to: batch, body: webserviceBody{
			SendingType: typeWebservice, FromNumber: from, Message: req.Text,
			Params: webserviceParams{Recipients: rcpts}, SendTime: sendTime,
		}})
	}
	return calls, nil
}

// splitParams separates the reserved phonebook.* keys (see the package
// comment) from the pattern parameters. params is never nil: the API
// requires the object even when the pattern has no placeholders.
func splitParams(in map[string]string) (params map[string]string, book *contact, err error) {
	params = make(map[string]string, len(in))
	var c contact
	var hasBook, hasID bool
	for k, v := range in {
		rest, ok := strings.CutPrefix(k, "phonebook.")
		if !ok {
			params[k] = v
			continue
		}
		hasBook = true
		switch field, ok := strings.CutPrefix(rest, "options."); {
		case ok && field != "":
			if c.Options == nil {
				c.Options = map[string]string{}
			}
			c.Options[field] = v
		case rest == "id":
			id, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if perr != nil || id <= 0 {
				return nil, nil, bridge.Permanent(bridge.ReasonInvalid, "params",
					"parameter phonebook.id must be a positive integer, not %q", v)
			}
			c.ID, hasID = id, true
		case rest == "name":
			c.Name = v
		case rest == "pre":
			c.Pre = v
		case rest == "email":
			c.Email = v
		default:
			return nil, nil, bridge.Permanent(bridge.ReasonInvalid, "params",
				"unknown parameter %q (phonebook.* is reserved for id, name, pre, email and options.<field>)", k)
		}
	}
	if hasBook && !hasID {
		return nil, nil, bridge.Permanent(bridge.ReasonInvalid, "params",
			"phonebook.id is required with the other phonebook.* parameters")
	}
	if hasBook {
		book = &c
	}
	return params, book, nil
}

// post makes one send call and returns its outbox ids.
func (p *Provider) post(ctx context.Context, messageID string, c call) ([]int64, error) {
	resp, env, err := p.do(ctx, p.sendURL, c.body)
	var ids []int64
	if err == nil {
		ids, err = outboxIDs(p.name, p.token, resp, env)
	}
	status := 0
	if resp != nil {
		status = resp.Status
	}
	if err != nil {
		p.log.DebugContext(ctx, "ippanel send failed", "provider", p.name, "message", messageID,
			"sending_type", c.kind, "recipients", len(c.to), "status", status, "error", err)
		return nil, err
	}
	p.log.DebugContext(ctx, "ippanel send", "provider", p.name, "message", messageID,
		"sending_type", c.kind, "recipients", len(c.to), "status", status, "outbox_ids", ids)
	return ids, nil
}

// Cancel cancels a scheduled send by its outbox id. The API allows it until
// five minutes before the send time; an unknown id is a permanent
// ReasonNotFound.
func (p *Provider) Cancel(ctx context.Context, providerID string) error {
	id, err := strconv.ParseInt(providerID, 10, 64)
	if err != nil || id <= 0 {
		return bridge.Permanent(bridge.ReasonInvalid, "", "%s: %q is not a message_outbox_id", p.name, providerID)
	}
	resp, _, err := p.do(ctx, p.cancelURL, map[string]int64{"message_outbox_id": id})
	if resp != nil && resp.Status == http.StatusNotFound {
		err = bridge.Permanent(bridge.ReasonNotFound, "", "%s: message_outbox_id %d not found", p.name, id)
	}
	if err != nil {
		p.log.DebugContext(ctx, "ippanel cancel failed", "provider", p.name, "outbox_id", id, "error", err)
		return err
	}
	p.log.DebugContext(ctx, "ippanel cancel", "provider", p.name, "outbox_id", id)
	return nil
}

// do POSTs body as JSON and interprets the answer. resp is non-nil whenever
// an answer arrived, even with an error.
func (p *Provider) do(ctx context.Context, url string, body any) (*providers.Response, envelope, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, envelope{}, fmt.Errorf("%s: encode request: %w", p.name, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return nil, envelope{}, fmt.Errorf("%s: %w", p.name, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	return p.roundTrip(ctx, hreq)
}

// get GETs url and interprets the answer, as do does.
func (p *Provider) get(ctx context.Context, url string) (*providers.Response, envelope, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, envelope{}, fmt.Errorf("%s: %w", p.name, err)
	}
	return p.roundTrip(ctx, hreq)
}

func (p *Provider) roundTrip(ctx context.Context, hreq *http.Request) (*providers.Response, envelope, error) {
	hreq.Header.Set("Authorization", p.token) // as is: the API does not want "Bearer"
	hreq.Header.Set("Accept", "application/json")
	resp, err := providers.Do(ctx, p.hc, p.name, hreq)
	if err != nil {
		return nil, envelope{}, err
	}
	env, err := interpret(p.name, p.token, resp, time.Now())
	if bridge.ReasonOf(err) == bridge.ReasonProviderAuth {
		// Nothing will get through until an operator replaces the token.
		p.log.ErrorContext(ctx, "ippanel refused the token", "provider", p.name, "status", resp.Status, "error", err)
	}
	return resp, env, err
}
