package providertest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/providertest"
)

const (
	ippToken  = "edge-token-1"
	ippNumber = "+983000505"
)

func newIPPanel(t *testing.T) *providertest.IPPanel {
	t.Helper()
	f := providertest.NewIPPanel(t, ippToken, ippNumber)
	f.SetPatterns("xxxxxxxxxxxxxxx")
	f.SetPhonebooks("123654", "456987")
	return f
}

type ippAnswer struct {
	status int
	raw    []byte
	body   struct {
		Data json.RawMessage `json:"data"`
		Meta struct {
			Status      bool                       `json:"status"`
			Message     string                     `json:"message"`
			MessageCode string                     `json:"message_code"`
			Errors      map[string]json.RawMessage `json:"errors"`
		} `json:"meta"`
	}
}

// ippDo makes one request with the token unless auth says otherwise.
func ippDo(t *testing.T, method, url, auth, ctype, body string) ippAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "-" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := ippAnswer{status: resp.StatusCode}
	if a.raw, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(a.raw, &a.body); err != nil {
		t.Fatalf("answer %d is not the envelope: %s", a.status, a.raw)
	}
	return a
}

func ippSend(t *testing.T, f *providertest.IPPanel, body string) ippAnswer {
	t.Helper()
	return ippDo(t, http.MethodPost, f.URL+"/api/send", ippToken, "application/json", body)
}

func ippJSONEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// The documents' own example requests, which the fake must accept.
const (
	ippWebserviceExample = `{"sending_type":"webservice","from_number":"+983000505","message":"متن پیام",
		"params":{"recipients":["+989120000000","+989350000000"]},"send_time":"2035-03-12 21:20:02"}`
	ippPatternExample = `{"sending_type":"pattern","from_number":"+983000505","code":"xxxxxxxxxxxxxxx",
		"recipients":["+989120000000"],"params":{"code":"متن جایگذاری"},
		"phonebook":{"id":1234,"name":"سعید محمدی","pre":"mr","email":"saeed@gmail.com","options":{"456":"1970/01/01"}}}`
	ippPhonebookExample = `{"sending_type":"phonebook","from_number":"+983000505","message":"تست","params":[
		{"phonebook_ids":["123654"],"type":"all","start":"1","size":"2"},
		{"phonebook_id":"456987","type":"detail","number_ids":["123","456","789"]}]}`
)

func TestIPPanelAcceptsDocumentedExamples(t *testing.T) {
	f := newIPPanel(t)
	var prev int64
	for i, body := range []string{ippWebserviceExample, ippPatternExample, ippPhonebookExample} {
		a := ippSend(t, f, body)
		if a.status != http.StatusOK {
			t.Fatalf("example %d: HTTP %d %s", i, a.status, a.raw)
		}
		reqs := f.Requests()
		if len(reqs) != i+1 {
			t.Fatalf("%d requests recorded", len(reqs))
		}
		r := reqs[i]
		if r.OutboxID <= prev {
			t.Errorf("outbox id %d not above %d", r.OutboxID, prev)
		}
		prev = r.OutboxID
		ippJSONEqual(t, a.raw, `{"data":{"message_outbox_ids":[`+jsonInt(r.OutboxID)+`]},"meta":{"status":true,"message":"انجام شد","message_parameters":[],"message_code":"200-1"}}`)
		if string(r.Raw) != body || r.SendingType != r.Body["sending_type"] || r.Header.Get("Authorization") != ippToken {
			t.Errorf("recorded %+v", r)
		}
	}
	if got := []string{f.Requests()[0].SendingType, f.Requests()[1].SendingType, f.Requests()[2].SendingType}; !reflect.DeepEqual(got, []string{"webservice", "pattern", "phonebook"}) {
		t.Errorf("sending types %v", got)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestIPPanelRefusals(t *testing.T) {
	tests := []struct {
		name         string
		method, path string
		auth, ctype  string
		body         string
		status       int
		field        string // the errors key expected in a 422
	}{
		{name: "GET send", method: "GET", body: ippWebserviceExample, status: 405},
		{name: "unknown path", path: "/api/sned", body: ippWebserviceExample, status: 404},
		{name: "no Authorization", auth: "-", body: ippWebserviceExample, status: 401},
		{name: "Bearer token", auth: "Bearer " + ippToken, body: ippWebserviceExample, status: 401},
		{name: "form body", ctype: "application/x-www-form-urlencoded", body: ippWebserviceExample, status: 415},
		{name: "not JSON", body: `{"sending_type":`, status: 400},
		{name: "no sending_type", body: `{"from_number":"+983000505","message":"m","params":{"recipients":["+989120000000"]}}`, status: 422, field: "sending_type"},
		{name: "unknown sending_type", body: `{"sending_type":"bulk","from_number":"+983000505"}`, status: 422, field: "sending_type"},
		{name: "foreign from_number", body: `{"sending_type":"webservice","from_number":"+983000506","message":"m","params":{"recipients":["+989120000000"]}}`, status: 422, field: "from_number"},
		{name: "no from_number", body: `{"sending_type":"webservice","message":"m","params":{"recipients":["+989120000000"]}}`, status: 422, field: "from_number"},
		{name: "no recipients", body: `{"sending_type":"webservice","from_number":"+983000505","message":"m","params":{"recipients":[]}}`, status: 422, field: "params.recipients"},
		{name: "no params", body: `{"sending_type":"webservice","from_number":"+983000505","message":"m"}`, status: 422, field: "params"},
		{name: "national number", body: `{"sending_type":"webservice","from_number":"+983000505","message":"m","params":{"recipients":["+989120000000","09120000000"]}}`, status: 422, field: "params.recipients.1"},
		{name: "send_time with T", body: `{"sending_type":"webservice","from_number":"+983000505","message":"m","params":{"recipients":["+989120000000"]},"send_time":"2035-03-12T21:20:02Z"}`, status: 422, field: "send_time"},
		{name: "send_time one-digit hour", body: `{"sending_type":"webservice","from_number":"+983000505","message":"m","params":{"recipients":["+989120000000"]},"send_time":"2035-03-12 1:20:02"}`, status: 422, field: "send_time"},
		{name: "webservice with code", body: `{"sending_type":"webservice","from_number":"+983000505","message":"m","code":"x","params":{"recipients":["+989120000000"]}}`, status: 422, field: "code"},
		{name: "unknown pattern", body: `{"sending_type":"pattern","from_number":"+983000505","code":"nope","recipients":["+989120000000"],"params":{}}`, status: 422, field: "code"},
		{name: "pattern two recipients", body: `{"sending_type":"pattern","from_number":"+983000505","code":"xxxxxxxxxxxxxxx","recipients":["+989120000000","+989350000000"],"params":{}}`, status: 422, field: "recipients"},
		{name: "pattern no params", body: `{"sending_type":"pattern","from_number":"+983000505","code":"xxxxxxxxxxxxxxx","recipients":["+989120000000"]}`, status: 422, field: "params"},
		{name: "pattern with message", body: `{"sending_type":"pattern","from_number":"+983000505","code":"xxxxxxxxxxxxxxx","message":"m","recipients":["+989120000000"],"params":{}}`, status: 422, field: "message"},
		{name: "pattern with send_time", body: `{"sending_type":"pattern","from_number":"+983000505","code":"xxxxxxxxxxxxxxx","send_time":"2035-03-12 21:20:02","recipients":["+989120000000"],"params":{}}`, status: 422, field: "send_time"},
		{name: "phonebook.id as string", body: `{"sending_type":"pattern","from_number":"+983000505","code":"xxxxxxxxxxxxxxx","recipients":["+989120000000"],"params":{},"phonebook":{"id":"1234"}}`, status: 422, field: "phonebook.id"},
		{name: "phonebook.id fractional", body: `{"sending_type":"pattern","from_number":"+983000505","code":"xxxxxxxxxxxxxxx","recipients":["+989120000000"],"params":{},"phonebook":{"id":12.5}}`, status: 422, field: "phonebook.id"},
		{name: "phonebook unknown key", body: `{"sending_type":"pattern","from_number":"+983000505","code":"xxxxxxxxxxxxxxx","recipients":["+989120000000"],"params":{},"phonebook":{"id":1,"mobile":"x"}}`, status: 422, field: "phonebook.mobile"},
		{name: "phonebook params not an array", body: `{"sending_type":"phonebook","from_number":"+983000505","message":"m","params":{"phonebook_ids":["123654"],"type":"all"}}`, status: 422, field: "params"},
		{name: "phonebook unknown id", body: `{"sending_type":"phonebook","from_number":"+983000505","message":"m","params":[{"phonebook_ids":["123654","999"],"type":"all"}]}`, status: 422, field: "params.0.phonebook_ids.1"},
		{name: "phonebook bad type", body: `{"sending_type":"phonebook","from_number":"+983000505","message":"m","params":[{"phonebook_ids":["123654"],"type":"some"}]}`, status: 422, field: "params.0.type"},
		{name: "phonebook detail without number_ids", body: `{"sending_type":"phonebook","from_number":"+983000505","message":"m","params":[{"phonebook_id":"456987","type":"detail"}]}`, status: 422, field: "params.0.number_ids"},
		{name: "phonebook detail unknown book", body: `{"sending_type":"phonebook","from_number":"+983000505","message":"m","params":[{"phonebook_id":"1","type":"detail","number_ids":["5"]}]}`, status: 422, field: "params.0.phonebook_id"},
		{name: "phonebook all with phonebook_id", body: `{"sending_type":"phonebook","from_number":"+983000505","message":"m","params":[{"phonebook_ids":["123654"],"phonebook_id":"123654","type":"all"}]}`, status: 422, field: "params.0.phonebook_id"},
		{name: "phonebook no message", body: `{"sending_type":"phonebook","from_number":"+983000505","params":[{"phonebook_ids":["123654"],"type":"all"}]}`, status: 422, field: "message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newIPPanel(t)
			method, path, auth, ctype := "POST", "/api/send", ippToken, "application/json"
			if tt.method != "" {
				method = tt.method
			}
			if tt.path != "" {
				path = tt.path
			}
			if tt.auth != "" {
				auth = tt.auth
			}
			if tt.ctype != "" {
				ctype = tt.ctype
			}
			a := ippDo(t, method, f.URL+path, auth, ctype, tt.body)
			if a.status != tt.status || a.body.Meta.Status {
				t.Fatalf("HTTP %d, want %d: %s", a.status, tt.status, a.raw)
			}
			if tt.field != "" {
				if _, ok := a.body.Meta.Errors[tt.field]; !ok {
					t.Errorf("errors lack %q: %s", tt.field, a.raw)
				}
				if a.body.Meta.MessageCode != "400-2" || a.body.Meta.Message == "" {
					t.Errorf("meta %+v", a.body.Meta)
				}
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("%d sends recorded", n)
			}
		})
	}
}

func TestIPPanelDocumentedErrorBodies(t *testing.T) {
	f := newIPPanel(t)
	a := ippDo(t, "POST", f.URL+"/api/send", "Bearer "+ippToken, "application/json", ippWebserviceExample)
	ippJSONEqual(t, a.raw, `{"data":null,"meta":{"status":false,"message":"اطلاعات وارد شده صحیح نمی باشد","message_parameters":[],"message_code":"400-1","errors":{}}}`)

	a = ippSend(t, f, `{"sending_type":"webservice","from_number":"+983000505","params":{"recipients":["+989120000000"]}}`)
	if a.status != 422 {
		t.Fatalf("HTTP %d", a.status)
	}
	ippJSONEqual(t, a.raw, `{"data":null,"meta":{"status":false,"message":"تکمیل گزینه پیام الزامی است","message_parameters":[],"message_code":"400-2","errors":{"message":["تکمیل گزینه پیام الزامی است"]}}}`)

	a = ippDo(t, "POST", f.URL+"/api/send/cancel", ippToken, "application/json", `{"message_outbox_id":42}`)
	if a.status != 404 {
		t.Fatalf("HTTP %d", a.status)
	}
	ippJSONEqual(t, a.raw, `{"data":null,"meta":{"status":false,"message":"پیام مورد نظر یافت نشد","message_parameters":[],"message_code":"400-1","errors":{}}}`)
}

func TestIPPanelCancel(t *testing.T) {
	f := newIPPanel(t)
	send := func(sendTime string) int64 {
		t.Helper()
		body := `{"sending_type":"webservice","from_number":"+983000505","message":"m","params":{"recipients":["+989120000000"]}`
		if sendTime != "" {
			body += `,"send_time":"` + sendTime + `"`
		}
		if a := ippSend(t, f, body+"}"); a.status != 200 {
			t.Fatalf("send: %s", a.raw)
		}
		reqs := f.Requests()
		return reqs[len(reqs)-1].OutboxID
	}
	cancel := func(id string) ippAnswer {
		t.Helper()
		return ippDo(t, "POST", f.URL+"/api/send/cancel", ippToken, "application/json", `{"message_outbox_id":`+id+`}`)
	}
	layout := "2006-01-02 15:04:05"
	later := send(time.Now().UTC().Add(time.Hour).Format(layout))
	soon := send(time.Now().UTC().Add(2 * time.Minute).Format(layout))
	now := send("")

	if a := cancel(jsonInt(later)); a.status != 200 || !a.body.Meta.Status {
		t.Fatalf("cancel scheduled: %d %s", a.status, a.raw)
	}
	for name, id := range map[string]string{
		"again": jsonInt(later), "within five minutes": jsonInt(soon), "not scheduled": jsonInt(now), "not a number": `"x"`,
	} {
		if a := cancel(id); a.status != 422 || a.body.Meta.Status {
			t.Errorf("cancel %s: %d %s", name, a.status, a.raw)
		}
	}
	f.SetStatus(later+100, "+989120000000", 2) // a report-only bulk was never sent
	if a := cancel(jsonInt(later + 100)); a.status != 404 {
		t.Errorf("cancel invented bulk: %d", a.status)
	}
	if got := f.Cancelled(); !reflect.DeepEqual(got, []int64{later}) {
		t.Errorf("Cancelled %v, want [%d]", got, later)
	}
}

func TestIPPanelInbox(t *testing.T) {
	f := newIPPanel(t)
	var ids []int64
	for _, m := range []string{"one", "two", "three"} {
		ids = append(ids, f.AddInbound("+989122222222", ippNumber, m))
	}
	inbox := func(body string) ([]map[string]any, ippAnswer) {
		t.Helper()
		a := ippDo(t, "POST", f.URL+"/api/report/messages-inbox", ippToken, "application/json", body)
		var items []map[string]any
		if a.status == 200 {
			if err := json.Unmarshal(a.body.Data, &items); err != nil {
				t.Fatalf("%s: %v", a.raw, err)
			}
		}
		return items, a
	}
	items, a := inbox(`{"page":1,"per_page":10,"filters":{"from_id":` + jsonInt(ids[0]) + `}}`)
	if a.status != 200 || len(items) != 2 {
		t.Fatalf("HTTP %d, %d items: %s", a.status, len(items), a.raw)
	}
	// Newest first, as documented.
	if items[0]["message"] != "three" || items[1]["message"] != "two" ||
		items[0]["messages_inbox_id"] != float64(ids[2]) || items[0]["from"] != "+989122222222" ||
		items[0]["number"] != ippNumber || items[0]["type"] != "normal" || items[0]["seen"] != "0" {
		t.Errorf("items %v", items)
	}
	if ts, ok := items[0]["time"].(float64); !ok || time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("time %v", items[0]["time"])
	}
	if items, _ := inbox(`{"page":2,"per_page":2}`); len(items) != 1 || items[0]["message"] != "one" {
		t.Errorf("page 2: %v", items)
	}
	if items, _ := inbox(`{}`); len(items) != 3 {
		t.Errorf("defaults: %d items", len(items))
	}
	if _, a := inbox(`{"per_page":"ten"}`); a.status != 422 {
		t.Errorf("per_page string: HTTP %d", a.status)
	}
	if a := ippDo(t, "POST", f.URL+"/api/report/messages-inbox", "wrong", "application/json", `{}`); a.status != 401 {
		t.Errorf("wrong token: HTTP %d", a.status)
	}
}

func TestIPPanelRecipients(t *testing.T) {
	f := newIPPanel(t)
	if a := ippSend(t, f, ippWebserviceExample); a.status != 200 {
		t.Fatal(string(a.raw))
	}
	bulk := f.Requests()[0].OutboxID
	f.SetStatus(bulk, "+989350000000", 2)
	get := func(query string) ([]map[string]any, ippAnswer) {
		t.Helper()
		a := ippDo(t, "GET", f.URL+"/api/report/recipients?"+query, ippToken, "", "")
		var items []map[string]any
		if a.status == 200 {
			if err := json.Unmarshal(a.body.Data, &items); err != nil {
				t.Fatal(err)
			}
		}
		return items, a
	}
	items, a := get("page=1&per_page=10&bulk_id=" + jsonInt(bulk))
	want := []map[string]any{
		{"recipient": "+989120000000", "message": "متن پیام", "is_readable": true, "msg_parts": "1", "message_status": "0"},
		{"recipient": "+989350000000", "message": "متن پیام", "is_readable": true, "msg_parts": "1", "message_status": "2"},
	}
	if a.status != 200 || !reflect.DeepEqual(items, want) {
		t.Errorf("HTTP %d items %v", a.status, items)
	}
	if items, a := get("bulk_id=1"); a.status != 200 || len(items) != 0 {
		t.Errorf("unknown bulk: HTTP %d items %v", a.status, items)
	}
	if _, a := get("page=1"); a.status != 422 || a.body.Meta.Message != "تکمیل گزینه bulk_id الزامی است" {
		t.Errorf("no bulk_id: HTTP %d %s", a.status, a.raw)
	}
	if a := ippDo(t, "POST", f.URL+"/api/report/recipients?bulk_id=1", ippToken, "application/json", `{}`); a.status != 405 {
		t.Errorf("POST: HTTP %d", a.status)
	}
}

func TestIPPanelFaults(t *testing.T) {
	f := newIPPanel(t)
	f.Faults.Push(providertest.Fault{Status: 503, RetryAfter: 2 * time.Second})
	req, _ := http.NewRequest("POST", f.URL+"/api/send", bytes.NewReader([]byte(ippWebserviceExample)))
	req.Header.Set("Authorization", ippToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("HTTP %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if a := ippSend(t, f, ippWebserviceExample); a.status != 200 {
		t.Errorf("after the fault: HTTP %d", a.status)
	}
	if n := len(f.Requests()); n != 1 {
		t.Errorf("%d sends recorded", n)
	}
}

func TestIPPanelReportRequests(t *testing.T) {
	f := newIPPanel(t)
	at := time.Date(2025, 5, 21, 6, 15, 25, 0, time.UTC)
	id := f.AddInboundAt("+989122222222", ippNumber, "at a time", at)
	a := ippDo(t, "POST", f.URL+"/api/report/messages-inbox", ippToken, "application/json", `{"page":1,"per_page":5,"filters":{"from_id":0}}`)
	var items []map[string]any
	if err := json.Unmarshal(a.body.Data, &items); err != nil || len(items) != 1 ||
		items[0]["messages_inbox_id"] != float64(id) || items[0]["time"] != float64(at.Unix()) {
		t.Fatalf("HTTP %d %s", a.status, a.raw)
	}
	if a := ippDo(t, "POST", f.URL+"/api/report/messages-inbox", ippToken, "application/json", `{"page":1,"from_id":3}`); a.status != 422 || a.body.Meta.Errors["from_id"] == nil {
		t.Errorf("from_id outside filters: HTTP %d %s", a.status, a.raw)
	}
	if a := ippDo(t, "GET", f.URL+"/api/report/recipients?bulk_id=abc", ippToken, "", ""); a.status != 422 || a.body.Meta.Errors["bulk_id"] == nil {
		t.Errorf("bulk_id abc: HTTP %d %s", a.status, a.raw)
	}
	if a := ippDo(t, "GET", f.URL+"/api/report/recipients?bulk_id=7&page=2&per_page=3", "Bearer "+ippToken, "", ""); a.status != 401 {
		t.Errorf("Bearer token: HTTP %d", a.status)
	}
	ippDo(t, "GET", f.URL+"/api/report/recipients?bulk_id=7&page=2&per_page=3", ippToken, "", "")

	got := f.ReportRequests()
	if len(got) != 2 {
		t.Fatalf("%d report requests recorded, want the 2 valid ones", len(got))
	}
	if got[0].Path != "/api/report/messages-inbox" || got[0].Body["per_page"] != json.Number("5") {
		t.Errorf("inbox request %+v", got[0])
	}
	if got[1].Path != "/api/report/recipients" || got[1].Query.Get("bulk_id") != "7" || got[1].Query.Get("page") != "2" {
		t.Errorf("recipients request %+v", got[1])
	}
}
