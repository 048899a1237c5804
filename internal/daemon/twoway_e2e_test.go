package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

const (
	callbackSecret = "callback-secret-0123456789"
	aliceToken     = "alice-token-for-tests"
)

func voipTwoWayConfig(fakeURL, smarthost string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[replies]
smarthost = %q
retry_min = "100ms"
retry_max = "200ms"
[[accounts]]
name = "alice"
emails = ["alice@example.com", "bounces@example.com"]
# The CRM's inbox may receive replies (HTTP reply_to) but not send.
reply_to = ["crm-inbox@example.com"]
# The conversation's number is not the default: answers must find it.
sender_ids = ["972500000002", "972500000001"]
api_token_sha256 = %q
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "key"
api_password = "pw-voip"
numbers = ["972500000001", "972500000002"]
inbound_secret = %q
[[routes]]
prefix = "+972"
provider = "voip"
`, smarthost, sha(aliceToken), fakeURL, callbackSecret)
}

// readMailText parses a captured mail and returns its header and decoded
// text.
func readMailText(t *testing.T, data []byte) (mail.Header, string) {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parsing mail: %v\n%s", err, data)
	}
	var text string
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.Header.(*mail.InlineHeader); ok {
			b, _ := io.ReadAll(p.Body)
			text += string(b)
		}
	}
	return r.Header, text
}

func postCallback(t *testing.T, fake *voipcomtest.Server, d interface{ HTTPAddr() string }, path, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	u := "http://" + d.HTTPAddr() + path + "?secret=" + url.QueryEscape(secret)
	resp, err := fake.PostInbound(t.Context(), u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestTwoWayVoipcom(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{STARTTLS: false})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001", "972500000002")
	d := start(t, voipTwoWayConfig(fake.URL, capture.Addr()))

	// Alice mails the phone from the conversation's number.
	reply, err := sendMail(t, d.SMTPAddr(), "alice@example.com", []string{"050-123-4567@sms.example.com"},
		"From: Alice <alice@example.com>\nMessage-ID: <orig-1@example.com>\nSubject: Dinner\nX-SMS-Sender: 972500000001\n\nAre you coming at 8?\n")
	if err != nil {
		t.Fatal(err)
	}
	_, msgID, _ := strings.Cut(reply, "queued as ")
	eventually(t, 5*time.Second, "the SMS", func() bool { return len(fake.Requests()) == 1 })
	if f := fake.Requests()[0].Form; f.Get("from") != "972500000001" || f.Get("to") != "972501234567" {
		t.Fatalf("sent %v", f)
	}

	// The provider reports it delivered, by its smsid.
	var sent *bridge.Message
	eventually(t, 5*time.Second, "the SMS recorded as sent", func() bool {
		sent, err = d.Store().Message(t.Context(), msgID)
		return err == nil && sent.Recipients[0].State == bridge.StateSent
	})
	if sent.Subject != "Dinner" {
		t.Errorf("stored subject %q, want the mail's, decoded once at submission", sent.Subject)
	}
	status := url.Values{"smsid": {sent.Recipients[0].ProviderID}, "status": {"DELIVRD"}}
	if code, body := postCallback(t, fake, d, "/v1/providers/voip/status", callbackSecret, status); code != 200 || body["updated"] != float64(1) {
		t.Fatalf("status callback: %d %v", code, body)
	}
	if m, _ := d.Store().Message(t.Context(), msgID); m.Recipients[0].State != bridge.StateDelivered {
		t.Errorf("after the report: %s, want delivered", m.Recipients[0].State)
	}

	// The phone answers; the provider calls back, and retries.
	form := url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {"Yes! שלום 🎉"}, "smsid": {"in-1"}}
	if code, body := postCallback(t, fake, d, "/v1/providers/voip/inbound", callbackSecret, form); code != 200 || body["duplicate"] != false {
		t.Fatalf("callback: %d %v", code, body)
	}
	if code, body := postCallback(t, fake, d, "/v1/providers/voip/inbound", callbackSecret, form); code != 200 || body["duplicate"] != true {
		t.Fatalf("retried callback: %d %v, want 200 duplicate", code, body)
	}
	// A wrong secret is refused and stores nothing.
	wrong := url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {"forged"}, "smsid": {"in-2"}}
	if code, _ := postCallback(t, fake, d, "/v1/providers/voip/inbound", callbackSecret+"x", wrong); code != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d, want 401", code)
	}

	msgs, err := capture.Wait(ctx5(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	got := msgs[0]
	if got.From != "+972501234567@sms.example.com" || len(got.To) != 1 || got.To[0] != "alice@example.com" {
		t.Fatalf("envelope from %q to %v", got.From, got.To)
	}
	h, text := readMailText(t, got.Data)
	from, _ := h.AddressList("From")
	subject, _ := h.Subject()
	inReplyTo, _ := h.MsgIDList("In-Reply-To")
	if len(from) != 1 || from[0].Address != "+972501234567@sms.example.com" || subject != "Re: Dinner" ||
		len(inReplyTo) != 1 || inReplyTo[0] != "orig-1@example.com" {
		t.Errorf("reply header: From %v, Subject %q, In-Reply-To %v", from, subject, inReplyTo)
	}
	if strings.TrimSpace(text) != "Yes! שלום 🎉" {
		t.Errorf("reply text %q", text)
	}
	replyID, _ := h.MessageID()

	// Alice answers from her mail client: quoted text below, no sender
	// header. It goes out from the number the phone wrote to.
	answer := fmt.Sprintf("From: Alice <alice@example.com>\nMessage-ID: <orig-2@example.com>\nIn-Reply-To: <%s>\nReferences: <orig-1@example.com> <%s>\nSubject: Re: Dinner\n\nGreat, see you!\n\nOn Tue, +972501234567 wrote:\n> Yes! שלום 🎉\n", replyID, replyID)
	if _, err := sendMail(t, d.SMTPAddr(), "alice@example.com", []string{"+972501234567@sms.example.com"}, answer); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the answer SMS", func() bool { return len(fake.Requests()) == 2 })

	// Alice's out-of-office answering the same reply mail is refused, not
	// texted to the phone.
	ooo := fmt.Sprintf("From: Alice <alice@example.com>\nAuto-Submitted: auto-replied (vacation)\nIn-Reply-To: <%s>\nSubject: Out of office\n\nI am away until Monday.\n", replyID)
	_, err = sendMail(t, d.SMTPAddr(), "alice@example.com", []string{"+972501234567@sms.example.com"}, ooo)
	if c, e := smtpCode(err); c != 554 || e != "5.6.0" {
		t.Errorf("out-of-office: %v, want 554 5.6.0", err)
	}
	if f := fake.Requests()[1].Form; f.Get("from") != "972500000001" || f.Get("msg") != "Great, see you!" {
		t.Errorf("answer sent as from=%q msg=%q; want the conversation's number and no quoted text", f.Get("from"), f.Get("msg"))
	}

	// The conversation log, through the API: out, in, out; the forged
	// and the retried callback are not in it.
	var conv struct {
		Phone   string `json:"phone"`
		Entries []struct {
			Direction string `json:"direction"`
			Text      string `json:"text"`
			State     string `json:"state"`
			Raw       string `json:"raw"`
		} `json:"log"`
	}
	convs := getJSON(t, d, "/v1/conversations?phone=%2B972501234567")
	list, _ := convs["conversations"].([]any)
	if len(list) != 1 {
		t.Fatalf("conversations: %v", convs)
	}
	id := list[0].(map[string]any)["id"].(string)
	// The answer's outcome is recorded just after the provider call.
	var raw []byte
	eventually(t, 5*time.Second, "the answer in the log", func() bool {
		raw, _ = json.Marshal(getJSON(t, d, "/v1/conversations/"+id))
		return json.Unmarshal(raw, &conv) == nil && len(conv.Entries) == 3
	})
	var thread []string
	for _, e := range conv.Entries {
		thread = append(thread, e.Direction+": "+e.Text)
	}
	if want := "out: Are you coming at 8?|in: Yes! שלום 🎉|out: Great, see you!"; strings.Join(thread, "|") != want {
		t.Fatalf("thread = %q\nwant %q\n(%s)", strings.Join(thread, "|"), want, raw)
	}
	if conv.Entries[0].State != "delivered" {
		t.Errorf("first SMS %q in the log, want delivered", conv.Entries[0].State)
	}
	// The provider's request is kept for the operator, without the secret.
	if r := conv.Entries[1].Raw; !strings.Contains(r, "smsid=in-1") || strings.Contains(r, callbackSecret) {
		t.Errorf("raw request in the log: %q", r)
	}
}

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func getJSON(t *testing.T, d interface{ HTTPAddr() string }, path string) map[string]any {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+d.HTTPAddr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v %v", path, resp.StatusCode, out, err)
	}
	return out
}

func TestBounceForPermanentFailure(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001", "972500000002")
	fake.FailRecipient("972501234567", 400, "number is blacklisted")
	d := start(t, voipTwoWayConfig(fake.URL, capture.Addr()))

	if _, err := sendMail(t, d.SMTPAddr(), "bounces@example.com", []string{"0501234567@sms.example.com", "0507654321@sms.example.com"},
		"From: Alice <alice@example.com>\nMessage-ID: <orig-9@example.com>\nSubject: Reminder\n\nDon't forget\n"); err != nil {
		t.Fatal(err)
	}
	msgs, err := capture.Wait(ctx5(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	dsn := msgs[0]
	if dsn.From != "" || len(dsn.To) != 1 || dsn.To[0] != "bounces@example.com" {
		t.Fatalf("DSN envelope from %q to %v; want the null sender to the envelope sender", dsn.From, dsn.To)
	}
	e, err := message.Read(bytes.NewReader(dsn.Data))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := e.Header.ContentType()
	if mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %s %v", mt, params)
	}
	var status string
	mr := e.MultipartReader()
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if pt, _, _ := p.Header.ContentType(); pt == "message/delivery-status" {
			b, _ := io.ReadAll(p.Body)
			// Unfold: long fields continue on lines starting with a space.
			status = strings.NewReplacer("\r\n ", " ", "\n ", " ").Replace(string(b))
		}
	}
	for _, want := range []string{"Final-Recipient: rfc822; +972501234567@sms.example.com", "Action: failed", "Status: 5.", "number is blacklisted"} {
		if !strings.Contains(status, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, status)
		}
	}
	if strings.Contains(status, "+972507654321") {
		t.Errorf("the recipient that was sent is reported failed:\n%s", status)
	}
}

func TestRepliesWaitForTheSmarthost(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001", "972500000002")
	d := start(t, voipTwoWayConfig(fake.URL, capture.Addr()))
	reply, err := sendMail(t, d.SMTPAddr(), "alice@example.com", []string{"0501234567@sms.example.com"}, "Subject: x\n\nping\n")
	if err != nil {
		t.Fatal(err)
	}
	_, msgID, _ := strings.Cut(reply, "queued as ")
	// Replies go to alice once her SMS is recorded as sent, a moment
	// after the provider took it.
	eventually(t, 5*time.Second, "the SMS recorded as sent", func() bool {
		m, err := d.Store().Message(t.Context(), msgID)
		return err == nil && m.Recipients[0].State == bridge.StateSent
	})

	capture.Down()
	for i, text := range []string{"one", "two"} {
		form := url.Values{"from": {"972501234567"}, "to": {"972500000002"}, "msg": {text}, "smsid": {fmt.Sprint("w-", i)}}
		if code, body := postCallback(t, fake, d, "/v1/providers/voip/inbound", callbackSecret, form); code != 200 {
			t.Fatalf("callback: %d %v", code, body)
		}
	}
	// Tried and failed while down: still queued.
	eventually(t, 10*time.Second, "failed attempts", func() bool {
		return mailRetries(t, d) >= 2
	})
	if st, err := d.Store().MailStats(t.Context()); err != nil || st.Queued != 2 {
		t.Fatalf("mail queue while the smarthost is down: %+v, %v", st, err)
	}
	capture.Up()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	msgs, err := capture.Wait(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range msgs {
		_, text := readMailText(t, m.Data)
		texts = append(texts, strings.TrimSpace(text))
	}
	if strings.Join(texts, ",") != "one,two" && strings.Join(texts, ",") != "two,one" {
		t.Errorf("delivered %q", texts)
	}
	eventually(t, 5*time.Second, "an empty mail queue", func() bool {
		st, err := d.Store().MailStats(t.Context())
		return err == nil && st.Queued == 0
	})
}

func ippanelTwoWayConfig(fakeURL, smarthost string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
default_region = "IR"
[replies]
smarthost = %q
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
[[routes]]
prefix = "+98"
provider = "edge"
`, smarthost, fakeURL)
}

func TestTwoWayIPPanelPolling(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	fake := ippaneltest.NewServer(t, "tok-7f3a9d", "+983000505")
	// History from before the bridge ran: logged, not mailed.
	fake.AddInboundAt("+989120000009", "+983000505", "old news", time.Now().Add(-48*time.Hour))
	d := start(t, ippanelTwoWayConfig(fake.URL, capture.Addr()))

	reply, err := sendMail(t, d.SMTPAddr(), "orders@shop.example", []string{"09120000001@sms.example.com"},
		"From: Orders <orders@shop.example>\nMessage-ID: <order-77@shop.example>\nSubject: Order 77\n\nYour order has shipped\n")
	if err != nil {
		t.Fatal(err)
	}
	_, msgID, _ := strings.Cut(reply, "queued as ")
	eventually(t, 5*time.Second, "the SMS recorded as sent", func() bool {
		m, err := d.Store().Message(t.Context(), msgID)
		return err == nil && m.Recipients[0].State == bridge.StateSent
	})

	fake.AddInbound("+989120000001", "+983000505", "ممنون")
	msgs, err := capture.Wait(ctx15(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	h, text := readMailText(t, msgs[0].Data)
	inReplyTo, _ := h.MsgIDList("In-Reply-To")
	if msgs[0].To[0] != "orders@shop.example" || strings.TrimSpace(text) != "ممنون" || len(inReplyTo) != 1 || inReplyTo[0] != "order-77@shop.example" {
		t.Errorf("reply to %v, text %q, In-Reply-To %v", msgs[0].To, text, inReplyTo)
	}

	// The delivery report, polled from the recipients report.
	m, err := d.Store().Message(t.Context(), msgID)
	if err != nil {
		t.Fatal(err)
	}
	var bulk int64
	fmt.Sscan(m.Recipients[0].ProviderID, &bulk)
	fake.SetStatus(bulk, "+989120000001", 2)
	eventually(t, 15*time.Second, "delivered", func() bool {
		m, err := d.Store().Message(t.Context(), msgID)
		return err == nil && m.Recipients[0].State == bridge.StateDelivered
	})

	// Answering the reply mail goes out as SMS through the same number.
	replyID, _ := h.MessageID()
	answer := fmt.Sprintf("From: Orders <orders@shop.example>\nIn-Reply-To: <%s>\n\nYou're welcome\n\n> ممنون\n", replyID)
	if _, err := sendMail(t, d.SMTPAddr(), "orders@shop.example", []string{"+989120000001@sms.example.com"}, answer); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the answer", func() bool { return len(fake.Requests()) == 2 })
	if b := fake.Requests()[1].Body; b["message"] != "You're welcome" || b["from_number"] != "+983000505" {
		t.Errorf("answer body %v", b)
	}
	// The old message was logged and never mailed.
	if n := len(capture.Messages()); n != 1 {
		t.Errorf("%d mails; the inbox history was mailed", n)
	}
	old, err := d.Store().LatestConversation(t.Context(), "+989120000009", "", "edge")
	if err != nil {
		t.Fatalf("history not logged: %v", err)
	}
	if log, _ := d.Store().ConversationLog(t.Context(), old.ID, 0); len(log) != 1 || log[0].Text != "old news" || log[0].MailTo != "" {
		t.Errorf("history log %+v", log)
	}
}

func ctx15(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHTTPSendRepliesByMail(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001", "972500000002")
	d := start(t, voipTwoWayConfig(fake.URL, capture.Addr()))
	base := "http://" + d.HTTPAddr()

	r := call(t, "POST", base+"/v1/messages", aliceToken, `{"to": "0501234567", "text": "Your code is 4821", "reply_to": "crm-inbox@example.com"}`)
	if r.Status != 202 {
		t.Fatalf("send: %d %v", r.Status, r.Body)
	}
	bad := call(t, "POST", base+"/v1/messages", aliceToken, `{"to": "0501234567", "text": "x", "reply_to": "Ops <ops@example.com>"}`)
	if bad.Status/100 != 4 || bad.Body["field"] != "reply_to" {
		t.Errorf("bad reply_to: %d %v, want a 4xx naming reply_to", bad.Status, bad.Body)
	}
	eventually(t, 5*time.Second, "the SMS", func() bool { return len(fake.Requests()) == 1 })
	form := url.Values{"from": {"972501234567"}, "to": {"972500000002"}, "msg": {"wrong code?"}, "smsid": {"h-1"}}
	eventually(t, 5*time.Second, "the SMS recorded as sent", func() bool {
		m, err := d.Store().Message(t.Context(), r.Body["id"].(string))
		return err == nil && m.Recipients[0].State == bridge.StateSent
	})
	if code, body := postCallback(t, fake, d, "/v1/providers/voip/inbound", callbackSecret, form); code != 200 {
		t.Fatalf("callback: %d %v", code, body)
	}
	msgs, err := capture.Wait(ctx5(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].To[0] != "crm-inbox@example.com" {
		t.Errorf("reply mailed to %v, want the reply_to of the HTTP send", msgs[0].To)
	}
}

// mailRetries reads smsbridge_mails_total{kind="reply",outcome="retry"}
// from the daemon's metrics: how many reply deliveries failed and wait.
func mailRetries(t *testing.T, d interface{ HTTPAddr() string }) float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, `smsbridge_mails_total{kind="reply",outcome="retry"} `); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// TestMailInFlightAtACrashGoesOutAtStart: a reply the last run had handed
// to its mail worker when it died (claimed, its 5-minute lease running,
// never completed) is delivered as soon as the daemon starts again, on
// its second attempt, not once the lease runs out.
func TestMailInFlightAtACrashGoesOutAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "smsbridge.db")
	st, err := sqlite.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m := &bridge.OutMail{ID: bridge.NewID(), Kind: bridge.MailReply, From: "+972501234567@sms.example.com",
		To: "alice@example.com", Data: []byte("From: <+972501234567@sms.example.com>\r\nTo: <alice@example.com>\r\nSubject: Re: x\r\n\r\npong\r\n"),
		Created: now, NextAttempt: now}
	if err := st.QueueMail(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if got, err := st.ClaimMail(t.Context(), now, 10, 5*time.Minute); err != nil || len(got) != 1 {
		t.Fatalf("ClaimMail = %d, %v", len(got), err)
	}
	if err := st.Close(); err != nil { // the "crash": the claim stays
		t.Fatal(err)
	}

	capture := mailtest.Start(t, mailtest.Options{})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001", "972500000002")
	d := startStore(t, voipTwoWayConfig(fake.URL, capture.Addr()), path)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	msgs, err := capture.Wait(ctx, 1)
	if err != nil {
		t.Fatalf("the mail in flight at the crash was not delivered: %v", err)
	}
	if _, text := readMailText(t, msgs[0].Data); strings.TrimSpace(text) != "pong" {
		t.Errorf("delivered %q", text)
	}
	eventually(t, 5*time.Second, "the mail recorded as sent", func() bool {
		got, err := d.Store().Mail(t.Context(), m.ID)
		return err == nil && got.State == bridge.MailSent && got.Attempts == 2
	})
}
