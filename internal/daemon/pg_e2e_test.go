package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/internal/daemon"
	"github.com/smsbridge/smsbridge/internal/pgtest"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// startPG is startStore with the store on the PostgreSQL database at
// dbURL. The returned function stops the daemon and waits for it (at
// cleanup too, if the test has not).
func startPG(tb testing.TB, cfgText, dbURL string) (*daemon.Daemon, func()) {
	tb.Helper()
	cfg, err := config.Parse(cfgText, daemon.Kinds)
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	cfg.Store.URL = config.Secret(dbURL)
	cfg.SMTP.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if t, ok := tb.(*testing.T); ok && testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.New(ctx, cfg, log)
	if err != nil {
		cancel()
		tb.Fatalf("daemon.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("daemon stopped with %v", err)
				}
			case <-time.After(20 * time.Second):
				tb.Error("daemon did not stop within 20s")
			}
		})
	}
	tb.Cleanup(stop)
	return d, stop
}

// sharedConfig is a bridge with a polled provider (IPPanel, every second)
// and one that calls back (voip-communications), and a smarthost.
func sharedConfig(ippanelURL, voipURL, smarthost string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
default_region = "IR"
[replies]
smarthost = %q
retry_min = "100ms"
retry_max = "200ms"
catch_all = "desk@shop.example"
[[accounts]]
name = "shop"
emails = ["orders@shop.example"]
sender_ids = ["+983000505"]
[[providers]]
name = "edge"
type = "ippanel"
base_url = %q
token = "tok-7f3a9d"
numbers = ["+983000505"]
poll_interval = "1s"
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "key"
api_password = "pw-voip"
numbers = ["972500000001"]
inbound_secret = %q
[[routes]]
prefix = "+98"
provider = "edge"
[[routes]]
prefix = "+972"
provider = "voip"
`, smarthost, ippanelURL, voipURL, callbackSecret)
}

// leaseHolder reads who holds the IPPanel poll lease ("" for nobody yet).
func leaseHolder(t *testing.T, db *pgx.Conn) string {
	t.Helper()
	var holder string
	err := db.QueryRow(t.Context(), `SELECT holder FROM leases WHERE name = 'poll:edge'`).Scan(&holder)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return holder
}

// inboxPolls counts the inbox polls the fake has answered.
func inboxPolls(fake *ippaneltest.Server) int {
	n := 0
	for _, r := range fake.ReportRequests() {
		if r.Path == "/api/report/messages-inbox" {
			n++
		}
	}
	return n
}

// inboundLog returns the texts of the SMS received from phone, as the
// conversation log shows them.
func inboundLog(t *testing.T, st daemon.Store, phone string) []string {
	t.Helper()
	list, err := st.ListConversations(t.Context(), bridge.ConversationFilter{Phone: phone, Limit: 1})
	if err != nil || len(list) == 0 {
		t.Fatalf("conversation of %s: %v", phone, err)
	}
	c := list[0]
	log, err := st.ConversationLog(t.Context(), c.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range log {
		if e.Direction == bridge.DirIn {
			texts = append(texts, e.Text)
		}
	}
	return texts
}

// TestPostgresSharedPoller runs two instances on one database: the
// IPPanel inbox is polled by whichever holds the lease, each SMS is
// recorded and mailed once, and when the holder stops the other one
// takes over.
func TestPostgresSharedPoller(t *testing.T) {
	dbURL, _ := pgtest.NewDatabase(t)
	capture := mailtest.Start(t, mailtest.Options{})
	fake := ippaneltest.NewServer(t, "tok-7f3a9d", "+983000505")
	voip := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001")
	cfg := sharedConfig(fake.URL, voip.URL, capture.Addr())
	db, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())

	// A starts first and takes the lease; B starts once it has.
	a, stopA := startPG(t, cfg, dbURL)
	var holderA string
	eventually(t, 10*time.Second, "A's poll lease", func() bool { holderA = leaseHolder(t, db); return holderA != "" })
	b, stopB := startPG(t, cfg, dbURL)

	// The shop writes to the phone through B, so that its replies are
	// routed to the shop.
	reply, err := sendMail(t, b.SMTPAddr(), "orders@shop.example", []string{"09120000001@sms.example.com"},
		"From: Orders <orders@shop.example>\nMessage-ID: <order-77@shop.example>\nSubject: Order 77\n\nYour order has shipped\n")
	if err != nil {
		t.Fatal(err)
	}
	_, msgID, _ := strings.Cut(reply, "queued as ")
	eventually(t, 10*time.Second, "the SMS sent", func() bool {
		m, err := a.Store().Message(t.Context(), msgID)
		return err == nil && m.Recipients[0].State == bridge.StateSent
	})
	if n := len(fake.Requests()); n != 1 {
		t.Fatalf("the SMS was sent %d times", n)
	}

	const phone = "+989120000001"
	// arrives adds an inbound SMS and checks that it is mailed to the
	// shop once, while the live instances keep polling; st is a live
	// one's store.
	arrives := func(st daemon.Store, text string, mails int) {
		t.Helper()
		fake.AddInbound(phone, "+983000505", text)
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		msgs, err := capture.Wait(ctx, mails)
		if err != nil {
			t.Fatalf("%q not mailed: %v", text, err)
		}
		got := msgs[mails-1]
		if _, body := readMailText(t, got.Data); len(got.To) != 1 || got.To[0] != "orders@shop.example" || strings.TrimSpace(body) != text {
			t.Fatalf("mail to %v: %q, want %q to the shop", got.To, body, text)
		}
		// Two more polls by whoever holds the lease, and the mail queue
		// empty: a second record or mail would have shown by now.
		polls := inboxPolls(fake)
		eventually(t, 10*time.Second, "two more polls", func() bool { return inboxPolls(fake) >= polls+2 })
		eventually(t, 5*time.Second, "an empty mail queue", func() bool {
			ms, err := st.MailStats(t.Context())
			return err == nil && ms.Queued == 0
		})
		if n := len(capture.Messages()); n != mails {
			t.Fatalf("%d mails after %q, want %d", n, text, mails)
		}
	}
	arrives(b.Store(), "ممنون", 1)
	if got := inboundLog(t, b.Store(), phone); strings.Join(got, "|") != "ممنون" {
		t.Fatalf("inbound log %q, want the SMS once", got)
	}

	// Stop the instance that holds the lease (A, unless it fell behind
	// and B took over); the other takes over once the lease runs out.
	holder, live := leaseHolder(t, db), b
	if holder == holderA {
		stopA()
	} else {
		stopB()
		live = a
	}
	t.Logf("stopped the lease holder %s (A: %v)", holder, holder == holderA)
	arrives(live.Store(), "دوباره ممنون", 2)
	if got := inboundLog(t, live.Store(), phone); strings.Join(got, "|") != "ممنون|دوباره ممنون" {
		t.Fatalf("inbound log %q, want each SMS once", got)
	}
	if now := leaseHolder(t, db); now == holder {
		t.Errorf("lease still held by the stopped instance %q", holder)
	}
}

// TestPostgresCallbackDedupe posts one provider callback to two
// instances at once, as a provider retrying through a load balancer
// would: the SMS is recorded and mailed once.
func TestPostgresCallbackDedupe(t *testing.T) {
	dbURL, _ := pgtest.NewDatabase(t)
	capture := mailtest.Start(t, mailtest.Options{})
	fake := ippaneltest.NewServer(t, "tok-7f3a9d", "+983000505")
	voip := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001")
	cfg := sharedConfig(fake.URL, voip.URL, capture.Addr())
	instances := []*daemon.Daemon{}
	for range 2 {
		d, _ := startPG(t, cfg, dbURL)
		instances = append(instances, d)
	}

	form := url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {"Is the shop open?"}, "smsid": {"in-77"}}
	type answer struct {
		code      int
		duplicate any
		err       error
	}
	answers := make([]answer, len(instances))
	var wg sync.WaitGroup
	for i, d := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := "http://" + d.HTTPAddr() + "/v1/providers/voip/inbound?secret=" + url.QueryEscape(callbackSecret)
			resp, err := voip.PostInbound(t.Context(), u, form)
			if err != nil {
				answers[i].err = err
				return
			}
			defer resp.Body.Close()
			var body map[string]any
			answers[i].err = json.NewDecoder(resp.Body).Decode(&body)
			answers[i].code, answers[i].duplicate = resp.StatusCode, body["duplicate"]
		}()
	}
	wg.Wait()
	firsts := 0
	for i, a := range answers {
		if a.err != nil || a.code != http.StatusOK {
			t.Fatalf("instance %d: %d, %v", i, a.code, a.err)
		}
		if a.duplicate == false {
			firsts++
		}
	}
	if firsts != 1 {
		t.Fatalf("answers %+v: want exactly one not a duplicate", answers)
	}

	msgs, err := capture.Wait(ctx5(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs[0].To) != 1 || msgs[0].To[0] != "desk@shop.example" {
		t.Errorf("mailed to %v, want the catch-all", msgs[0].To)
	}
	for i, d := range instances {
		if got := inboundLog(t, d.Store(), "+972501234567"); strings.Join(got, "|") != "Is the shop open?" {
			t.Errorf("instance %d: inbound log %q, want the SMS once", i, got)
		}
	}
	eventually(t, 5*time.Second, "an empty mail queue", func() bool {
		st, err := instances[0].Store().MailStats(t.Context())
		return err == nil && st.Queued == 0
	})
	if n := len(capture.Messages()); n != 1 {
		t.Errorf("%d mails, want 1", n)
	}
}
