package ippaneltest_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestIPPanelCredit(t *testing.T) {
	f := newFake(t)
	f.SetCredit(6084722932.705052, 10)
	// The documented request: a GET with the token and (per the example)
	// a JSON Content-Type, no body.
	a := do(t, http.MethodGet, f.URL+"/api/payment/credit/mine", testToken, "application/json", "")
	if a.status != 200 || !a.body.Meta.Status || a.body.Meta.MessageCode != "200-1" {
		t.Fatalf("HTTP %d: %s", a.status, a.raw)
	}
	var data struct {
		Credit        float64 `json:"credit"`
		Gift          float64 `json:"gift"`
		GiftExpiresAt *string `json:"gift_expires_at"`
		UpdatedAt     string  `json:"updated_at"`
	}
	if err := json.Unmarshal(a.body.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Credit != 6084722932.705052 || data.Gift != 10 || data.UpdatedAt == "" {
		t.Errorf("data %s", a.body.Data)
	}

	// The documented 401 body for a token the API does not know.
	a = do(t, http.MethodGet, f.URL+"/api/payment/credit/mine", "wrong", "", "")
	if a.status != 401 {
		t.Fatalf("wrong token: HTTP %d", a.status)
	}
	jsonEqual(t, a.raw, `{"data":null,"meta":{"status":false,"message":"اطلاعات وارد شده صحیح نمی باشد","message_parameters":[],"message_code":"400-1","errors":{}}}`)

	for _, c := range []struct{ method, url string }{
		{http.MethodPost, f.URL + "/api/payment/credit/mine"},
		{http.MethodGet, f.URL + "/api/payment/credit/mine?user=1"},
	} {
		if a := do(t, c.method, c.url, testToken, "application/json", ""); a.status/100 != 4 {
			t.Errorf("%s %s: HTTP %d, want a refusal", c.method, c.url, a.status)
		}
	}
	if n := f.CreditRequests(); n != 1 {
		t.Errorf("%d valid credit requests counted, want 1", n)
	}
}
