package mindcrm_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers/mindcrm"
	"github.com/smsbridge/smsbridge/providers/mindcrm/mindcrmtest"
	"github.com/smsbridge/smsbridge/providers/providertest"
)

// newProvider returns a provider named "mindcrm" pointed at fake, with
// user_id 42 unless edit says otherwise.
func newProvider(t *testing.T, fake *mindcrmtest.Server, hc *http.Client, edit func(*mindcrm.Config)) *mindcrm.Provider {
	t.Helper()
	cfg := &mindcrm.Config{BaseURL: fake.URL, UserID: 42}
	if edit != nil {
		edit(cfg)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	p, err := mindcrm.New("mindcrm", cfg, hc, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestSendQuery(t *testing.T) {
	const phone = "+972501234567"
	tests := []struct {
		name string
		cfg  func(*mindcrm.Config)
		req  bridge.SendRequest
		want []url.Values
	}{{
		name: "raw",
		req:  bridge.SendRequest{Sender: "MindCRM", Text: "Hello, your appointment is confirmed.", To: []string{phone}},
		want: []url.Values{{
			"source_number": {"MindCRM"}, "message": {"Hello, your appointment is confirmed."},
			"phone": {"0501234567"}, "user_id": {"42"},
		}},
	}, {
		name: "raw text needing escapes, no user_id",
		cfg:  func(c *mindcrm.Config) { c.UserID = 0 },
		req:  bridge.SendRequest{Sender: "Clinic1", Text: "שלום & ברוך+הבא = 100%?\n#1", To: []string{"+972591234567"}},
		want: []url.Values{{
			"source_number": {"Clinic1"}, "message": {"שלום & ברוך+הבא = 100%?\n#1"}, "phone": {"0591234567"},
		}},
	}, {
		name: "raw scheduled in summer time (UTC+3)",
		req: bridge.SendRequest{Sender: "MindCRM", Text: "Reminder: your meeting is tomorrow at 10:00.", To: []string{phone},
			SendAt: time.Date(2025, 7, 1, 6, 0, 0, 0, time.UTC)},
		want: []url.Values{{
			"source_number": {"MindCRM"}, "message": {"Reminder: your meeting is tomorrow at 10:00."},
			"phone": {"0501234567"}, "user_id": {"42"}, "date": {"2025-07-01"}, "time": {"09:00:00"},
		}},
	}, {
		name: "raw scheduled in winter time (UTC+2) across midnight",
		req: bridge.SendRequest{Sender: "MindCRM", Text: "x", To: []string{phone},
			SendAt: time.Date(2025, 1, 14, 22, 30, 15, 0, time.UTC)},
		want: []url.Values{{
			"source_number": {"MindCRM"}, "message": {"x"}, "phone": {"0501234567"}, "user_id": {"42"},
			"date": {"2025-01-15"}, "time": {"00:30:15"},
		}},
	}, {
		// Israel moved to summer time at 2025-03-28 02:00 local (00:00 UTC).
		name: "raw scheduled just after the DST change",
		req: bridge.SendRequest{Sender: "MindCRM", Text: "x", To: []string{phone},
			SendAt: time.Date(2025, 3, 28, 0, 30, 0, 0, time.UTC)},
		want: []url.Values{{
			"source_number": {"MindCRM"}, "message": {"x"}, "phone": {"0501234567"}, "user_id": {"42"},
			"date": {"2025-03-28"}, "time": {"03:30:00"},
		}},
	}, {
		name: "scheduled in a configured zone",
		cfg:  func(c *mindcrm.Config) { c.TimeZone = "UTC" },
		req: bridge.SendRequest{Sender: "MindCRM", Text: "x", To: []string{phone},
			SendAt: time.Date(2025, 3, 28, 0, 30, 0, 0, time.FixedZone("X", 3600))},
		want: []url.Values{{
			"source_number": {"MindCRM"}, "message": {"x"}, "phone": {"0501234567"}, "user_id": {"42"},
			"date": {"2025-03-27"}, "time": {"23:30:00"},
		}},
	}, {
		name: "template",
		req:  bridge.SendRequest{Template: "7", To: []string{phone}},
		want: []url.Values{{"sms_template_id": {"7"}, "phone": {"0501234567"}, "user_id": {"42"}}},
	}, {
		name: "template with sender override",
		req:  bridge.SendRequest{Template: "7", Sender: "MyBrand", To: []string{phone}},
		want: []url.Values{{
			"sms_template_id": {"7"}, "phone": {"0501234567"}, "user_id": {"42"}, "source_number": {"MyBrand"},
		}},
	}, {
		name: "template with text override",
		req:  bridge.SendRequest{Template: "7", Text: "Your order has shipped.", To: []string{phone}},
		want: []url.Values{{
			"sms_template_id": {"7"}, "phone": {"0501234567"}, "user_id": {"42"}, "message": {"Your order has shipped."},
		}},
	}, {
		name: "repository_assign_id",
		cfg:  func(c *mindcrm.Config) { c.RepositoryAssignID = 9001 },
		req:  bridge.SendRequest{Template: "7", To: []string{phone}},
		want: []url.Values{{
			"sms_template_id": {"7"}, "phone": {"0501234567"}, "user_id": {"42"}, "repository_assign_id": {"9001"},
		}},
	}, {
		name: "three recipients, three calls in order",
		req:  bridge.SendRequest{Sender: "MindCRM", Text: "hi", To: []string{"+972521111111", "+972532222222", "+972583333333"}},
		want: []url.Values{
			{"source_number": {"MindCRM"}, "message": {"hi"}, "phone": {"0521111111"}, "user_id": {"42"}},
			{"source_number": {"MindCRM"}, "message": {"hi"}, "phone": {"0532222222"}, "user_id": {"42"}},
			{"source_number": {"MindCRM"}, "message": {"hi"}, "phone": {"0583333333"}, "user_id": {"42"}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := mindcrmtest.NewServer(t)
			p := newProvider(t, fake, nil, tt.cfg)
			res, err := p.Send(t.Context(), &tt.req)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(res) != len(tt.req.To) {
				t.Fatalf("got %d results, want %d", len(res), len(tt.req.To))
			}
			for i, r := range res {
				if r.Err != nil || r.ProviderID != "" || r.Info["description"] != "SMS sent successfully" {
					t.Errorf("result %d = %+v, want success with no provider id", i, r)
				}
			}
			got := fake.Requests()
			if len(got) != len(tt.want) || len(fake.Rejected()) != 0 {
				t.Fatalf("fake accepted %d and rejected %d requests, want %d accepted", len(got), len(fake.Rejected()), len(tt.want))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i].Query, tt.want[i]) {
					t.Errorf("request %d query\n got %v\nwant %v", i, got[i].Query, tt.want[i])
				}
			}
		})
	}
}

// documented is a MindCRM answer body.
func documented(code int, desc string) string {
	return `{"stat_code": ` + strconv.Itoa(code) + `, "description": "` + desc + `", "data": "` + desc + `"}`
}

func TestSendStatCodes(t *testing.T) {
	tests := []struct {
		code    int
		desc    string
		reason  bridge.Reason
		meaning string
	}{
		{1, "Missing mandatory parameter", bridge.ReasonProviderRejected, "mindcrm: stat_code 1: missing mandatory parameter"},
		{2, "Invalid phone number format", bridge.ReasonProviderRejected, "mindcrm: stat_code 2: invalid phone number format"},
		{3, "Message too long", bridge.ReasonProviderRejected, "mindcrm: stat_code 3: message too long (keep the message under 500 characters)"},
		{4, "Invalid source_number", bridge.ReasonProviderRejected, "mindcrm: stat_code 4: invalid source_number (use only letters and numbers, max 12 characters"},
		{5, "SMS template not found", bridge.ReasonTemplateUnknown, "mindcrm: stat_code 5: SMS template not found"},
		{9, "Quota exceeded", bridge.ReasonProviderRejected, "mindcrm: stat_code 9: Quota exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			fake := mindcrmtest.NewServer(t)
			fake.Faults.Push(providertest.Fault{Status: http.StatusOK, Body: documented(tt.code, tt.desc)})
			p := newProvider(t, fake, nil, nil)
			res, err := p.Send(t.Context(), &bridge.SendRequest{Sender: "MindCRM", Text: "hi", To: []string{"+972501234567"}})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			assertPermanent(t, res[0].Err, tt.reason, tt.meaning)
			if res[0].Info["description"] != tt.desc {
				t.Errorf("Info = %v, want description %q", res[0].Info, tt.desc)
			}
		})
	}

	// And the fake's own verdict on an unknown template, end to end.
	t.Run("unknown template at the fake", func(t *testing.T) {
		fake := mindcrmtest.NewServer(t)
		fake.SetTemplates(7)
		p := newProvider(t, fake, nil, nil)
		res, err := p.Send(t.Context(), &bridge.SendRequest{Template: "8", To: []string{"+972501234567"}})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		assertPermanent(t, res[0].Err, bridge.ReasonTemplateUnknown, "mindcrm: stat_code 5: SMS template not found")
		if rej := fake.Rejected(); len(rej) != 1 || rej[0].StatCode != 5 {
			t.Errorf("fake rejected %+v, want one request with stat_code 5", rej)
		}
	})
}

func assertPermanent(t *testing.T, err error, reason bridge.Reason, msgPrefix string) {
	t.Helper()
	var be *bridge.Error
	switch {
	case !errors.As(err, &be):
		t.Fatalf("err = %v (%T), want a *bridge.Error", err, err)
	case be.Temp || be.Reason != reason:
		t.Errorf("err = %v (temporary %v, reason %q), want permanent %q", err, be.Temp, be.Reason, reason)
	case !strings.HasPrefix(be.Msg, msgPrefix):
		t.Errorf("message %q does not start with %q", be.Msg, msgPrefix)
	}
}

func TestSendTransportFailures(t *testing.T) {
	tests := []struct {
		name       string
		fault      providertest.Fault
		timeout    time.Duration
		temp       bool
		reason     bridge.Reason
		retryAfter time.Duration
	}{
		{name: "HTTP 500", fault: providertest.Fault{Status: 500}, temp: true, reason: bridge.ReasonProviderDown},
		{name: "HTTP 503 with documented body", fault: providertest.Fault{Status: 503, Body: documented(0, "SMS sent successfully")},
			temp: true, reason: bridge.ReasonProviderDown},
		{name: "HTTP 429 with Retry-After", fault: providertest.Fault{Status: 429, RetryAfter: 30 * time.Second},
			temp: true, reason: bridge.ReasonProviderDown, retryAfter: 30 * time.Second},
		{name: "HTTP 404", fault: providertest.Fault{Status: 404, Body: "<html>not found</html>"}, reason: bridge.ReasonProviderRejected},
		{name: "HTTP 403", fault: providertest.Fault{Status: 403}, reason: bridge.ReasonProviderAuth},
		{name: "timeout", fault: providertest.Fault{Delay: 3 * time.Second}, timeout: 100 * time.Millisecond,
			temp: true, reason: bridge.ReasonProviderDown},
		{name: "connection closed", fault: providertest.Fault{Close: true}, temp: true, reason: bridge.ReasonProviderDown},
		{name: "HTML 200", fault: providertest.Fault{Status: 200, Body: "<html><body>Maintenance</body></html>"},
			temp: true, reason: bridge.ReasonProviderDown},
		{name: "empty 200", fault: providertest.Fault{Status: 200, Body: " "}, temp: true, reason: bridge.ReasonProviderDown},
		{name: "200 without stat_code", fault: providertest.Fault{Status: 200, Body: `{"description": "ok", "data": "ok"}`},
			temp: true, reason: bridge.ReasonProviderDown},
		{name: "200 with string stat_code", fault: providertest.Fault{Status: 200, Body: `{"stat_code": "0", "description": "ok"}`},
			temp: true, reason: bridge.ReasonProviderDown},
		{name: "200 with a PHP notice before the JSON", fault: providertest.Fault{Status: 200,
			Body: "<b>Notice</b>: Undefined index\n" + documented(0, "SMS sent successfully")}, temp: true, reason: bridge.ReasonProviderDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := mindcrmtest.NewServer(t)
			fake.Faults.Push(tt.fault)
			var hc *http.Client
			if tt.timeout > 0 {
				hc = &http.Client{Timeout: tt.timeout}
			}
			p := newProvider(t, fake, hc, nil)
			res, err := p.Send(t.Context(), &bridge.SendRequest{Sender: "MindCRM", Text: "hi", To: []string{"+972501234567"}})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(res) != 1 {
				t.Fatalf("got %d results, want 1", len(res))
			}
			rerr := res[0].Err
			if rerr == nil || bridge.IsTemporary(rerr) != tt.temp || bridge.ReasonOf(rerr) != tt.reason {
				t.Fatalf("err = %v (temporary %v, reason %q), want temporary %v, reason %q",
					rerr, bridge.IsTemporary(rerr), bridge.ReasonOf(rerr), tt.temp, tt.reason)
			}
			if got := bridge.RetryAfterOf(rerr); got != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", got, tt.retryAfter)
			}
			if strings.Contains(rerr.Error(), "send_sms.php") || strings.Contains(rerr.Error(), "hi&") {
				t.Errorf("error %q shows the request URL", rerr)
			}
			if n := len(fake.Requests()); n != 0 {
				t.Errorf("fake served %d requests normally, want the fault only", n)
			}
		})
	}
}

func TestSendFailureOfOneRecipient(t *testing.T) {
	fake := mindcrmtest.NewServer(t)
	p := newProvider(t, fake, nil, nil)
	to := []string{"+972501111111", "+12025550100", "+972502222222", "+972503333333"}
	// One fault per call made: the second recipient never gets a call.
	fake.Faults.Push(
		providertest.Fault{Status: 500},
		providertest.Fault{}, // served normally
		providertest.Fault{Status: 200, Body: documented(2, "Invalid phone number format")},
	)
	res, err := p.Send(t.Context(), &bridge.SendRequest{Sender: "MindCRM", Text: "hi", To: to})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(res) != len(to) {
		t.Fatalf("got %d results, want %d", len(res), len(to))
	}
	if !bridge.IsTemporary(res[0].Err) || bridge.ReasonOf(res[0].Err) != bridge.ReasonProviderDown {
		t.Errorf("result 0: err = %v, want temporary provider_unavailable (HTTP 500)", res[0].Err)
	}
	if bridge.IsTemporary(res[1].Err) || bridge.ReasonOf(res[1].Err) != bridge.ReasonNoRoute {
		t.Errorf("result 1: err = %v, want permanent no_route (not Israeli)", res[1].Err)
	}
	if res[2].Err != nil {
		t.Errorf("result 2: err = %v, want success", res[2].Err)
	}
	if bridge.IsTemporary(res[3].Err) || bridge.ReasonOf(res[3].Err) != bridge.ReasonProviderRejected {
		t.Errorf("result 3: err = %v, want permanent provider_rejected (stat_code 2)", res[3].Err)
	}
	if got := fake.Requests(); len(got) != 1 || got[0].Query.Get("phone") != "0502222222" {
		t.Errorf("fake accepted %+v, want only 0502222222", got)
	}
}

func TestSendCancelled(t *testing.T) {
	fake := mindcrmtest.NewServer(t)
	p := newProvider(t, fake, nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res, err := p.Send(ctx, &bridge.SendRequest{Sender: "MindCRM", Text: "hi", To: []string{"+972501234567"}})
	if res != nil || err == nil || !bridge.IsTemporary(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, %v; want no results and a temporary error wrapping context.Canceled", res, err)
	}
	if n := len(fake.Requests()) + len(fake.Rejected()); n != 0 {
		t.Errorf("fake got %d requests, want 0", n)
	}
}

func TestSendInvalidRequest(t *testing.T) {
	fake := mindcrmtest.NewServer(t)
	p := newProvider(t, fake, nil, nil)
	res, err := p.Send(t.Context(), &bridge.SendRequest{Template: "seven", To: []string{"+972501234567", "+972501234568"}})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	for i, r := range res {
		if bridge.IsTemporary(r.Err) || bridge.ReasonOf(r.Err) != bridge.ReasonTemplateUnknown {
			t.Errorf("result %d: err = %v, want permanent template_unknown", i, r.Err)
		}
	}
	if n := len(fake.Requests()) + len(fake.Rejected()); n != 0 {
		t.Errorf("fake got %d requests, want 0", n)
	}
}

// The message text may be personal: it must not reach logs at Info.
func TestSendDoesNotLogTextAtInfo(t *testing.T) {
	fake := mindcrmtest.NewServer(t)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p, err := mindcrm.New("mindcrm", &mindcrm.Config{BaseURL: fake.URL}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	const text = "Your code is 918273"
	fake.Faults.Push(providertest.Fault{}, providertest.Fault{Status: 500})
	res, err := p.Send(t.Context(), &bridge.SendRequest{Sender: "MindCRM", Text: text, To: []string{"+972501234567", "+972501234567"}})
	if err != nil || res[0].Err != nil || res[1].Err == nil {
		t.Fatalf("Send = %+v, %v; want one success and one failure", res, err)
	}
	if buf.Len() == 0 || strings.Contains(buf.String(), "918273") {
		t.Errorf("Info log is empty or contains the message text:\n%s", buf.String())
	}
}

func TestMaxBatch(t *testing.T) {
	p := newProvider(t, mindcrmtest.NewServer(t), nil, nil)
	if p.MaxBatch() != 1 || p.Name() != "mindcrm" {
		t.Errorf("MaxBatch() = %d, Name() = %q; want 1, mindcrm", p.MaxBatch(), p.Name())
	}
}

func TestCheckRecipient(t *testing.T) {
	p := newProvider(t, mindcrmtest.NewServer(t), nil, nil)
	for _, d := range "01234589" {
		to := "+9725" + string(d) + "1234567"
		if err := p.CheckRecipient(to); err != nil {
			t.Errorf("CheckRecipient(%q) = %v, want nil", to, err)
		}
	}
	for _, to := range []string{
		"+972571234567",   // 057: not a documented prefix
		"+972561234567",   // 056
		"+97250123456",    // too short
		"+9725012345678",  // too long
		"+972221234567",   // landline
		"+12025550100",    // not Israeli
		"+97050123456",    // other country code
		"0501234567",      // national, not E.164
		"+972-50-1234567", // not E.164
		"+972 501234567",
		"+9725a1234567",
		"",
		"phonebook:12",
		"phonebook:12:1,2",
	} {
		err := p.CheckRecipient(to)
		var be *bridge.Error
		if !errors.As(err, &be) || be.Temp || be.Reason != bridge.ReasonNoRoute || be.Field != "to" ||
			!strings.Contains(be.Msg, "050, 051, 052, 053, 054, 055, 058, 059") {
			t.Errorf("CheckRecipient(%q) = %#v, want permanent no_route on field to naming the prefixes", to, err)
		}
	}
}

func TestCheckRequest(t *testing.T) {
	p := newProvider(t, mindcrmtest.NewServer(t), nil, nil)
	ok := []bridge.SendRequest{
		{Sender: "MindCRM", Text: "hi"},
		{Sender: "ABCDEFGHIJ12", Text: strings.Repeat("ש", 500)},
		{Template: "7"},
		{Template: "123", Sender: "MyBrand", Text: "override"},
	}
	for _, req := range ok {
		if err := p.CheckRequest(&req); err != nil {
			t.Errorf("CheckRequest(%+v) = %v, want nil", req, err)
		}
	}
	tests := []struct {
		name   string
		req    bridge.SendRequest
		reason bridge.Reason
		field  string
		msg    string
	}{
		{"raw without sender", bridge.SendRequest{Text: "hi"}, bridge.ReasonSenderNotAllowed, "sender", "sender is required"},
		{"sender too long", bridge.SendRequest{Sender: "ABCDEFGHIJKLM", Text: "hi"}, bridge.ReasonSenderNotAllowed, "sender", "alphanumeric only, max 12 characters"},
		{"sender with space", bridge.SendRequest{Sender: "My Brand", Text: "hi"}, bridge.ReasonSenderNotAllowed, "sender", "alphanumeric only, max 12 characters"},
		{"sender with plus", bridge.SendRequest{Sender: "+97250123456", Text: "hi"}, bridge.ReasonSenderNotAllowed, "sender", "alphanumeric only"},
		{"sender not ASCII", bridge.SendRequest{Sender: "מרפאה", Text: "hi"}, bridge.ReasonSenderNotAllowed, "sender", "alphanumeric only"},
		{"template sender override invalid", bridge.SendRequest{Template: "7", Sender: "My-Brand"}, bridge.ReasonSenderNotAllowed, "sender", "alphanumeric only"},
		{"text too long", bridge.SendRequest{Sender: "MindCRM", Text: strings.Repeat("ש", 501)}, bridge.ReasonTooLong, "text", "501 characters"},
		{"template text override too long", bridge.SendRequest{Template: "7", Text: strings.Repeat("a", 501)}, bridge.ReasonTooLong, "text", "at most 500"},
		{"raw empty text", bridge.SendRequest{Sender: "MindCRM"}, bridge.ReasonEmpty, "text", "empty"},
		{"raw blank text", bridge.SendRequest{Sender: "MindCRM", Text: " \n\t"}, bridge.ReasonEmpty, "text", "empty"},
		{"template not a number", bridge.SendRequest{Template: "welcome"}, bridge.ReasonTemplateUnknown, "template", "positive integer"},
		{"template zero", bridge.SendRequest{Template: "0"}, bridge.ReasonTemplateUnknown, "template", "positive integer"},
		{"template negative", bridge.SendRequest{Template: "-7"}, bridge.ReasonTemplateUnknown, "template", "positive integer"},
		{"template signed", bridge.SendRequest{Template: "+7"}, bridge.ReasonTemplateUnknown, "template", "positive integer"},
		{"template huge", bridge.SendRequest{Template: "99999999999999999999"}, bridge.ReasonTemplateUnknown, "template", "positive integer"},
		{"params", bridge.SendRequest{Template: "7", Params: map[string]string{"name": "Dana"}}, bridge.ReasonInvalid, "params", "take no parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.CheckRequest(&tt.req)
			var be *bridge.Error
			if !errors.As(err, &be) || be.Temp || be.Reason != tt.reason || be.Field != tt.field || !strings.Contains(be.Msg, tt.msg) {
				t.Errorf("CheckRequest = %#v, want permanent %q on field %q saying %q", err, tt.reason, tt.field, tt.msg)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	c := mindcrm.Config{BaseURL: "https://crm.example.com/"}
	if err := c.Validate(); err != nil || c.TimeZone != "Asia/Jerusalem" {
		t.Errorf("Validate() = %v, time_zone %q; want nil and the Asia/Jerusalem default", err, c.TimeZone)
	}

	tests := []struct {
		cfg  mindcrm.Config
		want []string // each problem's prefix, in order
	}{
		{mindcrm.Config{}, []string{"base_url: must be set"}},
		{mindcrm.Config{BaseURL: "crm.example.com"}, []string{"base_url: must be an absolute http or https URL"}},
		{mindcrm.Config{BaseURL: "ftp://crm.example.com"}, []string{"base_url: must be an absolute http or https URL"}},
		{mindcrm.Config{BaseURL: "https://"}, []string{"base_url: must be an absolute http or https URL"}},
		{mindcrm.Config{BaseURL: "https://crm.example.com/?x=1"}, []string{"base_url: must not have a query"}},
		{mindcrm.Config{BaseURL: "https://crm.example.com", TimeZone: "Mars/Olympus"}, []string{`time_zone: "Mars/Olympus" is not a known IANA time zone`}},
		{mindcrm.Config{BaseURL: "://", UserID: -1, RepositoryAssignID: -2, TimeZone: "Nowhere"}, []string{
			"base_url: must be an absolute http or https URL",
			"user_id: must not be negative",
			"repository_assign_id: must not be negative",
			"time_zone: ",
		}},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		var got []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			got = j.Unwrap()
		}
		if len(got) != len(tt.want) {
			t.Errorf("Validate(%+v) = %v, want %d problems", tt.cfg, err, len(tt.want))
			continue
		}
		for i, e := range got {
			if !strings.HasPrefix(e.Error(), tt.want[i]) {
				t.Errorf("Validate(%+v) problem %d = %q, want prefix %q", tt.cfg, i, e, tt.want[i])
			}
		}
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := &mindcrm.Config{BaseURL: "not a url"}
	if p, err := mindcrm.New("crm", cfg, nil, nil); err == nil || p != nil || !strings.Contains(err.Error(), "base_url") {
		t.Errorf("New = %v, %v; want an error naming base_url", p, err)
	}
	if cfg.TimeZone != "" {
		t.Errorf("New changed the caller's config: time_zone %q", cfg.TimeZone)
	}
	if _, err := mindcrm.New("crm", nil, nil, nil); err == nil {
		t.Error("New with a nil config succeeded")
	}
}

// A base_url with a path keeps it: some instances live under a directory.
func TestBaseURLWithPath(t *testing.T) {
	srv, lastPath := newRecorder(t)
	p, err := mindcrm.New("mindcrm", &mindcrm.Config{BaseURL: srv + "/crm/"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Send(t.Context(), &bridge.SendRequest{Template: "7", To: []string{"+972501234567"}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	if got := lastPath(); got != "/crm/api/send_sms.php" {
		t.Errorf("path = %q, want /crm/api/send_sms.php", got)
	}
}

// newRecorder serves documented successes on any path; it returns the
// server's URL and a function reporting the last path asked for.
func newRecorder(t *testing.T) (string, func() string) {
	t.Helper()
	var (
		mu   sync.Mutex
		path string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		path = r.URL.Path
		mu.Unlock()
		_, _ = w.Write([]byte(documented(0, "SMS sent successfully")))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() string {
		mu.Lock()
		defer mu.Unlock()
		return path
	}
}
