package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/smsbridge/smsbridge/bridge"
)

// sendRequest is the body of POST /v1/messages.
type sendRequest struct {
	To       toList            `json:"to"`
	Text     string            `json:"text"`
	Sender   string            `json:"sender"`
	Template string            `json:"template"`
	Params   map[string]string `json:"params"`
	SendAt   *time.Time        `json:"send_at"`
	// ReplyTo is the mail address the phone's replies go to (as a mail's
	// From does for mail); empty: the catch-all. It must be one of the
	// account's emails or in its reply_to list (bridge.Submit refuses
	// anything else: 422 naming reply_to).
	ReplyTo string `json:"reply_to"`
}

// toList is one destination or a list of them.
type toList []string

// fields are the fields of a send request other than to, by their JSON
// names in lower case: keys match them without regard to case, as they
// did when encoding/json decoded the request whole.
func (req *sendRequest) fields() map[string]any {
	return map[string]any{"text": &req.Text, "sender": &req.Sender, "template": &req.Template,
		"params": &req.Params, "reply_to": &req.ReplyTo}
}

// decodeSendRequest reads exactly one JSON object with only known fields.
// It walks the object token by token rather than decoding it whole, so
// that the to list is counted as it is read: past maxTo entries the
// request is refused (ReasonTooManyRecipients, field to) before the rest
// of the list is read, let alone parsed. maxTo <= 0 is no cap.
func decodeSendRequest(body io.Reader, maxTo int) (sendRequest, error) {
	var req sendRequest
	dec := json.NewDecoder(body)
	if tok, err := dec.Token(); err != nil {
		return req, err
	} else if tok != json.Delim('{') {
		return req, errors.New("want a JSON object")
	}
	fields := req.fields()
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, err
		}
		key, _ := tok.(string) // inside an object every key is a string
		if strings.EqualFold(key, "to") {
			if req.To, err = decodeTo(dec, maxTo); err != nil {
				return req, err
			}
			continue
		}
		if strings.EqualFold(key, "send_at") {
			// Read as it stands and parsed here, so a value that is no
			// time is answered 422 naming send_at, not 400 as malformed
			// JSON.
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return req, err
			}
			if req.SendAt, err = parseSendAt(raw); err != nil {
				return req, err
			}
			continue
		}
		v, ok := fields[strings.ToLower(key)]
		if !ok {
			return req, fmt.Errorf("json: unknown field %q", clip(key, maxQuoted))
		}
		if err := dec.Decode(v); err != nil {
			return req, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return req, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, errors.New("more than one JSON value in the body")
	}
	return req, nil
}

// parseSendAt reads send_at: an RFC 3339 string; null is none.
func parseSendAt(raw json.RawMessage) (*time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err == nil {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return &t, nil
		}
	}
	return nil, bridge.Permanent(bridge.ReasonInvalid, "send_at",
		"send_at: %s is not an RFC 3339 time such as \"2030-01-02T15:04:05+02:00\"", clip(string(raw), maxQuoted))
}

// errTo is the answer to a to that is neither a string nor a list of them.
var errTo = errors.New("to: want a phone number or a list of them")

// decodeTo reads the value of to: one destination, a list of them, or
// null. Each entry of a list is decoded on its own, so a list over maxTo
// is refused at its entry maxTo+1.
func decodeTo(dec *json.Decoder, maxTo int) (toList, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case nil:
		return nil, nil
	case string:
		return toList{tok}, nil
	case json.Delim:
		if tok != '[' {
			return nil, errTo
		}
	default:
		return nil, errTo
	}
	var to toList
	for dec.More() {
		if maxTo > 0 && len(to) == maxTo {
			return nil, tooManyTo(maxTo)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		s, ok := tok.(string)
		if !ok {
			return nil, errTo
		}
		to = append(to, s)
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, err
	}
	return to, nil
}

func tooManyTo(maxTo int) error {
	return bridge.Permanent(bridge.ReasonTooManyRecipients, "to", "to: more than %d destinations", maxTo)
}

// digest identifies the request for its Idempotency-Key: the SHA-256 of
// the request as decoded and encoded again (Go's encoding sorts params),
// so that a retry matches however its client spaced or ordered the JSON,
// while any change to what would be sent does not.
func (req *sendRequest) digest() string {
	c := *req
	if c.SendAt != nil { // the same instant written in another zone
		t := c.SendAt.UTC()
		c.SendAt = &t
	}
	b, err := json.Marshal(c)
	if err != nil { // only strings, a map of them and a time: cannot fail
		return ""
	}
	sum := sha256.Sum256(append([]byte("POST /v1/messages\n"), b...))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// messageView is a message as the API shows it.
type messageView struct {
	ID       string     `json:"id"`
	Account  string     `json:"account"`
	Channel  string     `json:"channel"`
	Sender   string     `json:"sender,omitempty"`
	Template string     `json:"template,omitempty"`
	SendAt   *time.Time `json:"send_at,omitempty"`
	Created  time.Time  `json:"created"`
	// Encoding and Parts are how the text sent travels, after smart
	// encoding and the length policy; absent for a template without text.
	Encoding   string          `json:"encoding,omitempty"`
	Parts      int             `json:"parts,omitempty"`
	Recipients []recipientView `json:"recipients"`
	// Skipped are destinations an alert hook left out (opted out), each
	// with its field and reason; the rest were sent.
	Skipped []fieldError `json:"skipped,omitempty"`
}

type recipientView struct {
	To         string `json:"to"`
	State      string `json:"state"`
	Provider   string `json:"provider,omitempty"`
	ProviderID string `json:"provider_id,omitempty"`
	Attempts   int    `json:"attempts"`
	Error      string `json:"error,omitempty"`
	// Cost is the provider's price for the SMS, where it reports one.
	Cost    json.Number `json:"cost,omitempty"`
	Updated time.Time   `json:"updated,omitzero"`
}

func view(m *bridge.Message) messageView {
	v := messageView{ID: m.ID, Account: m.Account, Channel: string(m.Channel), Sender: m.Sender,
		Template: m.Template, Created: m.Created, Encoding: string(m.Encoding), Parts: m.Parts, Recipients: []recipientView{}}
	if !m.SendAt.IsZero() {
		t := m.SendAt
		v.SendAt = &t
	}
	for _, r := range m.Recipients {
		rv := recipientView{To: r.To, State: string(r.State), Provider: r.Provider,
			ProviderID: r.ProviderID, Attempts: r.Attempts, Error: r.Error, Updated: r.Updated}
		// Only a well-formed price: a JSON number that is not one
		// would fail the whole answer.
		if c, ok := bridge.ParseCost(r.Cost); ok {
			rv.Cost = json.Number(c)
		}
		v.Recipients = append(v.Recipients, rv)
	}
	return v
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	acct := account(r)
	req, err := decodeSendRequest(r.Body, s.cfg.MaxRecipients)
	if bridge.ReasonOf(err) != "" {
		// A field's value refused as it was read (too many to, a
		// send_at that is no time): 422 naming it, not malformed JSON.
		s.fail(w, r, err)
		return
	}
	if err != nil {
		s.badJSON(w, err)
		return
	}
	sub := &bridge.Submission{
		Account:        acct,
		Channel:        bridge.ChannelHTTP,
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		RequestDigest:  req.digest(),
		Sender:         req.Sender,
		Text:           req.Text,
		Template:       req.Template,
		Params:         req.Params,
	}
	if len(sub.IdempotencyKey) > 200 {
		s.fail(w, r, bridge.Permanent(bridge.ReasonInvalid, "Idempotency-Key", "Idempotency-Key is longer than 200 characters"))
		return
	}
	if req.SendAt != nil {
		sub.SendAt = *req.SendAt
	}
	if req.ReplyTo != "" {
		a, err := mail.ParseAddress(req.ReplyTo)
		if err != nil || a.Name != "" {
			s.fail(w, r, bridge.Permanent(bridge.ReasonInvalid, "reply_to", "reply_to: %q is not a mail address", clip(req.ReplyTo, maxQuoted)))
			return
		}
		sub.ReplyTo = a.Address
	}
	s.submit(w, r, sub, req.To, nil)
}

// submit resolves every destination (reporting all bad ones at once) and
// submits; the SMTP side runs the same bridge calls.
//
// skipped, said in the answer, are destinations the caller left out.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, sub *bridge.Submission, to []string, skipped []fieldError) {
	if !s.resolve(w, r, sub, to) {
		return
	}
	s.acceptOne(w, r, sub, skipped)
}

// acceptOne submits sub and answers 202 with the message, or the refusal.
func (s *Server) acceptOne(w http.ResponseWriter, r *http.Request, sub *bridge.Submission, skipped []fieldError) {
	m, ok := s.accept(w, r, sub)
	if !ok {
		return
	}
	w.Header().Set("Location", "/v1/messages/"+m.ID)
	v := view(m)
	v.Skipped = skipped
	writeJSON(w, http.StatusAccepted, v)
}

// resolve resolves every destination into sub.Recipients, or answers the
// refusal (every bad destination at once) and returns false.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request, sub *bridge.Submission, to []string) bool {
	if len(to) == 0 {
		s.fail(w, r, bridge.Permanent(bridge.ReasonInvalid, "to", "to: at least one phone number is required"))
		return false
	}
	if s.cfg.MaxRecipients > 0 && len(to) > s.cfg.MaxRecipients {
		// Before anything is resolved: each entry costs a parse and
		// possibly an error line in the answer.
		s.fail(w, r, tooManyTo(s.cfg.MaxRecipients))
		return false
	}
	var errs []fieldError
	for i, dest := range to {
		rcpt, err := s.bridge.ResolveTo(r.Context(), sub.Account, dest)
		if err != nil {
			if status(err) != http.StatusUnprocessableEntity {
				s.fail(w, r, err)
				return false
			}
			var be *bridge.Error
			msg := err.Error()
			if errors.As(err, &be) && be.Msg != "" {
				msg = be.Msg
			}
			errs = append(errs, fieldError{Field: fmt.Sprintf("to[%d]", i), Reason: string(bridge.ReasonOf(err)), Message: msg})
			continue
		}
		sub.Recipients = append(sub.Recipients, rcpt)
	}
	if len(errs) > 0 {
		for _, e := range errs {
			s.metrics.Refused(bridge.ChannelHTTP, bridge.Reason(e.Reason))
		}
		writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: errs[0].Message, Reason: errs[0].Reason, Field: errs[0].Field, Errors: errs})
		return false
	}
	return true
}

// accept submits sub, whose recipients are resolved, or answers the
// refusal and returns false.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, sub *bridge.Submission) (*bridge.Message, bool) {
	m, err := s.bridge.Submit(r.Context(), sub)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	if m.Replayed {
		// A client's retry of a message already accepted: answered
		// with it, but it is not a new acceptance.
		s.log.InfoContext(r.Context(), "idempotent replay", "channel", "http", "id", m.ID, "account", sub.Account.Name)
	} else {
		s.metrics.Accepted(bridge.ChannelHTTP)
		s.log.InfoContext(r.Context(), "accepted", "channel", "http", "id", m.ID, "account", sub.Account.Name, "recipients", len(m.Recipients))
	}
	return m, true
}

func (s *Server) badJSON(w http.ResponseWriter, err error) {
	s.metrics.Refused(bridge.ChannelHTTP, bridge.ReasonInvalid)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "", fmt.Sprintf("request body over %d bytes", tooBig.Limit))
		return
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("empty body")
	}
	writeError(w, http.StatusBadRequest, "malformed_json", "", "malformed JSON: "+err.Error())
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	m, err := s.bridge.Message(r.Context(), account(r), mux.Vars(r)["id"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, view(m))
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request) {
	m, err := s.bridge.Cancel(r.Context(), account(r), mux.Vars(r)["id"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, view(m))
}
