package storetest

import (
	"context"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
)

// testDSN: the RFC 3461 parameters a message and its recipients were
// accepted with come back from Message, Claim and ReportJobs; an outcome
// marks the one delay notification, and a later outcome does not unmark it.
func testDSN(t *testing.T, s Full) {
	ctx := context.Background()
	m := newMessage(base, base, "+15550000001", "+15550000002")
	m.Channel, m.EnvelopeFrom = bridge.ChannelSMTP, "alice@example.com"
	m.EnvelopeID, m.Return = "QQ314159+2B", bridge.ReturnFull
	m.Recipients[0].Notify = bridge.NotifySuccess | bridge.NotifyDelay
	m.Recipients[0].ORCPT = "rfc822;+15550000001@sms.example.com"
	m.Recipients[1].Notify = bridge.NotifyNever
	enqueue(t, s, m)

	got := get(t, s, m.ID)
	if got.EnvelopeID != m.EnvelopeID || got.Return != bridge.ReturnFull {
		t.Errorf("message: ENVID %q RET %q; want %q %q", got.EnvelopeID, got.Return, m.EnvelopeID, bridge.ReturnFull)
	}
	r0, r1 := got.Recipients[0], got.Recipients[1]
	if r0.Notify != m.Recipients[0].Notify || r0.ORCPT != m.Recipients[0].ORCPT || r0.DelayNotified {
		t.Errorf("recipient 0: notify %v orcpt %q delayed %v", r0.Notify, r0.ORCPT, r0.DelayNotified)
	}
	if r1.Notify != bridge.NotifyNever || r1.ORCPT != "" {
		t.Errorf("recipient 1: notify %v orcpt %q", r1.Notify, r1.ORCPT)
	}

	complete(t, s, bridge.Outcome{RecipientID: r0.ID, State: bridge.StateQueued, Provider: "p1", Error: "down",
		NextAttempt: base, At: base, DelayNotified: true, Notified: bridge.ActionDelayed})
	complete(t, s, bridge.Outcome{RecipientID: r0.ID, State: bridge.StateQueued, Provider: "p1", Error: "down",
		NextAttempt: base, At: base})
	jobs := claim(t, s, base, 10)
	var claimed *bridge.Job
	for i := range jobs {
		if jobs[i].Recipient.ID == r0.ID {
			claimed = &jobs[i]
		}
	}
	if claimed == nil {
		t.Fatalf("recipient 0 not claimed")
	}
	if !claimed.Recipient.DelayNotified || claimed.Recipient.Notify != r0.Notify || claimed.Recipient.ORCPT != r0.ORCPT ||
		claimed.Message.EnvelopeID != m.EnvelopeID || claimed.Message.Return != bridge.ReturnFull {
		t.Errorf("claimed: %+v of %+v", claimed.Recipient, claimed.Message)
	}

	complete(t, s, bridge.Outcome{RecipientID: r0.ID, State: bridge.StateSent, Provider: "p1", ProviderID: "x-1", At: base},
		bridge.Outcome{RecipientID: r1.ID, State: bridge.StateSent, Provider: "p1", ProviderID: "x-1", At: base})
	rj, ok := s.(bridge.ReportJobs)
	if !ok {
		t.Fatal("the store does not implement bridge.ReportJobs")
	}
	for _, tc := range []struct {
		provider, id, to string
		want             int
	}{{"p1", "x-1", "", 2}, {"p1", "x-1", "+15550000002", 1}, {"p2", "x-1", "", 0}, {"p1", "x-2", "", 0}} {
		jobs, err := rj.ReportJobs(ctx, tc.provider, tc.id, tc.to)
		if err != nil || len(jobs) != tc.want {
			t.Fatalf("ReportJobs(%s, %s, %q) = %d jobs, %v; want %d", tc.provider, tc.id, tc.to, len(jobs), err, tc.want)
		}
		for _, j := range jobs {
			if j.Message.EnvelopeID != m.EnvelopeID || (j.Recipient.ID == r0.ID && j.Recipient.ORCPT != r0.ORCPT) {
				t.Errorf("ReportJobs: %+v", j)
			}
		}
	}
	// The delivered notification is recorded with the report, once.
	for range 2 {
		if _, err := s.Report(ctx, bridge.DeliveryReport{Provider: "p1", ProviderID: "x-1", To: "+15550000001",
			State: bridge.StateDelivered, At: base, Delivered: []int64{r0.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := get(t, s, m.ID).Recipients[0].Notified; got != "delayed,delivered" {
		t.Errorf("notified %q, want delayed,delivered", got)
	}
	// Undelivered recipients are not reported delivered later.
	if _, err := s.Report(ctx, bridge.DeliveryReport{Provider: "p1", ProviderID: "x-1", To: "+15550000002",
		State: bridge.StateUndelivered, At: base}); err != nil {
		t.Fatal(err)
	}
	if jobs, err := rj.ReportJobs(ctx, "p1", "x-1", ""); err != nil || len(jobs) != 1 || jobs[0].Recipient.ID != r0.ID {
		t.Errorf("after undelivered: %d jobs, %v", len(jobs), err)
	}
}
