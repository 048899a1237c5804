package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/postgres"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
	"github.com/smsbridge/smsbridge/internal/pgtest"
)

// oldStore is what TestMigrateStore puts in the SQLite store.
type oldStore struct {
	ids      []string // plain messages, the second with key order-17
	inFlight string   // the message whose first recipient was claimed and never completed
	conv     *bridge.Message
	inbound  *bridge.Inbound
	reply    *bridge.OutMail // queued with the inbound SMS
	bounce   *bridge.OutMail // tried once, due again in an hour
}

const (
	convPhone = "+972503333333"
	convOur   = "Shop"
)

func fillOldStore(t *testing.T, ctx context.Context, src *sqlite.Store, now time.Time) oldStore {
	t.Helper()
	var old oldStore
	for i, key := range []string{"", "order-17", ""} {
		m := &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelSMTP, Account: "ops", EnvelopeFrom: "a@example.com",
			Headers: "Subject: x\r\n", Text: "שלום " + string(rune('a'+i)), Created: now, IdempotencyKey: key,
			Recipients: []bridge.Recipient{
				{To: "+972501111111", Providers: []string{"voip", "edge"}, Provider: "voip", NextAttempt: now},
				{To: "+972502222222", Providers: []string{"voip"}, Provider: "voip", NextAttempt: now.Add(time.Hour)},
			}}
		if key != "" {
			m.RequestDigest = "digest of " + key
		}
		if err := src.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
		old.ids = append(old.ids, m.ID)
	}
	lease := func(int) time.Duration { return time.Minute }
	jobs, err := src.Claim(ctx, now, 2, nil, lease)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("claim: %v, %d", err, len(jobs))
	}
	if err := src.Complete(ctx, []bridge.Outcome{
		{RecipientID: jobs[0].Recipient.ID, State: bridge.StateSent, Provider: "edge", ProviderID: "p-1", At: now},
		{RecipientID: jobs[1].Recipient.ID, State: bridge.StateFailed, Error: "stat_code 2", At: now},
	}); err != nil {
		t.Fatal(err)
	}
	// The third message's first recipient is being sent when the daemon
	// stops: claimed, with no outcome.
	jobs, err = src.Claim(ctx, now, 1, nil, lease)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v, %d", err, len(jobs))
	}
	old.inFlight = jobs[0].Message.ID

	// Alice wrote to a phone ten minutes ago and the SMS went out, filed
	// under its conversation; five minutes later the phone answered.
	convID := bridge.ConversationID(convPhone, convOur)
	wrote := now.Add(-10 * time.Minute)
	old.conv = &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelSMTP, Account: "alice", EnvelopeFrom: "alice@example.com",
		MailMessageID: "<dinner-1@example.com>", ReplyTo: "alice@example.com", Subject: "Dinner", Sender: convOur, Text: "Dinner at 8?", Created: wrote,
		SMSText: "Dinner at 8pm?", Encoding: bridge.GSM7, Parts: 1, EnvelopeID: "dinner+2B1", Return: bridge.ReturnHeaders,
		Recipients: []bridge.Recipient{{To: convPhone, Providers: []string{"voip"}, Provider: "voip", NextAttempt: now.Add(2 * time.Hour),
			Notify: bridge.NotifySuccess | bridge.NotifyDelay, ORCPT: "rfc822;" + convPhone + "@sms.example.com"}}}
	if err := src.Enqueue(ctx, old.conv); err != nil {
		t.Fatal(err)
	}
	if err := src.Complete(ctx, []bridge.Outcome{{RecipientID: old.conv.Recipients[0].ID, State: bridge.StateSent,
		Provider: "voip", ProviderID: "p-9", Cost: "0.01", Info: map[string]string{"sale": "0.01"}, At: wrote.Add(time.Second),
		DelayNotified: true, Notified: bridge.ActionDelayed,
		Conversation: &bridge.ConversationTouch{ID: convID, Phone: convPhone, Our: convOur, Account: "alice",
			ReplyTo: "alice@example.com", MailMessageID: "<dinner-1@example.com>", Subject: "Dinner", At: wrote}}}); err != nil {
		t.Fatal(err)
	}

	// The delivery report of the SMS sent through edge was asked for.
	if ids, err := src.Outstanding(ctx, "edge", now.Add(-time.Hour), polledAt(now), 10); err != nil || len(ids) != 1 || ids[0] != "p-1" {
		t.Fatalf("outstanding: %v, %v", ids, err)
	}

	// A bounce tried once while the smarthost was down.
	old.bounce = &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailBounce, Ref: old.ids[1], To: "a@example.com",
		Data: []byte("Subject: failed\r\n\r\nbytes as sent: \xff\x00\r\n"), Created: now.Add(-time.Minute)}
	if err := src.QueueMail(ctx, old.bounce); err != nil {
		t.Fatal(err)
	}
	if mails, err := src.ClaimMail(ctx, now, 10, time.Minute); err != nil || len(mails) != 1 {
		t.Fatalf("claim mail: %v, %d", err, len(mails))
	}
	if err := src.CompleteMail(ctx, old.bounce.ID, bridge.MailQueued, "451 4.3.0 try later", now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}

	answered := wrote.Add(5 * time.Minute)
	old.inbound = &bridge.Inbound{ID: bridge.NewID(), Provider: "voip", DedupeKey: "in-1", From: convPhone, To: convOur,
		Text: "Yes! 🎉", Received: answered, Raw: "msg=Yes&smsid=in-1", Conversation: convID, MailTo: "alice@example.com", Created: answered}
	old.reply = &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailReply, Ref: old.inbound.ID, From: convPhone + "@sms.example.com",
		To: "alice@example.com", Data: []byte("Subject: Re: Dinner\r\n\r\nYes! 🎉\r\n")}
	if err := src.RecordInbound(ctx, old.inbound, old.reply, &bridge.Cursor{Name: "inbox:edge", Value: "42"}); err != nil {
		t.Fatal(err)
	}
	return old
}

// polledAt is when fillOldStore asks for the report of p-1.
func polledAt(now time.Time) time.Time { return now.Add(-time.Minute) }

func TestMigrateStore(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dbURL, _ := pgtest.NewDatabase(t)
	path := filepath.Join(t.TempDir(), "old.db")
	src, err := sqlite.Open(ctx, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := fillOldStore(t, ctx, src, now)
	// An opt-out, lifted and given again: the list and its three changes.
	stop := bridge.SuppressionChange{Suppression: bridge.Suppression{Phone: "+972501234567", Our: "+972500000001",
		Reason: "SMS STOP", Source: "sms", By: "+972501234567", Created: now}, At: now}
	for _, step := range []string{"add", "remove", "add"} {
		var err error
		if step == "add" {
			_, _, err = src.Suppress(ctx, stop)
		} else {
			_, err = src.Unsuppress(ctx, stop, false)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	sticky := fillClaimsAndAlerts(t, ctx, src, now)
	src.Close()

	// Run twice: the second finds everything there and copies nothing.
	for run, want := range []string{
		"messages: 4 copied, 0 already there\nconversations: 1 copied, 0 already there\ninbound SMS: 1 copied, 0 already there\n" +
			"mails: 2 copied, 0 already there\npoller cursors: 1 copied, 0 already there\n" +
			"suppressions: 1 copied, 0 already there\nsuppression changes: 3 copied, 0 already there\n" +
			"sender claims: 3 copied, 0 already there\nalert references: 3 copied, 0 already there\n",
		"messages: 0 copied, 4 already there\nconversations: 0 copied, 1 already there\ninbound SMS: 0 copied, 1 already there\n" +
			"mails: 0 copied, 2 already there\npoller cursors: 0 copied, 1 already there\n" +
			"suppressions: 0 copied, 1 already there\nsuppression changes: 0 copied, 3 already there\n" +
			"sender claims: 0 copied, 3 already there\nalert references: 0 copied, 3 already there\n",
	} {
		out, errb := migrate(t, "sqlite:"+path, dbURL, 0)
		if out != want {
			t.Errorf("run %d printed\n%s\nwant\n%s(stderr: %s)", run+1, out, want, errb)
		}
	}

	src, _ = sqlite.Open(ctx, path, quiet)
	defer src.Close()
	dst, err := postgres.Open(ctx, dbURL, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for _, id := range append(old.ids, old.conv.ID) {
		want, _ := src.Message(ctx, id)
		got, err := dst.Message(ctx, id)
		if err != nil {
			t.Fatalf("%s not migrated: %v", id, err)
		}
		if got.Text != want.Text || got.Headers != want.Headers || got.ReplyTo != want.ReplyTo || got.Sender != want.Sender ||
			got.Subject != want.Subject ||
			got.MailMessageID != want.MailMessageID || !got.Created.Equal(want.Created) || len(got.Recipients) != len(want.Recipients) ||
			got.SMSText != want.SMSText || got.Encoding != want.Encoding || got.Parts != want.Parts {
			t.Fatalf("%s: got %+v, want %+v", id, got, want)
		}
		for i, w := range want.Recipients {
			g := got.Recipients[i]
			if id == old.inFlight && i == 0 {
				continue // checked below
			}
			if g.To != w.To || g.State != w.State || g.Provider != w.Provider || g.ProviderID != w.ProviderID ||
				g.Error != w.Error || g.Attempts != w.Attempts || g.ProviderAttempts != w.ProviderAttempts ||
				!g.NextAttempt.Equal(w.NextAttempt) ||
				!g.Updated.Equal(w.Updated) || strings.Join(g.Providers, ",") != strings.Join(w.Providers, ",") || g.Cost != w.Cost {
				t.Errorf("%s recipient %d: got %+v, want %+v", id, i, g, w)
			}
		}
	}
	if m, _ := dst.Message(ctx, old.conv.ID); m.SMSText != "Dinner at 8pm?" || m.Encoding != bridge.GSM7 || m.Parts != 1 ||
		m.Recipients[0].Cost != "0.01" || m.EnvelopeID != "dinner+2B1" || m.Return != bridge.ReturnHeaders ||
		m.Recipients[0].Notify != bridge.NotifySuccess|bridge.NotifyDelay || !m.Recipients[0].DelayNotified ||
		m.Recipients[0].Notified != "delayed" ||
		m.Recipients[0].ORCPT != "rfc822;"+convPhone+"@sms.example.com" {
		t.Errorf("sent text, encoding, parts or cost not migrated: %+v", m)
	}
	if got, err := dst.Suppressed(ctx, "ops", "+972500000001", []string{"+972501234567"}); err != nil || len(got) != 1 ||
		got[0].Reason != "SMS STOP" || got[0].By != "+972501234567" || !got[0].Created.Equal(now) {
		t.Errorf("suppression not migrated: %+v, %v", got, err)
	}
	h, err := dst.SuppressionHistory(ctx, bridge.SuppressionFilter{Phone: "+972501234567", Limit: 10})
	if err != nil || len(h) != 3 || h[0].Action != "add" || h[1].Action != "remove" {
		t.Errorf("suppression history not migrated: %+v, %v", h, err)
	}
	// A change made after the move comes after the imported ones.
	if _, err := dst.Unsuppress(ctx, stop, false); err != nil {
		t.Fatal(err)
	}
	if h2, _ := dst.SuppressionHistory(ctx, bridge.SuppressionFilter{Phone: "+972501234567", Limit: 10}); len(h2) != 4 || h2[0].ID <= h[0].ID {
		t.Errorf("history after a change in the new store: %+v", h2)
	}
	if m, err := dst.MessageByKey(ctx, "ops", "order-17"); err != nil || m.ID != old.ids[1] || m.RequestDigest != "digest of order-17" {
		t.Errorf("idempotency key not migrated: %v, %v", m, err)
	}
	if got, _ := dst.Message(ctx, old.conv.ID); got == nil || got.Subject != "Dinner" {
		t.Errorf("message subject not migrated: %+v", got)
	}
	// Whether and when a report was asked for (recipients.polled) orders
	// the next questions; only the database shows it.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var polled int64
	if err := conn.QueryRow(ctx, `SELECT polled FROM recipients WHERE provider_id = 'p-1'`).Scan(&polled); err != nil ||
		polled != polledAt(now).UnixMilli() {
		t.Errorf("polled of p-1: %d, %v; want %d", polled, err, polledAt(now).UnixMilli())
	}

	// The conversation: its routing, and its log both ways, which needs
	// the outbound recipient still filed under it.
	c, err := dst.LatestConversation(ctx, convPhone, "", "voip")
	if err != nil {
		t.Fatalf("conversation not migrated: %v", err)
	}
	if c.ID != bridge.ConversationID(convPhone, convOur) || c.Provider != "voip" || c.Our != convOur || c.Account != "alice" || c.ReplyTo != "alice@example.com" ||
		c.MailMessageID != "<dinner-1@example.com>" || c.Subject != "Dinner" || !c.LastOut.Equal(old.conv.Created) ||
		!c.Updated.Equal(old.inbound.Received) {
		t.Errorf("conversation routing %+v", c)
	}
	if list, err := dst.ListConversations(ctx, bridge.ConversationFilter{}); err != nil || len(list) != 1 {
		t.Errorf("conversations: %v, %d, want 1", err, len(list))
	}
	log, err := dst.ConversationLog(ctx, c.ID, 0)
	if err != nil || len(log) != 2 {
		t.Fatalf("conversation log: %v, %+v; want the SMS and its answer", err, log)
	}
	if out := log[0]; out.Direction != bridge.DirOut || out.MessageID != old.conv.ID || out.Text != "Dinner at 8?" ||
		out.State != bridge.StateSent || out.Account != "alice" || !out.At.Equal(old.conv.Created) {
		t.Errorf("outbound entry %+v", out)
	}
	if in := log[1]; in.Direction != bridge.DirIn || in.InboundID != old.inbound.ID || in.Text != "Yes! 🎉" ||
		in.MailTo != "alice@example.com" || !in.At.Equal(old.inbound.Received) {
		t.Errorf("inbound entry %+v", in)
	}
	// The provider's retry of the same SMS is still known as one.
	dup := *old.inbound
	dup.ID = bridge.NewID()
	if err := dst.RecordInbound(ctx, &dup, nil, nil); !errors.Is(err, bridge.ErrDuplicateKey) {
		t.Errorf("inbound retried after the migration: %v, want ErrDuplicateKey", err)
	}
	if v, err := dst.Cursor(ctx, "inbox:edge"); err != nil || v != "42" {
		t.Errorf("cursor: %q, %v; want 42", v, err)
	}

	// The mail queue: the reply is due, the bounce waits for its retry.
	mails, err := dst.ClaimMail(ctx, time.Now(), 10, time.Minute)
	if err != nil || len(mails) != 1 {
		t.Fatalf("claim mail: %v, %+v; want the reply only", err, mails)
	}
	if m := mails[0]; m.ID != old.reply.ID || m.Kind != bridge.MailReply || m.Ref != old.inbound.ID || m.From != old.reply.From ||
		m.To != old.reply.To || !bytes.Equal(m.Data, old.reply.Data) || m.Attempts != 1 {
		t.Errorf("reply mail %+v", m)
	}
	b, err := dst.Mail(ctx, old.bounce.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.State != bridge.MailQueued || b.Attempts != 1 || !b.NextAttempt.Equal(now.Add(time.Hour)) || b.Error != "451 4.3.0 try later" ||
		b.From != "" || !bytes.Equal(b.Data, old.bounce.Data) || !b.Created.Equal(old.bounce.Created) {
		t.Errorf("bounce %+v", b)
	}

	// The send that was in flight is due at once, as the old store's
	// Recover would have made it; nothing else is.
	jobs, err := dst.Claim(ctx, time.Now(), 10, nil, func(int) time.Duration { return time.Minute })
	if err != nil || len(jobs) != 1 || jobs[0].Message.ID != old.inFlight || jobs[0].Recipient.To != "+972501111111" ||
		jobs[0].Recipient.Attempts != 2 {
		t.Errorf("claim after migration: %v, %+v; want the first recipient of %s, on its second attempt", err, jobs, old.inFlight)
	}

	sticky.compare(t, ctx, src, dst)

	if _, errb := migrate(t, path, dbURL, 2); !strings.Contains(errb, "usage:") {
		t.Errorf("bad -from: %q", errb)
	}
}

// TestMigrateStorePages copies more rows than an export reads at once.
func TestMigrateStorePages(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dbURL, _ := pgtest.NewDatabase(t)
	path := filepath.Join(t.TempDir(), "old.db")
	src, err := sqlite.Open(ctx, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const n = 2*sqlite.ExportPage + 1
	now := time.Now().UTC().Truncate(time.Millisecond)
	want := map[string]int{} // message id → recipients
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() { // concurrent, so that the writer commits them in groups
			defer wg.Done()
			m := &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelHTTP, Account: "ops", Text: "x", Created: now}
			for j := range 1 + i%3 {
				m.Recipients = append(m.Recipients, bridge.Recipient{To: fmt.Sprintf("+1555%03d%04d", j, i), Providers: []string{"voip"}, NextAttempt: now})
			}
			errs <- src.Enqueue(ctx, m)
			in := &bridge.Inbound{ID: bridge.NewID(), Provider: "voip", DedupeKey: fmt.Sprint(i), From: "+15550000000",
				Conversation: bridge.ConversationID("+15550000000", ""), Received: now, Created: now}
			errs <- src.RecordInbound(ctx, in, nil, nil)
			mu.Lock()
			want[m.ID] = len(m.Recipients)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// As many phones with a sender claim and an alert reference each.
	phones := make([]string, n)
	for i := range phones {
		phones[i] = fmt.Sprintf("+1666%07d", i)
	}
	if err := src.ClaimSenders(ctx, phones, now, func([]bridge.SenderClaim) ([]bridge.SenderClaim, error) {
		claims := make([]bridge.SenderClaim, len(phones))
		for i, p := range phones {
			claims[i] = bridge.SenderClaim{Phone: p, Our: "+15550000009", Writer: "a@example.com", Until: now.Add(time.Hour)}
		}
		return claims, nil
	}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"alertname": "DiskFull"}
	if _, err := src.PageAlert(ctx, bridge.AlertRef{Account: "ops", Source: "alertmanager",
		GroupKey: bridge.AlertGroupKey("alertmanager", labels), Labels: labels, Title: "DiskFull", Paged: now}, phones); err != nil {
		t.Fatal(err)
	}

	out, errb := migrate(t, "sqlite:"+path, dbURL, 0)
	for _, line := range []string{fmt.Sprintf("messages: %d copied, 0 already there", n), fmt.Sprintf("inbound SMS: %d copied, 0 already there", n),
		fmt.Sprintf("sender claims: %d copied, 0 already there", n), fmt.Sprintf("alert references: %d copied, 0 already there", n)} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("output lacks %q:\n%s%s", line, out, errb)
		}
	}
	dst, err := postgres.Open(ctx, dbURL, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for id, rcpts := range want {
		if m, err := dst.Message(ctx, id); err != nil || len(m.Recipients) != rcpts {
			t.Fatalf("message %s: %v, %d recipients, want %d", id, err, len(m.Recipients), rcpts)
		}
	}
	if log, err := dst.ConversationLog(ctx, bridge.ConversationID("+15550000000", ""), 1000); err != nil || len(log) != n {
		t.Errorf("conversation log: %v, %d entries, want %d", err, len(log), n)
	}
	for _, p := range phones {
		if live, err := dst.LiveClaims(ctx, p, "+15550000009", now); err != nil || len(live) != 1 {
			t.Fatalf("claims of %s: %+v, %v; want one", p, live, err)
		}
		if r, err := dst.AlertRef(ctx, p, "ops", 1); err != nil || r.Title != "DiskFull" {
			t.Fatalf("%s #1: %+v, %v", p, r, err)
		}
	}
}

// stickyState is what fillClaimsAndAlerts puts in the SQLite store: the
// lookups compare asks both stores.
type stickyState struct {
	now           time.Time
	pool          string // the pool number (its OurKey) the claims hold
	gone          string // the phone whose only claim ran out an hour before now
	pager, second string // phones paged about alerts
}

// fillClaimsAndAlerts gives src sender claims and alert references as a
// daemon would leave them: Alice and Bob both hold the pool number with
// the conversation's phone, another phone's claim ran out; one alert
// group was paged to two phones and silenced by the first, which was
// then paged about a second group.
func fillClaimsAndAlerts(t *testing.T, ctx context.Context, src *sqlite.Store, now time.Time) stickyState {
	t.Helper()
	st := stickyState{now: now, pool: "+972500000009", gone: "+972504444444", pager: "+972505555555", second: "+972506666666"}
	claim := func(phone string, at time.Time, claims ...bridge.SenderClaim) {
		t.Helper()
		if err := src.ClaimSenders(ctx, []string{phone}, at, func([]bridge.SenderClaim) ([]bridge.SenderClaim, error) {
			return claims, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	claim(convPhone, now,
		bridge.SenderClaim{Phone: convPhone, Our: st.pool, Writer: "alice@example.com", Until: now.Add(2 * time.Hour)},
		bridge.SenderClaim{Phone: convPhone, Our: st.pool, Writer: "bob@example.com", Until: now.Add(time.Hour)})
	// Made three hours ago, so that the claims made since did not delete
	// it: a claim that ran out stays until a later one does.
	claim(st.gone, now.Add(-3*time.Hour),
		bridge.SenderClaim{Phone: st.gone, Our: st.pool, Writer: "alice@example.com", Until: now.Add(-time.Hour)})

	page := func(alert string, at time.Time, phones ...string) map[string]int {
		t.Helper()
		labels := map[string]string{"alertname": alert, "instance": "db1"}
		refs, err := src.PageAlert(ctx, bridge.AlertRef{Account: "ops", Source: "alertmanager",
			GroupKey: bridge.AlertGroupKey("alertmanager", labels), Labels: labels, Title: alert + " on db1", Paged: at}, phones)
		if err != nil {
			t.Fatal(err)
		}
		return refs
	}
	refs := page("DiskFull", now.Add(-time.Hour), st.pager, st.second)
	if err := src.SetAlertSilence(ctx, st.pager, refs[st.pager], "silence-1", now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	page("LoadHigh", now, st.pager)
	return st
}

// compare checks that dst, migrated from src, answers the lookups of
// sender claims and alert references as src does, and gives the next
// alert group the reference src would.
func (st stickyState) compare(t *testing.T, ctx context.Context, src *sqlite.Store, dst *postgres.Store) {
	t.Helper()
	byWriter := func(a, b bridge.SenderClaim) int { return strings.Compare(a.Writer, b.Writer) }
	for _, q := range []struct {
		phone string
		at    time.Time
		live  int
	}{
		{convPhone, st.now, 2},
		{convPhone, st.now.Add(90 * time.Minute), 1}, // Bob's ran out, Alice's not
		{st.gone, st.now, 0},
		{st.gone, st.now.Add(-2 * time.Hour), 1},
	} {
		want, err := src.LiveClaims(ctx, q.phone, st.pool, q.at)
		if err != nil || len(want) != q.live {
			t.Fatalf("source's live claims of %s at %v: %+v, %v; want %d", q.phone, q.at, want, err, q.live)
		}
		got, err := dst.LiveClaims(ctx, q.phone, st.pool, q.at)
		slices.SortFunc(want, byWriter)
		slices.SortFunc(got, byWriter)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("live claims of %s at %v: %+v, %v; want %+v", q.phone, q.at, got, err, want)
		}
	}

	for _, q := range []struct {
		phone string
		ref   int
		title string
	}{
		{st.pager, 1, "DiskFull on db1"}, {st.pager, 2, "LoadHigh on db1"}, {st.pager, 0, "LoadHigh on db1"},
		{st.second, 1, "DiskFull on db1"}, {st.second, 0, "DiskFull on db1"},
	} {
		want, err := src.AlertRef(ctx, q.phone, "ops", q.ref)
		if err != nil || want.Title != q.title {
			t.Fatalf("source's %s #%d: %+v, %v; want %s", q.phone, q.ref, want, err, q.title)
		}
		if got, err := dst.AlertRef(ctx, q.phone, "ops", q.ref); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s #%d: %+v, %v; want %+v", q.phone, q.ref, got, err, want)
		}
	}
	if r, _ := dst.AlertRef(ctx, st.pager, "ops", 1); r == nil || r.SilenceID != "silence-1" || !r.SilencedUntil.Equal(st.now.Add(2*time.Hour)) {
		t.Errorf("silence not migrated: %+v", r)
	}
	if _, err := dst.AlertRef(ctx, st.second, "ops", 2); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("%s #2: %v, want not found", st.second, err)
	}
	// The next group paged to both phones gets the same references from
	// either store.
	labels := map[string]string{"alertname": "Next"}
	g := bridge.AlertRef{Account: "ops", Source: "alertmanager", GroupKey: bridge.AlertGroupKey("alertmanager", labels),
		Labels: labels, Title: "Next", Paged: st.now.Add(time.Minute)}
	want, err := src.PageAlert(ctx, g, []string{st.pager, st.second})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dst.PageAlert(ctx, g, []string{st.pager, st.second}); err != nil || !maps.Equal(got, want) {
		t.Errorf("next references: %v, %v; want %v", got, err, want)
	}
}

// migrate runs migrate-store and returns its output, failing t unless it
// exits with code.
func migrate(t *testing.T, from, to string, code int) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if got := run([]string{"migrate-store", "-from", from, "-to", to}, &out, &errb); got != code {
		t.Fatalf("migrate-store -from %s: exit %d, want %d: %s", from, got, code, errb.String())
	}
	return out.String(), errb.String()
}
