package mailout_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout"
)

// FuzzBuildReply: whatever the free text, the reply parses, has exactly
// the usual top-level fields, and carries the text unchanged but for line
// breaks.
func FuzzBuildReply(f *testing.F) {
	f.Add("Re: hello", "+972 50", "שלום 🙂", "orig@example.com", "root@example.com", "+972501234567")
	f.Add("x\r\nBcc: a@b", "n\r\n\r\n--b", "\r\n.\r\n--frontier--\r\n", "<a@b>\r\nX: y", "r@x\nBcc: z", "\n\n")
	f.Add("=?utf-8?q?=0D=0ABcc:_x?=", "\"quoted\" <x@y>", "=\r\n=3D=0D", "", "", "")
	f.Add(strings.Repeat("long ", 300), strings.Repeat("ä", 200), strings.Repeat("a", 2000), "a@[127.0.0.1]", "<<a@b>>", "\x00\x7f\u2028")
	f.Fuzz(func(t *testing.T, subject, name, text, inReplyTo, ref, extra string) {
		r := mailout.Reply{
			From: "+972501234567@sms.example.com", FromName: name, To: "dana@example.com",
			Subject: subject, Text: text, MessageID: "m1@sms.example.com",
			InReplyTo: inReplyTo, References: []string{ref}, Date: date,
			Extra: []mailout.Field{{Key: "X-SMS-From", Value: extra}},
		}
		data, err := mailout.BuildReply(r)
		if err != nil {
			t.Fatalf("BuildReply: %v", err)
		}
		e := readMail(t, data)
		want := []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To", "X-Sms-From"}
		if e.Header.Has("In-Reply-To") {
			want = append(want, "In-Reply-To")
		}
		if e.Header.Has("References") {
			want = append(want, "References")
		}
		slices.Sort(want)
		if got := keys(e.Header); !slices.Equal(got, want) {
			t.Fatalf("header fields %v, want %v\n%s", got, want, data)
		}
		if got, want := body(t, e), canonical(text); got != want {
			t.Fatalf("text %q came back as %q", want, got)
		}
	})
}

// canonical is text as a text/plain body carries it.
func canonical(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// FuzzBuildBounce: whatever the sender wrote and the providers said, the
// bounce parses as a delivery-status report with the usual fields, one
// block per recipient, and each recipient field exactly once.
func FuzzBuildBounce(f *testing.F) {
	f.Add("hello", "+972501234567@sms.example.com", "5.1.1", "invalid destination", "ENVID1",
		"Subject: hello\r\nFrom: a@b\r\n")
	f.Add("x\r\nBcc: a@b", "a\r\nAction: delivered", "2.0.0\r\nStatus: 5.0.0", "שגיאה\r\n\r\nFinal-Recipient: rfc822; x",
		"id\r\nX: y", "Subject: x\r\n\r\n--frontier\r\nContent-Type: text/html\r\n\r\n<b>")
	f.Add("", "", "", "", "", "--x\n-- \n\tcont\n: empty\nA:\n\xff\xfe: v\n")
	f.Add(strings.Repeat("s", 2000), strings.Repeat("ü", 300), "5.999.999", strings.Repeat("\\x{41}", 500), "\x00",
		strings.Repeat("X-Long: "+strings.Repeat("v", 1200)+"\r\n", 80))
	f.Fuzz(func(t *testing.T, subject, addr, status, diag, envid, headers string) {
		b := mailout.Bounce{
			From: "MAILER-DAEMON@sms.example.com", To: "dana@example.com", MessageID: "b1@sms.example.com",
			Date: date, Subject: subject, OriginalMessageID: "orig@example.com", OriginalEnvelopeID: envid,
			ArrivalDate: date, OriginalHeaders: headers,
			Recipients: []mailout.FailedRecipient{
				{Address: "+" + addr, Status: status, Reason: bridge.ReasonBadNumber, Diagnostic: diag, LastAttempt: date},
				{Address: "+972529876543@sms.example.com", Reason: bridge.ReasonExpired, Diagnostic: diag + diag},
			},
		}
		data, err := mailout.BuildBounce(b)
		if err != nil {
			t.Fatalf("BuildBounce: %v", err)
		}
		d := readDSN(t, data)
		wantKeys := []string{"Auto-Submitted", "Content-Type", "Date", "From", "In-Reply-To", "Message-Id", "Mime-Version", "References", "Subject", "To"}
		if got := keys(d.top); !slices.Equal(got, wantKeys) {
			t.Fatalf("header fields %v, want %v\n%s", got, wantKeys, data)
		}
		wantTypes := []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}
		if d.headers == "" {
			wantTypes = wantTypes[:2]
		}
		if !slices.Equal(d.types, wantTypes) {
			t.Fatalf("parts %v, want %v\n%s", d.types, wantTypes, data)
		}
		if len(d.perRcpt) != 2 {
			t.Fatalf("%d recipient blocks, want 2:\n%s", len(d.perRcpt), d.rawStatus)
		}
		if v := d.perMsg.Values("Reporting-Mta"); len(d.perMsg) > 3 || len(v) != 1 || v[0] != "dns; sms.example.com" {
			t.Fatalf("per-message block %v", d.perMsg)
		}
		for i, rc := range d.perRcpt {
			for _, k := range []string{"Final-Recipient", "Action", "Status"} {
				if len(rc.Values(k)) != 1 {
					t.Fatalf("recipient %d: %s = %q\n%s", i, k, rc.Values(k), d.rawStatus)
				}
			}
			if rc.Get("Action") != "failed" || !strings.HasPrefix(rc.Get("Status"), "5.") {
				t.Fatalf("recipient %d: Action %q, Status %q", i, rc.Get("Action"), rc.Get("Status"))
			}
			if len(rc) > 5 {
				t.Fatalf("recipient %d has fields %v", i, rc)
			}
		}
		for i := 0; i < len(d.rawStatus); i++ {
			if d.rawStatus[i] >= 0x80 {
				t.Fatalf("8-bit delivery-status:\n%s", d.rawStatus)
			}
		}
	})
}
