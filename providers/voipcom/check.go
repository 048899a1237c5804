package voipcom

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

// Check proves api_key and api_password without sending anything. The
// send document names no read-only call (no balance, no account read), so
// it makes the one the provider's own app makes to list the account's SMS
// conversations: POST sms/summary with page=0 (its first page). That reads
// and costs nothing. 401 is the documented answer to wrong credentials;
// api-v2 also answers some failures with 200 and {"error": true,
// "error_message": "..."}, an error here as well.
func (p *Provider) Check(ctx context.Context) (string, error) {
	resp, err := p.post(ctx, "sms/summary", url.Values{"page": {"0"}})
	if err != nil {
		return "", err
	}
	return p.summary(resp)
}

// summary judges the answer to sms/summary: {"summary": [...]} as the
// provider's app reads it.
func (p *Provider) summary(resp *providers.Response) (string, error) {
	switch {
	case resp.Status == http.StatusUnauthorized:
		return "", p.credentialsRefused()
	case resp.Status < 200 || resp.Status > 299:
		return "", providers.Classify(p.name, resp, errorDetail(resp.Body, p.redact), p.now())
	}
	var v struct {
		Error   bool               `json:"error"`
		Summary *[]json.RawMessage `json:"summary"`
	}
	switch err := json.Unmarshal(resp.Body, &v); {
	case err == nil && v.Error:
		return "", bridge.Permanent(bridge.ReasonProviderRejected, "",
			"%s: sms/summary refused: %s", p.name, errorDetail(resp.Body, p.redact))
	case err != nil || v.Summary == nil:
		return "", bridge.Temporary(bridge.ReasonProviderDown, nil,
			"%s: unexpected answer to sms/summary (HTTP %d): %s", p.name, resp.Status, errorDetail(resp.Body, p.redact))
	}
	return fmt.Sprintf("api credentials accepted by sms/summary, %d conversations on its first page", len(*v.Summary)), nil
}
