package mindcrm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

// response is the documented answer: {"stat_code": 0, "description": "...",
// "data": "..."}. data repeats description and is not read.
type response struct {
	StatCode    *int64 `json:"stat_code"`
	Description string `json:"description"`
}

// parseResponse reads a documented answer; a body without an integer
// stat_code is not one.
func parseResponse(body []byte) (response, error) {
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return response{}, err
	}
	if r.StatCode == nil {
		return response{}, errors.New("no stat_code")
	}
	return r, nil
}

// statCode is what a documented error code means and which reason and
// input field it blames.
type statCode struct {
	meaning string // the doc's Meaning and How to Fix
	reason  bridge.Reason
	field   string
}

var statCodes = map[int64]statCode{
	1: {"missing mandatory parameter (check that all required parameters are included)", bridge.ReasonProviderRejected, ""},
	2: {"invalid phone number format (the number must start with 05 and contain exactly 10 digits)", bridge.ReasonProviderRejected, "to"},
	3: {"message too long (keep the message under 500 characters)", bridge.ReasonProviderRejected, "text"},
	4: {"invalid source_number (use only letters and numbers, max 12 characters, no special characters)", bridge.ReasonProviderRejected, "sender"},
	5: {"SMS template not found (verify the sms_template_id exists and is active)", bridge.ReasonTemplateUnknown, "template"},
}

// verdict turns the body of a 2xx answer into the recipient's outcome and
// the details kept in the log. stat_code 0 is success, any other a
// permanent refusal. A body that is not the documented JSON is a temporary
// failure: garbage from a provider is more likely an outage or proxy page
// than a verdict on the message.
func (p *Provider) verdict(body []byte) (map[string]string, error) {
	r, err := parseResponse(body)
	if err != nil {
		return nil, &bridge.Error{
			Reason: bridge.ReasonProviderDown,
			Temp:   true,
			Msg:    fmt.Sprintf("%s: unexpected answer (not the documented JSON): %s", p.name, providers.Snippet(body, 80)),
			Err:    err,
		}
	}
	info := map[string]string{
		"stat_code":   strconv.FormatInt(*r.StatCode, 10),
		"description": r.Description,
	}
	if *r.StatCode == 0 {
		return info, nil
	}
	sc, ok := statCodes[*r.StatCode]
	if !ok {
		sc = statCode{meaning: providers.Snippet([]byte(r.Description), 200), reason: bridge.ReasonProviderRejected}
		if sc.meaning == "" {
			sc.meaning = "undocumented error"
		}
	}
	return info, &bridge.Error{
		Reason: sc.reason,
		Field:  sc.field,
		Msg:    fmt.Sprintf("%s: stat_code %d: %s", p.name, *r.StatCode, sc.meaning),
	}
}
