// Package mindcrmtest fakes a MindCRM instance for tests, as net/http/httptest
// serves for net/http: an httptest server that validates every request the
// way shared/provider-docs/mindcrm-send-sms.txt documents it and answers
// with the documented bodies. Tests point providers/mindcrm's base_url at
// it and assert what it received.
package mindcrmtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/providers/providertest"
)

// Server fakes a MindCRM instance's send API (mindcrm-send-sms.txt):
// GET /api/send_sms.php in raw or template mode, answering with the
// documented JSON bodies and stat_codes.
//
// What the document defines an answer for gets that answer. What it does
// not (an unknown parameter, a user_id other than the expected one, a
// non-integer user_id) cannot be answered faithfully, so the fake reports
// it as a test failure through t and then carries on as a PHP endpoint
// would, ignoring it.
type Server struct {
	URL    string              // base_url to configure
	Faults providertest.Faults // injected failures, consumed before anything else

	t         testing.TB
	mu        sync.Mutex
	templates map[int64]bool
	userID    int64
	accepted  []Request
	rejected  []Request
}

// Request is one request the fake answered with a stat_code.
type Request struct {
	Query    url.Values
	StatCode int // 0 for a sent SMS
	Received time.Time
}

// NewServer starts a fake MindCRM instance that knows template 7 and
// accepts any user_id. It is closed when the test ends.
func NewServer(t testing.TB) *Server {
	f := &Server{t: t, templates: map[int64]bool{7: true}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// SetTemplates replaces the set of existing template ids.
func (f *Server) SetTemplates(ids ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.templates = map[int64]bool{}
	for _, id := range ids {
		f.templates[int64(id)] = true
	}
}

// ExpectUserID makes any request whose user_id is absent or differs from
// id a test failure (0: any user_id, or none, is fine).
func (f *Server) ExpectUserID(id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.userID = id
}

// Requests returns every request answered with stat_code 0, in order.
func (f *Server) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.accepted)
}

// Rejected returns every request answered with a non-zero stat_code, in
// order.
func (f *Server) Rejected() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rejected)
}

// The documented error codes, with the Meaning column as description.
var descriptions = map[int]string{
	1: "Missing mandatory parameter",
	2: "Invalid phone number format",
	3: "Message too long",
	4: "Invalid source_number",
	5: "SMS template not found",
}

var (
	phonePattern     = regexp.MustCompile(`^05[0-589]-?[0-9]{7}$`)
	senderPattern    = regexp.MustCompile(`^[A-Za-z0-9]{1,12}$`)
	documentedParams = []string{"source_number", "message", "phone", "user_id", "from_phone",
		"date", "time", "repository_assign_id", "sms_template_id"}
)

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	if f.Faults.Apply(w, r) {
		return
	}
	if r.URL.Path != "/api/send_sms.php" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	f.checkUndocumented(q)
	for k, v := range q {
		q[k] = v[len(v)-1:] // PHP's $_GET keeps the last of repeated parameters
	}
	code := f.statCode(q)

	f.mu.Lock()
	rec := Request{Query: q, StatCode: code, Received: time.Now()}
	if code == 0 {
		f.accepted = append(f.accepted, rec)
	} else {
		f.rejected = append(f.rejected, rec)
	}
	f.mu.Unlock()

	// The document shows every answer, errors included, as a JSON body
	// and names no HTTP error status, so all of them come with 200.
	w.Header().Set("Content-Type", "application/json")
	if code == 0 {
		_, _ = w.Write([]byte(`{"stat_code": 0, "description": "SMS sent successfully", "data": "SMS sent successfully"}`))
		return
	}
	desc := strconv.Quote(descriptions[code])
	_, _ = fmt.Fprintf(w, `{"stat_code": %d, "description": %s, "data": %s}`, code, desc, desc)
}

// statCode validates q as the document describes and returns the code to
// answer with.
func (f *Server) statCode(q url.Values) int {
	template := q.Has("sms_template_id")
	phone := q.Get("phone")
	if phone == "" {
		phone = q.Get("from_phone") // "Alternative to phone. Used if phone is not provided."
	}
	required := []string{"source_number", "message"}
	if template {
		required = []string{"sms_template_id"}
	}
	for _, k := range required {
		if q.Get(k) == "" {
			return 1
		}
	}
	if phone == "" {
		return 1
	}
	if d := q.Get("date"); q.Has("date") && !validTime(time.DateOnly, d) {
		return 1
	}
	if t := q.Get("time"); q.Has("time") && !validTime(time.TimeOnly, t) {
		return 1
	}
	if !phonePattern.MatchString(phone) {
		return 2
	}
	if q.Has("message") && utf8.RuneCountInString(q.Get("message")) > 500 {
		return 3
	}
	if q.Has("source_number") && !senderPattern.MatchString(q.Get("source_number")) {
		return 4
	}
	if template {
		id, err := strconv.ParseInt(q.Get("sms_template_id"), 10, 64)
		f.mu.Lock()
		known := err == nil && f.templates[id]
		f.mu.Unlock()
		if !known {
			return 5
		}
	}
	return 0
}

// validTime reports whether s is exactly in layout (fixed-width fields)
// and a real date or time.
func validTime(layout, s string) bool {
	_, err := time.Parse(layout, s)
	return err == nil && len(s) == len(layout)
}

// checkUndocumented fails the test for what the document defines no
// answer to.
func (f *Server) checkUndocumented(q url.Values) {
	f.t.Helper()
	for k, v := range q {
		switch {
		case !slices.Contains(documentedParams, k):
			f.t.Errorf("mindcrmtest: undocumented parameter %q", k)
		case len(v) > 1:
			f.t.Errorf("mindcrmtest: parameter %q given %d times", k, len(v))
		}
	}
	for _, k := range []string{"user_id", "repository_assign_id"} {
		if v := q.Get(k); q.Has(k) {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				f.t.Errorf("mindcrmtest: %s=%q is not an integer", k, v)
			}
		}
	}
	f.mu.Lock()
	want := f.userID
	f.mu.Unlock()
	if want != 0 && q.Get("user_id") != strconv.FormatInt(want, 10) {
		f.t.Errorf("mindcrmtest: user_id=%q, want %d", q.Get("user_id"), want)
	}
}
