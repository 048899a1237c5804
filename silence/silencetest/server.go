// Package silencetest fakes the silence endpoints of the Alertmanager API
// v2, as Grafana serves them for its built-in Alertmanager or as
// Prometheus Alertmanager does: an httptest server that checks every
// request the way the API documents it (Alertmanager's
// api/v2/openapi.yaml PostableSilence; Grafana's alerting HTTP API, which
// validates the same model and requires its permissions) and keeps the
// silences it was given.
package silencetest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/providertest"
)

// Flavor is which server the fake plays.
type Flavor int

const (
	// Grafana serves under /api/alertmanager/grafana/api/v2, answers a
	// create 202 and wants a bearer token (a service account's).
	Grafana Flavor = iota
	// Alertmanager serves under /api/v2 and answers a create 200.
	Alertmanager
)

// Silence is a silence as the fake keeps it.
type Silence struct {
	ID        string
	Matchers  []Matcher
	StartsAt  time.Time
	EndsAt    time.Time
	CreatedBy string
	Comment   string
}

// Matcher is a matcher as posted.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex *bool  `json:"isRegex"`
	IsEqual *bool  `json:"isEqual"`
}

// Active reports whether s silences at t.
func (s Silence) Active(t time.Time) bool { return !t.Before(s.StartsAt) && t.Before(s.EndsAt) }

// Request is one request the fake answered, valid or not.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	Status int // what the fake answered
}

// Server is the fake.
type Server struct {
	URL    string // the base URL to configure (Grafana's root, or Alertmanager's)
	Faults providertest.Faults
	// Now is the fake's clock (default time.Now), for "not in the past".
	Now func() time.Time

	flavor Flavor
	token  string

	mu       sync.Mutex
	requests []Request
	silences map[string]*Silence
	seq      int
}

// NewServer starts a fake. token is the bearer token it requires (""
// requires none).
func NewServer(t testing.TB, flavor Flavor, token string) *Server {
	t.Helper()
	f := &Server{flavor: flavor, token: token, silences: map[string]*Silence{}, Now: time.Now}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *Server) prefix() string {
	if f.flavor == Grafana {
		return "/api/alertmanager/grafana/api/v2"
	}
	return "/api/v2"
}

// Requests returns every request answered, oldest first.
func (f *Server) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// Silences returns the silences kept, in no order.
func (f *Server) Silences() []Silence {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Silence, 0, len(f.silences))
	for _, s := range f.silences {
		out = append(out, *s)
	}
	return out
}

// Silence returns one silence by ID.
func (f *Server) Silence(id string) (Silence, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.silences[id]
	if !ok {
		return Silence{}, false
	}
	return *s, true
}

func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rec := &recorder{ResponseWriter: w}
	defer func() {
		f.mu.Lock()
		f.requests = append(f.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Status: rec.status})
		f.mu.Unlock()
	}()
	if f.Faults.Apply(rec, r) {
		return
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		answer(rec, http.StatusUnauthorized, "invalid API key")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, f.prefix()+"/")
	switch {
	case ok && rest == "silences" && r.Method == http.MethodPost:
		f.post(rec, r, body)
	case ok && strings.HasPrefix(rest, "silence/") && r.Method == http.MethodDelete:
		f.delete(rec, strings.TrimPrefix(rest, "silence/"))
	default:
		answer(rec, http.StatusNotFound, "not found: "+r.Method+" "+r.URL.Path)
	}
}

// post checks a PostableSilence as the API's model validation does:
// matchers (at least one, each with name, value and isRegex), startsAt,
// endsAt, createdBy and comment are required; then as the server does:
// endsAt after startsAt and not in the past, an id that exists.
func (f *Server) post(w http.ResponseWriter, r *http.Request, body []byte) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		answer(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json, not "+ct)
		return
	}
	var p struct {
		ID        string    `json:"id"`
		Matchers  []Matcher `json:"matchers"`
		StartsAt  *string   `json:"startsAt"`
		EndsAt    *string   `json:"endsAt"`
		CreatedBy *string   `json:"createdBy"`
		Comment   *string   `json:"comment"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		answer(w, http.StatusBadRequest, "parsing the body: "+err.Error())
		return
	}
	bad := func(format string, args ...any) { answer(w, http.StatusBadRequest, fmt.Sprintf(format, args...)) }
	switch {
	case len(p.Matchers) == 0:
		bad("matchers in body should have at least 1 items")
		return
	case p.StartsAt == nil || p.EndsAt == nil:
		bad("startsAt and endsAt in body are required")
		return
	case p.CreatedBy == nil || *p.CreatedBy == "":
		bad("createdBy in body is required")
		return
	case p.Comment == nil || *p.Comment == "":
		bad("comment in body is required")
		return
	}
	for i, m := range p.Matchers {
		if m.Name == "" || m.IsRegex == nil {
			bad("matchers.%d: name and isRegex are required", i)
			return
		}
		if m.Value == "" {
			bad("matchers.%d.value in body is required", i)
			return
		}
	}
	start, err1 := time.Parse(time.RFC3339Nano, *p.StartsAt)
	end, err2 := time.Parse(time.RFC3339Nano, *p.EndsAt)
	if err1 != nil || err2 != nil {
		bad("startsAt and endsAt must be date-time (RFC 3339)")
		return
	}
	now := f.Now()
	switch {
	case !end.After(start):
		bad("Failed to create silence: start time must be before end time")
		return
	case end.Before(now):
		bad("Failed to create silence: end time can't be in the past")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := p.ID
	if id != "" {
		prev, ok := f.silences[id]
		if !ok {
			answer(w, http.StatusNotFound, "silence not found")
			return
		}
		if !prev.Active(now) || !sameMatchers(prev.Matchers, p.Matchers) {
			id = "" // the API replaces it with a new silence
		}
	}
	if id == "" {
		f.seq++
		id = fmt.Sprintf("fake-silence-%04d", f.seq)
	}
	if start.Before(now) {
		start = now
	}
	f.silences[id] = &Silence{ID: id, Matchers: p.Matchers, StartsAt: start, EndsAt: end, CreatedBy: *p.CreatedBy, Comment: *p.Comment}
	status := http.StatusOK
	if f.flavor == Grafana {
		status = http.StatusAccepted
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"silenceID": id})
}

func (f *Server) delete(w http.ResponseWriter, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.silences[id]
	if !ok {
		answer(w, http.StatusNotFound, "silence not found")
		return
	}
	if now := f.Now(); s.EndsAt.After(now) {
		s.EndsAt = now
		if s.StartsAt.After(now) {
			s.StartsAt = now
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if f.flavor == Grafana {
		_, _ = io.WriteString(w, `{"message":"silence deleted"}`)
	}
}

func sameMatchers(a, b []Matcher) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Value != b[i].Value || *a[i].IsRegex != *b[i].IsRegex {
			return false
		}
	}
	return true
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// recorder keeps the status written.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Hijack lets providertest's Close fault drop the connection.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(r.ResponseWriter).Hijack()
}
