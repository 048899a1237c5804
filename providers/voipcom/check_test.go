package voipcom

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
	"github.com/smsbridge/smsbridge/providers/providertest"
)

func TestLiveCheckReadsTheSummary(t *testing.T) {
	p, f := newTest(t, nil)
	got, err := p.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != "api credentials accepted by sms/summary, 0 conversations on its first page" {
		t.Errorf("Check = %q", got)
	}
	if n := f.SummaryRequests(); n != 1 {
		t.Errorf("%d sms/summary calls, want 1", n)
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("%d sends made by a check", n)
	}
}

func TestLiveCheckFailures(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		p, f := newTest(t, func(c *Config) { c.APIPassword = "not-" + testPassword })
		_, err := p.Check(context.Background())
		if bridge.ReasonOf(err) != bridge.ReasonProviderAuth {
			t.Fatalf("err %v, want an authentication error", err)
		}
		if strings.Contains(err.Error(), testPassword) {
			t.Errorf("the error shows the password: %v", err)
		}
		if n := f.SummaryRequests(); n != 0 {
			t.Errorf("%d calls answered", n)
		}
	})
	t.Run("error body with 200", func(t *testing.T) {
		p, f := newTest(t, nil)
		f.Faults.Push(providertest.Fault{Status: 200, Body: `{"error": true, "error_message": "API access disabled for ` + testKey + `"}`})
		_, err := p.Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "sms/summary refused: API access disabled for [REDACTED]") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("not the API", func(t *testing.T) {
		p, f := newTest(t, nil)
		f.Faults.Push(providertest.Fault{Status: 200, Body: "<html>"})
		if _, err := p.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "unexpected answer") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("down", func(t *testing.T) {
		p, f := newTest(t, nil)
		f.Faults.Push(providertest.Fault{Status: 502})
		if _, err := p.Check(context.Background()); !bridge.IsTemporary(err) || !strings.Contains(err.Error(), "HTTP 502") {
			t.Errorf("err %v", err)
		}
	})
}

// FuzzSummary feeds arbitrary answers to the check's judge: no panic;
// failures are *bridge.Error without a credential; success needs a 2xx
// with a summary list and no error flag; 401 is an authentication error.
func FuzzSummary(f *testing.F) {
	f.Add(200, []byte(`{"summary":[{"sms_id":"1","sms_external":"12812345678","sms_msg":"hi","sms_sale":"0.01"}]}`))
	f.Add(200, []byte(`{"summary":[]}`))
	f.Add(200, []byte(`{"error": true, "error_message": "Invalid api credentials key-test"}`))
	f.Add(200, []byte(`{"error": "1", "summary": []}`))
	f.Add(200, []byte(`{"summary": null}`))
	f.Add(401, []byte(`{"error": true, "error_message": "Invalid api credentials"}`))
	f.Add(500, []byte(`<html>pw-test</html>`))
	p, err := New("voip", &Config{APIKey: testKey, APIPassword: testPassword}, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		what, err := p.summary(&providers.Response{Status: status, Header: http.Header{}, Body: body})
		if err == nil {
			var v struct {
				Summary []json.RawMessage `json:"summary"`
			}
			if status < 200 || status > 299 || json.Unmarshal(body, &v) != nil || v.Summary == nil || what == "" {
				t.Fatalf("success %q for HTTP %d %q", what, status, body)
			}
			return
		}
		var be *bridge.Error
		if !errors.As(err, &be) {
			t.Fatalf("%T is not a *bridge.Error: %v", err, err)
		}
		if status == http.StatusUnauthorized && be.Reason != bridge.ReasonProviderAuth {
			t.Fatalf("401 gave %q", be.Reason)
		}
		for _, secret := range []string{testKey, testPassword} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("credential in %q", err)
			}
		}
	})
}
