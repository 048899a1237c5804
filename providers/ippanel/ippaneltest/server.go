// Package ippaneltest fakes the IPPanel Edge API for tests, as
// net/http/httptest serves for net/http: an httptest server that validates
// every request the way shared/provider-docs/ippanel-edge-*.txt documents
// it and answers with the documented envelope. One file a job: routing and
// what every endpoint shares here, the envelope and its messages in
// envelope.go, each sending type's checks in send.go, pattern.go and
// phonebook.go, cancelling in cancel.go, the inbox and delivery reports in
// report.go, the account's credit in credit.go.
package ippaneltest

import (
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/providertest"
)

// basePath is the path of the real base URL (https://edge.ippanel.com/v1),
// kept so clients are tested joining /api/... onto a base that has a path.
const basePath = "/v1"

// firstID is the first message_outbox_id the fake hands out: above
// 2³¹, so a client that stores ids in 32 bits fails its tests.
const firstID = 3_000_000_000

// Server fakes the IPPanel Edge API (shared/provider-docs/ippanel-edge-*.txt
// and README.md): POST /api/send in its webservice, pattern and phonebook
// forms, POST /api/send/cancel, POST /api/report/messages-inbox,
// GET /api/report/recipients and GET /api/payment/credit/mine. It
// validates requests as documented and answers with the documented
// envelope ({"data": ..., "meta": {...}}).
//
// Where the documents are silent it chooses, and says so here: a wrong
// method is 405, a body that is not JSON 400, a Content-Type other than
// application/json 415, all with the envelope; fields a sending type does
// not document are refused with 422 (a real server may ignore them, but a
// client sending them has a bug); cancelling a known id that is not
// scheduled, already cancelled or due within five minutes is a 422 on
// message_outbox_id; an unknown bulk_id lists no recipients.
type Server struct {
	URL    string // base_url to configure (ends in /v1, like the real one)
	Faults providertest.Faults

	token   string
	numbers map[string]bool

	mu          sync.Mutex
	patterns    map[string]bool
	phonebooks  map[string]bool
	requests    []Request
	nextID      int64
	bulks       map[int64]*bulk
	cancelled   []int64
	inbox       []inbound
	nextInbox   int64
	reports     []ReportRequest
	credit      float64
	gift        float64
	creditCalls int
}

// ReportRequest is one valid call to a report endpoint
// (messages-inbox or recipients).
type ReportRequest struct {
	Path  string         // below the base URL: "/api/report/messages-inbox"
	Query url.Values     // recipients: bulk_id, page, per_page
	Body  map[string]any // messages-inbox: the decoded JSON body (numbers as json.Number)
}

// Request is one accepted send.
type Request struct {
	SendingType string
	Body        map[string]any // the decoded JSON body (numbers as json.Number)
	Raw         []byte         // the body as received
	Header      http.Header
	OutboxID    int64 // the message_outbox_id answered
	Time        time.Time
}

type bulk struct {
	sent       bool // by a send, not invented by SetStatus
	message    string
	sendAt     time.Time // zero: sent at once
	cancelled  bool
	recipients []string
	status     map[string]int
}

type inbound struct {
	ID                    int64
	From, Number, Message string
	Time                  time.Time
}

// NewServer starts a fake for an account with the given token (compared
// exactly with Authorization) and sender numbers (E.164). It is closed when
// the test ends.
func NewServer(t testing.TB, token string, numbers ...string) *Server {
	t.Helper()
	f := &Server{
		token:      token,
		numbers:    map[string]bool{},
		patterns:   map[string]bool{},
		phonebooks: map[string]bool{},
		nextID:     firstID,
		bulks:      map[int64]*bulk{},
		nextInbox:  1,
		credit:     DefaultCredit,
	}
	for _, n := range numbers {
		f.numbers[n] = true
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL + basePath
	return f
}

// SetPatterns adds known pattern codes.
func (f *Server) SetPatterns(codes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range codes {
		f.patterns[c] = true
	}
}

// SetPhonebooks adds known phonebook ids.
func (f *Server) SetPhonebooks(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.phonebooks[id] = true
	}
}

// Requests returns the accepted sends, oldest first.
func (f *Server) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

type endpoint struct {
	method string
	handle func(f *Server, w http.ResponseWriter, r *http.Request, body []byte)
}

var endpoints = map[string]endpoint{
	basePath + "/api/send":                  {http.MethodPost, (*Server).send},
	basePath + "/api/send/cancel":           {http.MethodPost, (*Server).cancel},
	basePath + "/api/report/messages-inbox": {http.MethodPost, (*Server).messagesInbox},
	basePath + "/api/report/recipients":     {http.MethodGet, (*Server).recipients},
	basePath + "/api/payment/credit/mine":   {http.MethodGet, (*Server).creditMine},
}

// ServeHTTP checks what every endpoint shares (route, method, token,
// content type) and hands over to the endpoint.
func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.Faults.Apply(w, r) {
		return
	}
	route, ok := endpoints[r.URL.Path]
	if !ok {
		writeFail(w, http.StatusNotFound, "400-1", "not found", nil)
		return
	}
	if r.Method != route.method {
		writeFail(w, http.StatusMethodNotAllowed, "400-1", "method not allowed", nil)
		return
	}
	if auth := r.Header.Values("Authorization"); len(auth) != 1 || auth[0] != f.token {
		writeFail(w, http.StatusUnauthorized, "400-1", msgBadAuth, map[string][]string{})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeFail(w, http.StatusBadRequest, "400-2", "unreadable body", nil)
		return
	}
	if r.Method == http.MethodPost {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeFail(w, http.StatusUnsupportedMediaType, "400-2", "Content-Type must be application/json", nil)
			return
		}
	}
	route.handle(f, w, r, body)
}
