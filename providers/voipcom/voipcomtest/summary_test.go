package voipcomtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

func summaryCall(t *testing.T, f *voipcomtest.Server, user, pass string, form url.Values) (int, []map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.URL+"/sms/summary", strings.NewReader(form.Encode()))
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v struct {
		Summary      []map[string]any `json:"summary"`
		ErrorMessage string           `json:"error_message"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("HTTP %d: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, v.Summary, v.ErrorMessage
}

func TestSummaryListsConversations(t *testing.T) {
	f := voipcomtest.NewServer(t, "key", "pw", "17134567890")
	code, list, _ := summaryCall(t, f, "key", "pw", url.Values{"page": {"0"}})
	if code != 200 || list == nil || len(list) != 0 {
		t.Fatalf("empty account: HTTP %d, %v", code, list)
	}
	for _, msg := range []string{"first", "second"} {
		if code, _ := call(t, "POST", f.URL+"/sms/send", "key", "pw", "application/x-www-form-urlencoded",
			url.Values{"to": {"12812345678,972501234567"}, "msg": {msg}}.Encode()); code != 200 {
			t.Fatalf("send: HTTP %d", code)
		}
	}
	code, list, _ = summaryCall(t, f, "key", "pw", url.Values{"page": {"0"}})
	if code != 200 || len(list) != 2 {
		t.Fatalf("HTTP %d, %d conversations, want 2: %v", code, len(list), list)
	}
	for _, c := range list {
		if c["sms_msg"] != "second" || c["sms_id"] == "" {
			t.Errorf("conversation %v: want its latest SMS", c)
		}
	}
	if _, list, _ := summaryCall(t, f, "key", "pw", url.Values{"page": {"1"}}); len(list) != 0 {
		t.Errorf("page 1: %v", list)
	}
	if n := f.SummaryRequests(); n != 3 {
		t.Errorf("%d summary requests counted, want 3", n)
	}
}

func TestSummaryRefusals(t *testing.T) {
	f := voipcomtest.NewServer(t, "key", "pw")
	if code, _, msg := summaryCall(t, f, "key", "wrong", url.Values{"page": {"0"}}); code != 401 || msg != "Invalid api credentials" {
		t.Errorf("wrong password: HTTP %d %q", code, msg)
	}
	for _, form := range []url.Values{{}, {"page": {"-1"}}, {"page": {"x"}}, {"page": {"0"}, "to": {"1"}}} {
		if code, _, _ := summaryCall(t, f, "key", "pw", form); code != 400 {
			t.Errorf("form %v: HTTP %d, want 400", form, code)
		}
	}
	if n := f.SummaryRequests(); n != 0 {
		t.Errorf("%d refused calls counted", n)
	}
}
