package ippanel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

// envelope is the body of every IPPanel Edge answer, success or failure.
type envelope struct {
	Data json.RawMessage `json:"data"`
	Meta *struct {
		Status      *bool           `json:"status"`
		Message     string          `json:"message"`
		MessageCode string          `json:"message_code"`
		Errors      json.RawMessage `json:"errors"` // {"field": ["..."]}, {} or (PHP's empty array) []
	} `json:"meta"`
}

// decode parses an envelope; ok is false unless it has meta.status, the one
// field every documented answer carries.
func decode(body []byte) (env envelope, ok bool) {
	if err := json.Unmarshal(body, &env); err != nil {
		return envelope{}, false
	}
	return env, env.Meta != nil && env.Meta.Status != nil
}

// interpret judges an answer. The HTTP status and meta.status are both
// needed: the README warns that message_code does not always match the
// status, and meta.message is Persian prose, so neither is branched on.
// Every text taken from the body is redacted of secret before it reaches an
// error. On success it returns the envelope for the caller to read data.
func interpret(provider, secret string, r *providers.Response, now time.Time) (envelope, error) {
	env, ok := decode(r.Body)
	switch {
	case r.Status == http.StatusUnauthorized:
		return envelope{}, &bridge.Error{
			Reason: bridge.ReasonProviderAuth,
			Msg:    fmt.Sprintf("%s: HTTP 401: invalid or expired token%s", provider, codeSuffix(env, secret)),
		}
	case r.Status == http.StatusUnprocessableEntity:
		return envelope{}, &bridge.Error{
			Reason: bridge.ReasonProviderRejected,
			Msg:    fmt.Sprintf("%s: HTTP 422: %s", provider, detail(env, ok, r.Body, secret)),
		}
	case r.Status >= 200 && r.Status < 300:
		if !ok {
			return envelope{}, garbage(provider, r, secret)
		}
		if !*env.Meta.Status {
			return envelope{}, &bridge.Error{
				Reason: bridge.ReasonProviderRejected,
				Msg:    fmt.Sprintf("%s: rejected: %s", provider, detail(env, ok, r.Body, secret)),
			}
		}
		return env, nil
	default:
		return envelope{}, providers.Classify(provider, r, detail(env, ok, r.Body, secret), now)
	}
}

// outboxIDs reads data.message_outbox_ids from a successful send.
func outboxIDs(provider, secret string, r *providers.Response, env envelope) ([]int64, error) {
	var d struct {
		IDs []outboxID `json:"message_outbox_ids"`
	}
	if err := json.Unmarshal(env.Data, &d); err != nil || len(d.IDs) == 0 {
		return nil, garbage(provider, r, secret)
	}
	ids := make([]int64, len(d.IDs))
	for i, id := range d.IDs {
		ids[i] = int64(id)
	}
	return ids, nil
}

// outboxID is documented as a JSON integer. A numeric string is accepted
// too: the send has happened by the time we read it, and calling an
// accepted send garbage would make the bridge send it again.
type outboxID int64

func (id *outboxID) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("message_outbox_id %s is not a positive integer", b)
	}
	*id = outboxID(n)
	return nil
}

// garbage is a 2xx answer that is not the documented JSON: most likely a
// proxy or maintenance page, so worth another try.
func garbage(provider string, r *providers.Response, secret string) error {
	return &bridge.Error{
		Reason: bridge.ReasonProviderDown,
		Temp:   true,
		Msg: fmt.Sprintf("%s: HTTP %d: unexpected response: %s", provider, r.Status,
			providers.Snippet([]byte(providers.Redact(string(r.Body), secret)), 200)),
	}
}

// detail is the provider's explanation of a failure: the errors map
// flattened ("message: تکمیل گزینه پیام الزامی است"), else meta.message,
// with the message_code; or a snippet of a body that is not an envelope.
func detail(env envelope, ok bool, body []byte, secret string) string {
	if !ok {
		return providers.Snippet([]byte(providers.Redact(string(body), secret)), 200)
	}
	msg := flattenErrors(env.Meta.Errors)
	if msg == "" {
		msg = env.Meta.Message
	}
	return providers.Redact(strings.TrimSpace(msg), secret) + codeSuffix(env, secret)
}

func codeSuffix(env envelope, secret string) string {
	if env.Meta == nil || env.Meta.MessageCode == "" {
		return ""
	}
	return " (message_code " + providers.Redact(env.Meta.MessageCode, secret) + ")"
}

// flattenErrors renders {"field": ["a", "b"]} as "field: a, b", fields in
// sorted order so the text is stable. Values that are not strings or lists
// of strings are shown as raw JSON rather than dropped.
func flattenErrors(raw json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		var list []string
		var one string
		switch {
		case json.Unmarshal(m[k], &list) == nil:
		case json.Unmarshal(m[k], &one) == nil:
			list = []string{one}
		default:
			list = []string{string(m[k])}
		}
		parts = append(parts, k+": "+strings.Join(list, ", "))
	}
	return strings.Join(parts, "; ")
}
