package daemon_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/internal/daemon"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// stickyConfig is one account whose writers (anyone at example.com)
// text phones from pool, at a voip-communications fake with two 2-way
// numbers.
func stickyConfig(fakeURL, smarthost, pool, ambiguous string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[replies]
smarthost = %q
catch_all = "desk@example.org"
ambiguous = %q
retry_min = "100ms"
retry_max = "200ms"
[[accounts]]
name = "clinic"
emails = ["*@example.com"]
sender_ids = ["972500000001", "972500000002"]
pool = [%s]
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
`, smarthost, ambiguous, pool, fakeURL, callbackSecret)
}

// stickyMail is a writer's mail to the phone 050-123-4567; it returns
// once the SMS is recorded as sent, so that the conversation knows its
// writer before the phone answers.
func stickyMail(t *testing.T, d *daemon.Daemon, writer, msgID, text string) {
	t.Helper()
	body := fmt.Sprintf("From: %s\nMessage-ID: <%s>\nSubject: Appointment\n\n%s\n", writer, msgID, text)
	reply, err := sendMail(t, d.SMTPAddr(), writer, []string{"050-123-4567@sms.example.com"}, body)
	if err != nil {
		t.Fatalf("%s: %v", writer, err)
	}
	_, id, _ := strings.Cut(reply, "queued as ")
	eventually(t, 5*time.Second, writer+"'s SMS recorded as sent", func() bool {
		m, err := d.Store().Message(t.Context(), strings.TrimSpace(id))
		return err == nil && m.Recipients[0].State == bridge.StateSent
	})
}

// waitSent waits for the fake's n-th send and returns the number it went
// out from.
func waitSent(t *testing.T, fake *voipcomtest.Server, n int) string {
	t.Helper()
	eventually(t, 5*time.Second, fmt.Sprintf("SMS %d at the provider", n), func() bool { return len(fake.Requests()) >= n })
	f := fake.Requests()[n-1].Form
	if f.Get("to") != "972501234567" {
		t.Fatalf("SMS %d went to %q", n, f.Get("to"))
	}
	return f.Get("from")
}

// phoneReplies is the phone answering one of our numbers, through the
// provider's callback.
func phoneReplies(t *testing.T, fake *voipcomtest.Server, d interface{ HTTPAddr() string }, to, id, text string) {
	t.Helper()
	form := url.Values{"from": {"972501234567"}, "to": {to}, "msg": {text}, "smsid": {id}}
	if code, body := postCallback(t, fake, d, "/v1/providers/voip/inbound", callbackSecret, form); code != 200 {
		t.Fatalf("inbound callback: %d %v", code, body)
	}
}

// replyTo finds the captured mail to addr.
func replyTo(t *testing.T, msgs []mailtest.Message, addr string) (mail.Header, string) {
	t.Helper()
	for _, m := range msgs {
		if len(m.To) == 1 && m.To[0] == addr {
			return readMailText(t, m.Data)
		}
	}
	t.Fatalf("no mail to %s among %d", addr, len(msgs))
	return mail.Header{}, ""
}

func inReplyTo(h mail.Header) (string, []string) {
	irt, _ := h.MsgIDList("In-Reply-To")
	refs, _ := h.MsgIDList("References")
	return strings.Join(irt, " "), refs
}

// TestStickySenderPool: two writers texting one phone from a two-number
// pool get different numbers, and each keeps theirs; the phone's answer
// on each number reaches its writer, threaded under their mail, with no
// word of ambiguity.
func TestStickySenderPool(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001", "972500000002")
	d := start(t, stickyConfig(fake.URL, capture.Addr(), `"972500000001", "972500000002"`, "last"))

	stickyMail(t, d, "alice@example.com", "a1@example.com", "Your appointment is at 9.")
	aliceNum := waitSent(t, fake, 1)
	stickyMail(t, d, "bob@example.com", "b1@example.com", "Please bring your card.")
	bobNum := waitSent(t, fake, 2)
	if aliceNum == bobNum {
		t.Fatalf("alice and bob both texted the phone from %s; the pool has two numbers", aliceNum)
	}
	// Alice writes again, after bob: she keeps her number.
	stickyMail(t, d, "alice@example.com", "a2@example.com", "Or 10, if you prefer.")
	if again := waitSent(t, fake, 3); again != aliceNum {
		t.Fatalf("alice's second SMS from %s, want her number %s", again, aliceNum)
	}

	phoneReplies(t, fake, d, bobNum, "in-b", "I have it.")
	phoneReplies(t, fake, d, aliceNum, "in-a", "10 is better.")
	msgs, err := capture.Wait(ctx5(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct{ to, text, parent string }{
		{"alice@example.com", "10 is better.", "a2@example.com"},
		{"bob@example.com", "I have it.", "b1@example.com"},
	} {
		h, text := replyTo(t, msgs, w.to)
		if strings.TrimSpace(text) != w.text {
			t.Errorf("%s got %q, want %q", w.to, text, w.text)
		}
		if irt, refs := inReplyTo(h); irt != w.parent || len(refs) != 1 || refs[0] != w.parent {
			t.Errorf("%s's reply: In-Reply-To %q References %v, want under %s", w.to, irt, refs, w.parent)
		}
		if h.Get("X-SMS-Ambiguous") != "" || strings.Contains(text, "someone else") {
			t.Errorf("%s's reply says it is ambiguous: %q", w.to, h.Get("X-SMS-Ambiguous"))
		}
	}
}

// TestStickySenderPoolExhausted: with a one-number pool, alice and then
// bob text the phone from the same number; the phone's answer goes where
// replies.ambiguous says, and says that it may be meant for someone else.
func TestStickySenderPoolExhausted(t *testing.T) {
	for _, tc := range []struct{ policy, to, parent string }{
		{"last", "bob@example.com", "b1@example.com"},
		{"catch_all", "desk@example.org", ""},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			capture := mailtest.Start(t, mailtest.Options{})
			fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001", "972500000002")
			d := start(t, stickyConfig(fake.URL, capture.Addr(), `"972500000002"`, tc.policy))

			stickyMail(t, d, "alice@example.com", "a1@example.com", "Your appointment is at 9.")
			if from := waitSent(t, fake, 1); from != "972500000002" {
				t.Fatalf("alice's SMS from %q, want the pool's one number", from)
			}
			stickyMail(t, d, "bob@example.com", "b1@example.com", "Please bring your card.")
			if from := waitSent(t, fake, 2); from != "972500000002" {
				t.Fatalf("bob's SMS from %q, want the pool's one number", from)
			}

			phoneReplies(t, fake, d, "972500000002", "in-1", "Thanks!")
			msgs, err := capture.Wait(ctx5(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			h, text := replyTo(t, msgs, tc.to)
			if got := h.Get("X-SMS-Ambiguous"); got != "2 writers" {
				t.Errorf("X-SMS-Ambiguous %q, want \"2 writers\"", got)
			}
			if !strings.HasPrefix(text, "[This reply may be meant for someone else: 2 people texted +972501234567 from +972500000002") ||
				!strings.HasSuffix(strings.TrimSpace(text), "Thanks!") {
				t.Errorf("reply text %q: want the ambiguity note, then the SMS", text)
			}
			if irt, _ := inReplyTo(h); irt != tc.parent {
				t.Errorf("In-Reply-To %q, want %q", irt, tc.parent)
			}
		})
	}
}
