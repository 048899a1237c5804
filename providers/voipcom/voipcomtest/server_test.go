package voipcomtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/providertest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

type answer struct {
	Error        bool   `json:"error"`
	ErrorMessage string `json:"error_message"`
	SendLog      []struct {
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
	} `json:"send_log"`
}

// call makes one raw call to the fake and decodes its answer.
func call(t *testing.T, method, u, user, pass, contentType, body string) (int, answer) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("HTTP %d: body is not JSON: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, a
}

const formType = "application/x-www-form-urlencoded"

func TestVoipcomFakeRefuses(t *testing.T) {
	f := voipcomtest.NewServer(t, "key", "pw", "17134567890")
	send := f.URL + "/sms/send"
	ok := url.Values{"to": {"12812345678"}, "msg": {"hi"}}.Encode()
	for _, tc := range []struct {
		name                              string
		method, url, user, pass, ct, body string
		status                            int
	}{
		{"no auth", "POST", send, "", "", formType, ok, 401},
		{"wrong password", "POST", send, "key", "nope", formType, ok, 401},
		{"wrong key", "POST", send, "other", "pw", formType, ok, 401},
		{"GET", "GET", send + "?" + ok, "key", "pw", "", "", 405},
		{"unknown path", "POST", f.URL + "/sms/sent", "key", "pw", formType, ok, 404},
		{"JSON body", "POST", send, "key", "pw", "application/json", `{"to":"12812345678","msg":"hi"}`, 400},
		{"no to", "POST", send, "key", "pw", formType, "msg=hi", 400},
		{"no msg", "POST", send, "key", "pw", formType, "to=12812345678", 400},
		{"to in the query only", "POST", send + "?to=12812345678", "key", "pw", formType, "msg=hi", 400},
		{"bad delivery_date", "POST", send, "key", "pw", formType, ok + "&delivery_date=tomorrow", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, a := call(t, tc.method, tc.url, tc.user, tc.pass, tc.ct, tc.body)
			if status != tc.status || !a.Error || a.ErrorMessage == "" {
				t.Errorf("got HTTP %d %+v, want %d with the error shape", status, a, tc.status)
			}
		})
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("%d refused requests recorded as accepted", n)
	}
	if status, _ := call(t, "POST", send, "key", "pw", formType+"; charset=utf-8", ok); status != 200 {
		t.Errorf("good request after refusals: HTTP %d", status)
	}
}

func TestVoipcomFakeSendLog(t *testing.T) {
	f := voipcomtest.NewServer(t, "key", "pw", "17134567890")
	f.FailRecipient("972501234567", 400, "blocked")
	f.DropRecipient("12815550000")
	send := f.URL + "/sms/send"

	form := url.Values{"to": {"12812345678,97250123456x,972501234567,12815550000,447700900123"}, "msg": {"hi"}}
	status, a := call(t, "POST", send, "key", "pw", formType, form.Encode())
	if status != 200 || len(a.SendLog) != 4 {
		t.Fatalf("HTTP %d, %d entries, want 200 with 4 (one dropped)", status, len(a.SendLog))
	}
	want := []struct {
		to, country, status string
		code                int
	}{
		{"12812345678", "US", "SENT", 200},
		{"97250123456x", "IL", "FAILED", 400},
		{"972501234567", "IL", "FAILED", 400},
		{"447700900123", "", "SENT", 200},
	}
	for i, w := range want {
		e := a.SendLog[i]
		if e.To != w.to || e.Code != w.code || e.Country != w.country || e.Status != w.status || e.Type != "BULKSMS" || e.Msg != "hi" {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
		if (e.SMSID != "") != (w.code == 200) || (e.Sale == 0.01) != (w.code == 200) {
			t.Errorf("entry %d: smsid %q sale %v for code %d", i, e.SMSID, e.Sale, e.Code)
		}
	}
	if a.SendLog[0].SMSID == a.SendLog[3].SMSID {
		t.Errorf("smsid not unique: %q", a.SendLog[0].SMSID)
	}
	if a.SendLog[2].CodeDesc != "blocked" {
		t.Errorf("FailRecipient code_desc = %q", a.SendLog[2].CodeDesc)
	}

	// 2-way, scheduled.
	form = url.Values{"to": {"12812345678"}, "msg": {"hi"}, "from": {"17134567890"}, "delivery_date": {"2030-01-02 03:04"}}
	_, a = call(t, "POST", send, "key", "pw", formType, form.Encode())
	if e := a.SendLog[0]; e.Code != 200 || e.Type != "2WAYSMS" || e.Status != "SCHEDULED" || e.DeliveryDate != "2030-01-02 03:04:00" || e.From != "17134567890" {
		t.Errorf("scheduled 2-way entry = %+v", e)
	}

	// A from that is not ours fails every entry.
	form.Set("from", "15550000000")
	_, a = call(t, "POST", send, "key", "pw", formType, form.Encode())
	if e := a.SendLog[0]; e.Code != 403 || e.SMSID != "" {
		t.Errorf("foreign from: entry = %+v, want code 403", e)
	}

	reqs := f.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests recorded, want 3", len(reqs))
	}
	if r := reqs[0]; r.Method != "POST" || r.Path != "/api-v2/index.php/sms/send" || len(r.To) != 5 || r.Form.Get("msg") != "hi" {
		t.Errorf("recorded %+v", r)
	}
}

func TestVoipcomFakeFaults(t *testing.T) {
	f := voipcomtest.NewServer(t, "key", "pw")
	f.Faults.Push(providertest.Fault{Status: 503, RetryAfter: 2 * time.Second})
	resp, err := http.Post(f.URL+"/sms/send", formType, strings.NewReader("to=1&msg=x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("fault: HTTP %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// Latency holds each answer back; Observe sees each accepted send, with
// the time it arrived, instead of Requests keeping it.
func TestLatencyAndObserve(t *testing.T) {
	f := voipcomtest.NewServer(t, "key", "pw")
	f.Latency = 30 * time.Millisecond
	seen := make(chan voipcomtest.Request, 1)
	f.Observe = func(r voipcomtest.Request) { seen <- r }
	start := time.Now()
	code, a := call(t, http.MethodPost, f.URL+"/sms/send", "key", "pw", "application/x-www-form-urlencoded",
		url.Values{"to": {"972501234567"}, "msg": {"ref abc-1"}}.Encode())
	answered := time.Now()
	if code != http.StatusOK || len(a.SendLog) != 1 || a.SendLog[0].Code != 200 {
		t.Fatalf("HTTP %d, %+v", code, a)
	}
	r := <-seen
	if r.Form.Get("msg") != "ref abc-1" || r.Arrived.Before(start) || r.Arrived.After(answered) {
		t.Errorf("observed %+v; want msg %q arriving between %v and %v", r, "ref abc-1", start, answered)
	}
	if took := answered.Sub(r.Arrived); took < f.Latency {
		t.Errorf("answered %v after arrival; want at least the latency %v", took, f.Latency)
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("Requests kept %d with Observe set; want 0", n)
	}
}
