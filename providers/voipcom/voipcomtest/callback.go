package voipcomtest

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// PostInbound plays the provider's side of an SMS reply to a 2-way number:
// it POSTs fields as a form to callbackURL, the number's "Callback URL".
// The payload of that callback is not documented; the provider's call API
// posts its callbacks as form POSTs, so this does too, with whatever fields
// the test chooses (e.g. from, to, msg, smsid). The caller closes the
// response body.
func (f *Server) PostInbound(ctx context.Context, callbackURL string, fields url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, callbackURL, strings.NewReader(fields.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return callbackClient.Do(req)
}

// callbackClient bounds a callback the way a provider would: it
// does not wait forever for the customer's server.
var callbackClient = &http.Client{Timeout: 30 * time.Second}
