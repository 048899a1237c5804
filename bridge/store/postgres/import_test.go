package postgres

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/storeexport"
)

func TestImportMessages(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	ctx := context.Background()
	at := time.UnixMilli(1_900_000_000_000).UTC()
	now := at.Add(time.Hour)

	live := message("+15550000001")
	if err := s.Enqueue(ctx, live); err != nil {
		t.Fatal(err)
	}
	convID := bridge.ConversationID("+15550000002", "")
	keyed := message()
	keyed.IdempotencyKey, keyed.ReplyTo, keyed.Text = "k-1", "a@example.com", "bytes \x00\xff kept"
	rival := message()
	rival.IdempotencyKey = "k-1" // an id of its own, the key of keyed
	page := []storeexport.Message{
		// Stored already, with one recipient: an import adds none.
		{Message: live, Recipients: []storeexport.Recipient{{Recipient: live.Recipients[0]}, {Recipient: live.Recipients[0]}}},
		{Message: keyed, Recipients: []storeexport.Recipient{
			{Recipient: bridge.Recipient{To: "+15550000002", Providers: []string{"p1", "p2"}, Provider: "p2", State: bridge.StateSent,
				Attempts: 2, ProviderID: "x-9", Error: "first try: \xff\x00", Updated: at}, Info: map[string]string{"cost": "2"}, Conversation: convID},
			{Recipient: bridge.Recipient{To: "+15550000003", Providers: []string{"p1"}, Provider: "p1", Attempts: 1,
				NextAttempt: at.Add(24 * time.Hour)}, Claimed: true},
			{Recipient: bridge.Recipient{To: "+15550000004", Providers: []string{"p1"}, Provider: "p1", State: bridge.StateQueued,
				Attempts: 1, NextAttempt: at.Add(24 * time.Hour)}},
		}},
		{Message: rival},
	}
	n, err := s.ImportMessages(ctx, page, now)
	if err != nil || n != 2 {
		t.Fatalf("import: %d, %v; want 2 stored", n, err)
	}
	if n, err := s.ImportMessages(ctx, page, now); err != nil || n != 0 {
		t.Fatalf("import again: %d, %v; want 0", n, err)
	}

	if m, err := s.Message(ctx, live.ID); err != nil || len(m.Recipients) != 1 {
		t.Errorf("stored message: %v, %+v; want it as it was", err, m)
	}
	if m, err := s.MessageByKey(ctx, "acme", "k-1"); err != nil || m.ID != keyed.ID {
		t.Errorf("key: %v, %+v; want the first message that had it", err, m)
	}
	m, err := s.Message(ctx, keyed.ID)
	if err != nil || len(m.Recipients) != 3 {
		t.Fatalf("imported message: %v, %+v", err, m)
	}
	if m.Text != keyed.Text || m.ReplyTo != keyed.ReplyTo {
		t.Errorf("text %q, reply-to %q; want the bytes as they were", m.Text, m.ReplyTo)
	}
	if r := m.Recipients[0]; r.State != bridge.StateSent || r.Provider != "p2" || r.ProviderID != "x-9" || r.Attempts != 2 ||
		r.Error != "first try: \uFFFD\uFFFD" || !r.Updated.Equal(at) || len(r.Providers) != 2 {
		t.Errorf("sent recipient %+v", r)
	}
	if r := m.Recipients[1]; r.State != bridge.StateQueued || !r.NextAttempt.Equal(now) {
		t.Errorf("claimed recipient due %v, want %v (at once)", r.NextAttempt, now)
	}
	if r := m.Recipients[2]; !r.NextAttempt.Equal(at.Add(24 * time.Hour)) {
		t.Errorf("queued recipient due %v, want as it was", r.NextAttempt)
	}

	// The sent recipient is filed under its conversation: once that is
	// imported too, the log shows it.
	c := bridge.Conversation{ID: convID, Phone: "+15550000002", Created: at, Updated: at}
	if n, err := s.ImportConversations(ctx, []bridge.Conversation{c}); err != nil || n != 1 {
		t.Fatalf("import conversation: %d, %v", n, err)
	}
	log, err := s.ConversationLog(ctx, convID, 0)
	if err != nil || len(log) != 1 || log[0].MessageID != keyed.ID || log[0].State != bridge.StateSent {
		t.Errorf("conversation log: %v, %+v", err, log)
	}
}

func TestImportConversationsInboundMailCursors(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	ctx := context.Background()
	at := time.UnixMilli(1_900_000_000_000).UTC()

	c := bridge.Conversation{ID: bridge.ConversationID("+15550000001", "Shop"), Phone: "+15550000001", Our: "Shop",
		Provider: "voip", Account: "acme", ReplyTo: "a@example.com", MailMessageID: "<m@example.com>", Subject: "Hi",
		LastOut: at, Created: at, Updated: at.Add(time.Minute)}
	// The same phone and sender with what another provider reported of
	// them is a conversation of its own; one stored already is not again.
	twin := bridge.Conversation{ID: bridge.ConversationIDVia(c.Phone, c.Our, "edge"), Phone: c.Phone, Our: c.Our,
		Provider: "edge", Created: at, Updated: at}
	if n, err := s.ImportConversations(ctx, []bridge.Conversation{c, twin, c}); err != nil || n != 2 {
		t.Fatalf("import conversations: %d, %v; want 2 stored", n, err)
	}
	if got, err := s.Conversation(ctx, c.ID); err != nil || *got != c {
		t.Errorf("conversation %+v, %v; want %+v", got, err, c)
	}

	in := bridge.Inbound{ID: bridge.NewID(), Provider: "voip", DedupeKey: "in-1", From: c.Phone, To: c.Our, Text: "yes",
		Received: at.Add(time.Minute), Raw: "smsid=in-1&x=\x00\xff", Conversation: c.ID, MailTo: "a@example.com", Created: at.Add(time.Minute)}
	retried := in
	retried.ID = bridge.NewID()
	if n, err := s.ImportInbound(ctx, []bridge.Inbound{in, retried}); err != nil || n != 1 {
		t.Fatalf("import inbound: %d, %v; want 1 stored", n, err)
	}
	if err := s.RecordInbound(ctx, &retried, nil, nil); !errors.Is(err, bridge.ErrDuplicateKey) {
		t.Errorf("recording it again: %v, want ErrDuplicateKey", err)
	}
	if log, err := s.ConversationLog(ctx, c.ID, 0); err != nil || len(log) != 1 || log[0].InboundID != in.ID || log[0].Text != "yes" {
		t.Errorf("conversation log: %v, %+v", err, log)
	}
	if _, err := s.ImportInbound(ctx, []bridge.Inbound{{ID: "x", Provider: "voip", Conversation: c.ID}}); bridge.ReasonOf(err) != bridge.ReasonInvalid {
		t.Errorf("inbound without a dedupe key: %v, want invalid", err)
	}

	sent := bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailReply, Ref: in.ID, From: "+15550000001@sms.example.com",
		To: "a@example.com", Data: []byte("Subject: Re: Hi\r\n\r\nyes\r\n"), State: bridge.MailSent, Attempts: 1,
		Created: at, Updated: at.Add(time.Second)}
	retry := bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, To: "a@example.com", Data: []byte("\xff\x00"),
		State: bridge.MailQueued, Attempts: 3, NextAttempt: at.Add(time.Hour), Error: "451 later", Created: at, Updated: at}
	for range 2 {
		if _, err := s.ImportMail(ctx, []bridge.OutMail{sent, retry}); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := s.MailStats(ctx); err != nil || st.Queued != 1 {
		t.Errorf("mail stats %+v, %v; want the retry queued, once", st, err)
	}
	for _, want := range []bridge.OutMail{sent, retry} {
		got, err := s.Mail(ctx, want.ID)
		if err != nil || got.State != want.State || got.Attempts != want.Attempts || !got.NextAttempt.Equal(want.NextAttempt) ||
			got.Error != want.Error || !bytes.Equal(got.Data, want.Data) || !got.Updated.Equal(want.Updated) || got.Kind != want.Kind {
			t.Errorf("mail %s: %+v, %v; want %+v", want.ID, got, err, want)
		}
	}
	if mails, err := s.ClaimMail(ctx, at.Add(2*time.Hour), 10, time.Minute); err != nil || len(mails) != 1 || mails[0].ID != retry.ID {
		t.Errorf("claim: %v, %+v; want the retry", err, mails)
	}
	bad := retry
	bad.ID, bad.State = bridge.NewID(), "lost"
	if _, err := s.ImportMail(ctx, []bridge.OutMail{bad}); bridge.ReasonOf(err) != bridge.ReasonInvalid {
		t.Errorf("mail in state lost: %v, want invalid", err)
	}

	// A poller of this database moved on: its cursor is newer than the
	// imported one and stays.
	live := bridge.Inbound{ID: bridge.NewID(), Provider: "edge", DedupeKey: "99", From: c.Phone, Conversation: c.ID, Received: at, Created: at}
	if err := s.RecordInbound(ctx, &live, nil, &bridge.Cursor{Name: "inbox:edge", Value: "99"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ImportCursors(ctx, []bridge.Cursor{{Name: "inbox:edge", Value: "42"}, {Name: "inbox:other", Value: "7"}}); err != nil || n != 1 {
		t.Fatalf("import cursors: %d, %v; want 1 stored", n, err)
	}
	for name, want := range map[string]string{"inbox:edge": "99", "inbox:other": "7"} {
		if v, err := s.Cursor(ctx, name); err != nil || v != want {
			t.Errorf("cursor %s: %q, %v; want %q", name, v, err, want)
		}
	}
}

func TestImportSenderClaims(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	ctx := context.Background()
	at := time.UnixMilli(1_900_000_000_000).UTC()
	const phone, other = "+15550000001", "+15550000002"

	// Claims made on this database before the import: one the imported
	// copy ends before, one it ends after.
	mine := bridge.SenderClaim{Phone: phone, Our: "+15551110001", Writer: "a@example.com", Until: at.Add(2 * time.Hour)}
	shorter := bridge.SenderClaim{Phone: phone, Our: "+15551110002", Writer: "b@example.com", Until: at.Add(time.Hour)}
	if err := s.ClaimSenders(ctx, []string{phone}, at, func([]bridge.SenderClaim) ([]bridge.SenderClaim, error) {
		return []bridge.SenderClaim{mine, shorter}, nil
	}); err != nil {
		t.Fatal(err)
	}
	earlier := mine
	earlier.Until = at.Add(time.Hour)
	later := shorter
	later.Until = at.Add(3 * time.Hour)
	sharer := bridge.SenderClaim{Phone: phone, Our: mine.Our, Writer: "c@example.com", Until: at.Add(30 * time.Minute)}
	ranOut := bridge.SenderClaim{Phone: other, Our: mine.Our, Writer: "a@example.com", Until: at.Add(-time.Hour)}
	page := []bridge.SenderClaim{earlier, later, sharer, ranOut}
	if n, err := s.ImportSenderClaims(ctx, page); err != nil || n != 3 {
		t.Fatalf("import: %d, %v; want 3 stored (one extended, two new)", n, err)
	}
	if n, err := s.ImportSenderClaims(ctx, page); err != nil || n != 0 {
		t.Fatalf("import again: %d, %v; want 0", n, err)
	}

	for _, c := range []struct {
		phone, our string
		at         time.Time
		want       []bridge.SenderClaim
	}{
		{phone, mine.Our, at, []bridge.SenderClaim{mine, sharer}}, // the later end of mine stays
		{phone, shorter.Our, at, []bridge.SenderClaim{later}},     // extended
		{other, mine.Our, at, nil},                                // ran out, as it had
		{other, mine.Our, at.Add(-2 * time.Hour), []bridge.SenderClaim{ranOut}},
	} {
		got, err := s.LiveClaims(ctx, c.phone, c.our, c.at)
		slices.SortFunc(got, func(a, b bridge.SenderClaim) int { return strings.Compare(a.Writer, b.Writer) })
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("live claims of %s with %s at %v: %+v, %v; want %+v", c.phone, c.our, c.at, got, err, c.want)
		}
	}

	bad := sharer
	bad.Writer = ""
	if _, err := s.ImportSenderClaims(ctx, []bridge.SenderClaim{bad}); bridge.ReasonOf(err) != bridge.ReasonInvalid {
		t.Errorf("claim without a writer: %v, want invalid", err)
	}
}

func TestImportAlertRefs(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	ctx := context.Background()
	at := time.UnixMilli(1_900_000_000_000).UTC()
	const phone, other = "+15550000001", "+15550000002"
	group := func(alert string, paged time.Time) bridge.AlertRef {
		labels := map[string]string{"alertname": alert}
		return bridge.AlertRef{Account: "ops", Source: "alertmanager", GroupKey: bridge.AlertGroupKey("alertmanager", labels),
			Labels: labels, Title: alert, Paged: paged}
	}

	// Paged from this database before the import: the phone's #1.
	fresh := group("Fresh", at)
	if refs, err := s.PageAlert(ctx, fresh, []string{phone}); err != nil || refs[phone] != 1 {
		t.Fatalf("page: %v, %v", refs, err)
	}

	taken := group("Old", at.Add(-3*time.Hour)) // under the #1 this database gave Fresh
	taken.Phone, taken.Ref = phone, 1
	moved := fresh // the group this database filed already, under another number
	moved.Phone, moved.Ref, moved.Paged = phone, 2, at.Add(-2*time.Hour)
	silenced := group("DiskFull", at.Add(-time.Hour))
	silenced.Phone, silenced.Ref, silenced.SilenceID, silenced.SilencedUntil = phone, 7, "s-1", at.Add(time.Hour)
	latest := group("Old", at)
	latest.Phone, latest.Ref = other, 3
	page := []bridge.AlertRef{taken, moved, silenced, latest}
	if n, err := s.ImportAlertRefs(ctx, page); err != nil || n != 2 {
		t.Fatalf("import: %d, %v; want 2 stored", n, err)
	}
	if n, err := s.ImportAlertRefs(ctx, page); err != nil || n != 0 {
		t.Fatalf("import again: %d, %v; want 0", n, err)
	}

	kept := fresh
	kept.Phone, kept.Ref = phone, 1
	for _, c := range []struct {
		phone string
		ref   int
		want  bridge.AlertRef
	}{
		{phone, 1, kept}, {phone, 7, silenced}, {other, 3, latest}, {other, 0, latest}, {phone, 0, kept},
	} {
		if got, err := s.AlertRef(ctx, c.phone, "ops", c.ref); err != nil || !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%s #%d: %+v, %v; want %+v", c.phone, c.ref, got, err, c.want)
		}
	}
	if _, err := s.AlertRef(ctx, phone, "ops", 2); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("%s #2: %v, want not found (its group is #1 here)", phone, err)
	}

	// Paging the phone again: an imported group keeps its number, a new
	// one comes after the imported ones.
	if refs, err := s.PageAlert(ctx, group("DiskFull", at.Add(time.Minute)), []string{phone}); err != nil || refs[phone] != 7 {
		t.Errorf("paging DiskFull again: %v, %v; want #7", refs, err)
	}
	if refs, err := s.PageAlert(ctx, group("New", at.Add(time.Minute)), []string{phone}); err != nil || refs[phone] != 8 {
		t.Errorf("paging a new group: %v, %v; want #8", refs, err)
	}

	noRef := latest
	noRef.Ref = 0
	noLabels := latest
	noLabels.Ref, noLabels.Labels = 4, nil
	for _, bad := range []bridge.AlertRef{noRef, noLabels} {
		if _, err := s.ImportAlertRefs(ctx, []bridge.AlertRef{bad}); bridge.ReasonOf(err) != bridge.ReasonInvalid {
			t.Errorf("importing %+v: %v, want invalid", bad, err)
		}
	}
}
