package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Provider callbacks have no published schema (voip-communications posts
// to a "Callback URL" with an undocumented payload), so a request is read
// into a flat set of fields whatever its encoding, and each logical field
// is looked up under the names providers commonly use. Configuration can
// name more (Callback.InboundFields, Callback.StatusFields); those are
// tried first.

// secretParam is the query parameter that carries a callback's secret.
const secretParam = "secret"

// maxRaw caps the request text kept in the conversation log: enough for
// any SMS callback, not enough for an attachment to bloat the store.
const maxRaw = 64 << 10

// The usual names of each logical field, lower case, most specific first.
var (
	fromNames   = []string{"from", "sender", "msisdn", "phone", "source"}
	toNames     = []string{"to", "recipient", "number", "destination", "did"}
	textNames   = []string{"msg", "message", "text", "body", "content"}
	idNames     = []string{"smsid", "id", "message_id", "messageid", "sms_id"}
	timeNames   = []string{"time", "date", "timestamp", "received"}
	statusNames = []string{"status", "state", "dlr", "status_code"}
	detailNames = []string{"detail", "error", "reason"}
)

// maxFieldBytes caps one field; a longer value is no SMS field and is
// left out rather than copied around.
const maxFieldBytes = 64 << 10

// InboundFields names request fields, beyond the usual ones, that carry
// each part of an inbound SMS. Names are matched case-insensitively and
// tried before the usual names.
type InboundFields struct {
	From     []string // the phone (usual: from, sender, msisdn, phone, source)
	To       []string // our number (usual: to, recipient, number, destination, did)
	Text     []string // usual: msg, message, text, body, content
	ID       []string // the provider's message id (usual: smsid, id, message_id, messageid, sms_id)
	Received []string // usual: time, date, timestamp, received
}

// StatusFields names request fields, beyond the usual ones, that carry each
// part of a delivery report, as InboundFields does for inbound SMS.
type StatusFields struct {
	ID     []string // the id the provider gave the sent SMS (usual: as InboundFields.ID)
	To     []string // the recipient (usual: as InboundFields.To)
	Status []string // usual: status, state, dlr, status_code
	Detail []string // usual: detail, error, reason
	At     []string // when the provider learned it (usual: as InboundFields.Received)
}

// badRequest is a callback request that cannot be read; it is answered
// with its status and never retried successfully as it stands.
type badRequest struct {
	status int
	reason string
	field  string
	msg    string
}

func (e *badRequest) Error() string { return e.msg }

func malformed(format string, args ...any) *badRequest {
	return &badRequest{status: http.StatusBadRequest, reason: string(bridge.ReasonInvalid), msg: fmt.Sprintf(format, args...)}
}

func missing(field string, names []string) *badRequest {
	return &badRequest{status: http.StatusBadRequest, reason: string(bridge.ReasonInvalid), field: field,
		msg: fmt.Sprintf("%s: required (one of the fields %s)", field, strings.Join(names, ", "))}
}

// callbackRequest is one callback as read off the wire.
type callbackRequest struct {
	fields fields
	// raw is the request as text for the log: method, content type,
	// body, and the query without the secret.
	raw string
	// digest identifies the request's content (body and query without
	// the secret), so a retry of the same request is recognised.
	digest string
}

// fields maps lower-cased field names to their first value.
type fields map[string]string

// lookup returns the first non-empty value under extra names, then usual
// names.
func (f fields) lookup(extra, usual []string) string {
	for _, names := range [][]string{extra, usual} {
		for _, n := range names {
			if v := strings.TrimSpace(f[strings.ToLower(n)]); v != "" {
				return v
			}
		}
	}
	return ""
}

// add keeps the first value given for a name. A value over maxFieldBytes
// is dropped: no SMS field is that long.
func (f fields) add(name, value string) {
	name = strings.ToValidUTF8(strings.ToLower(strings.TrimSpace(name)), "\uFFFD")
	if name == "" || len(value) > maxFieldBytes {
		return
	}
	if _, ok := f[name]; !ok {
		f[name] = strings.ToValidUTF8(value, "\uFFFD")
	}
}

// readCallback reads a callback to path whatever its encoding: a form,
// multipart form or JSON object body, and the query string (minus the
// secret), body fields winning over query fields of the same name. An
// empty body is fine (a GET callback carries everything in the query);
// a body in any other media type is refused with 415. secret, if not
// empty, is also scrubbed from the raw text in case a provider echoes it.
func readCallback(method, path, contentType string, query url.Values, body []byte, secret string) (*callbackRequest, error) {
	query = withoutSecret(query)
	f := fields{}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := readBody(f, contentType, body); err != nil {
			return nil, err
		}
	}
	for _, k := range sortedKeys(query) {
		if vs := query[k]; len(vs) > 0 {
			f.add(k, vs[0])
		}
	}
	q := query.Encode()

	sum := sha256.New()
	sum.Write([]byte(q))
	sum.Write([]byte{0})
	sum.Write(body)

	var raw strings.Builder
	raw.WriteString(method + " " + path)
	if q != "" {
		raw.WriteString("?" + q)
	}
	if contentType != "" {
		raw.WriteString("\nContent-Type: " + contentType)
	}
	if len(body) > 0 {
		raw.WriteString("\n\n")
		raw.Write(body)
	}
	text := raw.String()
	if secret != "" {
		text = strings.ReplaceAll(text, secret, "[REDACTED]")
	}
	if len(text) > maxRaw {
		text = clip(text, maxRaw) + "\n[truncated]"
	}
	return &callbackRequest{
		fields: f,
		raw:    strings.ToValidUTF8(text, "\uFFFD"),
		digest: "sha256:" + hex.EncodeToString(sum.Sum(nil)),
	}, nil
}

// withoutSecret returns a copy of q without the secret parameter, whatever
// its case, so it never reaches a field, the log or the digest.
func withoutSecret(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, vs := range q {
		if !strings.EqualFold(k, secretParam) {
			out[k] = vs
		}
	}
	return out
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// readBody adds the fields of body to f. A missing content type is
// guessed from the first byte: providers are sloppy about the header.
func readBody(f fields, contentType string, body []byte) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if contentType == "" {
		mt, err = "application/x-www-form-urlencoded", nil
		if bytes.TrimSpace(body)[0] == '{' {
			mt = "application/json"
		}
	}
	if err != nil {
		return &badRequest{status: http.StatusUnsupportedMediaType, reason: "unsupported_media_type",
			msg: "unreadable Content-Type " + strconv.Quote(contentType)}
	}
	switch {
	case mt == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return malformed("malformed form body: %v", err)
		}
		for _, k := range sortedKeys(vals) {
			f.add(k, vals[k][0])
		}
		return nil
	case mt == "multipart/form-data":
		return readMultipart(f, body, params["boundary"])
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return readJSON(f, body)
	}
	return &badRequest{status: http.StatusUnsupportedMediaType, reason: "unsupported_media_type",
		msg: "Content-Type " + mt + " is not supported (use application/x-www-form-urlencoded, multipart/form-data or application/json)"}
}

func readMultipart(f fields, body []byte, boundary string) error {
	if boundary == "" {
		return malformed("multipart body without a boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return malformed("malformed multipart body: %v", err)
		}
		// Files are no SMS field; skip them rather than refuse the SMS.
		if part.FileName() != "" || part.FormName() == "" {
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, int64(maxFieldBytes)+1))
		if err != nil {
			return malformed("malformed multipart body: %v", err)
		}
		f.add(part.FormName(), string(v))
	}
}

// readJSON reads one JSON object. Strings and numbers (kept as written,
// so an id keeps all its digits) are fields; booleans are written
// true/false; nulls, objects and arrays are ignored.
func readJSON(f fields, body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return malformed("malformed JSON body: %v", err)
	}
	if obj == nil {
		return malformed("malformed JSON body: want an object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return malformed("malformed JSON body: more than one JSON value")
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	// Sorted, so that of two keys differing only in case the same one
	// wins every time.
	slices.Sort(keys)
	for _, k := range keys {
		switch v := obj[k].(type) {
		case string:
			f.add(k, v)
		case json.Number:
			f.add(k, v.String())
		case bool:
			f.add(k, strconv.FormatBool(v))
		}
	}
	return nil
}

// inboundSMS is the part of an inbound callback the bridge needs.
type inboundSMS struct {
	From, To, Text string
	ID             string // the provider's id, "" when it gave none
	Received       time.Time
}

// parseInbound picks an inbound SMS out of f. From and text are required;
// the time is optional and ignored when unreadable (the SMS matters more
// than when the provider says it got it).
func parseInbound(f fields, names InboundFields) (inboundSMS, error) {
	in := inboundSMS{
		From: f.lookup(names.From, fromNames),
		To:   f.lookup(names.To, toNames),
		ID:   f.lookup(names.ID, idNames),
	}
	if in.From == "" {
		return in, missing("from", append(slices.Clone(names.From), fromNames...))
	}
	// Text is not trimmed: it is what the phone sent. An SMS of only
	// spaces is still an SMS, but no text field at all is not.
	for _, n := range slices.Concat(names.Text, textNames) {
		if v, ok := f[strings.ToLower(n)]; ok && v != "" {
			in.Text = v
			break
		}
	}
	if in.Text == "" {
		return in, missing("text", append(slices.Clone(names.Text), textNames...))
	}
	in.Received, _ = parseTime(f.lookup(names.Received, timeNames))
	return in, nil
}

// statusReport is a delivery report as a callback gives it.
type statusReport struct {
	ID, To string
	Word   string // the provider's status as given
	State  bridge.State
	Detail string
	At     time.Time
}

// parseStatus picks a delivery report out of f. An id and a known status
// are required; StateSent means the status is no news (accepted, en
// route) and there is nothing to record.
func parseStatus(f fields, names StatusFields) (statusReport, error) {
	r := statusReport{
		ID:     f.lookup(names.ID, idNames),
		To:     f.lookup(names.To, toNames),
		Word:   f.lookup(names.Status, statusNames),
		Detail: f.lookup(names.Detail, detailNames),
	}
	if r.ID == "" {
		return r, missing("id", append(slices.Clone(names.ID), idNames...))
	}
	if r.Word == "" {
		return r, missing("status", append(slices.Clone(names.Status), statusNames...))
	}
	st, ok := statusState(r.Word)
	if !ok {
		return r, &badRequest{status: http.StatusBadRequest, reason: string(bridge.ReasonInvalid), field: "status",
			msg: fmt.Sprintf("status: unknown delivery status %q", r.Word)}
	}
	r.State = st
	if r.Detail == "" && st == bridge.StateUndelivered {
		r.Detail = r.Word
	}
	r.At, _ = parseTime(f.lookup(names.At, timeNames))
	return r, nil
}

// statusState maps the status words and codes providers use (plain words,
// SMPP delivery receipt states, numeric codes in the IPPanel style) to a
// recipient state; StateSent is "no news yet".
func statusState(word string) (bridge.State, bool) {
	switch strings.ToLower(strings.TrimSpace(word)) {
	case "delivered", "delivrd", "success", "2":
		return bridge.StateDelivered, true
	case "undelivered", "undeliv", "failed", "rejected", "rejectd", "expired", "deleted", "3", "4":
		return bridge.StateUndelivered, true
	case "sent", "accepted", "acceptd", "queued", "enroute", "buffered", "unknown", "0", "1":
		return bridge.StateSent, true
	}
	return "", false
}

// parseTime reads unix seconds (or milliseconds, which some providers
// send), RFC 3339, or "2006-01-02 15:04:05" taken as UTC since the
// provider says nothing about its zone. Times before 2000 or more than a
// day ahead are refused: they are garbage, not clock skew.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	var t time.Time
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > 1e12 {
			t = time.UnixMilli(n)
		} else {
			t = time.Unix(n, 0)
		}
	} else {
		var ok bool
		for _, layout := range []string{time.RFC3339Nano, time.DateTime, "2006-01-02T15:04:05"} {
			if t, err = time.Parse(layout, s); err == nil {
				ok = true
				break
			}
		}
		if !ok {
			return time.Time{}, false
		}
	}
	if t.Year() < 2000 || t.After(time.Now().Add(24*time.Hour)) {
		return time.Time{}, false
	}
	return t.UTC(), true
}
