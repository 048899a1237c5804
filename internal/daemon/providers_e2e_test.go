package daemon_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/mindcrm/mindcrmtest"
)

func mindcrmConfig(url string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "clinic"
emails = ["desk@clinic.example"]
sender_ids = ["Clinic", "ClinicTLV"]
[[providers]]
name = "crm"
type = "mindcrm"
base_url = %q
user_id = 42
[[routes]]
prefix = "+972"
provider = "crm"
# The tests schedule sends at fixed dates, years ahead.
[limits]
schedule_horizon = "87600h"
`, url)
}

func TestMindCRMEndToEnd(t *testing.T) {
	fake := mindcrmtest.NewServer(t)
	fake.SetTemplates(7)
	d := start(t, mindcrmConfig(fake.URL))
	from := "desk@clinic.example"
	to := []string{"050-123-4567@sms.example.com"}

	// Raw send.
	if _, err := sendMail(t, d.SMTPAddr(), from, to, "Subject: x\n\nYour appointment is confirmed.\n"); err != nil {
		t.Fatal(err)
	}
	// Scheduled send: date and time in Asia/Jerusalem (UTC+2 in January).
	if _, err := sendMail(t, d.SMTPAddr(), from, to, "X-SMS-Send-At: 2030-01-15T07:00:00Z\nX-SMS-Sender: ClinicTLV\n\nReminder: tomorrow 10:00\n"); err != nil {
		t.Fatal(err)
	}
	// Template send: the body is not sent, the template's sender applies.
	if _, err := sendMail(t, d.SMTPAddr(), from, to, "X-SMS-Template: 7\n\nignored body\n"); err != nil {
		t.Fatal(err)
	}
	// Template with explicit sender and text override.
	if _, err := sendMail(t, d.SMTPAddr(), from, to, "X-SMS-Template: 7\nX-SMS-Sender: ClinicTLV\nX-SMS-Override-Text: yes\n\nCustom text\n"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "4 requests", func() bool { return len(fake.Requests()) == 4 })
	byKind := map[string]map[string]string{}
	for _, r := range fake.Requests() {
		q := map[string]string{}
		for k := range r.Query {
			q[k] = r.Query.Get(k)
		}
		switch {
		case q["sms_template_id"] != "" && q["message"] != "":
			byKind["template override"] = q
		case q["sms_template_id"] != "":
			byKind["template"] = q
		case q["date"] != "":
			byKind["scheduled"] = q
		default:
			byKind["raw"] = q
		}
	}
	want := map[string]map[string]string{
		"raw":               {"source_number": "Clinic", "message": "Your appointment is confirmed.", "phone": "0501234567", "user_id": "42"},
		"scheduled":         {"source_number": "ClinicTLV", "message": "Reminder: tomorrow 10:00", "phone": "0501234567", "user_id": "42", "date": "2030-01-15", "time": "09:00:00"},
		"template":          {"sms_template_id": "7", "phone": "0501234567", "user_id": "42"},
		"template override": {"sms_template_id": "7", "phone": "0501234567", "user_id": "42", "source_number": "ClinicTLV", "message": "Custom text"},
	}
	for kind, w := range want {
		if got := byKind[kind]; fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: query = %v\nwant %v", kind, got, w)
		}
	}

	// Refused before acceptance: a prefix MindCRM does not serve, a sender
	// ID it would reject, text over its 500 characters.
	for _, tc := range []struct {
		name, rcpt, mail, code string
	}{
		{"prefix 057", "0571234567@sms.example.com", "Subject: x\n\nhi\n", "550 5.1.2"},
		{"landline", "03-123-4567@sms.example.com", "Subject: x\n\nhi\n", "550 5.1.2"},
		{"template id not a number", "0501234567@sms.example.com", "X-SMS-Template: welcome\n\nhi\n", "554 5.6.0"},
	} {
		_, err := sendMail(t, d.SMTPAddr(), from, []string{tc.rcpt}, tc.mail)
		if c, e := smtpCode(err); fmt.Sprintf("%d %s", c, e) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}

func ippanelConfig(url string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
default_region = "IR"
[[accounts]]
name = "shop"
emails = ["*@shop.example"]
sender_ids = ["+983000505"]
allow_phonebooks = true
[[accounts]]
name = "intern"
emails = ["intern@example.com"]
sender_ids = ["Intern"]
[[providers]]
name = "edge"
type = "ippanel"
base_url = %q
token = "tok-7f3a9d"
numbers = ["+983000505"]
[[routes]]
prefix = "+98"
provider = "edge"
# The tests schedule sends at fixed dates, years ahead.
[limits]
schedule_horizon = "87600h"
`, url)
}

func TestIPPanelEndToEnd(t *testing.T) {
	fake := ippaneltest.NewServer(t, "tok-7f3a9d", "+983000505")
	fake.SetPatterns("welcome-code")
	fake.SetPhonebooks("123654", "456987")
	d := start(t, ippanelConfig(fake.URL))
	from := "orders@shop.example"

	// Three recipients in one webservice call, scheduled.
	if _, err := sendMail(t, d.SMTPAddr(), from,
		[]string{"09120000001@sms.example.com", "+989350000002@sms.example.com", "00989120000003@sms.example.com"},
		"X-SMS-Send-At: 2030-03-12T21:20:02+03:30\n\nمتن پیام\n"); err != nil {
		t.Fatal(err)
	}
	// Pattern with parameters and the phonebook block.
	if _, err := sendMail(t, d.SMTPAddr(), from, []string{"09120000004@sms.example.com"},
		"X-SMS-Template: welcome-code\nX-SMS-Param-code: 4821\nX-SMS-Param-phonebook.id: 1234\nX-SMS-Param-phonebook.name: Saeed\n\n"); err != nil {
		t.Fatal(err)
	}
	// A whole phonebook, and some entries of another.
	if _, err := sendMail(t, d.SMTPAddr(), from, []string{"phonebook-123654@sms.example.com", "phonebook-456987-123-456@sms.example.com"},
		"Subject: x\n\nتست\n"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "4 calls", func() bool { return len(fake.Requests()) == 4 })

	var web, pattern []map[string]any
	var books []any
	for _, r := range fake.Requests() {
		if got := r.Header.Get("Authorization"); got != "tok-7f3a9d" {
			t.Errorf("Authorization = %q", got)
		}
		switch r.SendingType {
		case "webservice":
			web = append(web, r.Body)
		case "pattern":
			pattern = append(pattern, r.Body)
		case "phonebook":
			books = append(books, r.Body["params"])
		}
	}
	if len(web) != 1 {
		t.Fatalf("%d webservice calls, want one for three recipients", len(web))
	}
	if got := jsonOf(web[0]); got != `{"from_number":"+983000505","message":"متن پیام","params":{"recipients":["+989120000001","+989350000002","+989120000003"]},"send_time":"2030-03-12 17:50:02","sending_type":"webservice"}` {
		t.Errorf("webservice body = %s", got)
	}
	if len(pattern) != 1 || jsonOf(pattern[0]) != `{"code":"welcome-code","from_number":"+983000505","params":{"code":"4821"},"phonebook":{"id":1234,"name":"Saeed"},"recipients":["+989120000004"],"sending_type":"pattern"}` {
		t.Errorf("pattern body = %v", jsonOf(pattern))
	}
	gotBooks := []string{}
	for _, b := range books {
		gotBooks = append(gotBooks, jsonOf(b))
	}
	slices.Sort(gotBooks)
	wantBooks := []string{`[{"number_ids":["123","456"],"phonebook_id":"456987","type":"detail"}]`, `[{"phonebook_ids":["123654"],"type":"all"}]`}
	slices.Sort(wantBooks)
	if strings.Join(gotBooks, "\n") != strings.Join(wantBooks, "\n") {
		t.Errorf("phonebook params =\n%s\nwant\n%s", strings.Join(gotBooks, "\n"), strings.Join(wantBooks, "\n"))
	}

	// Phonebooks need the account's permission.
	_, err := sendMail(t, d.SMTPAddr(), "intern@example.com", []string{"phonebook-123654@sms.example.com"}, "Subject: x\n\nhi\n")
	if c, e := smtpCode(err); c != 550 || e != "5.7.1" {
		t.Errorf("phonebook without permission: %v, want 550 5.7.1", err)
	}
}

// jsonOf renders v with sorted keys, for exact comparison.
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	var x any
	_ = json.Unmarshal(b, &x)
	b, _ = json.Marshal(x)
	return string(b)
}
