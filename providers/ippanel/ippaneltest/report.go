package ippaneltest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// AddInbound stores an SMS received now from the phone `from` on our
// `number` and returns its messages_inbox_id.
func (f *Server) AddInbound(from, number, message string) int64 {
	return f.AddInboundAt(from, number, message, time.Now())
}

// AddInboundAt is AddInbound for an SMS received at the given time.
func (f *Server) AddInboundAt(from, number, message string, at time.Time) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextInbox
	f.nextInbox++
	f.inbox = append(f.inbox, inbound{ID: id, From: from, Number: number, Message: message, Time: at})
	return id
}

// ReportRequests returns the valid report calls so far, oldest first.
func (f *Server) ReportRequests() []ReportRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reports)
}

// SetStatus sets the message_status (0 sent to operator, 1 received by
// operator, 2 delivered, 3 not delivered, 4 blacklisted) of recipient in a
// bulk, adding either if unknown (phonebook sends have no recipients until
// told).
func (f *Server) SetStatus(bulkID int64, recipient string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.bulks[bulkID]
	if b == nil {
		b = &bulk{status: map[string]int{}}
		f.bulks[bulkID] = b
	}
	if !slices.Contains(b.recipients, recipient) {
		b.recipients = append(b.recipients, recipient)
	}
	b.status[recipient] = status
}

// messagesInbox implements POST /api/report/messages-inbox: messages with
// an id above filters.from_id ("new messages after this ID"), newest
// first as in the documented answer, paginated.
func (f *Server) messagesInbox(w http.ResponseWriter, r *http.Request, raw []byte) {
	body, ok := decode(w, raw)
	if !ok {
		return
	}
	var v validation
	for k := range body {
		if !slices.Contains([]string{"page", "per_page", "filters"}, k) {
			v.add(k, notAllowed(k))
		}
	}
	page := optInt(&v, body, "page", 1)
	perPage := optInt(&v, body, "per_page", 10)
	var fromID int64
	if x, ok := body["filters"]; ok {
		filters, ok := x.(map[string]any)
		if !ok {
			v.add("filters", invalid("filters"))
		} else {
			fromID = optInt(&v, filters, "from_id", 0)
		}
	}
	if v.write(w) {
		return
	}
	f.mu.Lock()
	f.reports = append(f.reports, ReportRequest{Path: "/api/report/messages-inbox", Body: body})
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
	writePage(w, r, items, page, perPage)
}

// recipients implements GET /api/report/recipients for one bulk.
func (f *Server) recipients(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	var v validation
	bulkID, err := strconv.ParseInt(q.Get("bulk_id"), 10, 64)
	switch {
	case q.Get("bulk_id") == "":
		v.add("bulk_id", required("bulk_id"))
	case err != nil:
		v.add("bulk_id", invalid("bulk_id"))
	}
	query := map[string]any{}
	for _, k := range []string{"page", "per_page"} {
		if s := q.Get(k); s != "" {
			query[k] = json.Number(s)
		}
	}
	page := optInt(&v, query, "page", 1)
	perPage := optInt(&v, query, "per_page", 10)
	if v.write(w) {
		return
	}
	f.mu.Lock()
	f.reports = append(f.reports, ReportRequest{Path: "/api/report/recipients", Query: q})
	var items []map[string]any
	if b := f.bulks[bulkID]; b != nil {
		for _, rc := range b.recipients {
			items = append(items, map[string]any{
				"recipient": rc, "message": b.message, "is_readable": true,
				"msg_parts": strconv.Itoa(parts(b.message)), "message_status": strconv.Itoa(b.status[rc]),
			})
		}
	}
	f.mu.Unlock()
	writePage(w, r, items, page, perPage)
}

// parts approximates the SMS parts of text: 160/153 characters when
// it is all ASCII, else 70/67 (UCS-2). Good enough for a fake's report.
func parts(text string) int {
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

// writePage answers one page of items with the documented pagination
// fields in meta.
func writePage(w http.ResponseWriter, r *http.Request, items []map[string]any, page, perPage int64) {
	total := int64(len(items))
	start := min((page-1)*perPage, total)
	end := min(start+perPage, total)
	data := items[start:end]
	if data == nil {
		data = []map[string]any{}
	}
	lastPage := max(1, (total+perPage-1)/perPage)
	writeOK(w, data, map[string]any{
		"current_page": page, "from": start + 1, "last_page": lastPage, "path": r.URL.Path,
		"per_page": perPage, "to": end, "total": total,
	})
}

// optInt reads an optional positive integer (from_id may be 0).
func optInt(v *validation, obj map[string]any, key string, def int64) int64 {
	x, ok := obj[key]
	if !ok {
		return def
	}
	n, err := toInt64(x)
	if err != nil || n < 0 || (n == 0 && key != "from_id") {
		v.add(key, invalid(key))
		return def
	}
	return n
}
