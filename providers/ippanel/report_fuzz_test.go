package ippanel

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

func TestE164(t *testing.T) {
	for in, want := range map[string]string{
		"+989120000000":     "+989120000000",
		"989120000000":      "+989120000000",
		"00989120000000":    "+989120000000",
		"09120000000":       "+989120000000",
		"9120000000":        "+989120000000",
		" 09120000000 ":     "+989120000000",
		"983000505":         "+983000505",
		"3000505":           "+983000505",
		"+0912":             "+0912",
		"0":                 "0",
		"abc":               "abc",
		"0912-000-0000":     "0912-000-0000",
		"":                  "",
		"98123456789012345": "98123456789012345",
	} {
		if got := e164(in); got != want {
			t.Errorf("e164(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzDecodeReports feeds arbitrary answers to the report decoders. No
// panic; failures are *bridge.Error without the secret; success means
// every inbox message has a positive id and a sender, every recipient a
// number and a state the bridge knows.
func FuzzDecodeReports(f *testing.F) {
	const secret = "FUZZ-SECRET-tok"
	for _, seed := range []struct {
		status int
		body   string
	}{
		{200, `{"data":[{"messages_inbox_id":123,"from":"+989122222222","number":"+981000123","message":"message text","type":"normal","time":1747808125,"seen":"0"},{"messages_inbox_id":122,"from":"+989122222222","number":"+981000123","message":"message text","type":"normal","time":1747808120,"seen":"0"}],"meta":{"current_page":1,"from":1,"last_page":4066539,"path":"https://baseurl/api/report/messages-inbox","per_page":2,"to":1,"total":4066539,"status":true,"message":"انجام شد","message_code":"200-1"}}`},
		{200, `{"data":[{"recipient":"+989190000000","message":"متن پیام","is_readable":true,"msg_parts":"1","message_status":"1"},{"recipient":"+989120000000","message":"با سلام","is_readable":true,"msg_parts":"1","message_status":"4"}],"meta":{"current_page":1,"from":1,"last_page":1,"path":"/api/report/recipients","per_page":10,"to":2,"total":2,"status":true,"message":"انجام شد","message_code":"200-1"}}`},
		{200, `{"data":[],"meta":{"status":true,"last_page":"1"}}`},
		{200, `{"data":[{"messages_inbox_id":"7","from":989120000000,"time":"x"}],"meta":{"status":true}}`},
		{200, `{"data":null,"meta":{"status":true}}`},
		{401, `{"data":null,"meta":{"status":false,"message":"اطلاعات وارد شده صحیح نمی باشد","message_parameters":[],"message_code":"400-1","errors":{}}}`},
		{422, `{"data":null,"meta":{"status":false,"message":"تکمیل گزینه bulk_id الزامی است","message_code":"400-2","errors":{"bulk_id":["FUZZ-SECRET-tok"]}}}`},
		{200, `{"data":[{"recipient":"FUZZ-SECRET-tok","message_status":9}],"meta":{"status":true,"last_page":-1}}`},
		{502, `FUZZ-SECRET-tok`},
	} {
		f.Add(seed.status, []byte(seed.body))
	}
	now := time.Date(2025, 5, 21, 6, 15, 25, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		r := &providers.Response{Status: status, Header: http.Header{}, Body: body}
		check := func(err error) {
			t.Helper()
			var be *bridge.Error
			if !errors.As(err, &be) {
				t.Fatalf("%T is not a *bridge.Error: %v", err, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("secret in %q", err)
			}
		}
		env, err := interpret("ippanel", secret, r, now)
		if err != nil {
			check(err)
			return
		}
		msgs, meta, err := decodeInbox("ippanel", secret, r, env)
		if err != nil {
			check(err)
		} else {
			if meta.LastPage < 0 {
				t.Fatalf("last_page %d", meta.LastPage)
			}
			for _, m := range msgs {
				if m.ID <= 0 || (m.From == "") == (m.Unreadable == "") {
					t.Fatalf("accepted %+v", m)
				}
			}
		}
		reps, _, err := decodeRecipients("ippanel", secret, r, env)
		if err != nil {
			check(err)
			return
		}
		for _, rep := range reps {
			switch rep.state {
			case bridge.StateSent, bridge.StateDelivered, bridge.StateUndelivered:
			default:
				t.Fatalf("state %q", rep.state)
			}
			if rep.to == "" {
				t.Fatal("recipient without a number")
			}
		}
	})
}
