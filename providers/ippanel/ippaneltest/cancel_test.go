package ippaneltest_test

import (
	"reflect"
	"testing"
	"time"
)

func TestIPPanelCancel(t *testing.T) {
	f := newFake(t)
	send := func(sendTime string) int64 {
		t.Helper()
		body := `{"sending_type":"webservice","from_number":"+983000505","message":"m","params":{"recipients":["+989120000000"]}`
		if sendTime != "" {
			body += `,"send_time":"` + sendTime + `"`
		}
		if a := postSend(t, f, body+"}"); a.status != 200 {
			t.Fatalf("send: %s", a.raw)
		}
		reqs := f.Requests()
		return reqs[len(reqs)-1].OutboxID
	}
	cancel := func(id string) answer {
		t.Helper()
		return do(t, "POST", f.URL+"/api/send/cancel", testToken, "application/json", `{"message_outbox_id":`+id+`}`)
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
