package providertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ippanelBase is the path of the real base URL (https://edge.ippanel.com/v1),
// kept so clients are tested joining /api/... onto a base that has a path.
const ippanelBase = "/v1"

// ippanelFirstID is the first message_outbox_id the fake hands out: above
// 2³¹, so a client that stores ids in 32 bits fails its tests.
const ippanelFirstID = 3_000_000_000

// IPPanel fakes the IPPanel Edge API (shared/provider-docs/ippanel-edge-*.txt
// and README.md): POST /api/send in its webservice, pattern and phonebook
// forms, POST /api/send/cancel, POST /api/report/messages-inbox and
// GET /api/report/recipients. It validates requests as documented and
// answers with the documented envelope ({"data": ..., "meta": {...}}).
//
// Where the documents are silent it chooses, and says so here: a wrong
// method is 405, a body that is not JSON 400, a Content-Type other than
// application/json 415, all with the envelope; fields a sending type does
// not document are refused with 422 (a real server may ignore them, but a
// client sending them has a bug); cancelling a known id that is not
// scheduled, already cancelled or due within five minutes is a 422 on
// message_outbox_id; an unknown bulk_id lists no recipients.
type IPPanel struct {
	URL    string // base_url to configure (ends in /v1, like the real one)
	Faults Faults

	token   string
	numbers map[string]bool

	mu         sync.Mutex
	patterns   map[string]bool
	phonebooks map[string]bool
	requests   []IPPanelRequest
	nextID     int64
	bulks      map[int64]*ippanelBulk
	cancelled  []int64
	inbox      []ippanelInbound
	nextInbox  int64
	reports    []IPPanelReportRequest
}

// IPPanelReportRequest is one valid call to a report endpoint
// (messages-inbox or recipients).
type IPPanelReportRequest struct {
	Path  string         // below the base URL: "/api/report/messages-inbox"
	Query url.Values     // recipients: bulk_id, page, per_page
	Body  map[string]any // messages-inbox: the decoded JSON body (numbers as json.Number)
}

// IPPanelRequest is one accepted send.
type IPPanelRequest struct {
	SendingType string
	Body        map[string]any // the decoded JSON body (numbers as json.Number)
	Raw         []byte         // the body as received
	Header      http.Header
	OutboxID    int64 // the message_outbox_id answered
	Time        time.Time
}

type ippanelBulk struct {
	sent       bool // by a send, not invented by SetStatus
	message    string
	sendAt     time.Time // zero: sent at once
	cancelled  bool
	recipients []string
	status     map[string]int
}

type ippanelInbound struct {
	ID                    int64
	From, Number, Message string
	Time                  time.Time
}

// NewIPPanel starts a fake for an account with the given token (compared
// exactly with Authorization) and sender numbers (E.164). It is closed when
// the test ends.
func NewIPPanel(t testing.TB, token string, numbers ...string) *IPPanel {
	t.Helper()
	f := &IPPanel{
		token:      token,
		numbers:    map[string]bool{},
		patterns:   map[string]bool{},
		phonebooks: map[string]bool{},
		nextID:     ippanelFirstID,
		bulks:      map[int64]*ippanelBulk{},
		nextInbox:  1,
	}
	for _, n := range numbers {
		f.numbers[n] = true
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL + ippanelBase
	return f
}

// SetPatterns adds known pattern codes.
func (f *IPPanel) SetPatterns(codes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range codes {
		f.patterns[c] = true
	}
}

// SetPhonebooks adds known phonebook ids.
func (f *IPPanel) SetPhonebooks(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.phonebooks[id] = true
	}
}

// Requests returns the accepted sends, oldest first.
func (f *IPPanel) Requests() []IPPanelRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// Cancelled returns the outbox ids cancelled so far, in order.
func (f *IPPanel) Cancelled() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cancelled)
}

// AddInbound stores an SMS received now from the phone `from` on our
// `number` and returns its messages_inbox_id.
func (f *IPPanel) AddInbound(from, number, message string) int64 {
	return f.AddInboundAt(from, number, message, time.Now())
}

// AddInboundAt is AddInbound for an SMS received at the given time.
func (f *IPPanel) AddInboundAt(from, number, message string, at time.Time) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextInbox
	f.nextInbox++
	f.inbox = append(f.inbox, ippanelInbound{ID: id, From: from, Number: number, Message: message, Time: at})
	return id
}

// ReportRequests returns the valid report calls so far, oldest first.
func (f *IPPanel) ReportRequests() []IPPanelReportRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reports)
}

// SetStatus sets the message_status (0 sent to operator, 1 received by
// operator, 2 delivered, 3 not delivered, 4 blacklisted) of recipient in a
// bulk, adding either if unknown (phonebook sends have no recipients until
// told).
func (f *IPPanel) SetStatus(bulkID int64, recipient string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.bulks[bulkID]
	if b == nil {
		b = &ippanelBulk{status: map[string]int{}}
		f.bulks[bulkID] = b
	}
	if !slices.Contains(b.recipients, recipient) {
		b.recipients = append(b.recipients, recipient)
	}
	b.status[recipient] = status
}

// Documented bodies and messages. Persian prose beyond the documented
// strings follows their pattern ("تکمیل گزینه X الزامی است": "X is required").
const (
	ippanelDone         = "انجام شد"
	ippanelBadAuth      = "اطلاعات وارد شده صحیح نمی باشد"
	ippanelNotFound     = "پیام مورد نظر یافت نشد"
	ippanelMessageLabel = "پیام" // the label of the message field in the documented 422
)

func ippanelRequired(field string) string {
	if field == "message" {
		field = ippanelMessageLabel
	}
	return "تکمیل گزینه " + field + " الزامی است"
}

func ippanelInvalid(field string) string    { return field + " معتبر نیست" }
func ippanelNotAllowed(field string) string { return field + " مجاز نیست" }

type ippanelRoute struct {
	method string
	handle func(f *IPPanel, w http.ResponseWriter, r *http.Request, body []byte)
}

var ippanelRoutes = map[string]ippanelRoute{
	ippanelBase + "/api/send":                  {http.MethodPost, (*IPPanel).send},
	ippanelBase + "/api/send/cancel":           {http.MethodPost, (*IPPanel).cancel},
	ippanelBase + "/api/report/messages-inbox": {http.MethodPost, (*IPPanel).messagesInbox},
	ippanelBase + "/api/report/recipients":     {http.MethodGet, (*IPPanel).recipients},
}

// ServeHTTP checks what every endpoint shares (route, method, token,
// content type) and hands over to the endpoint.
func (f *IPPanel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.Faults.Apply(w, r) {
		return
	}
	route, ok := ippanelRoutes[r.URL.Path]
	if !ok {
		ippanelFail(w, http.StatusNotFound, "400-1", "not found", nil)
		return
	}
	if r.Method != route.method {
		ippanelFail(w, http.StatusMethodNotAllowed, "400-1", "method not allowed", nil)
		return
	}
	if auth := r.Header.Values("Authorization"); len(auth) != 1 || auth[0] != f.token {
		ippanelFail(w, http.StatusUnauthorized, "400-1", ippanelBadAuth, map[string][]string{})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		ippanelFail(w, http.StatusBadRequest, "400-2", "unreadable body", nil)
		return
	}
	if r.Method == http.MethodPost {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			ippanelFail(w, http.StatusUnsupportedMediaType, "400-2", "Content-Type must be application/json", nil)
			return
		}
	}
	route.handle(f, w, r, body)
}

// ippanelValidation collects 422 errors in the order found; the first is
// also meta.message, as in the documented 422 body.
type ippanelValidation struct {
	keys []string
	errs map[string][]string
}

func (v *ippanelValidation) add(field, msg string) {
	if v.errs == nil {
		v.errs = map[string][]string{}
	}
	if _, ok := v.errs[field]; !ok {
		v.keys = append(v.keys, field)
	}
	v.errs[field] = append(v.errs[field], msg)
}

// write answers 422 and reports true if anything was found.
func (v *ippanelValidation) write(w http.ResponseWriter) bool {
	if len(v.keys) == 0 {
		return false
	}
	ippanelFail(w, http.StatusUnprocessableEntity, "400-2", v.errs[v.keys[0]][0], v.errs)
	return true
}

// ippanelFields lists the keys each sending type documents.
var ippanelFields = map[string][]string{
	"webservice": {"sending_type", "from_number", "message", "params", "send_time"},
	"pattern":    {"sending_type", "from_number", "code", "recipients", "params", "phonebook"},
	"phonebook":  {"sending_type", "from_number", "message", "params", "send_time"},
}

func (f *IPPanel) send(w http.ResponseWriter, r *http.Request, raw []byte) {
	body, ok := ippanelDecode(w, raw)
	if !ok {
		return
	}
	var v ippanelValidation
	kind, _ := body["sending_type"].(string)
	fields, ok := ippanelFields[kind]
	if !ok {
		if kind == "" {
			v.add("sending_type", ippanelRequired("sending_type"))
		} else {
			v.add("sending_type", ippanelInvalid("sending_type"))
		}
		v.write(w)
		return
	}
	for k := range body {
		if !slices.Contains(fields, k) {
			v.add(k, ippanelNotAllowed(k))
		}
	}
	switch from, ok := body["from_number"].(string); {
	case !ok || from == "":
		v.add("from_number", ippanelRequired("from_number"))
	case !f.numbers[from]:
		v.add("from_number", ippanelInvalid("from_number"))
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	bulk := &ippanelBulk{sent: true, status: map[string]int{}}
	switch kind {
	case "webservice":
		bulk.message = ippanelMessage(&v, body)
		params, ok := body["params"].(map[string]any)
		if !ok {
			v.add("params", ippanelRequired("params"))
			break
		}
		for k := range params {
			if k != "recipients" {
				v.add("params."+k, ippanelNotAllowed("params."+k))
			}
		}
		bulk.recipients = ippanelNumbers(&v, "params.recipients", params["recipients"])
		bulk.sendAt = ippanelSendTime(&v, body)
	case "pattern":
		switch code, ok := body["code"].(string); {
		case !ok || code == "":
			v.add("code", ippanelRequired("code"))
		case !f.patterns[code]:
			v.add("code", ippanelInvalid("code"))
		}
		bulk.recipients = ippanelNumbers(&v, "recipients", body["recipients"])
		if len(bulk.recipients) > 1 {
			v.add("recipients", "فقط یک گیرنده مجاز است") // only one recipient is allowed
		}
		ippanelPatternParams(&v, body)
		if pb, ok := body["phonebook"]; ok {
			ippanelContact(&v, pb)
		}
	case "phonebook":
		bulk.message = ippanelMessage(&v, body)
		f.checkPhonebookParams(&v, body["params"])
		bulk.sendAt = ippanelSendTime(&v, body)
	}
	if v.write(w) {
		return
	}

	id := f.nextID
	f.nextID++
	f.bulks[id] = bulk
	f.requests = append(f.requests, IPPanelRequest{
		SendingType: kind, Body: body, Raw: raw, Header: r.Header.Clone(), OutboxID: id, Time: time.Now(),
	})
	ippanelOK(w, map[string]any{"message_outbox_ids": []int64{id}}, nil)
}

func ippanelMessage(v *ippanelValidation, body map[string]any) string {
	msg, ok := body["message"].(string)
	if !ok || msg == "" {
		v.add("message", ippanelRequired("message"))
	}
	return msg
}

// ippanelNumbers checks a required, non-empty array of E.164 numbers.
func ippanelNumbers(v *ippanelValidation, field string, x any) []string {
	list, ok := x.([]any)
	if !ok || len(list) == 0 {
		v.add(field, ippanelRequired(field))
		return nil
	}
	var out []string
	for i, n := range list {
		s, ok := n.(string)
		if !ok || !ippanelE164(s) {
			key := fmt.Sprintf("%s.%d", field, i)
			v.add(key, ippanelInvalid(key))
			continue
		}
		out = append(out, s)
	}
	return out
}

func ippanelE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ippanelSendTime checks the optional send_time: exactly
// "YYYY-MM-DD HH:MM:SS", UTC.
func ippanelSendTime(v *ippanelValidation, body map[string]any) time.Time {
	x, ok := body["send_time"]
	if !ok {
		return time.Time{}
	}
	const layout = "2006-01-02 15:04:05"
	s, _ := x.(string)
	t, err := time.Parse(layout, s)
	// Parse accepts one-digit hours; the round trip insists on the form.
	if err != nil || t.Format(layout) != s {
		v.add("send_time", ippanelInvalid("send_time"))
		return time.Time{}
	}
	return t
}

func ippanelPatternParams(v *ippanelValidation, body map[string]any) {
	params, ok := body["params"].(map[string]any)
	if !ok {
		v.add("params", ippanelRequired("params"))
		return
	}
	for k, x := range params {
		switch x.(type) {
		case string, json.Number:
		default:
			v.add("params."+k, ippanelInvalid("params."+k))
		}
	}
}

// ippanelContact checks a pattern send's phonebook object.
func ippanelContact(v *ippanelValidation, x any) {
	pb, ok := x.(map[string]any)
	if !ok {
		v.add("phonebook", ippanelInvalid("phonebook"))
		return
	}
	if n, ok := pb["id"].(json.Number); !ok {
		v.add("phonebook.id", ippanelRequired("phonebook.id"))
	} else if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
		v.add("phonebook.id", ippanelInvalid("phonebook.id"))
	}
	for k, x := range pb {
		switch k {
		case "id":
		case "name", "pre", "email":
			if _, ok := x.(string); !ok {
				v.add("phonebook."+k, ippanelInvalid("phonebook."+k))
			}
		case "options":
			opts, ok := x.(map[string]any)
			if !ok {
				v.add("phonebook.options", ippanelInvalid("phonebook.options"))
			}
			for id, val := range opts {
				if _, ok := val.(string); !ok {
					v.add("phonebook.options."+id, ippanelInvalid("phonebook.options."+id))
				}
			}
		default:
			v.add("phonebook."+k, ippanelNotAllowed("phonebook."+k))
		}
	}
}

// checkPhonebookParams checks phonebook mode's params array. f.mu is held.
func (f *IPPanel) checkPhonebookParams(v *ippanelValidation, x any) {
	list, ok := x.([]any)
	if !ok || len(list) == 0 {
		v.add("params", ippanelRequired("params"))
		return
	}
	for i, item := range list {
		key := fmt.Sprintf("params.%d", i)
		obj, ok := item.(map[string]any)
		if !ok {
			v.add(key, ippanelInvalid(key))
			continue
		}
		var allowed []string
		switch obj["type"] {
		case "all":
			allowed = []string{"type", "phonebook_ids", "start", "size"}
			ids := ippanelStrings(v, key+".phonebook_ids", obj["phonebook_ids"])
			for j, id := range ids {
				if !f.phonebooks[id] {
					v.add(fmt.Sprintf("%s.phonebook_ids.%d", key, j), ippanelInvalid("phonebook_ids"))
				}
			}
			for _, opt := range []string{"start", "size"} {
				if s, ok := obj[opt]; ok {
					if s, ok := s.(string); !ok || !ippanelDigits(s) {
						v.add(key+"."+opt, ippanelInvalid(opt))
					}
				}
			}
		case "detail":
			allowed = []string{"type", "phonebook_id", "number_ids"}
			switch id, ok := obj["phonebook_id"].(string); {
			case !ok || id == "":
				v.add(key+".phonebook_id", ippanelRequired("phonebook_id"))
			case !f.phonebooks[id]:
				v.add(key+".phonebook_id", ippanelInvalid("phonebook_id"))
			}
			ippanelStrings(v, key+".number_ids", obj["number_ids"])
		default:
			v.add(key+".type", ippanelInvalid("type"))
			continue
		}
		for k := range obj {
			if !slices.Contains(allowed, k) {
				v.add(key+"."+k, ippanelNotAllowed(k))
			}
		}
	}
}

// ippanelStrings checks a required, non-empty array of non-empty strings.
func ippanelStrings(v *ippanelValidation, field string, x any) []string {
	list, ok := x.([]any)
	if !ok || len(list) == 0 {
		v.add(field, ippanelRequired(field))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, s := range list {
		if s, ok := s.(string); ok && s != "" {
			out = append(out, s)
		} else {
			v.add(fmt.Sprintf("%s.%d", field, i), ippanelInvalid(field))
		}
	}
	return out
}

func ippanelDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// cancel implements POST /api/send/cancel.
func (f *IPPanel) cancel(w http.ResponseWriter, _ *http.Request, raw []byte) {
	body, ok := ippanelDecode(w, raw)
	if !ok {
		return
	}
	var v ippanelValidation
	id, err := ippanelInt(body["message_outbox_id"])
	if err != nil {
		v.add("message_outbox_id", ippanelRequired("message_outbox_id"))
		v.write(w)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bulks[id]
	if !ok || !b.sent {
		ippanelFail(w, http.StatusNotFound, "400-1", ippanelNotFound, map[string][]string{})
		return
	}
	// Only future sends can be cancelled, until five minutes before.
	if b.cancelled || b.sendAt.IsZero() || time.Until(b.sendAt) < 5*time.Minute {
		v.add("message_outbox_id", "امکان لغو این پیام وجود ندارد") // this message cannot be cancelled
		v.write(w)
		return
	}
	b.cancelled = true
	f.cancelled = append(f.cancelled, id)
	ippanelOK(w, nil, nil)
}

// messagesInbox implements POST /api/report/messages-inbox: messages with
// an id above filters.from_id ("new messages after this ID"), newest
// first as in the documented answer, paginated.
func (f *IPPanel) messagesInbox(w http.ResponseWriter, r *http.Request, raw []byte) {
	body, ok := ippanelDecode(w, raw)
	if !ok {
		return
	}
	var v ippanelValidation
	for k := range body {
		if !slices.Contains([]string{"page", "per_page", "filters"}, k) {
			v.add(k, ippanelNotAllowed(k))
		}
	}
	page := ippanelOptInt(&v, body, "page", 1)
	perPage := ippanelOptInt(&v, body, "per_page", 10)
	var fromID int64
	if x, ok := body["filters"]; ok {
		filters, ok := x.(map[string]any)
		if !ok {
			v.add("filters", ippanelInvalid("filters"))
		} else {
			fromID = ippanelOptInt(&v, filters, "from_id", 0)
		}
	}
	if v.write(w) {
		return
	}
	f.mu.Lock()
	f.reports = append(f.reports, IPPanelReportRequest{Path: "/api/report/messages-inbox", Body: body})
	var items []map[string]any
	for _, m := range slices.Backward(f.inbox) {
		if m.ID > fromID {
			items = append(items, map[string]any{
				"messages_inbox_id": m.ID, "from": m.From, "number": m.Number, "message": m.Message,
				"type": "normal", "time": m.Time.Unix(), "seen": "0",
			})
		}
	}
	f.mu.Unlock()
	ippanelPage(w, r, items, page, perPage)
}

// recipients implements GET /api/report/recipients for one bulk.
func (f *IPPanel) recipients(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	var v ippanelValidation
	bulkID, err := strconv.ParseInt(q.Get("bulk_id"), 10, 64)
	switch {
	case q.Get("bulk_id") == "":
		v.add("bulk_id", ippanelRequired("bulk_id"))
	case err != nil:
		v.add("bulk_id", ippanelInvalid("bulk_id"))
	}
	query := map[string]any{}
	for _, k := range []string{"page", "per_page"} {
		if s := q.Get(k); s != "" {
			query[k] = json.Number(s)
		}
	}
	page := ippanelOptInt(&v, query, "page", 1)
	perPage := ippanelOptInt(&v, query, "per_page", 10)
	if v.write(w) {
		return
	}
	f.mu.Lock()
	f.reports = append(f.reports, IPPanelReportRequest{Path: "/api/report/recipients", Query: q})
	var items []map[string]any
	if b := f.bulks[bulkID]; b != nil {
		for _, rc := range b.recipients {
			items = append(items, map[string]any{
				"recipient": rc, "message": b.message, "is_readable": true,
				"msg_parts": strconv.Itoa(ippanelParts(b.message)), "message_status": strconv.Itoa(b.status[rc]),
			})
		}
	}
	f.mu.Unlock()
	ippanelPage(w, r, items, page, perPage)
}

// ippanelParts approximates the SMS parts of text: 160/153 characters when
// it is all ASCII, else 70/67 (UCS-2). Good enough for a fake's report.
func ippanelParts(text string) int {
	single, multi := 160, 153
	n := 0
	for _, c := range text {
		if c > 127 {
			single, multi = 70, 67
		}
		n++
	}
	if n <= single {
		return 1
	}
	return (n + multi - 1) / multi
}

// ippanelPage answers one page of items with the documented pagination
// fields in meta.
func ippanelPage(w http.ResponseWriter, r *http.Request, items []map[string]any, page, perPage int64) {
	total := int64(len(items))
	start := min((page-1)*perPage, total)
	end := min(start+perPage, total)
	data := items[start:end]
	if data == nil {
		data = []map[string]any{}
	}
	lastPage := max(1, (total+perPage-1)/perPage)
	ippanelOK(w, data, map[string]any{
		"current_page": page, "from": start + 1, "last_page": lastPage, "path": r.URL.Path,
		"per_page": perPage, "to": end, "total": total,
	})
}

// ippanelOptInt reads an optional positive integer (from_id may be 0).
func ippanelOptInt(v *ippanelValidation, obj map[string]any, key string, def int64) int64 {
	x, ok := obj[key]
	if !ok {
		return def
	}
	n, err := ippanelInt(x)
	if err != nil || n < 0 || (n == 0 && key != "from_id") {
		v.add(key, ippanelInvalid(key))
		return def
	}
	return n
}

func ippanelInt(x any) (int64, error) {
	n, ok := x.(json.Number)
	if !ok {
		return 0, fmt.Errorf("not a number: %v", x)
	}
	return strconv.ParseInt(n.String(), 10, 64)
}

// ippanelDecode decodes a JSON object body, keeping numbers exact.
func ippanelDecode(w http.ResponseWriter, raw []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil || body == nil || dec.More() {
		ippanelFail(w, http.StatusBadRequest, "400-2", "invalid JSON body", nil)
		return nil, false
	}
	return body, true
}

// ippanelOK writes the documented success envelope; extra adds fields to
// meta (pagination).
func ippanelOK(w http.ResponseWriter, data any, extra map[string]any) {
	meta := map[string]any{
		"status": true, "message": ippanelDone, "message_parameters": []any{}, "message_code": "200-1",
	}
	for k, x := range extra {
		meta[k] = x
	}
	ippanelWrite(w, http.StatusOK, map[string]any{"data": data, "meta": meta})
}

// ippanelFail writes the documented failure envelope. errs nil leaves
// meta.errors out; the documented 401 has an empty object.
func ippanelFail(w http.ResponseWriter, status int, code, message string, errs map[string][]string) {
	meta := map[string]any{
		"status": false, "message": message, "message_parameters": []any{}, "message_code": code,
	}
	if errs != nil {
		meta["errors"] = errs
	}
	ippanelWrite(w, status, map[string]any{"data": nil, "meta": meta})
}

func ippanelWrite(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
