package daemon_test

import (
	"context"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// encodingConfig has two accounts: ops with the defaults for smart
// encoding and a length policy that truncates at two parts, strict with
// smart encoding off and one part, refused beyond.
func encodingConfig(voipURL string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "ops"
emails = ["*@example.com"]
api_token_sha256 = %q
max_segments = 2
overflow = "truncate"
[[accounts]]
name = "strict"
emails = ["*@strict.example"]
api_token_sha256 = %q
max_segments = 1
smart_encoding = false
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "k"
api_password = "p"
[[routes]]
prefix = "+"
provider = "voip"
`, sha(opsToken), sha(otherToken), voipURL)
}

// TestSmartEncodingEndToEnd sends an Outlook-style mail (curly quotes,
// en dash, no-break spaces, ellipsis) through the daemon: the provider
// gets the GSM-7 text, one part instead of two; the store keeps the text
// as written with the encoding, parts and the provider's price; the API
// shows them, as do the metrics. Hebrew goes out as written; a long text
// is truncated for one account and refused for another.
func TestSmartEncodingEndToEnd(t *testing.T) {
	voip := voipcomtest.NewServer(t, "k", "p")
	d := start(t, encodingConfig(voip.URL))
	base := "http://" + d.HTTPAddr()

	// 84 characters: two UCS-2 parts as written, one GSM-7 part replaced.
	const written = "It’s confirmed: Tuesday,\u00a012\u00a0March at 10:30\u00a0– reply “CANCEL” if you can’t make it…"
	const sent = `It's confirmed: Tuesday, 12 March at 10:30 - reply "CANCEL" if you can't make it...`
	var qp strings.Builder
	w := quotedprintable.NewWriter(&qp)
	io.WriteString(w, written)
	w.Close()
	reply, err := sendMail(t, d.SMTPAddr(), "alice@example.com", []string{"0501234567@sms.example.com"},
		"From: alice@example.com\nSubject: appointment\nContent-Type: text/plain; charset=utf-8\n"+
			"Content-Transfer-Encoding: quoted-printable\n\n"+strings.ReplaceAll(qp.String(), "\r\n", "\n")+"\n")
	if err != nil {
		t.Fatal(err)
	}
	_, id, _ := strings.Cut(reply, "queued as ")
	eventually(t, 5*time.Second, "the provider call", func() bool { return len(voip.Requests()) == 1 })
	if got := voip.Requests()[0].Form.Get("msg"); got != sent {
		t.Errorf("provider got msg %q, want %q", got, sent)
	}

	var m *bridge.Message
	eventually(t, 5*time.Second, "the send recorded", func() bool {
		m, err = d.Store().Message(context.Background(), id)
		return err == nil && m.Recipients[0].State == bridge.StateSent
	})
	if m.Text != written || m.SMSText != sent || m.Encoding != bridge.GSM7 || m.Parts != 1 || m.Recipients[0].Cost != "0.01" {
		t.Errorf("stored text %q, sent %q, %s, %d parts, cost %q; want the text as written, the GSM-7 text, 1 part, 0.01",
			m.Text, m.SMSText, m.Encoding, m.Parts, m.Recipients[0].Cost)
	}
	r := call(t, "GET", base+"/v1/messages/"+id, opsToken, "")
	rcpts, _ := r.Body["recipients"].([]any)
	if r.Status != http.StatusOK || r.Body["encoding"] != "GSM-7" || r.Body["parts"] != 1.0 || len(rcpts) != 1 ||
		rcpts[0].(map[string]any)["cost"] != 0.01 {
		t.Errorf("GET /v1/messages/%s = %d %v; want GSM-7, 1 part, cost 0.01", id, r.Status, r.Body)
	}

	// Hebrew needs UCS-2 anyway: its dash and quotes stay as written.
	const hebrew = "שלום דנה, התור מחר ב-10:30\u00a0– “ביטול” לביטול"
	r = call(t, "POST", base+"/v1/messages", opsToken, fmt.Sprintf(`{"to": "0501234568", "text": %q}`, hebrew))
	if r.Status != http.StatusAccepted || r.Body["encoding"] != "UCS-2" || r.Body["parts"] != 1.0 {
		t.Errorf("Hebrew: %d %v; want 202, UCS-2, 1 part", r.Status, r.Body)
	}
	eventually(t, 5*time.Second, "the Hebrew send", func() bool { return len(voip.Requests()) == 2 })
	if got := voip.Requests()[1].Form.Get("msg"); got != hebrew {
		t.Errorf("provider got %q, want the Hebrew as written", got)
	}

	// ops truncates at two parts: 300 septets and "...".
	long := strings.Repeat("disk /var at 97% on db-1; ", 20) // 520 characters, GSM-7
	r = call(t, "POST", base+"/v1/messages", opsToken, fmt.Sprintf(`{"to": "0501234569", "text": %q}`, long))
	if r.Status != http.StatusAccepted || r.Body["encoding"] != "GSM-7" || r.Body["parts"] != 2.0 {
		t.Errorf("long text: %d %v; want 202, GSM-7, 2 parts", r.Status, r.Body)
	}
	eventually(t, 5*time.Second, "the truncated send", func() bool { return len(voip.Requests()) == 3 })
	got := voip.Requests()[2].Form.Get("msg")
	if seg := bridge.CountSegments(got); seg.Count != 2 || !strings.HasSuffix(got, "...") ||
		!strings.HasPrefix(long, strings.TrimSuffix(got, "...")) || long[len(got)-3] != ' ' {
		t.Errorf("provider got %q (%s); want the text cut at a word boundary to two parts, ending with ...", got, seg)
	}

	// strict has smart encoding off and one part: the same text as the
	// mail is two UCS-2 parts, refused before acceptance.
	r = call(t, "POST", base+"/v1/messages", otherToken, fmt.Sprintf(`{"to": "0501234570", "text": %q}`, written))
	if r.Status != http.StatusUnprocessableEntity || r.Body["field"] != "text" || r.Body["reason"] != string(bridge.ReasonTooLong) {
		t.Errorf("strict account: %d %v; want 422 too_long on text", r.Status, r.Body)
	}

	var text string
	eventually(t, 5*time.Second, "metrics", func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(b)
		return strings.Contains(text, `smsbridge_sms_parts_total{account="ops",provider="voip"} 4`)
	})
	for _, want := range []string{
		`smsbridge_sms_cost_total{account="ops",provider="voip"} 0.03`,
		`smsbridge_smart_encoding_parts_saved_total{account="ops"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !utf8.ValidString(got) {
		t.Errorf("truncated text is not UTF-8")
	}
}
