package ippaneltest

import (
	"net/http"
	"time"
)

// DefaultCredit is the credit of the account a new fake serves.
const DefaultCredit = 1234.5

// SetCredit sets what GET /api/payment/credit/mine answers: the account's
// credit and its gift credit.
func (f *Server) SetCredit(credit, gift float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.credit, f.gift = credit, gift
}

// CreditRequests is how many valid credit requests the fake answered.
func (f *Server) CreditRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creditCalls
}

// creditMine implements GET /api/payment/credit/mine, with the success body
// IPPanel's Edge documentation shows (its "My Credit" page): data.credit,
// yesterday_credit, gift, gift_expires_at and updated_at. The endpoint
// takes no parameters; a query is refused with 422, as undocumented send
// fields are.
func (f *Server) creditMine(w http.ResponseWriter, r *http.Request, _ []byte) {
	var v validation
	for k := range r.URL.Query() {
		v.add(k, notAllowed(k))
	}
	if v.write(w) {
		return
	}
	f.mu.Lock()
	f.creditCalls++
	data := map[string]any{
		"credit": f.credit, "yesterday_credit": f.credit, "gift": f.gift, "gift_expires_at": nil,
		"updated_at": time.Now().UTC().Format(time.DateTime),
	}
	f.mu.Unlock()
	writeOK(w, data, nil)
}
