package voipcom

import (
	"context"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
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
