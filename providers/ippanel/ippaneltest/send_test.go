package ippaneltest_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

// The documents' own example requests, which the fake must accept.
const (
	webserviceExample = `{"sending_type":"webservice","from_number":"+983000505","message":"متن پیام",
		"params":{"recipients":["+989120000000","+989350000000"]},"send_time":"2035-03-12 21:20:02"}`
	patternExample = `{"sending_type":"pattern","from_number":"+983000505","code":"xxxxxxxxxxxxxxx",
		"recipients":["+989120000000"],"params":{"code":"متن جایگذاری"},
		"phonebook":{"id":1234,"name":"سعید محمدی","pre":"mr","email":"saeed@gmail.com","options":{"456":"1970/01/01"}}}`
	phonebookExample = `{"sending_type":"phonebook","from_number":"+983000505","message":"تست","params":[
		{"phonebook_ids":["123654"],"type":"all","start":"1","size":"2"},
		{"phonebook_id":"456987","type":"detail","number_ids":["123","456","789"]}]}`
)

func TestIPPanelAcceptsDocumentedExamples(t *testing.T) {
	f := newFake(t)
	var prev int64
	for i, body := range []string{webserviceExample, patternExample, phonebookExample} {
		a := postSend(t, f, body)
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
		jsonEqual(t, a.raw, `{"data":{"message_outbox_ids":[`+jsonInt(r.OutboxID)+`]},"meta":{"status":true,"message":"انجام شد","message_parameters":[],"message_code":"200-1"}}`)
		if string(r.Raw) != body || r.SendingType != r.Body["sending_type"] || r.Header.Get("Authorization") != testToken {
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
		{name: "GET send", method: "GET", body: webserviceExample, status: 405},
		{name: "unknown path", path: "/api/sned", body: webserviceExample, status: 404},
		{name: "no Authorization", auth: "-", body: webserviceExample, status: 401},
		{name: "Bearer token", auth: "Bearer " + testToken, body: webserviceExample, status: 401},
		{name: "form body", ctype: "application/x-www-form-urlencoded", body: webserviceExample, status: 415},
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
			f := newFake(t)
			method, path, auth, ctype := "POST", "/api/send", testToken, "application/json"
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
			a := do(t, method, f.URL+path, auth, ctype, tt.body)
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
