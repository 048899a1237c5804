package mindcrm

import (
	"context"
	"fmt"
	"net/http"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

// Check proves what can be proved without sending: MindCRM has no
// credentials (user_id only says whom a message is logged against) and
// documents no call but the send, so there is nothing to authenticate.
// It calls the send API with no parameters at all, which the document
// answers with stat_code 1 (missing mandatory parameter) and which cannot
// send or log anything, having no phone and no message. That proves the
// instance answers at base_url, over TLS when base_url is https, and that
// what answers is the documented API.
func (p *Provider) Check(ctx context.Context) (string, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, p.endpoint.String(), nil)
	if err != nil {
		return "", fmt.Errorf("%s: building request: %w", p.name, err)
	}
	hreq.Header.Set("Accept", "application/json")
	resp, err := providers.Do(ctx, p.hc, p.name, hreq)
	if err != nil {
		return "", err
	}
	return p.probe(resp)
}

// probe judges the answer to the call without parameters.
func (p *Provider) probe(resp *providers.Response) (string, error) {
	if err := providers.Classify(p.name, resp, p.detail(resp.Body), p.now()); err != nil {
		return "", err
	}
	r, err := parseResponse(resp.Body)
	switch {
	case err != nil:
		return "", bridge.Temporary(bridge.ReasonProviderDown, nil,
			"%s: unexpected answer (not the documented JSON): %s", p.name, providers.Snippet(resp.Body, 80))
	case *r.StatCode != 1:
		return "", bridge.Permanent(bridge.ReasonProviderRejected, "",
			"%s: answered a call without parameters with stat_code %d (%s), not 1 (missing mandatory parameter) as documented",
			p.name, *r.StatCode, providers.Snippet([]byte(r.Description), 200))
	}
	return "reachable; MindCRM has no credentials to prove: the send API answered a call without parameters " +
		"with stat_code 1 (missing mandatory parameter)", nil
}
