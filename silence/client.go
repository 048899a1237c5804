package silence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Auth is how a Client proves itself: HTTP Basic (Username and
// Password), or a bearer token (a Grafana service account token, or what
// a proxy in front of Alertmanager wants). Zero: no credentials. Its
// values are never put in an error or a log.
type Auth struct {
	Username string
	Password string
	Token    string
}

// Client speaks the Alertmanager API v2 silence endpoints of one server.
// It is safe for concurrent use.
type Client struct {
	kind   string   // "alertmanager" or "grafana", for errors
	base   *url.URL // the server, with the API prefix joined on
	auth   Auth
	http   *http.Client
	accept []int // statuses a create may answer with
}

// DefaultTimeout bounds one call when Options.Timeout is 0: the call is
// made while a phone's SMS is being received, and the provider waits.
const DefaultTimeout = 10 * time.Second

// maxResponse caps what is read of an answer: a silence ID, or an error
// message worth quoting.
const maxResponse = 64 << 10

// Options configures a Client.
type Options struct {
	Auth    Auth
	Timeout time.Duration // per call; 0 is DefaultTimeout
	// Transport, if set, replaces http.DefaultTransport (tests).
	Transport http.RoundTripper
}

func newClient(kind, baseURL, prefix string, opt Options, accept ...int) (*Client, error) {
	u, err := url.Parse(baseURL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s url: %w", kind, err)
	case u.User != nil:
		// In the URL it would be printed wherever the URL is.
		return nil, fmt.Errorf("%s url: put credentials in username/password or token, not in the URL", kind)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("%s url: %q is not an absolute http or https URL", kind, clip(baseURL))
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%s url: must not have a query or fragment", kind)
	}
	u = u.JoinPath(prefix)
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr := opt.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	hc := &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// A redirect would turn the POST into a GET, and could carry
		// the credentials elsewhere: an answer, not something to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Client{kind: kind, base: u, auth: opt.Auth, http: hc, accept: accept}, nil
}

// String names the server (without credentials) for logs and errors.
func (c *Client) String() string { return c.kind + " " + c.base.Redacted() }

// Kind is "alertmanager" or "grafana".
func (c *Client) Kind() string { return c.kind }

// Error is a call the API did not answer as documented.
type Error struct {
	Server string // Client.String
	Op     string // "creating a silence", "expiring silence <id>"
	Status int    // the HTTP status; 0 when there was no answer
	Detail string // what the server said, or the transport error, clipped
	Err    error  // the transport error, or ErrNotFound
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s: %s: %s", e.Server, e.Op, e.Detail)
	}
	s := fmt.Sprintf("%s: %s: HTTP %d", e.Server, e.Op, e.Status)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Create creates s (or, with s.ID set, updates or replaces that silence)
// and returns the ID the API gave it.
func (c *Client) Create(ctx context.Context, s Silence) (string, error) {
	if err := s.Check(time.Now()); err != nil {
		return "", err
	}
	body, err := json.Marshal(postable(s))
	if err != nil {
		return "", fmt.Errorf("silence: encoding: %w", err)
	}
	const op = "creating a silence"
	status, answer, err := c.do(ctx, http.MethodPost, c.base.JoinPath("silences"), body)
	if err != nil {
		return "", c.fail(op, 0, err.Error(), err)
	}
	if status == http.StatusNotFound {
		return "", c.fail(op, status, detail(answer), ErrNotFound)
	}
	if !c.accepts(status) {
		return "", c.fail(op, status, detail(answer), nil)
	}
	// Alertmanager and Grafana answer {"silenceID": ...}; Grafana
	// before 9 answered {"message": ..., "id": ...}.
	var ok struct {
		SilenceID string `json:"silenceID"`
		ID        string `json:"id"`
	}
	if err := json.Unmarshal(answer, &ok); err != nil {
		return "", c.fail(op, status, "the answer is not JSON: "+clip(string(answer)), nil)
	}
	id := ok.SilenceID
	if id == "" {
		id = ok.ID
	}
	if id == "" || len(id) > maxIDBytes || strings.ContainsAny(id, "/?#% \t\r\n") {
		return "", c.fail(op, status, "the answer carries no usable silence ID: "+clip(string(answer)), nil)
	}
	return id, nil
}

// Expire ends the silence id now. A silence that already ended is
// expired without error; one the API does not know is ErrNotFound.
func (c *Client) Expire(ctx context.Context, id string) error {
	op := "expiring silence " + clip(id)
	if id == "" || len(id) > maxIDBytes {
		return c.fail(op, 0, "no usable silence ID", nil)
	}
	status, answer, err := c.do(ctx, http.MethodDelete, c.base.JoinPath("silence", id), nil)
	switch {
	case err != nil:
		return c.fail(op, 0, err.Error(), err)
	case status == http.StatusNotFound:
		return c.fail(op, status, detail(answer), ErrNotFound)
	case status != http.StatusOK:
		return c.fail(op, status, detail(answer), nil)
	}
	return nil
}

func (c *Client) accepts(status int) bool {
	for _, s := range c.accept {
		if s == status {
			return true
		}
	}
	return false
}

func (c *Client) fail(op string, status int, detail string, err error) *Error {
	return &Error{Server: c.String(), Op: op, Status: status, Detail: clip(detail), Err: err}
}

// do makes one call and returns the status and at most maxResponse bytes
// of the answer.
func (c *Client) do(ctx context.Context, method string, u *url.URL, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.auth.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.auth.Token)
	case c.auth.Username != "" || c.auth.Password != "":
		req.SetBasicAuth(c.auth.Username, c.auth.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error repeats the URL, which holds no secret (see newClient).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, answer, nil
}

// detail is what an error answer says: Grafana's {"message": ...}, or
// Alertmanager's JSON string, or the text as it came.
func detail(answer []byte) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(answer, &m) == nil && m.Message != "" {
		return m.Message
	}
	var s string
	if json.Unmarshal(answer, &s) == nil {
		return s
	}
	return strings.Join(strings.Fields(string(answer)), " ")
}

// postableSilence is the API's PostableSilence: every field is required
// but id, and isEqual (default true) is sent anyway so an older server
// that lacks it is not asked for a negative matcher.
type postableSilence struct {
	ID        string            `json:"id,omitempty"`
	Matchers  []postableMatcher `json:"matchers"`
	StartsAt  string            `json:"startsAt"`
	EndsAt    string            `json:"endsAt"`
	CreatedBy string            `json:"createdBy"`
	Comment   string            `json:"comment"`
}

type postableMatcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

func postable(s Silence) postableSilence {
	p := postableSilence{ID: s.ID, StartsAt: s.StartsAt.UTC().Format(time.RFC3339Nano),
		EndsAt: s.EndsAt.UTC().Format(time.RFC3339Nano), CreatedBy: s.CreatedBy, Comment: s.Comment}
	for _, m := range s.Matchers {
		p.Matchers = append(p.Matchers, postableMatcher{Name: m.Name, Value: m.Value, IsEqual: true})
	}
	return p
}
