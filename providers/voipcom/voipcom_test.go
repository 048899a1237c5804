package voipcom

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/providers/providertest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

const (
	testKey      = "key-test"
	testPassword = "pw-test"
	ourNumber    = "17134567890"
	us           = "+12812345678"
	il           = "+972501234567"
	uk           = "+447700900123"
)

// newTest returns a provider pointed at a fake of the same account.
// edit, if not nil, changes the configuration before New.
func newTest(t *testing.T, edit func(*Config)) (*Provider, *voipcomtest.Server) {
	t.Helper()
	f := voipcomtest.NewServer(t, testKey, testPassword, ourNumber)
	cfg := &Config{
		BaseURL:     f.URL,
		APIKey:      testKey,
		APIPassword: testPassword,
		Numbers:     []string{"+1 (713) 456-7890"},
	}
	if edit != nil {
		edit(cfg)
	}
	p, err := New("voip", cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p, f
}

// onlyRequest returns the one request the fake accepted.
func onlyRequest(t *testing.T, f *voipcomtest.Server) voipcomtest.Request {
	t.Helper()
	reqs := f.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake accepted %d requests, want 1", len(reqs))
	}
	return reqs[0]
}

// wantRequest checks everything about the call but the form.
func wantRequest(t *testing.T, r voipcomtest.Request, form url.Values) {
	t.Helper()
	if r.Method != http.MethodPost || r.Path != "/api-v2/index.php/sms/send" {
		t.Errorf("request %s %s, want POST /api-v2/index.php/sms/send", r.Method, r.Path)
	}
	if got := r.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", got)
	}
	if got, want := r.Header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte(testKey+":"+testPassword)); got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
	if !reflect.DeepEqual(r.Form, form) {
		t.Errorf("form %v, want %v", r.Form, form)
	}
}

func wantOK(t *testing.T, res []bridge.Result, err error, n int) {
	t.Helper()
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(res) != n {
		t.Fatalf("%d results, want %d", len(res), n)
	}
	for i, r := range res {
		if r.Err != nil || r.ProviderID == "" {
			t.Errorf("result %d = %+v, want success with an id", i, r)
		}
	}
}

func TestSendBulk(t *testing.T) {
	p, f := newTest(t, nil)
	res, err := p.Send(t.Context(), &bridge.SendRequest{MessageID: "m1", Text: "Hello & good-bye, 100%", To: []string{us}})
	wantOK(t, res, err, 1)
	want := map[string]string{"status": "SENT", "sale": "0.01", "country": "US", "type": "BULKSMS"}
	if !maps.Equal(res[0].Info, want) {
		t.Errorf("Info %v, want %v", res[0].Info, want)
	}
	wantRequest(t, onlyRequest(t, f), url.Values{"to": {"12812345678"}, "msg": {"Hello & good-bye, 100%"}})
}

func TestSendTwoWay(t *testing.T) {
	for _, sender := range []string{"+1 713 456 7890", ourNumber, "+17134567890"} {
		t.Run(sender, func(t *testing.T) {
			p, f := newTest(t, nil)
			res, err := p.Send(t.Context(), &bridge.SendRequest{Sender: sender, Text: "hi", To: []string{us}})
			wantOK(t, res, err, 1)
			if res[0].Info["type"] != "2WAYSMS" {
				t.Errorf("type %q, want 2WAYSMS", res[0].Info["type"])
			}
			wantRequest(t, onlyRequest(t, f), url.Values{"to": {"12812345678"}, "msg": {"hi"}, "from": {ourNumber}})
		})
	}
}

func TestSendThreeRecipients(t *testing.T) {
	p, f := newTest(t, nil)
	res, err := p.Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{us, il, uk}})
	wantOK(t, res, err, 3)
	// The fake names each number's country, which shows each result
	// belongs to its own recipient.
	for i, c := range []string{"US", "IL", ""} {
		if res[i].Info["country"] != c {
			t.Errorf("result %d country %q, want %q", i, res[i].Info["country"], c)
		}
	}
	if res[0].ProviderID == res[1].ProviderID || res[1].ProviderID == res[2].ProviderID {
		t.Errorf("provider ids not distinct: %+v", res)
	}
	wantRequest(t, onlyRequest(t, f), url.Values{"to": {"12812345678,972501234567,447700900123"}, "msg": {"hi"}})
}

func TestMaxBatch(t *testing.T) {
	p, _ := newTest(t, nil)
	if got := p.MaxBatch(); got != DefaultBatchSize {
		t.Errorf("default MaxBatch %d, want %d", got, DefaultBatchSize)
	}
	p, _ = newTest(t, func(c *Config) { c.BatchSize = 5 })
	if got := p.MaxBatch(); got != 5 {
		t.Errorf("MaxBatch %d, want 5", got)
	}
}

func TestSendScheduled(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, zone string
		at         time.Time
		want       string // delivery_date; "" for none
	}{
		{"winter", "America/New_York", time.Date(2030, 1, 15, 17, 30, 0, 0, time.UTC), "2030-01-15 12:30"},
		{"summer", "America/New_York", time.Date(2030, 7, 15, 17, 30, 0, 0, time.UTC), "2030-07-15 13:30"},
		{"default zone", "", time.Date(2030, 7, 15, 17, 30, 0, 0, time.FixedZone("+03", 3*3600)), "2030-07-15 14:30"},
		{"seconds round up", "UTC", time.Date(2030, 1, 15, 23, 59, 1, 0, time.UTC), "2030-01-16 00:00"},
		{"past", "UTC", now.Add(-time.Hour), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, f := newTest(t, func(c *Config) { c.TimeZone = tc.zone })
			p.now = func() time.Time { return now }
			res, err := p.Send(t.Context(), &bridge.SendRequest{Text: "later", SendAt: tc.at, To: []string{us}})
			wantOK(t, res, err, 1)
			form := url.Values{"to": {"12812345678"}, "msg": {"later"}}
			status := "SENT"
			if tc.want != "" {
				form.Set("delivery_date", tc.want)
				status = "SCHEDULED"
			}
			wantRequest(t, onlyRequest(t, f), form)
			if res[0].Info["status"] != status {
				t.Errorf("status %q, want %q", res[0].Info["status"], status)
			}
		})
	}
}

func TestSendRecipientFails(t *testing.T) {
	p, f := newTest(t, nil)
	f.FailRecipient("972501234567", 400, "invalid number")
	res, err := p.Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{us, il, uk}})
	if err != nil || len(res) != 3 {
		t.Fatalf("Send = %d results, %v", len(res), err)
	}
	if res[0].Err != nil || res[2].Err != nil || res[0].ProviderID == "" || res[2].ProviderID == "" {
		t.Errorf("others should succeed: %+v", res)
	}
	e := res[1].Err
	if bridge.ReasonOf(e) != bridge.ReasonProviderRejected || bridge.IsTemporary(e) ||
		!strings.Contains(e.Error(), "400") || !strings.Contains(e.Error(), "invalid number") {
		t.Errorf("failed recipient: %v (reason %q, temporary %v)", e, bridge.ReasonOf(e), bridge.IsTemporary(e))
	}
}

func TestSendMissingEntry(t *testing.T) {
	p, f := newTest(t, nil)
	f.DropRecipient("972501234567")
	res, err := p.Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{us, il, uk}})
	if err != nil || len(res) != 3 {
		t.Fatalf("Send = %d results, %v", len(res), err)
	}
	if res[0].Err != nil || res[2].Err != nil {
		t.Errorf("others should succeed: %+v", res)
	}
	if e := res[1].Err; e == nil || !bridge.IsTemporary(e) {
		t.Errorf("recipient without entry: %v, want a temporary error", e)
	}
}

// TestSendLogMatching drives the mapping with hand-written answers: order,
// number and string types the document does not promise.
func TestSendLogMatching(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		ids  []string // per recipient: provider id, "temp" or "perm"
	}{
		{"by to, not position", `{"send_log":[
			{"code":200,"to":"447700900123","smsid":"c"},
			{"code":200,"to":"12812345678","smsid":"a"},
			{"code":200,"to":"972501234567","smsid":"b"}]}`, []string{"a", "b", "c"}},
		{"strings for numbers, + in to", `{"send_log":[
			{"code":"200","to":"+12812345678","smsid":"a","sale":"0.02"},
			{"code":"400","code_desc":"nope","to":"972501234567"},
			{"code":200.0,"to":"447700900123","smsid":7}]}`, []string{"a", "perm", "7"}},
		{"position when to is missing", `{"send_log":[
			{"code":200,"smsid":"a"},{"code":200,"smsid":"b"},{"code":200,"smsid":"c"}]}`, []string{"a", "b", "c"}},
		{"no position when counts differ", `{"send_log":[
			{"code":200,"smsid":"a"},{"code":200,"smsid":"b"}]}`, []string{"temp", "temp", "temp"}},
		{"stranger's entry ignored", `{"send_log":[
			{"code":200,"to":"15550000000","smsid":"x"},{"code":200,"to":"12812345678","smsid":"a"}]}`, []string{"a", "temp", "temp"}},
		{"empty log", `{"send_log":[]}`, []string{"temp", "temp", "temp"}},
		{"code missing", `{"send_log":[
			{"to":"12812345678","smsid":"a"},{"code":"OK","to":"972501234567"},{"code":200,"to":"447700900123","smsid":"c"}]}`, []string{"temp", "temp", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, f := newTest(t, nil)
			f.Faults.Push(providertest.Fault{Status: 200, Body: tc.body})
			res, err := p.Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{us, il, uk}})
			if err != nil || len(res) != 3 {
				t.Fatalf("Send = %d results, %v", len(res), err)
			}
			for i, want := range tc.ids {
				r := res[i]
				var got string
				switch {
				case r.Err == nil:
					got = r.ProviderID
				case bridge.IsTemporary(r.Err):
					got = "temp"
				default:
					got = "perm"
				}
				if got != want {
					t.Errorf("recipient %d: %q (%v), want %q", i, got, r.Err, want)
				}
			}
		})
	}
}

func TestSendSkipsUnroutable(t *testing.T) {
	p, f := newTest(t, nil)
	res, err := p.Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{"phonebook:7", us, "0501234567"}})
	if err != nil || len(res) != 3 {
		t.Fatalf("Send = %d results, %v", len(res), err)
	}
	if bridge.ReasonOf(res[0].Err) != bridge.ReasonNoRoute || bridge.ReasonOf(res[2].Err) != bridge.ReasonBadNumber || res[1].Err != nil {
		t.Errorf("results %+v", res)
	}
	if got := onlyRequest(t, f).To; !slices.Equal(got, []string{"12812345678"}) {
		t.Errorf("sent to %v", got)
	}

	// Nothing routable: no call at all.
	res, err = p.Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{"phonebook:7"}})
	if err != nil || len(res) != 1 || res[0].Err == nil || len(f.Requests()) != 1 {
		t.Errorf("Send = %+v, %v; %d calls", res, err, len(f.Requests()))
	}
}

// levels records the level of every log record.
type levels struct {
	mu   sync.Mutex
	seen []slog.Level
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *levels) WithGroup(string) slog.Handler            { return l }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, r.Level)
	return nil
}

func TestSendBadCredentials(t *testing.T) {
	f := voipcomtest.NewServer(t, testKey, "the-right-one")
	var lv levels
	p, err := New("voip", &Config{BaseURL: f.URL, APIKey: testKey, APIPassword: testPassword}, nil, slog.New(&lv))
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{us, il}})
	if res != nil || bridge.ReasonOf(err) != bridge.ReasonProviderAuth || bridge.IsTemporary(err) {
		t.Errorf("Send = %v, %v (reason %q); want a permanent %s error for the batch", res, err, bridge.ReasonOf(err), bridge.ReasonProviderAuth)
	}
	if !slices.Contains(lv.seen, slog.LevelError) {
		t.Errorf("log levels %v: want an Error record", lv.seen)
	}
}

func TestSendHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fault      providertest.Fault
		reason     bridge.Reason
		temp       bool
		retryAfter time.Duration
		detail     string // must appear in the error
	}{
		{"500", providertest.Fault{Status: 500, Body: `{"error": true, "error_message": "database is down"}`},
			bridge.ReasonProviderDown, true, 0, "database is down"},
		{"503 Retry-After", providertest.Fault{Status: 503, RetryAfter: 30 * time.Second},
			bridge.ReasonProviderDown, true, 30 * time.Second, "503"},
		{"429 Retry-After", providertest.Fault{Status: 429, RetryAfter: 7 * time.Second, Body: `{"error": true, "error_message": "Too many requests"}`},
			bridge.ReasonProviderDown, true, 7 * time.Second, "Too many requests"},
		{"502 HTML", providertest.Fault{Status: 502, Body: "<html>Bad Gateway</html>"},
			bridge.ReasonProviderDown, true, 0, "Bad Gateway"},
		{"400", providertest.Fault{Status: 400, Body: `{"error": true, "error_message": "Invalid parameters"}`},
			bridge.ReasonProviderRejected, false, 0, "Invalid parameters"},
		{"403", providertest.Fault{Status: 403, Body: `{"error": true, "error_message": "Account suspended"}`},
			bridge.ReasonProviderAuth, false, 0, "Account suspended"},
		{"200 garbage", providertest.Fault{Status: 200, Body: "<html>maintenance</html>"},
			bridge.ReasonProviderDown, true, 0, "maintenance"},
		{"200 error shape", providertest.Fault{Status: 200, Body: `{"error": true, "error_message": "Insufficient balance"}`},
			bridge.ReasonProviderDown, true, 0, "Insufficient balance"},
		{"200 null send_log", providertest.Fault{Status: 200, Body: `{"send_log": null}`},
			bridge.ReasonProviderDown, true, 0, ""},
		{"200 send_log not a list", providertest.Fault{Status: 200, Body: `{"send_log": {"code": 200}}`},
			bridge.ReasonProviderDown, true, 0, ""},
		{"connection closed", providertest.Fault{Close: true},
			bridge.ReasonProviderDown, true, 0, "network error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, f := newTest(t, nil)
			f.Faults.Push(tc.fault)
			res, err := p.Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{us, il}})
			if res != nil || err == nil {
				t.Fatalf("Send = %v, %v; want a batch error", res, err)
			}
			if bridge.ReasonOf(err) != tc.reason || bridge.IsTemporary(err) != tc.temp || bridge.RetryAfterOf(err) != tc.retryAfter {
				t.Errorf("%v: reason %q temporary %v retry after %v; want %q %v %v", err,
					bridge.ReasonOf(err), bridge.IsTemporary(err), bridge.RetryAfterOf(err), tc.reason, tc.temp, tc.retryAfter)
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("%q does not mention %q", err, tc.detail)
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	p, f := newTest(t, nil)
	f.Faults.Push(providertest.Fault{Delay: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	res, err := p.Send(ctx, &bridge.SendRequest{Text: "hi", To: []string{us}})
	if res != nil || !bridge.IsTemporary(err) || bridge.ReasonOf(err) != bridge.ReasonProviderDown || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("Send = %v, %v; want a temporary timeout", res, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v does not wrap context.DeadlineExceeded", err)
	}
}

func TestCheckRequest(t *testing.T) {
	p, _ := newTest(t, nil)
	bulkOnly, _ := newTest(t, func(c *Config) { c.Numbers = nil })
	for _, tc := range []struct {
		name   string
		p      *Provider
		req    bridge.SendRequest
		reason bridge.Reason // "" for accepted
		field  string
	}{
		{"bulk", p, bridge.SendRequest{Text: "hi"}, "", ""},
		{"our number, spaced", p, bridge.SendRequest{Sender: "+1 713 456 7890", Text: "hi"}, "", ""},
		{"our number, digits", p, bridge.SendRequest{Sender: ourNumber, Text: "hi"}, "", ""},
		{"other number", p, bridge.SendRequest{Sender: "+1 713 456 7891", Text: "hi"}, bridge.ReasonSenderNotAllowed, "sender"},
		{"alphanumeric", p, bridge.SendRequest{Sender: "ACME", Text: "hi"}, bridge.ReasonSenderNotAllowed, "sender"},
		{"no numbers configured", bulkOnly, bridge.SendRequest{Sender: ourNumber, Text: "hi"}, bridge.ReasonSenderNotAllowed, "sender"},
		{"template", p, bridge.SendRequest{Template: "welcome"}, bridge.ReasonTemplateUnknown, "template"},
		{"params", p, bridge.SendRequest{Text: "hi", Params: map[string]string{"a": "b"}}, bridge.ReasonTemplateUnknown, "template"},
		{"empty", p, bridge.SendRequest{}, bridge.ReasonEmpty, "text"},
		{"blank", p, bridge.SendRequest{Text: " \n\t"}, bridge.ReasonEmpty, "text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.CheckRequest(&tc.req)
			checkRefusal(t, err, tc.reason, tc.field)
		})
	}
	// The refusal names the numbers that may be used.
	if err := p.CheckRequest(&bridge.SendRequest{Sender: "ACME", Text: "hi"}); err == nil || !strings.Contains(err.Error(), ourNumber) {
		t.Errorf("%v does not name %s", err, ourNumber)
	}
}

func TestCheckRecipient(t *testing.T) {
	p, _ := newTest(t, nil)
	for _, tc := range []struct {
		to     string
		reason bridge.Reason
	}{
		{us, ""},
		{il, ""},
		{"phonebook:12", bridge.ReasonNoRoute},
		{"phonebook:12:3,4", bridge.ReasonNoRoute},
		{"12812345678", bridge.ReasonBadNumber},
		{"+1 281 234 5678", bridge.ReasonBadNumber},
		{"+0123456789", bridge.ReasonBadNumber},
		{"+1234567890123456", bridge.ReasonBadNumber},
		{"", bridge.ReasonBadNumber},
	} {
		t.Run(tc.to, func(t *testing.T) {
			checkRefusal(t, p.CheckRecipient(tc.to), tc.reason, "to")
		})
	}
}

func checkRefusal(t *testing.T, err error, reason bridge.Reason, field string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Errorf("refused: %v", err)
		}
		return
	}
	var be *bridge.Error
	if !errors.As(err, &be) || be.Reason != reason || be.Field != field || be.Temp {
		t.Errorf("got %#v, want a permanent %s error on %q", err, reason, field)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("  "+testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("defaults", func(t *testing.T) {
		c := Config{APIKey: "k", APIPassword: "p"}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if c.BaseURL != DefaultBaseURL || c.BatchSize != DefaultBatchSize || c.TimeZone != "UTC" {
			t.Errorf("defaults not filled: %+v", c)
		}
	})

	for _, tc := range []struct {
		name string
		cfg  Config
		keys []string // the keys named by the errors, in order
	}{
		{"everything wrong", Config{BaseURL: "ftp://example.com", Numbers: []string{"+1 713 456 7890", "call me"},
			BatchSize: -1, TimeZone: "Mars/Olympus_Mons"},
			[]string{"base_url", "api_key", "api_password", "numbers[1]", "batch_size", "time_zone"}},
		{"relative url", Config{BaseURL: "voip-communications.net/api-v2", APIKey: "k", APIPassword: "p"}, []string{"base_url"}},
		{"credentials in url", Config{BaseURL: "https://u:p@example.com/api", APIKey: "k", APIPassword: "p"}, []string{"base_url"}},
		{"colon in key", Config{APIKey: "a:b", APIPassword: "p"}, []string{"api_key"}},
		{"both password and file", Config{APIKey: "k", APIPassword: "p", APIPasswordFile: pwFile}, []string{"api_password and api_password_file"}},
		{"missing file", Config{APIKey: "k", APIPasswordFile: filepath.Join(dir, "nope")}, []string{"api_password_file"}},
		{"empty file", Config{APIKey: "k", APIPasswordFile: empty}, []string{"api_password_file"}},
		{"short number", Config{APIKey: "k", APIPassword: "p", Numbers: []string{"123"}}, []string{"numbers[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.keys) {
				t.Fatalf("%d errors, want %d: %v", len(lines), len(tc.keys), err)
			}
			for i, k := range tc.keys {
				if !strings.HasPrefix(lines[i], k+":") && !strings.HasPrefix(lines[i], k+" ") {
					t.Errorf("error %d %q does not start with %q", i, lines[i], k)
				}
			}
		})
	}

	t.Run("password file", func(t *testing.T) {
		f := voipcomtest.NewServer(t, testKey, testPassword)
		cfg := &Config{BaseURL: f.URL + "/", APIKey: testKey, APIPasswordFile: pwFile}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		p, err := New("voip", cfg, nil, nil) // validates again
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{us}})
		wantOK(t, res, err, 1)
		wantRequest(t, onlyRequest(t, f), url.Values{"to": {"12812345678"}, "msg": {"hi"}})
	})

	t.Run("New refuses a bad config", func(t *testing.T) {
		if p, err := New("voip", &Config{}, nil, nil); p != nil || err == nil {
			t.Errorf("New = %v, %v", p, err)
		}
	})
}

// TestSecretsNeverLeak runs distinctive credentials through every path,
// including a provider that echoes them back, and looks for them in every
// error and log line.
func TestSecretsNeverLeak(t *testing.T) {
	const key, pw = "KEY-q7Zx3vLm9", "PW-Hj4tR8sW2n"
	basic := base64.StdEncoding.EncodeToString([]byte(key + ":" + pw))
	echo := `{"error": true, "error_message": "user ` + key + ` pass ` + pw + ` auth Basic ` + basic + `"}`

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := voipcomtest.NewServer(t, key, pw, ourNumber)
	cfg := &Config{BaseURL: f.URL, APIKey: key, APIPassword: config.Secret(pw), Numbers: []string{ourNumber}}
	p, err := New("voip", cfg, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	wrong := voipcomtest.NewServer(t, key, "another")
	pWrong, err := New("voip", &Config{BaseURL: wrong.URL, APIKey: key, APIPassword: config.Secret(pw)}, nil, log)
	if err != nil {
		t.Fatal(err)
	}

	var texts []string
	collect := func(res []bridge.Result, err error) {
		if err != nil {
			texts = append(texts, err.Error())
		}
		for _, r := range res {
			if r.Err != nil {
				texts = append(texts, r.Err.Error())
			}
			for _, v := range r.Info {
				texts = append(texts, v)
			}
		}
	}
	send := func(p *Provider, req bridge.SendRequest) { collect(p.Send(t.Context(), &req)) }
	req := bridge.SendRequest{Text: "hi", Sender: ourNumber, To: []string{us, il}}

	send(p, req)
	f.FailRecipient("972501234567", 400, "bad "+pw)
	send(p, req)
	send(pWrong, req)
	for _, fault := range []providertest.Fault{
		{Status: 500, Body: echo},
		{Status: 429, RetryAfter: time.Second, Body: echo},
		{Status: 400, Body: echo},
		{Status: 403, Body: echo},
		{Status: 404, Body: "<p>" + key + pw + basic + "</p>"},
		{Status: 200, Body: echo},
		{Status: 200, Body: "garbage " + pw},
		{Status: 200, Body: `{"send_log":[{"code":"` + pw + `","to":"12812345678"},{"code":401,"code_desc":"` + key + `","to":"972501234567","sale":"` + pw + `"}]}`},
		{Close: true},
	} {
		f.Faults.Push(fault)
		send(p, req)
	}
	f.Faults.Push(providertest.Fault{Delay: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	collect(p.Send(ctx, &req))
	cancel()
	send(p, bridge.SendRequest{Text: "hi", Sender: pw, To: []string{us}})
	send(p, bridge.SendRequest{Template: key, To: []string{us}})
	_, err = New("voip", &Config{BaseURL: "https://" + key + ":" + pw + "@example.com", APIKey: key, APIPassword: config.Secret(pw), BatchSize: -1}, nil, log)
	collect(nil, err)
	_, err = New("voip", &Config{APIKey: key, APIPassword: config.Secret(pw), APIPasswordFile: "/nonexistent"}, nil, log)
	collect(nil, err)

	if len(texts) < 15 {
		t.Fatalf("only %d error texts collected; the paths above did not fail as intended", len(texts))
	}
	if logs.Len() == 0 {
		t.Fatal("nothing logged at debug level")
	}
	texts = append(texts, logs.String())
	for _, s := range texts {
		for _, secret := range []string{key, pw, basic} {
			if strings.Contains(s, secret) {
				t.Errorf("secret %q leaked into %q", secret, s)
			}
		}
	}
}

func FuzzSendLog(f *testing.F) {
	f.Add([]byte(`{"send_log":[{"code":200,"code_desc":"","from":"17134567890","to":"12812345678","country":"US","msg":"It is a SMS message","delivery_date":"2019-10-01 00:00:00","sale":0.01,"type":"BULKSMS","status":"SCHEDULED","smsid":"2017559ea27008c6b7122900621"}]}`), "12812345678")
	f.Add([]byte(`{"send_log":[{"code":"400","code_desc":"x","to":"+1"},{"code":200.0,"smsid":5,"sale":"0.01"},{"code":null}]}`), "1,1,2")
	f.Add([]byte(`{"send_log":[{"code":200},{"code":200}]}`), "1,2")
	f.Add([]byte(`{"error": true, "error_message": "Invalid api credentials"}`), "1")
	f.Add([]byte(`{"send_log":null}`), "")
	f.Add([]byte(`<html>`), "1")
	p, err := New("voip", &Config{APIKey: "k", APIPassword: "p"}, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, recipients string) {
		_ = errorDetail(body, p.redact)
		entries, err := parseSendLog(body)
		if err != nil {
			return
		}
		to := strings.Split(recipients, ",")
		matched, stray := match(entries, to)
		if len(matched) != len(to) {
			t.Fatalf("%d matches for %d recipients", len(matched), len(to))
		}
		used := map[*entry]bool{}
		for _, e := range matched {
			if e == nil {
				continue
			}
			if used[e] {
				t.Fatalf("entry %+v matched twice", *e)
			}
			used[e] = true
		}
		if len(used)+stray != len(entries) {
			t.Fatalf("%d matched + %d stray != %d entries", len(used), stray, len(entries))
		}
		for i, e := range matched {
			r := p.result(to[i], e)
			if e == nil && r.Err == nil {
				t.Fatalf("recipient %d without entry succeeded", i)
			}
			if r.Err == nil {
				if c, ok := e.code(); !ok || c != 200 {
					t.Fatalf("entry with code %q succeeded", e.Code)
				}
			}
		}
	})
}

// TestSendCost reads each recipient's price from the send_log's sale; a
// sale that is no price is kept in Info only.
func TestSendCost(t *testing.T) {
	p, _ := newTest(t, nil)
	res, err := p.Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{us}})
	wantOK(t, res, err, 1)
	if res[0].Cost != "0.01" {
		t.Errorf("cost %q, want 0.01 (the fake's documented sale)", res[0].Cost)
	}
	for _, tc := range []struct{ sale, want string }{
		{`"0.0200"`, "0.02"},
		{`7.5e-3`, "0.0075"},
		{`-1`, ""},
		{`"free"`, ""},
		{`1e9`, ""},
		{`null`, ""},
	} {
		p, f := newTest(t, nil)
		f.Faults.Push(providertest.Fault{Status: 200, Body: `{"send_log":[{"code":200,"to":"12812345678","smsid":"a","sale":` + tc.sale + `}]}`})
		res, err := p.Send(t.Context(), &bridge.SendRequest{Text: "hi", To: []string{us}})
		wantOK(t, res, err, 1)
		if res[0].Cost != tc.want {
			t.Errorf("sale %s: cost %q, want %q", tc.sale, res[0].Cost, tc.want)
		}
	}
}
