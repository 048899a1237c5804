package ippanel_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/providers/ippanel"
	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/providertest"
)

const (
	token   = "tok-9f8e7d6c-IPPANEL-SECRET-5b4a"
	number1 = "+983000505"
	number2 = "+985000125000"
	alice   = "+989120000000"
	bob     = "+989350000000"
	carol   = "+989190000000"
)

// logBuffer is a concurrency-safe sink for a JSON slog handler.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// levels returns the level of every record logged.
func (b *logBuffer) levels(t *testing.T) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var rec struct{ Level string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, rec.Level)
	}
	return out
}

type setup struct {
	fake *ippaneltest.Server
	p    *ippanel.Provider
	logs *logBuffer
}

// newSetup starts a fake that knows token, both numbers, pattern "p-otp"
// and phonebooks 123654 and 456987, and a provider pointed at it.
func newSetup(t *testing.T, edit ...func(*ippanel.Config)) setup {
	t.Helper()
	fake := ippaneltest.NewServer(t, token, number1, number2)
	fake.SetPatterns("p-otp")
	fake.SetPhonebooks("123654", "456987")
	cfg := &ippanel.Config{BaseURL: fake.URL, Token: token, Numbers: []string{number1, number2}}
	for _, e := range edit {
		e(cfg)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := ippanel.New("ippanel", cfg, &http.Client{Timeout: 5 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	return setup{fake: fake, p: p, logs: logs}
}

// jsonEqual fails unless got and want hold the same JSON value.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	decode := func(b []byte) any {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("invalid JSON %s: %v", b, err)
		}
		return v
	}
	if !reflect.DeepEqual(decode(got), decode([]byte(want))) {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func ids(rs []bridge.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ProviderID
	}
	return out
}

func id(n int64) string { return strconv.FormatInt(n, 10) }

// sendOK sends req, expecting every recipient accepted.
func sendOK(t *testing.T, s setup, req *bridge.SendRequest) []bridge.Result {
	t.Helper()
	res, err := s.p.Send(context.Background(), req)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(res) != len(req.To) {
		t.Fatalf("%d results for %d recipients", len(res), len(req.To))
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("result %d: %v", i, r.Err)
		}
	}
	return res
}

func TestSendBodies(t *testing.T) {
	tehran := time.FixedZone("IRST", 3*3600+1800)
	tests := []struct {
		name string
		req  bridge.SendRequest
		want []string // one body per call, in order
	}{{
		name: "webservice one recipient",
		req:  bridge.SendRequest{Sender: number1, Text: "متن پیام", To: []string{alice}},
		want: []string{`{"sending_type":"webservice","from_number":"+983000505","message":"متن پیام","params":{"recipients":["+989120000000"]}}`},
	}, {
		name: "webservice three recipients, default sender",
		req:  bridge.SendRequest{Text: "hello <&>", To: []string{alice, bob, carol}},
		want: []string{`{"sending_type":"webservice","from_number":"+983000505","message":"hello <&>","params":{"recipients":["+989120000000","+989350000000","+989190000000"]}}`},
	}, {
		name: "webservice scheduled, send_time in UTC",
		req: bridge.SendRequest{Sender: number2, Text: "later", To: []string{alice},
			SendAt: time.Date(2035, 3, 13, 0, 50, 2, 0, tehran)},
		want: []string{`{"sending_type":"webservice","from_number":"+985000125000","message":"later","params":{"recipients":["+989120000000"]},"send_time":"2035-03-12 21:20:02"}`},
	}, {
		name: "pattern with params",
		req:  bridge.SendRequest{Template: "p-otp", Params: map[string]string{"code": "متن جایگذاری", "n": "5"}, To: []string{alice}},
		want: []string{`{"sending_type":"pattern","from_number":"+983000505","code":"p-otp","recipients":["+989120000000"],"params":{"code":"متن جایگذاری","n":"5"}}`},
	}, {
		name: "pattern without params sends an empty object",
		req:  bridge.SendRequest{Template: "p-otp", To: []string{alice}},
		want: []string{`{"sending_type":"pattern","from_number":"+983000505","code":"p-otp","recipients":["+989120000000"],"params":{}}`},
	}, {
		name: "pattern with phonebook block from reserved params",
		req: bridge.SendRequest{Template: "p-otp", To: []string{alice}, Params: map[string]string{
			"code": "x", "phonebook.id": "1234", "phonebook.name": "سعید محمدی", "phonebook.pre": "mr",
			"phonebook.email": "saeed@gmail.com", "phonebook.options.456": "1970/01/01",
		}},
		want: []string{`{"sending_type":"pattern","from_number":"+983000505","code":"p-otp","recipients":["+989120000000"],"params":{"code":"x"},
			"phonebook":{"id":1234,"name":"سعید محمدی","pre":"mr","email":"saeed@gmail.com","options":{"456":"1970/01/01"}}}`},
	}, {
		name: "pattern with only a phonebook id",
		req:  bridge.SendRequest{Template: "p-otp", To: []string{alice}, Params: map[string]string{"phonebook.id": "77"}},
		want: []string{`{"sending_type":"pattern","from_number":"+983000505","code":"p-otp","recipients":["+989120000000"],"params":{},"phonebook":{"id":77}}`},
	}, {
		name: "pattern with three recipients makes three calls",
		req:  bridge.SendRequest{Template: "p-otp", Params: map[string]string{"code": "1"}, To: []string{alice, bob, carol}},
		want: []string{
			`{"sending_type":"pattern","from_number":"+983000505","code":"p-otp","recipients":["+989120000000"],"params":{"code":"1"}}`,
			`{"sending_type":"pattern","from_number":"+983000505","code":"p-otp","recipients":["+989350000000"],"params":{"code":"1"}}`,
			`{"sending_type":"pattern","from_number":"+983000505","code":"p-otp","recipients":["+989190000000"],"params":{"code":"1"}}`,
		},
	}, {
		name: "phonebook all",
		req:  bridge.SendRequest{Text: "تست", To: []string{"phonebook:123654"}},
		want: []string{`{"sending_type":"phonebook","from_number":"+983000505","message":"تست","params":[{"phonebook_ids":["123654"],"type":"all"}]}`},
	}, {
		name: "phonebook detail",
		req:  bridge.SendRequest{Text: "تست", To: []string{"phonebook:456987:123,456,789"}},
		want: []string{`{"sending_type":"phonebook","from_number":"+983000505","message":"تست","params":[{"phonebook_id":"456987","type":"detail","number_ids":["123","456","789"]}]}`},
	}, {
		name: "phonebook scheduled",
		req: bridge.SendRequest{Text: "تست", To: []string{"phonebook:123654"},
			SendAt: time.Date(2035, 1, 2, 3, 4, 5, 0, tehran)},
		want: []string{`{"sending_type":"phonebook","from_number":"+983000505","message":"تست","params":[{"phonebook_ids":["123654"],"type":"all"}],"send_time":"2035-01-01 23:34:05"}`},
	}, {
		name: "numbers and phonebooks: one call per phonebook, one for the numbers",
		req:  bridge.SendRequest{Text: "m", To: []string{alice, "phonebook:123654", bob, "phonebook:456987:1"}},
		want: []string{
			`{"sending_type":"phonebook","from_number":"+983000505","message":"m","params":[{"phonebook_ids":["123654"],"type":"all"}]}`,
			`{"sending_type":"phonebook","from_number":"+983000505","message":"m","params":[{"phonebook_id":"456987","type":"detail","number_ids":["1"]}]}`,
			`{"sending_type":"webservice","from_number":"+983000505","message":"m","params":{"recipients":["+989120000000","+989350000000"]}}`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			sendOK(t, s, &tt.req)
			got := s.fake.Requests()
			if len(got) != len(tt.want) {
				t.Fatalf("%d calls, want %d", len(got), len(tt.want))
			}
			for i, r := range got {
				jsonEqual(t, r.Raw, tt.want[i])
				if a := r.Header.Values("Authorization"); len(a) != 1 || a[0] != token {
					t.Errorf("Authorization = %q, want the token as is", a)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
			}
		})
	}
}

func TestSendProviderIDs(t *testing.T) {
	t.Run("one bulk id for a webservice call goes to every recipient", func(t *testing.T) {
		s := newSetup(t)
		res := sendOK(t, s, &bridge.SendRequest{Text: "x", To: []string{alice, bob, carol}})
		bulk := id(s.fake.Requests()[0].OutboxID)
		if want := []string{bulk, bulk, bulk}; !reflect.DeepEqual(ids(res), want) {
			t.Errorf("ids %v, want %v", ids(res), want)
		}
	})
	t.Run("pattern recipients get their own ids, in order", func(t *testing.T) {
		s := newSetup(t)
		res := sendOK(t, s, &bridge.SendRequest{Template: "p-otp", To: []string{alice, bob, carol}})
		var want []string
		for _, r := range s.fake.Requests() {
			want = append(want, id(r.OutboxID))
		}
		if !reflect.DeepEqual(ids(res), want) || want[0] == want[1] {
			t.Errorf("ids %v, want %v", ids(res), want)
		}
	})
	t.Run("one id per recipient is mapped in order", func(t *testing.T) {
		s := newSetup(t)
		s.fake.Faults.Push(providertest.Fault{Status: 200, Body: `{"data":{"message_outbox_ids":[11,12,13]},"meta":{"status":true,"message":"انجام شد","message_parameters":[],"message_code":"200-1"}}`})
		res := sendOK(t, s, &bridge.SendRequest{Text: "x", To: []string{alice, bob, carol}})
		if want := []string{"11", "12", "13"}; !reflect.DeepEqual(ids(res), want) {
			t.Errorf("ids %v, want %v", ids(res), want)
		}
	})
	t.Run("ids beyond 32 bits survive", func(t *testing.T) {
		s := newSetup(t)
		s.fake.Faults.Push(providertest.Fault{Status: 200, Body: `{"data":{"message_outbox_ids":[9007199254740993]},"meta":{"status":true}}`})
		res := sendOK(t, s, &bridge.SendRequest{Text: "x", To: []string{alice}})
		if res[0].ProviderID != "9007199254740993" {
			t.Errorf("id %q", res[0].ProviderID)
		}
	})
	t.Run("batch_size splits webservice calls", func(t *testing.T) {
		s := newSetup(t, func(c *ippanel.Config) { c.BatchSize = 2 })
		if s.p.MaxBatch() != 2 {
			t.Errorf("MaxBatch = %d", s.p.MaxBatch())
		}
		res := sendOK(t, s, &bridge.SendRequest{Text: "x", To: []string{alice, bob, carol}})
		reqs := s.fake.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d calls, want 2", len(reqs))
		}
		want := []string{id(reqs[0].OutboxID), id(reqs[0].OutboxID), id(reqs[1].OutboxID)}
		if !reflect.DeepEqual(ids(res), want) {
			t.Errorf("ids %v, want %v", ids(res), want)
		}
	})
}

func TestMaxBatchDefault(t *testing.T) {
	if got := newSetup(t).p.MaxBatch(); got != ippanel.DefaultBatchSize {
		t.Errorf("MaxBatch = %d, want %d", got, ippanel.DefaultBatchSize)
	}
}

const documented422 = `{"data":null,"meta":{"status":false,"message":"تکمیل گزینه پیام الزامی است","message_parameters":[],"message_code":"400-2","errors":{"message":["تکمیل گزینه پیام الزامی است"]}}}`

func TestSendFailures(t *testing.T) {
	type want struct {
		reason     bridge.Reason
		temp       bool
		retryAfter time.Duration
		contains   []string
	}
	tests := []struct {
		name   string
		faults []providertest.Fault
		token  string // the client's token when not the fake's
		from   string // a sender the client allows but the fake does not
		want   want
	}{{
		name:  "401 wrong token",
		token: "some-other-token",
		want:  want{reason: bridge.ReasonProviderAuth, contains: []string{"HTTP 401", "invalid or expired token", "400-1"}},
	}, {
		name: "422 from the fake: unknown from_number",
		from: "+989999999999",
		want: want{reason: bridge.ReasonProviderRejected, contains: []string{"HTTP 422", "from_number: from_number معتبر نیست", "message_code 400-2"}},
	}, {
		name:   "422 documented body",
		faults: []providertest.Fault{{Status: 422, Body: documented422}},
		want:   want{reason: bridge.ReasonProviderRejected, contains: []string{"message: تکمیل گزینه پیام الزامی است", "(message_code 400-2)"}},
	}, {
		name:   "422 errors as PHP's empty array falls back to meta.message",
		faults: []providertest.Fault{{Status: 422, Body: `{"data":null,"meta":{"status":false,"message":"خطا","message_code":"400-9","errors":[]}}`}},
		want:   want{reason: bridge.ReasonProviderRejected, contains: []string{"خطا (message_code 400-9)"}},
	}, {
		name:   "200 with meta.status false",
		faults: []providertest.Fault{{Status: 200, Body: `{"data":null,"meta":{"status":false,"message":"اعتبار کافی نیست","message_parameters":[],"message_code":"400-5"}}`}},
		want:   want{reason: bridge.ReasonProviderRejected, contains: []string{"rejected", "اعتبار کافی نیست", "400-5"}},
	}, {
		name:   "500",
		faults: []providertest.Fault{{Status: 500, Body: `{"data":null,"meta":{"status":false,"message":"server error","message_code":"500-1"}}`}},
		want:   want{reason: bridge.ReasonProviderDown, temp: true, contains: []string{"HTTP 500", "server error"}},
	}, {
		name:   "429 with Retry-After",
		faults: []providertest.Fault{{Status: 429, RetryAfter: 7 * time.Second}},
		want:   want{reason: bridge.ReasonProviderDown, temp: true, retryAfter: 7 * time.Second, contains: []string{"HTTP 429"}},
	}, {
		name:   "other 4xx is permanent",
		faults: []providertest.Fault{{Status: 400, Body: "bad"}},
		want:   want{reason: bridge.ReasonProviderRejected, contains: []string{"HTTP 400", "bad"}},
	}, {
		name:   "timeout",
		faults: []providertest.Fault{{Delay: time.Second, Status: 200}},
		want:   want{reason: bridge.ReasonProviderDown, temp: true, contains: []string{"timeout"}},
	}, {
		name:   "closed connection",
		faults: []providertest.Fault{{Close: true}},
		want:   want{reason: bridge.ReasonProviderDown, temp: true},
	}, {
		name:   "garbage 200 body",
		faults: []providertest.Fault{{Status: 200, Body: "<html>maintenance</html>"}},
		want:   want{reason: bridge.ReasonProviderDown, temp: true, contains: []string{"unexpected response", "maintenance"}},
	}, {
		name:   "200 success without ids",
		faults: []providertest.Fault{{Status: 200, Body: `{"data":{"message_outbox_ids":[]},"meta":{"status":true}}`}},
		want:   want{reason: bridge.ReasonProviderDown, temp: true},
	}, {
		name:   "200 without meta",
		faults: []providertest.Fault{{Status: 200, Body: `{"data":{"message_outbox_ids":[1]}}`}},
		want:   want{reason: bridge.ReasonProviderDown, temp: true},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			cfg := &ippanel.Config{BaseURL: s.fake.URL, Token: token, Numbers: []string{number1}}
			if tt.token != "" {
				cfg.Token = config.Secret(tt.token)
			}
			if tt.from != "" {
				cfg.Numbers = []string{tt.from}
			}
			// A short client timeout turns the Delay fault into a timeout.
			p, err := ippanel.New("ippanel", cfg, &http.Client{Timeout: 200 * time.Millisecond}, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.fake.Faults.Push(tt.faults...)
			res, err := p.Send(context.Background(), &bridge.SendRequest{Text: "x", To: []string{alice, bob}})
			if err == nil {
				t.Fatalf("Send succeeded: %+v", res)
			}
			var be *bridge.Error
			if !errors.As(err, &be) {
				t.Fatalf("error %T %v is not a *bridge.Error", err, err)
			}
			if be.Reason != tt.want.reason || be.Temporary() != tt.want.temp {
				t.Errorf("reason %q temporary %v, want %q %v (%v)", be.Reason, be.Temporary(), tt.want.reason, tt.want.temp, err)
			}
			if got := bridge.RetryAfterOf(err); got != tt.want.retryAfter {
				t.Errorf("RetryAfter %v, want %v", got, tt.want.retryAfter)
			}
			for _, c := range tt.want.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q lacks %q", err, c)
				}
			}
			if n := len(s.fake.Requests()); n != 0 {
				t.Errorf("fake accepted %d sends", n)
			}
		})
	}
}

func TestAuthFailureLoggedAsError(t *testing.T) {
	s := newSetup(t, func(c *ippanel.Config) { c.Token = "wrong" })
	if _, err := s.p.Send(context.Background(), &bridge.SendRequest{Text: "x", To: []string{alice}}); err == nil {
		t.Fatal("Send succeeded")
	}
	found := false
	for _, l := range s.logs.levels(t) {
		found = found || l == "ERROR"
	}
	if !found {
		t.Errorf("no ERROR record among %v", s.logs.levels(t))
	}
}

func TestPatternFailuresArePerRecipient(t *testing.T) {
	s := newSetup(t)
	s.fake.Faults.Push(providertest.Fault{}, providertest.Fault{Status: 503}) // the second call fails
	res, err := s.p.Send(context.Background(), &bridge.SendRequest{Template: "p-otp", To: []string{alice, bob, carol}})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res[0].Err != nil || res[2].Err != nil || res[0].ProviderID == "" || res[2].ProviderID == "" {
		t.Errorf("first and third should succeed: %+v", res)
	}
	if res[1].Err == nil || !bridge.IsTemporary(res[1].Err) || res[1].ProviderID != "" {
		t.Errorf("second should fail temporarily: %+v", res[1])
	}
	if n := len(s.fake.Requests()); n != 2 {
		t.Errorf("fake accepted %d sends, want 2", n)
	}
}

func TestPatternSingleFailureIsResultErr(t *testing.T) {
	s := newSetup(t)
	res, err := s.p.Send(context.Background(), &bridge.SendRequest{Template: "unknown-code", To: []string{alice}})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if bridge.ReasonOf(res[0].Err) != bridge.ReasonProviderRejected || !strings.Contains(res[0].Err.Error(), "code:") {
		t.Errorf("result error %v, want the fake's 422 on code", res[0].Err)
	}
}

func TestMultiCallFailuresArePerCall(t *testing.T) {
	s := newSetup(t)
	// Phonebook 999 is unknown to the fake: that call fails, the numbers go.
	res, err := s.p.Send(context.Background(), &bridge.SendRequest{Text: "x", To: []string{alice, "phonebook:999", bob}})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if bridge.ReasonOf(res[1].Err) != bridge.ReasonProviderRejected {
		t.Errorf("phonebook result: %+v", res[1])
	}
	if res[0].Err != nil || res[2].Err != nil || res[0].ProviderID != res[2].ProviderID || res[0].ProviderID == "" {
		t.Errorf("numbers should share one accepted call: %+v", res)
	}
}

func TestSendRefusesInvalidRequests(t *testing.T) {
	s := newSetup(t)
	for _, req := range []bridge.SendRequest{
		{Text: "x"},
		{Text: "x", To: []string{"972501234567"}},
		{Template: "p-otp", To: []string{"phonebook:123654"}},
		{Text: "x", Sender: "+981111111", To: []string{alice}},
	} {
		if _, err := s.p.Send(context.Background(), &req); err == nil || bridge.IsTemporary(err) {
			t.Errorf("Send(%+v) = %v, want a permanent error", req, err)
		}
	}
	if n := len(s.fake.Requests()); n != 0 {
		t.Errorf("fake accepted %d sends", n)
	}
}

func TestCheckRequest(t *testing.T) {
	s := newSetup(t)
	tests := []struct {
		name   string
		req    bridge.SendRequest
		reason bridge.Reason // "" = accepted
		field  string
	}{
		{"text", bridge.SendRequest{Text: "x"}, "", ""},
		{"second number", bridge.SendRequest{Text: "x", Sender: number2}, "", ""},
		{"pattern", bridge.SendRequest{Template: "p", Params: map[string]string{"a": "b", "phonebook.id": "3"}}, "", ""},
		{"scheduled text", bridge.SendRequest{Text: "x", SendAt: time.Now().Add(time.Hour)}, "", ""},
		{"foreign sender", bridge.SendRequest{Text: "x", Sender: "+981111111"}, bridge.ReasonSenderNotAllowed, "sender"},
		{"alphanumeric sender", bridge.SendRequest{Text: "x", Sender: "ACME"}, bridge.ReasonSenderNotAllowed, "sender"},
		{"no text", bridge.SendRequest{}, bridge.ReasonEmpty, "text"},
		{"blank text", bridge.SendRequest{Text: " \n"}, bridge.ReasonEmpty, "text"},
		{"pattern with text", bridge.SendRequest{Template: "p", Text: "x"}, bridge.ReasonInvalid, "text"},
		{"scheduled pattern", bridge.SendRequest{Template: "p", SendAt: time.Now().Add(time.Hour)}, bridge.ReasonInvalid, "send_at"},
		{"phonebook.id not a number", bridge.SendRequest{Template: "p", Params: map[string]string{"phonebook.id": "abc"}}, bridge.ReasonInvalid, "params"},
		{"phonebook fields without id", bridge.SendRequest{Template: "p", Params: map[string]string{"phonebook.name": "n"}}, bridge.ReasonInvalid, "params"},
		{"unknown phonebook key", bridge.SendRequest{Template: "p", Params: map[string]string{"phonebook.id": "1", "phonebook.nmae": "n"}}, bridge.ReasonInvalid, "params"},
		{"pattern to phonebook", bridge.SendRequest{Template: "p", To: []string{"phonebook:1"}}, bridge.ReasonInvalid, "to"},
		{"bad recipient", bridge.SendRequest{Text: "x", To: []string{"0501234567"}}, bridge.ReasonNoRoute, "to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.p.CheckRequest(&tt.req)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var be *bridge.Error
			if !errors.As(err, &be) || be.Reason != tt.reason || be.Field != tt.field || be.Temporary() {
				t.Errorf("got %#v, want permanent %q on %q", err, tt.reason, tt.field)
			}
		})
	}
	err := s.p.CheckRequest(&bridge.SendRequest{Template: "p", Text: "x"})
	if err == nil || err.Error() != "IPPanel patterns take parameters, not text" {
		t.Errorf("pattern with text: %v", err)
	}
}

func TestCheckRecipient(t *testing.T) {
	s := newSetup(t)
	for to, ok := range map[string]bool{
		alice: true, "+12025550123": true, "phonebook:123": true, "phonebook:123:4,5": true,
		"989120000000": false, "+0912": false, "+98912abc": false, "": false, "+": false,
		"phonebook:": false, "phonebook:1:": false, "+1234567890123456": false, "alice@example.com": false,
	} {
		err := s.p.CheckRecipient(to)
		if ok != (err == nil) {
			t.Errorf("CheckRecipient(%q) = %v, want ok=%v", to, err, ok)
		}
		if err != nil && (bridge.ReasonOf(err) != bridge.ReasonNoRoute || bridge.IsTemporary(err)) {
			t.Errorf("CheckRecipient(%q) = %#v, want permanent no_route", to, err)
		}
		var be *bridge.Error
		if errors.As(err, &be) && be.Field != "to" {
			t.Errorf("field %q", be.Field)
		}
	}
}

func TestCancel(t *testing.T) {
	s := newSetup(t)
	res := sendOK(t, s, &bridge.SendRequest{Text: "x", To: []string{alice}, SendAt: time.Now().Add(time.Hour)})
	if err := s.p.Cancel(context.Background(), res[0].ProviderID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if got := s.fake.Cancelled(); len(got) != 1 || id(got[0]) != res[0].ProviderID {
		t.Errorf("fake cancelled %v, want [%s]", got, res[0].ProviderID)
	}

	t.Run("unknown id is not_found", func(t *testing.T) {
		err := s.p.Cancel(context.Background(), "123")
		if bridge.ReasonOf(err) != bridge.ReasonNotFound || bridge.IsTemporary(err) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("already cancelled is rejected", func(t *testing.T) {
		err := s.p.Cancel(context.Background(), res[0].ProviderID)
		if bridge.ReasonOf(err) != bridge.ReasonProviderRejected || bridge.IsTemporary(err) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("meta.status false is rejected", func(t *testing.T) {
		s.fake.Faults.Push(providertest.Fault{Status: 200, Body: `{"data":null,"meta":{"status":false,"message":"no","message_code":"400-7"}}`})
		err := s.p.Cancel(context.Background(), res[0].ProviderID)
		if bridge.ReasonOf(err) != bridge.ReasonProviderRejected || !strings.Contains(err.Error(), "400-7") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("5xx is temporary", func(t *testing.T) {
		s.fake.Faults.Push(providertest.Fault{Status: 502})
		if err := s.p.Cancel(context.Background(), res[0].ProviderID); !bridge.IsTemporary(err) || err == nil {
			t.Errorf("got %v", err)
		}
	})
	t.Run("not an outbox id", func(t *testing.T) {
		for _, bad := range []string{"", "abc", "-4", "0"} {
			if err := s.p.Cancel(context.Background(), bad); bridge.ReasonOf(err) != bridge.ReasonInvalid {
				t.Errorf("Cancel(%q) = %v", bad, err)
			}
		}
	})
	if got := s.fake.Cancelled(); len(got) != 1 {
		t.Errorf("fake cancelled %v after the failures", got)
	}
}

func TestCancelAuth(t *testing.T) {
	s := newSetup(t, func(c *ippanel.Config) { c.Token = "wrong" })
	if err := s.p.Cancel(context.Background(), "3000000000"); bridge.ReasonOf(err) != bridge.ReasonProviderAuth {
		t.Errorf("got %v", err)
	}
}

func TestContextCancelled(t *testing.T) {
	s := newSetup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.p.Send(ctx, &bridge.SendRequest{Text: "x", To: []string{alice}})
	if err == nil || !bridge.IsTemporary(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
}

// TestSecretNeverLeaks drives the token through success and every failure
// path, with provider bodies that echo it, and looks for it in every error
// and every Debug log record.
func TestSecretNeverLeaks(t *testing.T) {
	s := newSetup(t)
	echo := func(status int, body string) providertest.Fault {
		return providertest.Fault{Status: status, Body: strings.ReplaceAll(body, "TOKEN", token)}
	}
	faults := []providertest.Fault{
		echo(401, `{"data":null,"meta":{"status":false,"message":"bad TOKEN","message_code":"TOKEN","errors":{}}}`),
		echo(422, `{"data":null,"meta":{"status":false,"message":"TOKEN","message_code":"400-2","errors":{"authorization":["TOKEN is wrong"],"TOKEN":"x"}}}`),
		echo(422, `not json TOKEN`),
		echo(200, `{"data":null,"meta":{"status":false,"message":"token TOKEN refused","message_code":"400-1"}}`),
		echo(200, `<html>TOKEN</html>`),
		echo(200, `{"data":{"message_outbox_ids":"TOKEN"},"meta":{"status":true}}`),
		echo(500, `{"data":null,"meta":{"status":false,"message":"TOKEN","message_code":"500"}}`),
		echo(503, `upstream TOKEN`),
		echo(429, `TOKEN`),
		echo(404, `TOKEN`),
		{Close: true},
	}
	var errs []error
	collect := func(res []bridge.Result, err error) {
		errs = append(errs, err)
		for _, r := range res {
			errs = append(errs, r.Err)
		}
	}
	collect(s.p.Send(context.Background(), &bridge.SendRequest{Text: "ok", To: []string{alice}}))
	for _, f := range faults {
		s.fake.Faults.Push(f)
		collect(s.p.Send(context.Background(), &bridge.SendRequest{Text: "x", To: []string{alice, bob}}))
		s.fake.Faults.Push(f)
		collect(s.p.Send(context.Background(), &bridge.SendRequest{Template: "p-otp", To: []string{alice}}))
		s.fake.Faults.Push(f)
		errs = append(errs, s.p.Cancel(context.Background(), "3000000000"))
	}
	// And the fake's own refusals.
	errs = append(errs, s.p.Cancel(context.Background(), "1"))
	collect(s.p.Send(context.Background(), &bridge.SendRequest{Template: "nope", To: []string{alice}}))
	bad := newSetup(t, func(c *ippanel.Config) { c.Token = token + "x" })
	collect(bad.p.Send(context.Background(), &bridge.SendRequest{Text: "x", To: []string{alice}}))

	failures := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		failures++
		if strings.Contains(err.Error(), token) || strings.Contains(fmtAll(err), token) {
			t.Errorf("error leaks the token: %v", err)
		}
	}
	if failures < 3*len(faults) {
		t.Errorf("only %d failures; the faults did not all apply", failures)
	}
	for _, logs := range []string{s.logs.String(), bad.logs.String()} {
		if !strings.Contains(logs, `"level":"DEBUG"`) {
			t.Error("nothing logged at Debug: the test proves nothing")
		}
		if strings.Contains(logs, token) {
			t.Errorf("log leaks the token:\n%s", logs)
		}
	}
}

// fmtAll renders err and every error it wraps.
func fmtAll(err error) string {
	var b strings.Builder
	for e := err; e != nil; e = errors.Unwrap(e) {
		b.WriteString(e.Error())
		b.WriteString("\n")
	}
	return b.String()
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("defaults", func(t *testing.T) {
		c := ippanel.Config{Token: "t", Numbers: []string{number1}}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if c.BaseURL != ippanel.DefaultBaseURL || c.BatchSize != ippanel.DefaultBatchSize {
			t.Errorf("defaults not applied: %+v", c)
		}
	})

	t.Run("token_file is read and sent", func(t *testing.T) {
		fake := ippaneltest.NewServer(t, "from-file", number1)
		c := &ippanel.Config{BaseURL: fake.URL + "/", TokenFile: tokenFile, Numbers: []string{number1}}
		if err := c.Validate(); err != nil { // the loader validates, then New again
			t.Fatal(err)
		}
		p, err := ippanel.New("ippanel", c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Send(context.Background(), &bridge.SendRequest{Text: "x", To: []string{alice}}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got := fake.Requests()[0].Header.Get("Authorization"); got != "from-file" {
			t.Errorf("Authorization %q", got)
		}
	})

	tests := []struct {
		name string
		cfg  ippanel.Config
		want []string // each problem's start
	}{
		{"token and token_file", ippanel.Config{Token: "t", TokenFile: tokenFile, Numbers: []string{number1}},
			[]string{"token and token_file: set only one"}},
		{"missing token_file", ippanel.Config{TokenFile: filepath.Join(dir, "nope"), Numbers: []string{number1}},
			[]string{"token_file: "}},
		{"empty token_file", ippanel.Config{TokenFile: emptyFile, Numbers: []string{number1}},
			[]string{"token_file: "}},
		{"no token", ippanel.Config{Numbers: []string{number1}}, []string{"token: "}},
		{"token with newline", ippanel.Config{Token: "a\nb", Numbers: []string{number1}}, []string{"token: "}},
		{"everything wrong at once",
			ippanel.Config{BaseURL: "edge.ippanel.com/v1", BatchSize: -1, Numbers: []string{number1, "3000505", "+98 300"}},
			[]string{"base_url: ", "token: ", "numbers[1]: ", "numbers[2]: ", "batch_size: "}},
		{"no numbers", ippanel.Config{Token: "t"}, []string{"numbers: "}},
		{"base_url with query", ippanel.Config{BaseURL: "https://edge.ippanel.com/v1?x=1", Token: "t", Numbers: []string{number1}},
			[]string{"base_url: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			var got []string
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					got = append(got, e.Error())
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q, want %d starting %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %q does not start with %q", got[i], tt.want[i])
				}
				if strings.Contains(got[i], "from-file") || strings.Contains(got[i], "a\nb") {
					t.Errorf("problem %q shows the secret", got[i])
				}
			}
			if _, err := ippanel.New("x", &tt.cfg, nil, nil); err == nil {
				t.Error("New accepted an invalid configuration")
			}
		})
	}
	if _, err := ippanel.New("x", nil, nil, nil); err == nil {
		t.Error("New accepted a nil configuration")
	}
}
