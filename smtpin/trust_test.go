package smtpin_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/smtpin"
)

var (
	localhost = netip.MustParseAddr("127.0.0.1")
	otherHost = netip.MustParseAddr("127.0.0.2") // on Linux all of 127/8 is local
)

// dialFrom is dialRaw from a source address, skipping where the host
// cannot use it.
func dialFrom(t *testing.T, addr string, from netip.Addr) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	rc := &rawConn{t: t, Conn: c, r: bufio.NewReader(c)}
	if r := rc.reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("greeting: %q", r)
	}
	if r := rc.cmd("EHLO client.example"); !strings.HasPrefix(r, "250") {
		t.Fatalf("EHLO: %q", r)
	}
	return rc
}

// dialTLS opens an implicit-TLS raw connection and says EHLO.
func dialTLS(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	rc := &rawConn{t: t, Conn: c, r: bufio.NewReader(c)}
	if r := rc.reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("greeting: %q", r)
	}
	if r := rc.cmd("EHLO client.example"); !strings.HasPrefix(r, "250") {
		t.Fatalf("EHLO: %q", r)
	}
	return rc
}

// Unauthenticated mail claims an account only from a network that
// account trusts; an account without networks trusts the server's
// default, loopback only when none is configured.
func TestAccountNetworks(t *testing.T) {
	s := newServerFull(t, smtpin.Config{}, nil, []bridge.Account{
		{Name: "lo", Emails: []string{"lo@example.com"}, SenderIDs: []string{"A"}},
		{Name: "office", Emails: []string{"*@office.example"}, SenderIDs: []string{"A"},
			Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}},
	}, nil)
	for _, tc := range []struct {
		from       netip.Addr
		sender     string
		want, text string
	}{
		{localhost, "lo@example.com", "250 ", ""},
		{localhost, "x@office.example", "550 5.7.1 ", "clients at 127.0.0.1 may not send as <x@office.example> without authentication"},
		{otherHost, "lo@example.com", "550 5.7.1 ", "clients at 127.0.0.2 may not send as <lo@example.com> without authentication"},
		{otherHost, "x@office.example", "250 ", ""},
		// Outside the default networks an unknown address is answered
		// like a known one: no listing the accounts' addresses.
		{otherHost, "nobody@nowhere.example", "550 5.7.1 ", "clients at 127.0.0.2 may not send as <nobody@nowhere.example> without authentication"},
	} {
		c := dialFrom(t, s.addr, tc.from)
		r := c.cmd("MAIL FROM:<" + tc.sender + ">")
		if !strings.HasPrefix(r, tc.want) || !strings.HasSuffix(r, tc.text) {
			t.Errorf("from %s MAIL %s: %q, want %q...%q", tc.from, tc.sender, r, tc.want, tc.text)
		}
	}
}

// An authenticated session sends from its own account's addresses only,
// and not from the null sender.
func TestAuthSenderAddresses(t *testing.T) {
	s := newServerFull(t, smtpin.Config{TLS: selfSigned(t)}, nil, []bridge.Account{
		{Name: "a", Emails: []string{"*@example.com"}, SenderIDs: []string{"A"}, PasswordHash: testHash},
		{Name: "b", Emails: []string{"boss@example.com", "b@other.example"}, SenderIDs: []string{"B"}},
	}, nil)
	c := dialTLS(t, s.tlsAddr)
	if r := c.cmd("AUTH PLAIN " + plain("a", "correct horse battery")); !strings.HasPrefix(r, "235 ") {
		t.Fatalf("AUTH: %q", r)
	}
	for _, tc := range []struct{ sender, want string }{
		{"b@other.example", "550 5.7.1 b@other.example is not an address of account a"},
		// *@example.com is a's, but this exact address is b's.
		{"boss@example.com", "550 5.7.1 boss@example.com is not an address of account a"},
		{"", "550 5.7.1 account a must use one of its own addresses as sender, not the null sender"},
		{"robot@example.com", "250 "},
	} {
		if r := c.cmd("MAIL FROM:<" + tc.sender + ">"); !strings.HasPrefix(r, tc.want) {
			t.Errorf("MAIL <%s>: %q, want %q", tc.sender, r, tc.want)
		}
		c.cmd("RSET")
	}
}

func plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// countingAuth counts the password checks that reach the bridge.
type countingAuth struct {
	smtpin.Submitter
	n atomic.Int32
}

func (c *countingAuth) Authenticate(user, password string) (*bridge.Account, error) {
	c.n.Add(1)
	return c.Submitter.Authenticate(user, password)
}

// Failed logins are throttled per client and per account across
// connections; throttled attempts are answered 454 4.7.0 without a
// password check, even with the right password.
func TestAuthThrottle(t *testing.T) {
	accounts := []bridge.Account{
		{Name: "a", Emails: []string{"*@example.com"}, SenderIDs: []string{"A"}, PasswordHash: testHash},
		{Name: "b", Emails: []string{"*@b.example"}, SenderIDs: []string{"B"}, PasswordHash: testHash},
	}
	login := func(t *testing.T, addr, user, pass string) string {
		c := dialTLS(t, addr)
		return c.cmd("AUTH PLAIN " + plain(user, pass))
	}
	t.Run("per client", func(t *testing.T) {
		ca := &countingAuth{}
		s := newServerFull(t, smtpin.Config{TLS: selfSigned(t), AuthFailuresPerClient: 3}, nil, accounts,
			func(b smtpin.Submitter) smtpin.Submitter { ca.Submitter = b; return ca })
		for i, user := range []string{"a", "b", "nobody"} {
			if r := login(t, s.tlsAddr, user, "wrong"); !strings.HasPrefix(r, "535 5.7.8 ") {
				t.Fatalf("failure %d: %q, want 535 5.7.8", i+1, r)
			}
		}
		for _, user := range []string{"a", "b"} {
			if r := login(t, s.tlsAddr, user, "correct horse battery"); !strings.HasPrefix(r, "454 4.7.0 ") {
				t.Errorf("%s after 3 failures from this client: %q, want 454 4.7.0", user, r)
			}
		}
		// LOGIN is refused before it asks for the user name.
		c := dialTLS(t, s.tlsAddr)
		if r := c.cmd("AUTH LOGIN"); !strings.HasPrefix(r, "454 4.7.0 ") {
			t.Errorf("AUTH LOGIN: %q, want 454 4.7.0", r)
		}
		if n := ca.n.Load(); n != 3 {
			t.Errorf("%d password checks, want 3 (none once throttled)", n)
		}
	})
	t.Run("per account", func(t *testing.T) {
		ca := &countingAuth{}
		s := newServerFull(t, smtpin.Config{TLS: selfSigned(t), AuthFailuresPerAccount: 2}, nil, accounts,
			func(b smtpin.Submitter) smtpin.Submitter { ca.Submitter = b; return ca })
		for range 2 {
			if r := login(t, s.tlsAddr, "a", "wrong"); !strings.HasPrefix(r, "535 5.7.8 ") {
				t.Fatalf("failure: %q", r)
			}
		}
		// From another client too: the bucket is the account's.
		c, err := (&tls.Dialer{NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: otherHost.AsSlice()}},
			Config: &tls.Config{InsecureSkipVerify: true}}).Dial("tcp", s.tlsAddr)
		if err != nil {
			t.Skipf("cannot dial from %s: %v", otherHost, err)
		}
		defer c.Close()
		cl := smtp.NewClient(c)
		if err := cl.Hello("client.example"); err != nil {
			t.Fatal(err)
		}
		if err := cl.Auth(sasl.NewPlainClient("", "a", "correct horse battery")); code(err) != "454 4.7.0" {
			t.Errorf("a after 2 failures: %v, want 454 4.7.0", err)
		}
		if err := cl.Auth(sasl.NewPlainClient("", "b", "correct horse battery")); err != nil {
			t.Errorf("b is not throttled: %v", err)
		}
		if n := ca.n.Load(); n != 3 {
			t.Errorf("%d password checks, want 3", n)
		}
	})
}

// A session may send only so many command lines without getting a
// message accepted, whatever they are; delivering resets the count.
func TestMaxCommands(t *testing.T) {
	s := newServer(t, smtpin.Config{TLS: selfSigned(t), MaxCommands: 6})
	for name, dial := range map[string]func(t *testing.T) *rawConn{
		"plain":        func(t *testing.T) *rawConn { return dialFrom(t, s.addr, localhost) },
		"implicit TLS": func(t *testing.T) *rawConn { return dialTLS(t, s.tlsAddr) },
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t)
			// Five mails, 20 commands with EHLO: each acceptance is
			// progress.
			for i := range 5 {
				for _, cmd := range []string{"MAIL FROM:<a@example.com>", "RCPT TO:<0501234567@sms.example.com>", "DATA"} {
					if r := c.cmd(cmd); r[0] != '2' && r[0] != '3' {
						t.Fatalf("mail %d: %s: %q", i, cmd, r)
					}
				}
				if r := c.cmd("Subject: x\r\n\r\nhi\r\n."); !strings.HasPrefix(r, "250 ") {
					t.Fatalf("mail %d: %q", i, r)
				}
			}
			var last string
			n := 1 // the n-th command since the last mail
			for ; n <= 10; n++ {
				if last = c.cmd("NOOP"); !strings.HasPrefix(last, "250 ") {
					break
				}
			}
			if last != "421 4.7.0 too many commands (6) without a message, closing" {
				t.Errorf("command %d: %q, want 421 4.7.0", n, last)
			}
			if n != 7 {
				t.Errorf("the %d. command after the last mail refused, want the 7th", n)
			}
			if r := c.reply(); r != "EOF" {
				t.Errorf("still open: %q", r)
			}
		})
	}
}

// A session may not outlive smtp.max_session_duration, even one that
// keeps within the read timeout.
func TestMaxSessionDuration(t *testing.T) {
	s := newServer(t, smtpin.Config{ReadTimeout: time.Minute, MaxSessionDuration: 300 * time.Millisecond})
	c := dialFrom(t, s.addr, localhost)
	// The next reply is the server's own, when the lifetime is up: the
	// read timeout is far away.
	if r := c.reply(); r != "421 4.7.0 session longer than 300ms, closing" {
		t.Errorf("got %q, want 421 4.7.0", r)
	}
	if r := c.reply(); r != "EOF" {
		t.Errorf("still open: %q", r)
	}
}

// A command line cut off by the read timeout or a hang-up is not
// executed: go-smtp's reader hands the fragment over as a line.
func TestCutCommandNotExecuted(t *testing.T) {
	s := newServerWith(t, smtpin.Config{TLS: selfSigned(t), ReadTimeout: 300 * time.Millisecond}, nil)
	send := func(c *rawConn, s string) {
		t.Helper()
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("QUIT then silence", func(t *testing.T) {
		c := dialFrom(t, s.addr, localhost)
		send(c, "QUIT")
		if r := c.reply(); r != "421 4.4.2 idle for too long, closing" {
			t.Errorf("got %q, want 421 4.4.2, not QUIT's 221", r)
		}
		if r := c.reply(); r != "EOF" {
			t.Errorf("still open: %q", r)
		}
	})
	t.Run("RCPT then silence", func(t *testing.T) {
		c := dialFrom(t, s.addr, localhost)
		if r := c.cmd("MAIL FROM:<a@example.com>"); !strings.HasPrefix(r, "250 ") {
			t.Fatalf("MAIL: %q", r)
		}
		send(c, "RCPT TO:<0501234567@sms.example.com>")
		if r := c.reply(); r != "421 4.4.2 idle for too long, closing" {
			t.Errorf("got %q, want 421 4.4.2, not RCPT's 250", r)
		}
	})
	t.Run("RCPT then hang-up", func(t *testing.T) {
		c := dialFrom(t, s.addr, localhost)
		if r := c.cmd("MAIL FROM:<a@example.com>"); !strings.HasPrefix(r, "250 ") {
			t.Fatalf("MAIL: %q", r)
		}
		send(c, "RCPT TO:<0501234567@sms.example.com>")
		c.Conn.(*net.TCPConn).CloseWrite()
		if r := c.reply(); r != "EOF" {
			t.Errorf("got %q, want nothing: the client has gone", r)
		}
	})
	t.Run("AUTH over TLS then silence", func(t *testing.T) {
		c := dialTLS(t, s.tlsAddr)
		send(c, "AUTH PLAIN "+plain("a", "correct horse battery"))
		if r := c.reply(); r != "421 4.4.2 idle for too long, closing" {
			t.Errorf("got %q, want 421 4.4.2, not AUTH's 235", r)
		}
	})
}

// A message of exactly max_message_bytes is accepted; one byte more is
// refused with 552 5.3.4, also when announced with SIZE=.
func TestMessageSizeBoundary(t *testing.T) {
	const max = 300
	s := newServer(t, smtpin.Config{MaxMessageBytes: max})
	body := func(size int) string {
		head := "Subject: x\r\n\r\n"
		return head + strings.Repeat("y", size-len(head)-2) + "\r\n"
	}
	for _, tc := range []struct {
		size int
		want string
	}{
		{max, "250 2.0.0 queued as "},
		{max + 1, "552 5.3.4 message exceeds the limit of 300 bytes"},
		{max + 500, "552 5.3.4 "},
	} {
		c := dialFrom(t, s.addr, localhost)
		before := s.queued(t)
		for _, cmd := range []string{"MAIL FROM:<a@example.com>", "RCPT TO:<0501234567@sms.example.com>"} {
			if r := c.cmd(cmd); !strings.HasPrefix(r, "250 ") {
				t.Fatalf("%s: %q", cmd, r)
			}
		}
		if r := c.cmd("DATA"); !strings.HasPrefix(r, "354 ") {
			t.Fatalf("DATA: %q", r)
		}
		if r := c.cmd(body(tc.size) + "."); !strings.HasPrefix(r, tc.want) {
			t.Errorf("%d bytes: %q, want %q", tc.size, r, tc.want)
		}
		if accepted := s.queued(t) == before+1; accepted != (tc.size <= max) {
			t.Errorf("%d bytes: queued=%v", tc.size, accepted)
		}
		// The session goes on after the refusal.
		if r := c.cmd("NOOP"); !strings.HasPrefix(r, "250 ") {
			t.Errorf("NOOP after %d bytes: %q", tc.size, r)
		}
	}
	c := dialFrom(t, s.addr, localhost)
	if r := c.cmd(fmt.Sprintf("MAIL FROM:<a@example.com> SIZE=%d", max)); !strings.HasPrefix(r, "250 ") {
		t.Errorf("SIZE=%d: %q", max, r)
	}
	c.cmd("RSET")
	if r := c.cmd(fmt.Sprintf("MAIL FROM:<a@example.com> SIZE=%d", max+1)); r != "552 5.3.4 message size 301 exceeds the limit of 300 bytes" {
		t.Errorf("SIZE=%d: %q", max+1, r)
	}
}

// No reply line is longer than 512 octets (RFC 5321 4.5.3.1.5), however
// long what the client sent.
func TestReplyLineLength(t *testing.T) {
	s := newServer(t, smtpin.Config{})
	long := strings.Repeat("9", 900)
	c := dialFrom(t, s.addr, localhost)
	check := func(what, r, want string) {
		t.Helper()
		if len(r)+2 > 512 || !strings.HasPrefix(r, want) {
			t.Errorf("%s: %d-octet reply %.80q..., want at most 512 starting %q", what, len(r)+2, r, want)
		}
	}
	check("MAIL 900 octets", c.cmd("MAIL FROM:<"+long+"@example.com>"), "501 5.1.7 ")
	check("MAIL unknown", c.cmd("MAIL FROM:<"+long[:200]+"@nowhere.example>"), "550 5.7.1 ")
	check("MAIL", c.cmd("MAIL FROM:<a@example.com>"), "250 ")
	check("RCPT 900 octets", c.cmd("RCPT TO:<"+long+"@sms.example.com>"), "501 5.1.3 ")
	check("RCPT relaying", c.cmd("RCPT TO:<"+long[:200]+"@"+strings.Repeat("x", 40)+".example>"), "550 5.7.1 ")
	check("second EHLO", c.cmd("EHLO "+strings.Repeat("h", 300)+".example"), "421 4.5.2 ")
	c = dialRaw(t, s.addr, netip.Addr{})
	c.reply()
	check("first EHLO", c.cmd("EHLO "+strings.Repeat("h", 300)+".example"), "501 5.5.2 ")

	// Reply, the one place errors become replies, cuts whatever a
	// message quotes.
	for _, quoted := range []string{long, strings.Repeat("ש", 600), "a\r\n250 forged\r\n" + long} {
		e := smtpin.Reply(bridge.Permanent(bridge.ReasonBadNumber, "to", "%s is not a phone number", quoted))
		line := fmt.Sprintf("%d %d.%d.%d %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
		if len(line) > 512 || !utf8.ValidString(e.Message) || strings.ContainsAny(e.Message, "\r\n") ||
			!strings.HasSuffix(e.Message, "...") || e.Code != 550 {
			t.Errorf("Reply quoting %.20q...: %d octets, %q", quoted, len(line), e.Message)
		}
	}
}

// Whatever a refusal quotes, its reply is one line of at most 512
// octets, valid UTF-8 when the input was.
func FuzzReply(f *testing.F) {
	for _, s := range []string{"", "0501234567", strings.Repeat("ש", 300), "a\r\nb", strings.Repeat("x", 600)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, quoted string) {
		e := smtpin.Reply(bridge.Permanent(bridge.ReasonBadNumber, "to", "%s is not a phone number", quoted))
		line := fmt.Sprintf("%d %d.%d.%d %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
		if len(line) > 512 || strings.ContainsAny(e.Message, "\r\n") {
			t.Errorf("%d-octet reply %q", len(line), e.Message)
		}
		if utf8.ValidString(quoted) && !utf8.ValidString(e.Message) {
			t.Errorf("invalid UTF-8 from valid input: %q", e.Message)
		}
	})
}
