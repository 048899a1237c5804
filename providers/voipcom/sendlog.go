package voipcom

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/smsbridge/smsbridge/providers"
)

// entry is one element of the documented send_log. Every field is lenient:
// the document shows code and sale as numbers, but PHP APIs are known to
// turn numbers into strings, and a wrong guess must not fail a whole batch.
type entry struct {
	Code     lenient `json:"code"`
	CodeDesc lenient `json:"code_desc"`
	To       lenient `json:"to"`
	Country  lenient `json:"country"`
	Sale     lenient `json:"sale"`
	Type     lenient `json:"type"`
	Status   lenient `json:"status"`
	SMSID    lenient `json:"smsid"`
}

// code returns the entry's code as an integer; ok is false when it is
// missing or not a whole number.
func (e *entry) code() (int, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(string(e.Code)), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1e9 {
		return 0, false
	}
	return int(f), true
}

// lenient is a JSON string, number or null, kept as text.
type lenient string

func (l *lenient) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*l = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = lenient(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("want a string or a number")
	}
	*l = lenient(n)
	return nil
}

// parseSendLog reads a 200 answer. Anything but an object with a send_log
// array is an error.
func parseSendLog(body []byte) ([]entry, error) {
	var v struct {
		SendLog *[]entry `json:"send_log"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	if v.SendLog == nil {
		return nil, errors.New("no send_log")
	}
	return *v.SendLog, nil
}

// match pairs entries with the recipients they answer, by the entry's `to`.
// The API documents no order, so position is used only for entries without
// a `to`, and only when there is one entry per recipient. A recipient
// listed twice is matched to entries in turn. stray counts entries that
// answer no recipient.
func match(entries []entry, to []string) (matched []*entry, stray int) {
	matched = make([]*entry, len(to))
	pending := make(map[string][]int, len(to))
	for i, d := range to {
		pending[d] = append(pending[d], i)
	}
	var noTo []int
	for i := range entries {
		d := strings.TrimPrefix(strings.TrimSpace(string(entries[i].To)), "+")
		if d == "" {
			noTo = append(noTo, i)
			continue
		}
		q := pending[d]
		if len(q) == 0 {
			stray++
			continue
		}
		matched[q[0]] = &entries[i]
		pending[d] = q[1:]
	}
	for _, i := range noTo {
		if len(entries) == len(to) && matched[i] == nil {
			matched[i] = &entries[i]
		} else {
			stray++
		}
	}
	return matched, stray
}

// errorDetail is the provider's explanation in a non-send_log answer: the
// api-v2 error_message, or else the start of the body. redact runs before
// the text is cut short, so a secret cut in half cannot slip through, and
// after JSON decoding, so an escaped secret cannot either.
func errorDetail(body []byte, redact func(string) string) string {
	var v struct {
		ErrorMessage string `json:"error_message"`
	}
	if json.Unmarshal(body, &v) == nil && v.ErrorMessage != "" {
		return providers.Snippet([]byte(redact(v.ErrorMessage)), 200)
	}
	return providers.Snippet([]byte(redact(string(body))), 200)
}
