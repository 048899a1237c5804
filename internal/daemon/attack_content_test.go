package daemon_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/emersion/go-message"

	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

func tinyFields(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-%d: v\n", i)
	}
	return b.String()
}

// A header block over the limits, the mail's or a part's, is refused with
// 552 5.3.4 naming the limit, and nothing is stored or sent.
func TestAttackHeaderBomb(t *testing.T) {
	e := newHTTPEnv(t, "")
	part := func(header string) string {
		return "From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\n" + header +
			"Content-Type: text/plain\n\nhello\n--b--\n"
	}
	for _, tc := range []struct{ name, mail, limit string }{
		{"1,001 fields", "From: a@example.com\n" + tinyFields(1000) + "\nhello\n", "smtp.max_header_fields"},
		{"64 KiB and more", "From: a@example.com\n" + strings.Repeat("Received: from "+strings.Repeat("r", 80)+"\n", 700) + "\nhello\n", "smtp.max_header_bytes"},
		{"a part's header of tiny fields", part(tinyFields(1001)), "smtp.max_header_fields"},
		{"a part's header too large", part("X-Big: " + strings.Repeat("y", 900) + "\n" + strings.Repeat(" "+strings.Repeat("y", 900)+"\n", 80)), "smtp.max_header_bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sendMail(t, e.d.SMTPAddr(), "alice@example.com", []string{"0501234567@sms.example.com"}, tc.mail)
			code, enh := smtpCode(err)
			if code != 552 || enh != "5.3.4" || !strings.Contains(err.Error(), tc.limit) {
				t.Fatalf("got %d %s (%v), want 552 5.3.4 naming %s", code, enh, err, tc.limit)
			}
		})
	}
	if n := len(e.voip.Requests()); n != 0 {
		t.Errorf("%d provider calls for refused mail", n)
	}
}

// A mail with a large header block within the limits is accepted, and the
// store keeps only the fields a bounce shows, each capped.
func TestAttackStoredHeaders(t *testing.T) {
	voip := voipcomtest.NewServer(t, "k", "p", "17134567890")
	edge := ippaneltest.NewServer(t, "edge-token", "+983000505")
	d := start(t, httpConfig(voip.URL, edge.URL, ""))
	subject := strings.TrimSpace(strings.Repeat("word ", 600))                                    // folded below: SMTP lines stop at 1,000
	mail := strings.Repeat("Received: from relay.example ("+strings.Repeat("r", 60)+")\n", 600) + // ~55 KiB
		tinyFields(250) +
		"From: Alice <alice@example.com>\nTo: 0501234567@sms.example.com\nSubject: " + foldEvery(subject, 100) + "\n" +
		"Date: Mon, 1 Jan 2029 10:00:00 +0000\nMessage-ID: <big.1@example.com>\n\nhello\n"
	reply, err := sendMail(t, d.SMTPAddr(), "alice@example.com", []string{"0501234567@sms.example.com"}, mail)
	if err != nil {
		t.Fatalf("mail within the limits refused: %v", err)
	}
	_, id, _ := strings.Cut(reply, "queued as ")
	m, err := d.Store().Message(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := "From: Alice <alice@example.com>\r\nTo: 0501234567@sms.example.com\r\nSubject: " + subject[:998-len("Subject: ")] +
		"\r\nDate: Mon, 1 Jan 2029 10:00:00 +0000\r\nMessage-ID: <big.1@example.com>\r\n"
	if m.Headers != want {
		t.Errorf("stored %d bytes of header:\n%.300q\nwant %d bytes:\n%.300q", len(m.Headers), m.Headers, len(want), want)
	}
	if m.Subject != subject[:998] {
		t.Errorf("stored subject of %d bytes, want its first 998", len(m.Subject))
	}
}

// A bounce is built from what the store kept: its text/rfc822-headers part
// shows the bounce fields of the mail, not the rest of its header block.
func TestAttackBounceShowsStoredHeaders(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001", "972500000002")
	fake.FailRecipient("972501234567", 400, "number is blacklisted")
	d := start(t, voipTwoWayConfig(fake.URL, capture.Addr()))
	mail := strings.Repeat("Received: from relay.example by mx.example; Mon, 1 Jan 2029 10:00:00 +0000\n", 500) +
		"From: Alice <alice@example.com>\nTo: 0501234567@sms.example.com\nMessage-ID: <orig-10@example.com>\nSubject: Reminder\nX-Mailer: bulk\n\nDon't forget\n"
	if _, err := sendMail(t, d.SMTPAddr(), "bounces@example.com", []string{"0501234567@sms.example.com"}, mail); err != nil {
		t.Fatal(err)
	}
	msgs, err := capture.Wait(ctx5(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := message.Read(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	var headers string
	mr := e.MultipartReader()
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if pt, _, _ := p.Header.ContentType(); pt == "text/rfc822-headers" {
			b, _ := io.ReadAll(p.Body)
			headers = string(b)
		}
	}
	const want = "From: Alice <alice@example.com>\r\nTo: 0501234567@sms.example.com\r\nSubject: Reminder\r\nMessage-ID: <orig-10@example.com>\r\n"
	if headers != want {
		t.Errorf("text/rfc822-headers of %d bytes:\n%.300q\nwant\n%q", len(headers), headers, want)
	}
}

// foldEvery folds s at every n-th space.
func foldEvery(s string, n int) string {
	words := strings.Split(s, " ")
	var b strings.Builder
	for i, w := range words {
		switch {
		case i == 0:
		case i%n == 0:
			b.WriteString("\n ")
		default:
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	return b.String()
}

// X-SMS-* values and template parameters over their caps are refused,
// naming the header over SMTP (554 5.6.0) and the field over HTTP (422).
func TestAttackXSMSLimits(t *testing.T) {
	e := newHTTPEnv(t, "")
	params := func(n int) (hdr, js string) {
		var h, j []string
		for i := range n {
			h = append(h, fmt.Sprintf("X-SMS-Param-p%d: %d\n", i, i))
			j = append(j, fmt.Sprintf(`"p%d": "%d"`, i, i))
		}
		return strings.Join(h, ""), "{" + strings.Join(j, ",") + "}"
	}
	twentyOneH, twentyOneJ := params(21)
	long := strings.Repeat("9", 1001)
	for _, tc := range []struct {
		name, headers, json, header, field string
	}{
		{"sender of 65 bytes", "X-SMS-Sender: " + strings.Repeat("S", 65) + "\n", `"sender": "` + strings.Repeat("S", 65) + `"`, "X-SMS-Sender", "sender"},
		{"template of 65 bytes", "X-SMS-Template: " + strings.Repeat("t", 65) + "\n", `"template": "` + strings.Repeat("t", 65) + `"`, "X-SMS-Template", "template"},
		{"21 parameters", "X-SMS-Template: pat1\n" + twentyOneH, `"template": "pat1", "params": ` + twentyOneJ, "X-SMS-Param-<name>", "params"},
		{"parameter of 1,001 bytes", "X-SMS-Template: pat1\nX-SMS-Param-code: " + long + "\n", `"template": "pat1", "params": {"code": "` + long + `"}`, "X-SMS-Param-code", "params.code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sendMail(t, e.d.SMTPAddr(), "alice@example.com", []string{"+983001234567@sms.example.com"},
				"From: alice@example.com\n"+tc.headers+"\nhello\n")
			code, enh := smtpCode(err)
			if code != 554 || enh != "5.6.0" || !strings.Contains(err.Error(), tc.header+":") {
				t.Errorf("SMTP: got %d %s (%v), want 554 5.6.0 naming %s", code, enh, err, tc.header)
			}
			r := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "+983001234567", "text": "hello", `+tc.json+`}`)
			if r.Status != http.StatusUnprocessableEntity || r.Body["field"] != tc.field || r.Body["reason"] != "invalid" {
				t.Errorf("HTTP: got %d %v, want 422 invalid on %s", r.Status, r.Body, tc.field)
			}
		})
	}
	if n := len(e.edge.Requests()) + len(e.voip.Requests()); n != 0 {
		t.Errorf("%d provider calls for refused messages", n)
	}
}

// No C0/C1 control character reaches a provider: stripped from the text
// (mail and HTTP), refused in sender, template and parameters.
func TestAttackControlCharacters(t *testing.T) {
	e := newHTTPEnv(t, "")
	dirty := "Alarm\x07 \x1b[2Jdb1\x00 down\u0085\x7f\tnow\r\nok\u009b"
	const clean = "Alarm [2Jdb1 down now\nok"
	mail := "From: alice@example.com\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" +
		base64.StdEncoding.EncodeToString([]byte(dirty)) + "\n"
	if _, err := sendMail(t, e.d.SMTPAddr(), "alice@example.com", []string{"0501234567@sms.example.com"}, mail); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"to": "0501234568", "text": %q}`, dirty)
	body = strings.NewReplacer(`\a`, `\u0007`, `\x1b`, `\u001b`, `\x00`, `\u0000`, `\x7f`, `\u007f`).Replace(body)
	if r := call(t, "POST", e.base+"/v1/messages", opsToken, body); r.Status != http.StatusAccepted {
		t.Fatalf("HTTP: %d %v", r.Status, r.Body)
	}
	eventually(t, 5*time.Second, "two provider calls", func() bool { return len(e.voip.Requests()) == 2 })
	for i, req := range e.voip.Requests() {
		msg := req.Form.Get("msg")
		if msg != clean {
			t.Errorf("call %d: msg %q, want %q", i, msg, clean)
		}
		for _, r := range msg {
			if r != '\n' && unicode.IsControl(r) {
				t.Errorf("call %d: provider got control character %U", i, r)
			}
		}
	}

	for _, tc := range []struct{ name, json, field string }{
		{"sender", `"sender": "+17134567890\u0000"`, "sender"},
		{"template", `"template": "pat\u001b1"`, "template"},
		{"parameter value", `"template": "pat1", "params": {"code": "12\u008534"}`, "params.code"},
		{"parameter name", `"template": "pat1", "params": {"co\u0007de": "1"}`, "params"},
	} {
		r := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "+983001234567", "text": "hi", `+tc.json+`}`)
		if r.Status != http.StatusUnprocessableEntity || r.Body["field"] != tc.field {
			t.Errorf("%s: got %d %v, want 422 on %s", tc.name, r.Status, r.Body, tc.field)
		}
	}
	_, err := sendMail(t, e.d.SMTPAddr(), "alice@example.com", []string{"+983001234567@sms.example.com"},
		"From: alice@example.com\nX-SMS-Template: pat1\nX-SMS-Param-code: 12\x0134\n\nhi\n")
	if code, enh := smtpCode(err); code != 554 || enh != "5.6.0" || !strings.Contains(err.Error(), "X-SMS-Param-code") {
		t.Errorf("SMTP parameter with a control character: %d %s (%v), want 554 5.6.0 naming it", code, enh, err)
	}
	if n := len(e.edge.Requests()); n != 0 {
		t.Errorf("%d IPPanel calls for refused messages", n)
	}
}

// A send may not be scheduled beyond limits.schedule_horizon; a send_at
// that is not a time is 422 naming send_at, not 400.
func TestAttackScheduleHorizon(t *testing.T) {
	voip := voipcomtest.NewServer(t, "k", "p", "17134567890")
	edge := ippaneltest.NewServer(t, "edge-token", "+983000505")
	cfg := strings.Replace(httpConfig(voip.URL, edge.URL, ""), "[limits]\n", "[limits]\nschedule_horizon = \"720h\"\n", 1)
	d := start(t, cfg)
	e := &httpEnv{base: "http://" + d.HTTPAddr(), voip: voip, edge: edge, d: d}
	far := time.Now().Add(31 * 24 * time.Hour).UTC().Format(time.RFC3339)
	near := time.Now().Add(29 * 24 * time.Hour).UTC().Format(time.RFC3339)
	_, err := sendMail(t, e.d.SMTPAddr(), "alice@example.com", []string{"+17135550100@sms.example.com"},
		"From: alice@example.com\nX-SMS-Send-At: "+far+"\n\nhello\n")
	if code, enh := smtpCode(err); code != 554 || enh != "5.6.0" || !strings.Contains(err.Error(), "X-SMS-Send-At") || !strings.Contains(err.Error(), "30 days") {
		t.Errorf("SMTP beyond the horizon: %d %s (%v), want 554 5.6.0 naming X-SMS-Send-At and the horizon", code, enh, err)
	}
	if _, err := sendMail(t, e.d.SMTPAddr(), "alice@example.com", []string{"+17135550100@sms.example.com"},
		"From: alice@example.com\nX-SMS-Send-At: "+near+"\n\nhello\n"); err != nil {
		t.Errorf("SMTP within the horizon: %v", err)
	}
	_, err = sendMail(t, e.d.SMTPAddr(), "alice@example.com", []string{"+17135550100@sms.example.com"},
		"From: alice@example.com\nX-SMS-Send-At: "+strings.Repeat("x", 900)+"\n\nhello\n")
	if code, enh := smtpCode(err); code != 554 || enh != "5.6.0" || len(err.Error()) > 200 {
		t.Errorf("SMTP unreadable X-SMS-Send-At of 900 bytes: %d %s, %d bytes of reply; want 554 5.6.0 without the echo", code, enh, len(err.Error()))
	}
	for _, tc := range []struct{ sendAt string }{{`"` + far + `"`}, {`"tomorrow"`}, {`1767225600`}} {
		r := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "+17135550100", "text": "hi", "send_at": `+tc.sendAt+`}`)
		if r.Status != http.StatusUnprocessableEntity || r.Body["field"] != "send_at" {
			t.Errorf("send_at %s: got %d %v, want 422 on send_at", tc.sendAt, r.Status, r.Body)
		}
	}
	if r := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "+17135550100", "text": "hi", "send_at": "`+near+`"}`); r.Status != http.StatusAccepted {
		t.Errorf("send_at within the horizon: %d %v", r.Status, r.Body)
	}
}
