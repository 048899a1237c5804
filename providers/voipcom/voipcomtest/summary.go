package voipcomtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// summaryPage is how many conversations one sms/summary page lists. The
// API does not say; the provider's app asks for pages until one is empty.
const summaryPage = 20

// SummaryRequests is how many valid sms/summary calls the fake answered.
func (f *Server) SummaryRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.summaries
}

// summary answers POST sms/summary, the call the provider's own app makes
// to list the account's SMS conversations (form `page`, counted from 0 as
// the app does): {"summary": [...]}, one entry per external number, its
// latest SMS, newest first, with the fields the app reads. Nothing about
// this call is documented beyond what the app sends and reads, so the
// fake is strict: `page` must be a non-negative integer and the only
// field, else 400 in the api-v2 error shape, as a send missing a field
// gets. Credentials were checked before (401 as documented for sends).
func (f *Server) summary(w http.ResponseWriter, form url.Values) {
	for k := range form {
		if k != "page" {
			writeError(w, http.StatusBadRequest, "Unknown field "+k)
			return
		}
	}
	page, err := strconv.Atoi(form.Get("page"))
	if err != nil || page < 0 || len(form["page"]) != 1 {
		writeError(w, http.StatusBadRequest, "page must be a number from 0")
		return
	}
	f.mu.Lock()
	f.summaries++
	seen := map[string]bool{}
	var all []map[string]any
	for _, e := range slices.Backward(f.sent) {
		if seen[e.To] {
			continue
		}
		seen[e.To] = true
		all = append(all, map[string]any{
			"sms_id": e.SMSID, "sms_external": e.To, "sms_msg": e.Msg, "sms_country": e.Country,
			"sms_sale": e.Sale, "sms_status": e.Status, "sms_status_date": e.DeliveryDate,
		})
	}
	f.mu.Unlock()
	start := min(page*summaryPage, len(all))
	items := all[start:min(start+summaryPage, len(all))]
	if items == nil {
		items = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"summary": items})
}
