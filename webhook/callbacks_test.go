package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
	"github.com/smsbridge/smsbridge/webhook"
)

const (
	voipSecret = "vc-callback-secret-Zt81xQ"
	ippSecret  = "ipp-callback-secret-0bN3"
)

func callbackConfig() webhook.Config {
	return webhook.Config{Callbacks: map[string]webhook.Callback{
		"voipcom": {Secret: voipSecret},
		"custom": {
			Secret:        ippSecret,
			InboundFields: webhook.InboundFields{From: []string{"Caller"}, Text: []string{"sms_body"}, ID: []string{"ref"}},
			StatusFields:  webhook.StatusFields{ID: []string{"ref"}, Status: []string{"stat"}},
		},
		"nosecret": {},
	}}
}

// The voip-communications fake posts a reply the way the provider does;
// the SMS is recorded once however often the provider retries.
func TestInboundFromVoipcom(t *testing.T) {
	b := &fakeBridge{}
	base, logs := startServer(t, b, callbackConfig())
	provider := voipcomtest.NewServer(t, "key", "pw", "97233333333")
	callback := base + "/v1/providers/voipcom/inbound?secret=" + url.QueryEscape(voipSecret)
	fields := url.Values{"from": {"972501234567"}, "to": {"97233333333"}, "msg": {"שלום, מה נשמע?"}, "smsid": {"2017559ea27008c6b7122900621"}}

	for i, want := range []struct {
		id  any
		dup bool
	}{{"in1", false}, {nil, true}} {
		resp, err := provider.PostInbound(context.Background(), callback, fields)
		if err != nil {
			t.Fatal(err)
		}
		a := read(t, resp)
		if a.status != http.StatusOK || a.body["id"] != want.id || a.body["duplicate"] != want.dup {
			t.Fatalf("post %d: HTTP %d %s", i, a.status, a.raw)
		}
	}
	got := b.stored()
	if len(got) != 1 {
		t.Fatalf("%d inbound stored, want 1", len(got))
	}
	in := got[0]
	if in.Provider != "voipcom" || in.DedupeKey != "2017559ea27008c6b7122900621" || in.From != "972501234567" ||
		in.To != "97233333333" || in.Text != "שלום, מה נשמע?" || !in.Received.IsZero() {
		t.Errorf("stored %+v", in)
	}
	if !strings.Contains(in.Raw, "POST /v1/providers/voipcom/inbound") || !strings.Contains(in.Raw, "application/x-www-form-urlencoded") ||
		!strings.Contains(in.Raw, "smsid=2017559ea27008c6b7122900621") {
		t.Errorf("raw %q", in.Raw)
	}
	if strings.Contains(in.Raw, voipSecret) || strings.Contains(logs.String(), voipSecret) {
		t.Error("the callback secret was kept in the raw request or the log")
	}
}

func TestInboundEncodings(t *testing.T) {
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("msisdn", "+972501234567")
	mw.WriteField("Text", "multipart")
	mw.WriteField("timestamp", "1747808125")
	mw.Close()

	secret := "secret=" + url.QueryEscape(voipSecret)
	for _, tc := range []struct {
		name, method, query, ctype, body string
		want                             bridge.Inbound
	}{
		{
			name: "JSON with numbers", method: "POST", query: secret, ctype: "application/json",
			body: `{"From": 972501234567, "To": "97233333333", "Message": "json", "SMSID": 12345678901234567890, "date": "2025-05-21 06:15:25"}`,
			want: bridge.Inbound{From: "972501234567", To: "97233333333", Text: "json", DedupeKey: "12345678901234567890",
				Received: time.Date(2025, 5, 21, 6, 15, 25, 0, time.UTC)},
		},
		{
			name: "multipart", method: "POST", query: secret, ctype: mw.FormDataContentType(), body: mp.String(),
			want: bridge.Inbound{From: "+972501234567", Text: "multipart", Received: time.Unix(1747808125, 0).UTC()},
		},
		{
			name: "GET query", method: "GET", query: "from=972501234567&msg=via+get&id=g1&" + secret,
			want: bridge.Inbound{From: "972501234567", Text: "via get", DedupeKey: "g1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBridge{}
			base, _ := startServer(t, b, callbackConfig())
			a := do(t, tc.method, base+"/v1/providers/voipcom/inbound?"+tc.query, tc.ctype, tc.body)
			if a.status != http.StatusOK || a.body["duplicate"] != false {
				t.Fatalf("HTTP %d %s", a.status, a.raw)
			}
			got := b.stored()
			if len(got) != 1 {
				t.Fatalf("%d stored", len(got))
			}
			in := got[0]
			if tc.want.DedupeKey == "" {
				if !strings.HasPrefix(in.DedupeKey, "sha256:") {
					t.Errorf("dedupe key %q, want a digest", in.DedupeKey)
				}
				tc.want.DedupeKey = in.DedupeKey
			}
			if in.From != tc.want.From || in.To != tc.want.To || in.Text != tc.want.Text ||
				in.DedupeKey != tc.want.DedupeKey || !in.Received.Equal(tc.want.Received) {
				t.Errorf("stored %+v, want %+v", in, tc.want)
			}
			if strings.Contains(in.Raw, voipSecret) {
				t.Errorf("secret in raw %q", in.Raw)
			}
		})
	}
}

// Without a provider id, a retry of the identical request is a duplicate
// and any other request is not.
func TestInboundDedupeWithoutID(t *testing.T) {
	b := &fakeBridge{}
	base, _ := startServer(t, b, callbackConfig())
	post := func(query, body string) answer {
		t.Helper()
		return do(t, "POST", base+"/v1/providers/voipcom/inbound?secret="+url.QueryEscape(voipSecret)+query,
			"application/x-www-form-urlencoded", body)
	}
	for _, tc := range []struct {
		query, body string
		dup         bool
	}{
		{"", "from=972501234567&msg=ok", false},
		{"", "from=972501234567&msg=ok", true},
		{"", "from=972501234567&msg=ok!", false},
		{"&n=2", "from=972501234567&msg=ok", false},
	} {
		if a := post(tc.query, tc.body); a.status != http.StatusOK || a.body["duplicate"] != tc.dup {
			t.Errorf("%s %s: HTTP %d %s, want duplicate %v", tc.query, tc.body, a.status, a.raw, tc.dup)
		}
	}
	if n := len(b.stored()); n != 3 {
		t.Errorf("%d stored, want 3", n)
	}
}

func TestCallbackAuth(t *testing.T) {
	b := &fakeBridge{}
	base, logs := startServer(t, b, callbackConfig())
	const form = "from=972501234567&msg=hi&id=1&status=delivered"
	for _, tc := range []struct {
		name, path string
		status     int
		reason     string
	}{
		{"unknown provider", "/v1/providers/nobody/inbound?secret=" + voipSecret, 404, "not_found"},
		{"provider without a secret", "/v1/providers/nosecret/inbound?secret=", 404, "not_found"},
		{"provider without a secret, status", "/v1/providers/nosecret/status?secret=x", 404, "not_found"},
		{"no secret", "/v1/providers/voipcom/inbound", 401, "bad_secret"},
		{"empty secret", "/v1/providers/voipcom/inbound?secret=", 401, "bad_secret"},
		{"wrong secret", "/v1/providers/voipcom/inbound?secret=vc-callback-secret-Zt81xq", 401, "bad_secret"},
		{"secret prefix", "/v1/providers/voipcom/inbound?secret=vc-callback", 401, "bad_secret"},
		{"another provider's secret", "/v1/providers/voipcom/inbound?secret=" + ippSecret, 401, "bad_secret"},
		{"wrong secret, status", "/v1/providers/voipcom/status?secret=nope", 401, "bad_secret"},
	} {
		a := do(t, "POST", base+tc.path, "application/x-www-form-urlencoded", form)
		if a.status != tc.status || a.body["reason"] != tc.reason {
			t.Errorf("%s: HTTP %d %s, want %d %s", tc.name, a.status, a.raw, tc.status, tc.reason)
		}
	}
	if n, r := len(b.stored()), len(b.reported()); n != 0 || r != 0 {
		t.Errorf("%d inbound and %d reports stored without the right secret", n, r)
	}
	if strings.Contains(logs.String(), voipSecret) || strings.Contains(logs.String(), ippSecret) {
		t.Error("a secret reached the log")
	}
}

func TestInboundRefusals(t *testing.T) {
	b := &fakeBridge{}
	cfg := callbackConfig()
	cfg.MaxBodyBytes = 1024
	base, _ := startServer(t, b, cfg)
	url := base + "/v1/providers/voipcom/inbound?secret=" + url.QueryEscape(voipSecret)
	for _, tc := range []struct {
		name, ctype, body string
		status            int
		field             string
	}{
		{"no from", "application/x-www-form-urlencoded", "to=97233333333&msg=hi", 400, "from"},
		{"no text", "application/json", `{"from": "972501234567", "id": "x"}`, 400, "text"},
		{"malformed JSON", "application/json", `{"from": "972501234567",`, 400, ""},
		{"XML", "application/xml", `<sms from="1">hi</sms>`, 415, ""},
		{"too large", "application/x-www-form-urlencoded", "from=1&msg=" + strings.Repeat("x", 2000), 413, ""},
	} {
		a := do(t, "POST", url, tc.ctype, tc.body)
		if a.status != tc.status || (tc.field != "" && a.body["field"] != tc.field) {
			t.Errorf("%s: HTTP %d %s, want %d on %q", tc.name, a.status, a.raw, tc.status, tc.field)
		}
	}
	if n := len(b.stored()); n != 0 {
		t.Errorf("%d stored", n)
	}
}

// The bridge's refusals take the usual mapping: a store that cannot write
// answers 503 so that the provider retries; a number that can never be
// parsed is 422.
func TestInboundBridgeErrors(t *testing.T) {
	b := &fakeBridge{}
	base, _ := startServer(t, b, callbackConfig())
	url := base + "/v1/providers/voipcom/inbound?secret=" + url.QueryEscape(voipSecret)

	b.fail(bridge.Temporary(bridge.ReasonStoreUnavailable, context.DeadlineExceeded, "store busy"), nil)
	a := do(t, "POST", url, "application/x-www-form-urlencoded", "from=972501234567&msg=hi")
	if a.status != http.StatusServiceUnavailable || a.body["reason"] != "store_unavailable" || a.header.Get("Retry-After") == "" {
		t.Errorf("store down: HTTP %d Retry-After %q %s", a.status, a.header.Get("Retry-After"), a.raw)
	}
	b.fail(bridge.Permanent(bridge.ReasonBadNumber, "from", "%q is not a phone number", "abc"), nil)
	a = do(t, "POST", url, "application/x-www-form-urlencoded", "from=abc&msg=hi")
	if a.status != http.StatusUnprocessableEntity || a.body["reason"] != "bad_number" || a.body["field"] != "from" {
		t.Errorf("bad number: HTTP %d %s", a.status, a.raw)
	}
}

func TestConfiguredFieldNames(t *testing.T) {
	b := &fakeBridge{reportN: 1}
	base, _ := startServer(t, b, callbackConfig())
	a := do(t, "POST", base+"/v1/providers/custom/inbound?secret="+ippSecret, "application/json",
		`{"caller": "+989122222222", "from": "ignored", "SMS_BODY": "configured", "ref": "r-1", "id": "ignored"}`)
	if a.status != http.StatusOK {
		t.Fatalf("HTTP %d %s", a.status, a.raw)
	}
	if got := b.stored(); len(got) != 1 || got[0].From != "+989122222222" || got[0].Text != "configured" || got[0].DedupeKey != "r-1" || got[0].Provider != "custom" {
		t.Errorf("stored %+v", got)
	}
	a = do(t, "GET", base+"/v1/providers/custom/status?secret="+ippSecret+"&ref=out-7&stat=DELIVRD&status=failed", "", "")
	if a.status != http.StatusOK || a.body["updated"] != float64(1) {
		t.Fatalf("HTTP %d %s", a.status, a.raw)
	}
	if got := b.reported(); len(got) != 1 || got[0].ProviderID != "out-7" || got[0].State != bridge.StateDelivered {
		t.Errorf("reported %+v", got)
	}
}

func TestStatusCallback(t *testing.T) {
	b := &fakeBridge{reportN: 2}
	base, _ := startServer(t, b, callbackConfig())
	url := base + "/v1/providers/voipcom/status?secret=" + url.QueryEscape(voipSecret)

	before := time.Now().UTC()
	a := do(t, "POST", url, "application/x-www-form-urlencoded", "smsid=abc&status=UNDELIV&to=972501234567&error=absent+subscriber")
	if a.status != http.StatusOK || a.body["updated"] != float64(2) {
		t.Fatalf("HTTP %d %s", a.status, a.raw)
	}
	got := b.reported()
	if len(got) != 1 {
		t.Fatalf("%d reports", len(got))
	}
	r := got[0]
	if r.Provider != "voipcom" || r.ProviderID != "abc" || r.To != "972501234567" || r.State != bridge.StateUndelivered ||
		r.Detail != "absent subscriber" || r.At.Before(before) || r.At.After(time.Now()) {
		t.Errorf("report %+v", r)
	}

	body, _ := json.Marshal(map[string]any{"id": 991, "state": "DELIVRD", "timestamp": 1747808125})
	if a := do(t, "POST", url, "application/json", string(body)); a.status != http.StatusOK {
		t.Fatalf("HTTP %d %s", a.status, a.raw)
	}
	if got := b.reported(); len(got) != 2 || got[1].ProviderID != "991" || got[1].State != bridge.StateDelivered ||
		!got[1].At.Equal(time.Unix(1747808125, 0)) || got[1].To != "" {
		t.Errorf("report %+v", got[1:])
	}

	// No news: answered, not recorded.
	for _, word := range []string{"ENROUTE", "accepted", "0"} {
		a := do(t, "GET", url+"&id=abc&status="+word, "", "")
		if a.status != http.StatusOK || a.body["updated"] != float64(0) {
			t.Errorf("%s: HTTP %d %s", word, a.status, a.raw)
		}
	}
	for query, field := range map[string]string{"&status=delivered": "id", "&id=abc": "status", "&id=abc&status=lost": "status"} {
		if a := do(t, "GET", url+query, "", ""); a.status != http.StatusBadRequest || a.body["field"] != field {
			t.Errorf("%s: HTTP %d %s, want 400 on %s", query, a.status, a.raw, field)
		}
	}
	if n := len(b.reported()); n != 2 {
		t.Errorf("%d reports, want 2", n)
	}

	b.fail(nil, bridge.Temporary(bridge.ReasonStoreUnavailable, nil, "store busy"))
	if a := do(t, "GET", url+"&id=abc&status=delivered", "", ""); a.status != http.StatusServiceUnavailable {
		t.Errorf("store down: HTTP %d %s", a.status, a.raw)
	}
}

// Only GET and POST are callbacks.
func TestCallbackMethods(t *testing.T) {
	base, _ := startServer(t, &fakeBridge{}, callbackConfig())
	if a := do(t, "PUT", base+"/v1/providers/voipcom/inbound?secret="+voipSecret, "", ""); a.status != http.StatusMethodNotAllowed {
		t.Errorf("PUT: HTTP %d", a.status)
	}
}
