package smtpin_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/smtpin"
)

// TestDSNParameters: EHLO offers DSN; RET, ENVID, NOTIFY and ORCPT are
// accepted when well formed, and a bad or too long one gets 501 5.5.4
// naming the parameter (go-smtp's own words for bad syntax, ours for
// what it lets through).
func TestDSNParameters(t *testing.T) {
	s := newServer(t, smtpin.Config{})
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	reply := func(cmd string) string {
		t.Helper()
		if cmd != "" {
			if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
				t.Fatal(err)
			}
		}
		var lines []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			lines = append(lines, strings.TrimRight(line, "\r\n"))
			if len(line) < 4 || line[3] != '-' {
				return strings.Join(lines, "\n")
			}
		}
	}
	reply("")
	if ehlo := reply("EHLO client.example.com"); !strings.Contains(ehlo, "250-DSN\n") && !strings.HasSuffix(ehlo, "250 DSN") {
		t.Fatalf("EHLO does not offer DSN:\n%s", ehlo)
	}
	const mail = "MAIL FROM:<a@example.com>"
	const rcpt = "RCPT TO:<0501234567@sms.example.com>"
	for _, tc := range []struct{ cmd, want string }{
		{mail + " ENVID=" + strings.Repeat("x", 101), "501 5.5.4 ENVID: longer than 100 characters"},
		{mail + " ENVID=a+2", "501 5.5.4 Malformed ENVID parameter value"},
		{mail + " ENVID=a+0A", "501 5.5.4 Malformed ENVID parameter value"},
		{mail + " RET=BODY", "501 5.5.4 Unknown RET value"},
		{mail + " ENVID=" + strings.Repeat("x", 100) + " RET=hdrs", "250 "},
		{rcpt + " NOTIFY=NEVER,SUCCESS", "501 5.5.4 Malformed NOTIFY parameter value"},
		{rcpt + " NOTIFY=SUCCESS,SUCCESS", "501 5.5.4 Malformed NOTIFY parameter value"},
		{rcpt + " ORCPT=rfc822;" + strings.Repeat("b", 489) + "@example.com", "501 5.5.4 ORCPT: longer than 500 characters"},
		{rcpt + " ORCPT=x400;b@example.com", "501 5.5.4 Malformed ORCPT parameter value"},
		{rcpt + " ORCPT=rfc822;a+20b@example.com", "501 5.5.4 ORCPT: an rfc822 address must be printable US-ASCII"},
		{rcpt + " NOTIFY=SUCCESS,DELAY ORCPT=rfc822;" + strings.Repeat("b", 488) + "@example.com", "250 "},
		{"RCPT TO:<0501234568@sms.example.com> NOTIFY=never ORCPT=utf-8;b\\x{E9}b@example.com", "250 "},
	} {
		if got := reply(tc.cmd); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%.60s...: %q, want %q", tc.cmd, got, tc.want)
		}
	}
	if got := reply("DATA"); !strings.HasPrefix(got, "354") {
		t.Fatalf("DATA: %s", got)
	}
	got := reply("Subject: x\r\n\r\nhello\r\n.")
	id, ok := strings.CutPrefix(got, "250 2.0.0 queued as ")
	if !ok {
		t.Fatalf("end of data: %s", got)
	}
	m, err := s.store.Message(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.EnvelopeID != strings.Repeat("x", 100) || m.Return != bridge.ReturnHeaders {
		t.Errorf("stored ENVID %q RET %q", m.EnvelopeID, m.Return)
	}
	want := []struct {
		notify bridge.Notify
		orcpt  string
	}{
		{bridge.NotifySuccess | bridge.NotifyDelay, "rfc822;" + strings.Repeat("b", 488) + "@example.com"},
		{bridge.NotifyNever, "utf-8;béb@example.com"},
	}
	for i, r := range m.Recipients {
		if r.Notify != want[i].notify || r.ORCPT != want[i].orcpt {
			t.Errorf("recipient %d: NOTIFY %v ORCPT %q; want %v %q", i, r.Notify, r.ORCPT, want[i].notify, want[i].orcpt)
		}
	}
}

// TestDSNDefaultNotify: a recipient without NOTIFY gets its account's
// default, asked for through a real client.
func TestDSNDefaultNotify(t *testing.T) {
	s := newServerFull(t, smtpin.Config{}, nil, []bridge.Account{{Name: "a", Emails: []string{"*@example.com"},
		SenderIDs: []string{"A"}, Notify: bridge.NotifySuccess | bridge.NotifyFailure}}, nil)
	c := dial(t, s.addr)
	if err := c.Mail("a@example.com", &smtp.MailOptions{EnvelopeID: "e-1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("0501234567@sms.example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("0501234568@sms.example.com", &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifyDelayed}}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: x\r\n\r\nhello\r\n"))
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	_, id, _ := strings.Cut(resp.StatusText, "queued as ")
	m, err := s.store.Message(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.EnvelopeID != "e-1" || m.Recipients[0].Notify != bridge.NotifySuccess|bridge.NotifyFailure ||
		m.Recipients[1].Notify != bridge.NotifyDelay {
		t.Errorf("ENVID %q, NOTIFY %v and %v", m.EnvelopeID, m.Recipients[0].Notify, m.Recipients[1].Notify)
	}
}
