package ippaneltest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/providertest"
)

const (
	testToken  = "edge-token-1"
	testNumber = "+983000505"
)

func newFake(t *testing.T) *ippaneltest.Server {
	t.Helper()
	f := ippaneltest.NewServer(t, testToken, testNumber)
	f.SetPatterns("xxxxxxxxxxxxxxx")
	f.SetPhonebooks("123654", "456987")
	return f
}

type answer struct {
	status int
	raw    []byte
	body   struct {
		Data json.RawMessage `json:"data"`
		Meta struct {
			Status      bool                       `json:"status"`
			Message     string                     `json:"message"`
			MessageCode string                     `json:"message_code"`
			Errors      map[string]json.RawMessage `json:"errors"`
		} `json:"meta"`
	}
}

// do makes one request with the token unless auth says otherwise.
func do(t *testing.T, method, url, auth, ctype, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "-" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode}
	if a.raw, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(a.raw, &a.body); err != nil {
		t.Fatalf("answer %d is not the envelope: %s", a.status, a.raw)
	}
	return a
}

func postSend(t *testing.T, f *ippaneltest.Server, body string) answer {
	t.Helper()
	return do(t, http.MethodPost, f.URL+"/api/send", testToken, "application/json", body)
}

func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestIPPanelDocumentedErrorBodies(t *testing.T) {
	f := newFake(t)
	a := do(t, "POST", f.URL+"/api/send", "Bearer "+testToken, "application/json", webserviceExample)
	jsonEqual(t, a.raw, `{"data":null,"meta":{"status":false,"message":"اطلاعات وارد شده صحیح نمی باشد","message_parameters":[],"message_code":"400-1","errors":{}}}`)

	a = postSend(t, f, `{"sending_type":"webservice","from_number":"+983000505","params":{"recipients":["+989120000000"]}}`)
	if a.status != 422 {
		t.Fatalf("HTTP %d", a.status)
	}
	jsonEqual(t, a.raw, `{"data":null,"meta":{"status":false,"message":"تکمیل گزینه پیام الزامی است","message_parameters":[],"message_code":"400-2","errors":{"message":["تکمیل گزینه پیام الزامی است"]}}}`)

	a = do(t, "POST", f.URL+"/api/send/cancel", testToken, "application/json", `{"message_outbox_id":42}`)
	if a.status != 404 {
		t.Fatalf("HTTP %d", a.status)
	}
	jsonEqual(t, a.raw, `{"data":null,"meta":{"status":false,"message":"پیام مورد نظر یافت نشد","message_parameters":[],"message_code":"400-1","errors":{}}}`)
}

func TestIPPanelFaults(t *testing.T) {
	f := newFake(t)
	f.Faults.Push(providertest.Fault{Status: 503, RetryAfter: 2 * time.Second})
	req, _ := http.NewRequest("POST", f.URL+"/api/send", bytes.NewReader([]byte(webserviceExample)))
	req.Header.Set("Authorization", testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("HTTP %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if a := postSend(t, f, webserviceExample); a.status != 200 {
		t.Errorf("after the fault: HTTP %d", a.status)
	}
	if n := len(f.Requests()); n != 1 {
		t.Errorf("%d sends recorded", n)
	}
}
