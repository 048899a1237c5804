// Package providers holds what the provider API clients share: classifying
// HTTP outcomes as temporary or permanent, honouring Retry-After, and keeping
// secrets out of errors. Each provider API lives in its own subpackage.
package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
)

// MaxBody caps how much of a provider response is read.
const MaxBody = 1 << 20

// Response is a provider's HTTP answer, read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends req and reads the whole response. Network errors and timeouts
// come back as temporary *bridge.Error values whose text names the provider
// but never the request URL (which may carry credentials). It does not judge
// the HTTP status; see Classify.
func Do(ctx context.Context, c *http.Client, provider string, req *http.Request) (*Response, error) {
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		return nil, networkError(provider, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return nil, networkError(provider, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

func networkError(provider string, err error) error {
	// *url.Error embeds the URL; keep only the underlying cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	what := "network error"
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		what = "timeout"
	}
	return &bridge.Error{
		Reason: bridge.ReasonProviderDown,
		Temp:   true,
		Msg:    fmt.Sprintf("%s: %s", provider, what),
		Err:    err,
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Classify maps an HTTP status to an error, the way every provider client
// does: 2xx is success (nil); 429, 5xx and 408 are temporary, honouring
// Retry-After; 401 and 403 are permanent authentication errors; any other
// status is a permanent rejection. detail, if not empty, is the provider's
// own explanation and goes into the message.
func Classify(provider string, r *Response, detail string, now time.Time) error {
	if r.Status >= 200 && r.Status < 300 {
		return nil
	}
	msg := fmt.Sprintf("%s: HTTP %d", provider, r.Status)
	if detail != "" {
		msg += ": " + detail
	}
	e := &bridge.Error{Msg: msg}
	switch {
	case r.Status == http.StatusTooManyRequests || r.Status == http.StatusRequestTimeout || r.Status >= 500:
		e.Temp = true
		e.Reason = bridge.ReasonProviderDown
		e.RetryAfter = RetryAfter(r.Header, now)
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		e.Reason = bridge.ReasonProviderAuth
	default:
		e.Reason = bridge.ReasonProviderRejected
	}
	return e
}

// RetryAfter parses a Retry-After header (delay-seconds or HTTP-date,
// RFC 9110 §10.2.3) relative to now; 0 when absent, invalid or in the past.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Redact replaces every non-empty secret in s with "[REDACTED]". Clients
// run provider-supplied text through it before it reaches an error.
func Redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// Snippet returns at most n bytes of a body for error messages, cut at a
// character boundary (a Persian or Hebrew error cut mid-character would
// put invalid UTF-8 in logs and replies) and with invalid bytes replaced.
func Snippet(b []byte, n int) string {
	s := strings.ToValidUTF8(strings.TrimSpace(string(b)), "\uFFFD")
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
