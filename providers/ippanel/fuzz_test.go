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

// FuzzInterpret feeds arbitrary answers to the response parser. Whatever
// comes back: no panic; failures are *bridge.Error; success needs a 2xx,
// meta.status true and at least one positive id; 401 is always an
// authentication failure; and the secret never reaches an error, even when
// the body echoes it.
func FuzzInterpret(f *testing.F) {
	const secret = "FUZZ-SECRET-tok"
	for _, seed := range []struct {
		status int
		body   string
	}{
		{200, `{"data":{"message_outbox_ids":[1123544244]},"meta":{"status":true,"message":"انجام شد","message_parameters":[],"message_code":"200-1"}}`},
		{200, `{"data":{"message_outbox_ids":["12",13]},"meta":{"status":true}}`},
		{200, `{"data":null,"meta":{"status":true,"message":"انجام شد","message_parameters":[],"message_code":"200-1"}}`},
		{200, `{"data":null,"meta":{"status":false,"message":"FUZZ-SECRET-tok","message_code":"400-5"}}`},
		{401, `{"data":null,"meta":{"status":false,"message":"اطلاعات وارد شده صحیح نمی باشد","message_parameters":[],"message_code":"400-1","errors":{}}}`},
		{422, `{"data":null,"meta":{"status":false,"message":"تکمیل گزینه پیام الزامی است","message_parameters":[],"message_code":"400-2","errors":{"message":["تکمیل گزینه پیام الزامی است"]}}}`},
		{422, `{"data":null,"meta":{"status":false,"errors":{"a":"FUZZ-SECRET-tok","b":[1,{}],"c":null}}}`},
		{404, `{"data":null,"meta":{"status":false,"message":"پیام مورد نظر یافت نشد","message_parameters":[],"message_code":"400-1","errors":{}}}`},
		{500, `<html>FUZZ-SECRET-tok</html>`},
		{204, ``},
		{200, `{"meta":{"status":"true"}}`},
	} {
		f.Add(seed.status, []byte(seed.body))
	}
	now := time.Date(2025, 3, 12, 21, 20, 2, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		r := &providers.Response{Status: status, Header: http.Header{}, Body: body}
		env, err := interpret("ippanel", secret, r, now)
		var ids []int64
		if err == nil {
			ids, err = outboxIDs("ippanel", secret, r, env)
		}
		if err == nil {
			if status < 200 || status > 299 || env.Meta == nil || env.Meta.Status == nil || !*env.Meta.Status {
				t.Fatalf("success for HTTP %d %q", status, body)
			}
			if len(ids) == 0 {
				t.Fatal("success without ids")
			}
			for _, id := range ids {
				if id <= 0 {
					t.Fatalf("id %d", id)
				}
			}
			return
		}
		var be *bridge.Error
		if !errors.As(err, &be) {
			t.Fatalf("%T is not a *bridge.Error: %v", err, err)
		}
		if status == http.StatusUnauthorized && (be.Reason != bridge.ReasonProviderAuth || be.Temp) {
			t.Fatalf("401 gave %q temp=%v", be.Reason, be.Temp)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("secret in %q", err)
		}
	})
}

// FuzzCredit feeds arbitrary answers to the credit check's parser: no
// panic; failures are *bridge.Error without the secret; success needs a
// 2xx with meta.status true and some credit or gift credit, and says so.
func FuzzCredit(f *testing.F) {
	const secret = "FUZZ-SECRET-tok"
	for _, seed := range []struct {
		status int
		body   string
	}{
		{200, `{"data":{"credit":6084722932.705052,"yesterday_credit":195251925510.55,"gift":0,"gift_expires_at":null,"updated_at":"2025-06-30 18:07:06"},"meta":{"status":true,"message":"انجام شد","message_code":"200-1"}}`},
		{200, `{"data":{"credit":0,"gift":5},"meta":{"status":true}}`},
		{200, `{"data":{"credit":"12"},"meta":{"status":true}}`},
		{200, `{"data":{"credit":-3,"gift":-1},"meta":{"status":true}}`},
		{200, `{"data":{"credit":1e308,"gift":1e308},"meta":{"status":true}}`},
		{200, `{"data":null,"meta":{"status":true}}`},
		{401, `{"data":null,"meta":{"status":false,"message":"اطلاعات وارد شده صحیح نمی باشد","message_parameters":[],"message_code":"400-1","errors":{}}}`},
		{200, `<html>FUZZ-SECRET-tok</html>`},
	} {
		f.Add(seed.status, []byte(seed.body))
	}
	now := time.Date(2025, 6, 30, 18, 7, 6, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		r := &providers.Response{Status: status, Header: http.Header{}, Body: body}
		env, err := interpret("ippanel", secret, r, now)
		var what string
		if err == nil {
			what, err = credit("ippanel", secret, r, env)
		}
		if err == nil {
			if status < 200 || status > 299 || !*env.Meta.Status || !strings.HasPrefix(what, "credit ") {
				t.Fatalf("success %q for HTTP %d %q", what, status, body)
			}
			return
		}
		var be *bridge.Error
		if !errors.As(err, &be) {
			t.Fatalf("%T is not a *bridge.Error: %v", err, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("secret in %q", err)
		}
	})
}
