package mindcrmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/providertest"
)

// get sends a raw query to the fake and returns the HTTP status and body.
func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestMindCRMValidates(t *testing.T) {
	long := strings.Repeat("%D7%A9", 501) // 501 × "ש"
	tests := []struct {
		name  string
		query string
		code  int
	}{
		{"raw", "source_number=MindCRM&message=Hello&phone=0501234567&user_id=42", 0},
		{"raw with dashed phone", "source_number=MindCRM&message=Hello&phone=050-1234567", 0},
		{"raw from_phone", "source_number=MindCRM&message=Hello&from_phone=0591234567", 0},
		{"raw scheduled", "source_number=MindCRM&message=Hi&phone=0501234567&date=2025-07-01&time=09:00:00", 0},
		{"raw 500 characters", "source_number=MindCRM&phone=0501234567&message=" + long[:500*6], 0},
		{"raw 12-character sender", "source_number=ABCDEFGHIJ12&message=Hi&phone=0581234567", 0},
		{"template", "sms_template_id=7&phone=0501234567&user_id=42", 0},
		{"template with overrides", "sms_template_id=7&phone=0551234567&source_number=MyBrand&message=Hi&repository_assign_id=3", 0},

		{"raw without source_number", "message=Hello&phone=0501234567", 1},
		{"raw without message", "source_number=MindCRM&phone=0501234567", 1},
		{"raw with empty message", "source_number=MindCRM&message=&phone=0501234567", 1},
		{"raw without phone", "source_number=MindCRM&message=Hello", 1},
		{"template without phone", "sms_template_id=7", 1},
		{"template with empty id", "sms_template_id=&phone=0501234567", 1},
		{"nothing", "", 1},
		{"date not YYYY-MM-DD", "sms_template_id=7&phone=0501234567&date=2025-7-1", 1},
		{"date not a date", "sms_template_id=7&phone=0501234567&date=2025-02-30", 1},
		{"time not HH:MM:SS", "sms_template_id=7&phone=0501234567&time=9:00", 1},
		{"time one-digit hour", "sms_template_id=7&phone=0501234567&time=9:00:00", 1},

		{"phone prefix 057", "source_number=MindCRM&message=Hi&phone=0571234567", 2},
		{"phone prefix 056", "sms_template_id=7&phone=0561234567", 2},
		{"phone 9 digits", "sms_template_id=7&phone=050123456", 2},
		{"phone 11 digits", "sms_template_id=7&phone=05012345678", 2},
		{"phone E.164", "sms_template_id=7&phone=%2B972501234567", 2},
		{"phone misplaced dash", "sms_template_id=7&phone=0501-234567", 2},
		{"from_phone invalid", "sms_template_id=7&from_phone=0221234567", 2},

		{"message 501 characters", "source_number=MindCRM&phone=0501234567&message=" + long, 3},
		{"template message override 501 characters", "sms_template_id=7&phone=0501234567&message=" + long, 3},

		{"sender with dash", "source_number=My-Brand&message=Hi&phone=0501234567", 4},
		{"sender 13 characters", "source_number=ABCDEFGHIJKLM&message=Hi&phone=0501234567", 4},
		{"sender Hebrew", "source_number=%D7%A9&message=Hi&phone=0501234567", 4},
		{"template sender override with space", "sms_template_id=7&phone=0501234567&source_number=My+Brand", 4},

		{"unknown template", "sms_template_id=8&phone=0501234567", 5},
		{"template not a number", "sms_template_id=seven&phone=0501234567", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewServer(t)
			status, body := get(t, http.MethodGet, f.URL+"/api/send_sms.php?"+tt.query)
			if status != http.StatusOK {
				t.Fatalf("HTTP %d, want 200", status)
			}
			want := `{"stat_code": 0, "description": "SMS sent successfully", "data": "SMS sent successfully"}`
			if tt.code != 0 {
				want = fmt.Sprintf(`{"stat_code": %d, "description": %q, "data": %q}`, tt.code, descriptions[tt.code], descriptions[tt.code])
			}
			if body != want {
				t.Errorf("body %s, want %s", body, want)
			}
			var got struct {
				StatCode int `json:"stat_code"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil || got.StatCode != tt.code {
				t.Errorf("body %s is not JSON with stat_code %d", body, tt.code)
			}
			acc, rej := f.Requests(), f.Rejected()
			switch {
			case tt.code == 0 && (len(acc) != 1 || len(rej) != 0):
				t.Errorf("accepted %d, rejected %d; want 1 accepted", len(acc), len(rej))
			case tt.code != 0 && (len(acc) != 0 || len(rej) != 1 || rej[0].StatCode != tt.code):
				t.Errorf("accepted %d, rejected %+v; want 1 rejected with %d", len(acc), rej, tt.code)
			}
		})
	}
}

func TestMindCRMTemplatesAndRecords(t *testing.T) {
	f := NewServer(t)
	f.SetTemplates(3, 4)
	if status, body := get(t, http.MethodGet, f.URL+"/api/send_sms.php?sms_template_id=7&phone=0501234567"); status != 200 || !strings.Contains(body, `"stat_code": 5`) {
		t.Errorf("template 7 after SetTemplates(3, 4): HTTP %d %s, want stat_code 5", status, body)
	}
	if status, body := get(t, http.MethodGet, f.URL+"/api/send_sms.php?sms_template_id=4&phone=0501234567&user_id=42"); status != 200 || !strings.Contains(body, `"stat_code": 0`) {
		t.Errorf("template 4: HTTP %d %s, want stat_code 0", status, body)
	}
	acc := f.Requests()
	if len(acc) != 1 || acc[0].Query.Get("sms_template_id") != "4" || acc[0].Query.Get("user_id") != "42" || acc[0].Received.IsZero() {
		t.Errorf("Requests() = %+v, want the template 4 request with its time", acc)
	}
}

func TestMindCRMRouting(t *testing.T) {
	f := NewServer(t)
	const q = "?sms_template_id=7&phone=0501234567"
	if status, _ := get(t, http.MethodPost, f.URL+"/api/send_sms.php"+q); status != http.StatusMethodNotAllowed {
		t.Errorf("POST: HTTP %d, want 405", status)
	}
	if status, _ := get(t, http.MethodGet, f.URL+"/api/sms.php"+q); status != http.StatusNotFound {
		t.Errorf("other path: HTTP %d, want 404", status)
	}
	if n := len(f.Requests()) + len(f.Rejected()); n != 0 {
		t.Errorf("recorded %d requests, want 0", n)
	}
}

func TestMindCRMFaultsFirst(t *testing.T) {
	f := NewServer(t)
	f.Faults.Push(providertest.Fault{Status: 503}, providertest.Fault{Status: 429, RetryAfter: 2 * time.Second})
	url := f.URL + "/api/send_sms.php?sms_template_id=7&phone=0501234567"
	for _, want := range []int{503, 429, 200} {
		if status, _ := get(t, http.MethodGet, url); status != want {
			t.Errorf("HTTP %d, want %d", status, want)
		}
	}
	if n := len(f.Requests()); n != 1 {
		t.Errorf("accepted %d requests, want 1 (after the faults)", n)
	}
}

// recordingTB captures the failures the fake reports instead of failing
// the test that checks it reports them.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// What the document gives no answer for fails the test, so a client typo
// ("text" for "message") cannot pass unnoticed.
func TestMindCRMFlagsUndocumented(t *testing.T) {
	tests := []struct {
		query string
		want  string
	}{
		{"sms_template_id=7&phone=0501234567&user_id=42", ""},
		{"sms_template_id=7&phone=0501234567&user_id=42&text=Hi", `undocumented parameter "text"`},
		{"sms_template_id=7&phone=0501234567&phone=0501234568&user_id=42", `parameter "phone" given 2 times`},
		{"sms_template_id=7&phone=0501234567&user_id=41", `user_id="41", want 42`},
		{"sms_template_id=7&phone=0501234567", `user_id="", want 42`},
		{"sms_template_id=7&phone=0501234567&user_id=42&repository_assign_id=x", `repository_assign_id="x" is not an integer`},
	}
	for _, tt := range tests {
		rec := &recordingTB{TB: t}
		f := NewServer(rec)
		f.ExpectUserID(42)
		get(t, http.MethodGet, f.URL+"/api/send_sms.php?"+tt.query)
		got := rec.failures()
		switch {
		case tt.want == "" && len(got) != 0:
			t.Errorf("%s: fake reported %q, want nothing", tt.query, got)
		case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
			t.Errorf("%s: fake reported %q, want one failure containing %q", tt.query, got, tt.want)
		}
	}
}
