package ippanel

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

// Check proves the token without sending anything: it reads the account's
// credit (GET /api/payment/credit/mine), which costs nothing and changes
// nothing. It answers the credit, and the gift credit when there is any.
// A token the API refuses is an error, and so is an account with neither
// credit nor gift credit left: every send would end in state 8,
// insufficient credit.
func (p *Provider) Check(ctx context.Context) (string, error) {
	resp, env, err := p.get(ctx, p.creditURL)
	if err != nil {
		return "", err
	}
	return credit(p.name, p.token, resp, env)
}

// credit reads data of a successful credit answer: {"credit": 6084722932.7,
// "gift": 0, ...} as IPPanel's Edge documentation shows it.
func credit(provider, secret string, r *providers.Response, env envelope) (string, error) {
	var d struct {
		Credit *float64 `json:"credit"`
		Gift   float64  `json:"gift"`
	}
	if err := json.Unmarshal(env.Data, &d); err != nil || d.Credit == nil {
		return "", garbage(provider, r, secret)
	}
	what := "credit " + strconv.FormatFloat(*d.Credit, 'f', -1, 64)
	if d.Gift != 0 {
		what += ", gift " + strconv.FormatFloat(d.Gift, 'f', -1, 64)
	}
	if *d.Credit <= 0 && d.Gift <= 0 {
		return "", bridge.Permanent(bridge.ReasonProviderRejected, "",
			"%s: %s: no credit left, sends would fail for insufficient credit", provider, what)
	}
	return what, nil
}
