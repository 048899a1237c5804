package daemon_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Attacks on the SMTP front end of the whole daemon: who may send as
// whom, what a client may make the daemon spend, and what it may make
// the daemon say. The untrusted host is a second loopback address.

// smtpAttackConfig is a daemon with two accounts: ops, trusted from the
// default networks (loopback), and office, trusted from 127.0.0.2 only;
// extra is added to [smtp].
func smtpAttackConfig(t *testing.T, extra string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := writeCert(t)
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
tls_cert = %q
tls_key = %q
tls_listen = "127.0.0.1:0"
%s
[[accounts]]
name = "ops"
emails = ["*@example.com"]
sender_ids = ["Ops"]
smtp_password_hash = %q
[[accounts]]
name = "office"
emails = ["*@office.example"]
sender_ids = ["Office"]
networks = ["127.0.0.2/32"]
[[providers]]
name = "c"
type = "console"
[[routes]]
prefix = "+"
provider = "c"
`, cert, key, extra, hash)
}

// attacker is a line-level SMTP client, for exact replies and for what
// a well-behaved client would never send.
type attacker struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func attack(t *testing.T, c net.Conn, err error) *attacker {
	t.Helper()
	if err != nil {
		t.Skipf("cannot connect: %v", err) // 127.0.0.2 missing on this host
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	a := &attacker{t: t, Conn: c, r: bufio.NewReader(c)}
	if r := a.reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("greeting: %q", r)
	}
	if r := a.cmd("EHLO attacker.example"); !strings.HasPrefix(r, "250") {
		t.Fatalf("EHLO: %q", r)
	}
	return a
}

// attackFrom connects in plain text from the source address from.
func attackFrom(t *testing.T, addr, from string) *attacker {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	return attack(t, c, err)
}

// attackTLS connects to the implicit-TLS listener.
func attackTLS(t *testing.T, addr string) *attacker {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	return attack(t, c, err)
}

// reply reads one reply, its lines joined by "\n"; "EOF" when the
// server has closed the connection.
func (a *attacker) reply() string {
	a.t.Helper()
	var lines []string
	for {
		l, err := a.r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && l == "" && len(lines) == 0 {
				return "EOF"
			}
			a.t.Fatalf("reading reply: %v (after %q)", err, lines)
		}
		if len(l) > 512 {
			a.t.Errorf("reply line of %d octets (RFC 5321 allows 512): %.60q...", len(l), l)
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

func (a *attacker) send(s string) {
	a.t.Helper()
	if _, err := io.WriteString(a, s); err != nil {
		a.t.Fatalf("sending %.40q: %v", s, err)
	}
}

func (a *attacker) cmd(line string) string {
	a.t.Helper()
	a.send(line + "\r\n")
	return a.reply()
}

func authPlain(user, pass string) string {
	return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))
}

// A host the account does not trust cannot send as it by naming its
// address as envelope sender (the shipped default used to trust every
// host); the account's own network can.
func TestAttackSendAsAccountFromUntrustedHost(t *testing.T) {
	d := start(t, smtpAttackConfig(t, ""))
	for _, tc := range []struct{ from, sender, want string }{
		{"127.0.0.2", "robot@example.com", "550 5.7.1 clients at 127.0.0.2 may not send as <robot@example.com> without authentication"},
		{"127.0.0.1", "robot@office.example", "550 5.7.1 clients at 127.0.0.1 may not send as <robot@office.example> without authentication"},
		{"127.0.0.2", "robot@office.example", "250 "},
		{"127.0.0.1", "robot@example.com", "250 "},
	} {
		a := attackFrom(t, d.SMTPAddr(), tc.from)
		if r := a.cmd("MAIL FROM:<" + tc.sender + ">"); !strings.HasPrefix(r, tc.want) {
			t.Errorf("from %s MAIL <%s>: %q, want %q", tc.from, tc.sender, r, tc.want)
		}
	}
	// The trusted one goes all the way.
	a := attackFrom(t, d.SMTPAddr(), "127.0.0.2")
	for _, c := range []string{"MAIL FROM:<robot@office.example>", "RCPT TO:<0501234567@sms.example.com>", "DATA"} {
		a.cmd(c)
	}
	r := a.cmd("Subject: x\r\n\r\nfrom the office\r\n.")
	_, id, ok := strings.Cut(r, "queued as ")
	if !ok {
		t.Fatalf("DATA: %q", r)
	}
	if m, err := d.Store().Message(t.Context(), id); err != nil || m.Account != "office" {
		t.Errorf("stored %+v, %v; want account office", m, err)
	}
}

// An authenticated account cannot make the bridge mail (bounce, reply)
// someone else's address: MAIL FROM must be one of its own, not <>.
func TestAttackAuthenticatedSenderSpoofing(t *testing.T) {
	d := start(t, smtpAttackConfig(t, ""))
	a := attackTLS(t, d.SMTPTLSAddr())
	if r := a.cmd(authPlain("ops", "s3cret pass")); !strings.HasPrefix(r, "235 ") {
		t.Fatalf("AUTH: %q", r)
	}
	for _, tc := range []struct{ sender, want string }{
		{"ceo@office.example", "550 5.7.1 ceo@office.example is not an address of account ops"},
		{"victim@elsewhere.example", "550 5.7.1 victim@elsewhere.example is not an address of account ops"},
		{"", "550 5.7.1 account ops must use one of its own addresses as sender, not the null sender"},
		{"robot@example.com", "250 "},
	} {
		if r := a.cmd("MAIL FROM:<" + tc.sender + ">"); !strings.HasPrefix(r, tc.want) {
			t.Errorf("MAIL <%s>: %q, want %q", tc.sender, r, tc.want)
		}
		a.cmd("RSET")
	}
}

// Password guessing is throttled per client across connections: past
// the budget even the right password is answered 454 4.7.0 (and not
// checked: see bridge's TestAuthenticateCost and smtpin's
// TestAuthThrottle for the count of bcrypt runs).
func TestAttackPasswordGuessing(t *testing.T) {
	d := start(t, smtpAttackConfig(t, "auth_failures_per_client = 3\nmax_bad_commands = 100"))
	for i := range 3 {
		a := attackTLS(t, d.SMTPTLSAddr())
		if r := a.cmd(authPlain("ops", fmt.Sprintf("guess %d", i))); !strings.HasPrefix(r, "535 5.7.8 ") {
			t.Fatalf("guess %d: %q", i, r)
		}
	}
	a := attackTLS(t, d.SMTPTLSAddr())
	if r := a.cmd(authPlain("ops", "s3cret pass")); !strings.HasPrefix(r, "454 4.7.0 ") {
		t.Errorf("right password after 3 failures: %q, want 454 4.7.0", r)
	}
}

// A client cannot hold a connection slot for ever with harmless
// commands: the command count and the session lifetime are bounded.
func TestAttackSessionHolding(t *testing.T) {
	t.Run("commands", func(t *testing.T) {
		d := start(t, smtpAttackConfig(t, "max_commands = 20"))
		a := attackFrom(t, d.SMTPAddr(), "127.0.0.1")
		var r string
		n := 1 // EHLO
		for ; n < 100; n++ {
			if r = a.cmd("NOOP"); !strings.HasPrefix(r, "250 ") {
				break
			}
		}
		if r != "421 4.7.0 too many commands (20) without a message, closing" || n != 20 {
			t.Errorf("command %d: %q, want the 21st answered 421 4.7.0", n+1, r)
		}
		if r := a.reply(); r != "EOF" {
			t.Errorf("still open: %q", r)
		}
	})
	t.Run("lifetime", func(t *testing.T) {
		d := start(t, smtpAttackConfig(t, "max_session_duration = \"300ms\"\nmax_commands = 100000000"))
		a := attackFrom(t, d.SMTPAddr(), "127.0.0.1")
		// Well within the read timeout (1m), one RSET after another,
		// until the server has had enough.
		var r string
		for {
			if r = a.cmd("RSET"); !strings.HasPrefix(r, "250 ") {
				break
			}
		}
		if r != "421 4.7.0 session longer than 300ms, closing" {
			t.Errorf("got %q, want 421 4.7.0", r)
		}
	})
}

// A command cut off by the read timeout is not executed: the fragment
// "RCPT TO:<...>" is not a recipient, "QUIT" is not a goodbye.
func TestAttackCutCommand(t *testing.T) {
	d := start(t, smtpAttackConfig(t, `read_timeout = "300ms"`))
	a := attackFrom(t, d.SMTPAddr(), "127.0.0.1")
	if r := a.cmd("MAIL FROM:<robot@example.com>"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("MAIL: %q", r)
	}
	a.send("RCPT TO:<0501234567@sms.example.com>")
	if r := a.reply(); r != "421 4.4.2 idle for too long, closing" {
		t.Errorf("after a cut RCPT: %q, want 421 4.4.2", r)
	}
	if r := a.reply(); r != "EOF" {
		t.Errorf("still open: %q", r)
	}
}

// A mail of exactly max_message_bytes is accepted and stored whole; one
// byte more is refused with 552 5.3.4.
func TestAttackMessageSizeBoundary(t *testing.T) {
	d := start(t, smtpAttackConfig(t, "max_message_bytes = 400"))
	head := "Subject: size\r\n\r\n"
	for _, tc := range []struct {
		size int
		want string
	}{
		{400, "250 2.0.0 queued as "},
		{401, "552 5.3.4 message exceeds the limit of 400 bytes"},
	} {
		text := strings.Repeat("z", tc.size-len(head)-2)
		a := attackFrom(t, d.SMTPAddr(), "127.0.0.1")
		for _, c := range []string{"MAIL FROM:<robot@example.com>", "RCPT TO:<0501234567@sms.example.com>", "DATA"} {
			a.cmd(c)
		}
		r := a.cmd(head + text + "\r\n.")
		if !strings.HasPrefix(r, tc.want) {
			t.Errorf("%d bytes: %q, want %q", tc.size, r, tc.want)
			continue
		}
		if id, ok := strings.CutPrefix(r, "250 2.0.0 queued as "); ok {
			if m, err := d.Store().Message(t.Context(), id); err != nil || m.Text != text {
				t.Errorf("stored %d-byte text, %v; want %d", len(m.Text), err, len(text))
			}
		}
	}
}

// Huge input is never echoed back: every reply line stays within 512
// octets (attacker.reply checks each line).
func TestAttackHugeEcho(t *testing.T) {
	d := start(t, smtpAttackConfig(t, ""))
	long := strings.Repeat("9", 900)
	a := attackFrom(t, d.SMTPAddr(), "127.0.0.1")
	for _, tc := range []struct{ cmd, want string }{
		{"MAIL FROM:<" + long + "@example.com>", "501 5.1.7 "},
		{"MAIL FROM:<" + long[:240] + "@x.example>", "550 5.7.1 "},
		{"MAIL FROM:<robot@example.com>", "250 "},
		{"RCPT TO:<" + long + "@sms.example.com>", "501 5.1.3 "},
		{"RCPT TO:<" + long[:200] + "@sms.example.com>", "550 5.1.1 "},
		{"EHLO " + strings.Repeat("h", 900), "421 4.5.2 "},
	} {
		if r := a.cmd(tc.cmd); !strings.HasPrefix(r, tc.want) {
			t.Errorf("%.30s...: %.80q, want %q", tc.cmd, r, tc.want)
		}
	}
}
