// Package voipcomtest fakes the voip-communications api-v2 for tests, as
// net/http/httptest serves for net/http: an httptest server that validates
// every send the way shared/provider-docs/voip-communications-sms-send.txt
// documents it and answers with the documented send_log, and a client that
// plays the provider's inbound callbacks.
package voipcomtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/providertest"
)

// basePath is the path part of the real base URL, kept so that clients
// are tested joining paths onto a base that has one.
const basePath = "/api-v2/index.php"

// Server fakes the voip-communications api-v2 send call
// (shared/provider-docs/voip-communications-sms-send.txt): POST
// {base}/sms/send with HTTP Basic auth and a form body, answered with a
// send_log of one entry per recipient; and POST {base}/sms/summary, the
// list of conversations the provider's app reads (summary.go).
type Server struct {
	URL    string // base_url to configure
	Faults providertest.Faults
	// Latency delays every answer to a send, as a provider that takes
	// this long to answer (after Faults). Set it before the first request.
	Latency time.Duration
	// Observe, if set, is called with each accepted send instead of
	// keeping it for Requests, so a load test running for minutes does
	// not hold every request. Set it before the first request.
	Observe func(Request)

	apiKey, apiPassword string
	numbers             map[string]bool

	mu        sync.Mutex
	requests  []Request
	fail      map[string]failure
	sent      []logEntry // every SMS accepted, for sms/summary
	summaries int        // valid sms/summary calls
	drop      map[string]bool
	seq       int
}

// Request is one accepted sms/send call.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Form   url.Values // the parsed body
	To     []string   // the `to` list, split on ","
	Time   time.Time  // when the answer was ready
	// Arrived is when the request reached the fake, before Faults and
	// Latency: when the client called the provider.
	Arrived time.Time
}

type failure struct {
	code int
	desc string
}

// logEntry is one documented send_log entry.
type logEntry struct {
	Code         int     `json:"code"`
	CodeDesc     string  `json:"code_desc"`
	From         string  `json:"from"`
	To           string  `json:"to"`
	Country      string  `json:"country"`
	Msg          string  `json:"msg"`
	DeliveryDate string  `json:"delivery_date"`
	Sale         float64 `json:"sale"`
	Type         string  `json:"type"`
	Status       string  `json:"status"`
	SMSID        string  `json:"smsid"`
}

// NewServer starts a fake for one account. numbers are the account's
// SMS-enabled numbers (digits), the only ones accepted as `from`.
func NewServer(t testing.TB, apiKey, apiPassword string, numbers ...string) *Server {
	t.Helper()
	f := NewHandler(apiKey, apiPassword, numbers...)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL + basePath
	return f
}

// NewHandler is the fake without a server, for a program that serves it
// itself (cmd/smsload's in-process provider): base_url is where it is
// served plus BasePath.
func NewHandler(apiKey, apiPassword string, numbers ...string) *Server {
	f := &Server{
		apiKey:      apiKey,
		apiPassword: apiPassword,
		numbers:     make(map[string]bool, len(numbers)),
		fail:        map[string]failure{},
		drop:        map[string]bool{},
	}
	for _, n := range numbers {
		f.numbers[n] = true
	}
	return f
}

// BasePath is the path part of the base URL the fake serves.
const BasePath = basePath

// Requests returns the accepted requests, oldest first.
func (f *Server) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// FailRecipient makes the send_log entry for digits fail with code and desc
// (as code_desc) in every later call.
func (f *Server) FailRecipient(digits string, code int, desc string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[digits] = failure{code, desc}
}

// DropRecipient leaves digits out of the send_log of every later call, as
// a misbehaving API would.
func (f *Server) DropRecipient(digits string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop[digits] = true
}

// ServeHTTP answers one request to the API.
func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	// Reading the body first lets net/http notice a client that hangs up,
	// which cancels r.Context() and so ends a Delay fault early.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if f.Faults.Apply(w, r) {
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, basePath+"/")
	if !ok || path != "sms/send" && path != "sms/summary" {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	// The documented answer to bad credentials.
	if key, pw, ok := r.BasicAuth(); !ok || key != f.apiKey || pw != f.apiPassword {
		writeError(w, http.StatusUnauthorized, "Invalid api credentials")
		return
	}
	// The real API (PHP) would see no fields in any other body and answer
	// as for missing fields; saying why helps whoever reads a failing test.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		writeError(w, http.StatusBadRequest, "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "Malformed form body")
		return
	}
	if path == "sms/summary" {
		f.summary(w, r.PostForm)
		return
	}
	form := r.PostForm
	// The document marks to and msg required but not what the API answers
	// without them; this fake answers 400 in the api-v2 error shape.
	if form.Get("to") == "" || form.Get("msg") == "" {
		writeError(w, http.StatusBadRequest, "to and msg are required")
		return
	}
	// Same for an unreadable delivery_date: undocumented, so 400.
	var at time.Time
	if dd := form.Get("delivery_date"); dd != "" {
		var ok bool
		if at, ok = parseDate(dd); !ok {
			writeError(w, http.StatusBadRequest, "Invalid delivery_date")
			return
		}
	}

	to := strings.Split(form.Get("to"), ",")
	for i := range to {
		to[i] = strings.TrimSpace(to[i])
	}
	from := form.Get("from")

	f.mu.Lock()
	log := make([]logEntry, 0, len(to))
	for _, n := range to {
		if f.drop[n] {
			continue
		}
		e := f.entry(from, n, form.Get("msg"), at)
		log = append(log, e)
		if e.Code == 200 && f.Observe == nil {
			f.sent = append(f.sent, e)
		}
	}
	req := Request{
		Method:  r.Method,
		Path:    r.URL.Path,
		Header:  r.Header.Clone(),
		Form:    cloneForm(form),
		To:      to,
		Time:    time.Now(),
		Arrived: arrived,
	}
	if f.Observe == nil {
		f.requests = append(f.requests, req)
	}
	f.mu.Unlock()
	if f.Observe != nil {
		f.Observe(req)
	}

	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"send_log": log})
}

// entry answers for one recipient. f.mu is held.
func (f *Server) entry(from, to, msg string, at time.Time) logEntry {
	e := logEntry{Code: 200, From: from, To: to, Country: countryOf(to), Msg: msg,
		Sale: 0.01, Type: "BULKSMS", Status: "SENT"}
	// The document shows only BULKSMS; a 2-way send is named by analogy.
	if from != "" {
		e.Type = "2WAYSMS"
	}
	if at.IsZero() {
		e.DeliveryDate = time.Now().UTC().Format(time.DateTime)
	} else {
		e.DeliveryDate = at.Format(time.DateTime)
		e.Status = "SCHEDULED"
	}
	fail, failed := f.fail[to]
	switch {
	case to == "" || strings.Trim(to, "0123456789") != "":
		e.Code, e.CodeDesc = 400, "invalid number"
	// Undocumented: a `from` that is not ours fails every entry, with 403
	// as the closest HTTP meaning ("not yours to use").
	case from != "" && !f.numbers[from]:
		e.Code, e.CodeDesc = 403, "from number not SMS enabled"
	case failed:
		e.Code, e.CodeDesc = fail.code, fail.desc
	}
	// A refused SMS is neither charged nor given an id (our choice; the
	// document shows only a success).
	if e.Code != 200 {
		e.Status, e.Sale = "FAILED", 0
		return e
	}
	f.seq++
	// 27 hex digits, like the documented "2017559ea27008c6b7122900621".
	e.SMSID = fmt.Sprintf("%012x%015x", time.Now().UnixMilli(), f.seq)
	return e
}

// parseDate reads the documented "YYYY-MM-DD HH:MM" and a few other
// common layouts ("or any valid date format").
func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04", time.DateTime, time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func countryOf(digits string) string {
	switch {
	case strings.HasPrefix(digits, "1"):
		return "US"
	case strings.HasPrefix(digits, "972"):
		return "IL"
	}
	return ""
}

// writeError writes the api-v2 error shape.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": true, "error_message": msg})
}

func cloneForm(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}
