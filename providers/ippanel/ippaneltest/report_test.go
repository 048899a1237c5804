package ippaneltest_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestIPPanelInbox(t *testing.T) {
	f := newFake(t)
	var ids []int64
	for _, m := range []string{"one", "two", "three"} {
		ids = append(ids, f.AddInbound("+989122222222", testNumber, m))
	}
	inbox := func(body string) ([]map[string]any, answer) {
		t.Helper()
		a := do(t, "POST", f.URL+"/api/report/messages-inbox", testToken, "application/json", body)
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
		items[0]["number"] != testNumber || items[0]["type"] != "normal" || items[0]["seen"] != "0" {
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
	if a := do(t, "POST", f.URL+"/api/report/messages-inbox", "wrong", "application/json", `{}`); a.status != 401 {
		t.Errorf("wrong token: HTTP %d", a.status)
	}
}

func TestIPPanelRecipients(t *testing.T) {
	f := newFake(t)
	if a := postSend(t, f, webserviceExample); a.status != 200 {
		t.Fatal(string(a.raw))
	}
	bulk := f.Requests()[0].OutboxID
	f.SetStatus(bulk, "+989350000000", 2)
	get := func(query string) ([]map[string]any, answer) {
		t.Helper()
		a := do(t, "GET", f.URL+"/api/report/recipients?"+query, testToken, "", "")
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
	if a := do(t, "POST", f.URL+"/api/report/recipients?bulk_id=1", testToken, "application/json", `{}`); a.status != 405 {
		t.Errorf("POST: HTTP %d", a.status)
	}
}

func TestIPPanelReportRequests(t *testing.T) {
	f := newFake(t)
	at := time.Date(2025, 5, 21, 6, 15, 25, 0, time.UTC)
	id := f.AddInboundAt("+989122222222", testNumber, "at a time", at)
	a := do(t, "POST", f.URL+"/api/report/messages-inbox", testToken, "application/json", `{"page":1,"per_page":5,"filters":{"from_id":0}}`)
	var items []map[string]any
	if err := json.Unmarshal(a.body.Data, &items); err != nil || len(items) != 1 ||
		items[0]["messages_inbox_id"] != float64(id) || items[0]["time"] != float64(at.Unix()) {
		t.Fatalf("HTTP %d %s", a.status, a.raw)
	}
	if a := do(t, "POST", f.URL+"/api/report/messages-inbox", testToken, "application/json", `{"page":1,"from_id":3}`); a.status != 422 || a.body.Meta.Errors["from_id"] == nil {
		t.Errorf("from_id outside filters: HTTP %d %s", a.status, a.raw)
	}
	if a := do(t, "GET", f.URL+"/api/report/recipients?bulk_id=abc", testToken, "", ""); a.status != 422 || a.body.Meta.Errors["bulk_id"] == nil {
		t.Errorf("bulk_id abc: HTTP %d %s", a.status, a.raw)
	}
	if a := do(t, "GET", f.URL+"/api/report/recipients?bulk_id=7&page=2&per_page=3", "Bearer "+testToken, "", ""); a.status != 401 {
		t.Errorf("Bearer token: HTTP %d", a.status)
	}
	do(t, "GET", f.URL+"/api/report/recipients?bulk_id=7&page=2&per_page=3", testToken, "", "")

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
