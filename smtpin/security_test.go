package smtpin_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/smtpin"
)

// metrics counts what the server reports.
type metrics struct {
	mu      sync.Mutex
	refused map[bridge.Reason]int
}

func (m *metrics) Accepted(bridge.Channel) {}

func (m *metrics) Refused(_ bridge.Channel, r bridge.Reason) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refused == nil {
		m.refused = map[bridge.Reason]int{}
	}
	m.refused[r]++
}

func (m *metrics) count(r bridge.Reason) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refused[r]
}

const mail = "Subject: x\r\n\r\nhello\r\n"

// Every classic way of making a server relay must be refused; only a
// phone number at one of our own domains gets through.
func TestOpenRelay(t *testing.T) {
	s := newServer(t, smtpin.Config{Domains: []string{"sms.example.com", "link.example"}})
	for _, tc := range []struct {
		rcpt string
		want string // "" is accepted
	}{
		// Our domain, whatever the case: it is ours.
		{"0501234567@SMS.EXAMPLE.COM", ""},
		{"0501234567@link.example", ""},
		// A quoted local part and a source route ending at us are the
		// same mailbox as the bare one (RFC 5321 4.1.1.3: routes are
		// to be ignored): delivering it is not relaying.
		{`"0501234567"@sms.example.com`, ""},
		{"@evil.com:0501234567@sms.example.com", ""},

		// Ours, but the local part is no phone number.
		{"user@sms.example.com", "550 5.1.1"},
		// Routing syntax in the local part is a relay attempt even at
		// our domain, and is answered as one.
		{"user%other@sms.example.com", "550 5.7.1"},
		{"0501234567%evil.com@sms.example.com", "550 5.7.1"},
		{"evil.com!0501234567@sms.example.com", "550 5.7.1"},
		{`"0501234567@evil.com"@sms.example.com`, "550 5.7.1"},
		{"0501234567@evil.com@sms.example.com", "550 5.7.1"},

		// Not our domain.
		{"@sms.example.com:0501234567@evil.com", "550 5.7.1"},
		{"@sms.example.com,@link.example:0501234567@evil.com", "550 5.7.1"},
		{"0501234567@evil.com", "550 5.7.1"},
		{"0501234567@sms.example.com@evil.com", "550 5.7.1"},
		{"0501234567@sub.sms.example.com", "550 5.7.1"},
		{"0501234567@example.com", "550 5.7.1"},
		{"0501234567%sms.example.com@evil.com", "550 5.7.1"},
		{"sms.example.com!0501234567@evil.com", "550 5.7.1"},
		{"0501234567@[127.0.0.1]", "550 5.7.1"},
		{"0501234567@[IPv6:::1]", "550 5.7.1"},
		// A trailing dot names the same DNS zone, but RFC 5321 domains
		// have none; refusing is exact and costs a real sender nothing.
		{"0501234567@sms.example.com.", "550 5.7.1"},

		// Not an address at all: go-smtp's parser refuses the syntax.
		{"0501234567", "501 5.5.2"},
		{"0501234567@", "501 5.5.2"},
		{"@sms.example.com", "501 5.5.2"},
	} {
		t.Run(tc.rcpt, func(t *testing.T) {
			c := dial(t, s.addr)
			before := s.queued(t)
			err := c.SendMail("a@example.com", []string{tc.rcpt}, strings.NewReader(mail))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if s.queued(t) != before+1 {
					t.Error("accepted but not queued")
				}
				return
			}
			if got := code(err); got != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
			if s.queued(t) != before {
				t.Error("a refused recipient was queued")
			}
		})
	}

	// Unicode case folding would turn the Kelvin sign into "k" and the
	// dotted capital I into "i". go-smtp's client will not send UTF-8
	// without SMTPUTF8, so speak the protocol by hand.
	c := dialRaw(t, s.addr, netip.Addr{})
	c.reply()
	c.cmd("EHLO test.example")
	c.cmd("MAIL FROM:<a@example.com>")
	if r := c.cmd("RCPT TO:<0501234567@L\u0130N\u212A.example>"); !strings.HasPrefix(r, "550 5.7.1 ") {
		t.Errorf("Unicode look-alike of link.example: %q, want 550 5.7.1", r)
	}
}

// rawConn is a line-level SMTP client, for the cases where the point is
// exactly what goes over the wire and when the server hangs up.
type rawConn struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string, from netip.Addr) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, Conn: c, r: bufio.NewReader(c)}
}

// reply reads one (possibly multi-line) reply; at end of stream it
// returns "EOF".
func (c *rawConn) reply() string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && l == "" && len(lines) == 0 {
				return "EOF"
			}
			c.t.Fatalf("reading reply: %v (after %q)", err, lines)
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// cmd sends one command line and returns the reply.
func (c *rawConn) cmd(line string) string {
	c.t.Helper()
	if _, err := io.WriteString(c, line+"\r\n"); err != nil {
		c.t.Fatalf("sending %q: %v", line, err)
	}
	return c.reply()
}

func TestConnectionsPerIP(t *testing.T) {
	m := &metrics{}
	s := newServerWith(t, smtpin.Config{MaxConnectionsPerIP: 2}, m)
	local := netip.MustParseAddr("127.0.0.1")

	first := dialRaw(t, s.addr, local)
	if r := first.reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("first connection: %q", r)
	}
	if r := dialRaw(t, s.addr, local).reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("second connection: %q", r)
	}
	over := dialRaw(t, s.addr, local)
	if r := over.reply(); r != "421 4.7.0 too many connections from your address" {
		t.Errorf("third connection: %q, want 421 4.7.0 too many connections from your address", r)
	}
	if r := over.reply(); r != "EOF" {
		t.Errorf("third connection still open: %q", r)
	}
	if n := m.count(bridge.ReasonRateLimited); n != 1 {
		t.Errorf("%d refused connections counted, want 1", n)
	}

	// The cap is per client: another address is still welcome.
	if r := dialRaw(t, s.addr, netip.MustParseAddr("127.0.0.2")).reply(); !strings.HasPrefix(r, "220 ") {
		t.Errorf("connection from 127.0.0.2: %q", r)
	}

	// A session that ended frees its slot for the next connection, even
	// one made the moment the 221 arrived.
	if r := first.cmd("QUIT"); !strings.HasPrefix(r, "221 ") {
		t.Fatalf("QUIT: %q", r)
	}
	if r := dialRaw(t, s.addr, local).reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("connection after QUIT: %q", r)
	}
}

// A client that opens a connection per message, as Postfix does, with all
// its sessions in use: each new connection comes the moment the last one
// read its 221, and must be served, not answered 421 because the server
// had not closed the old session yet.
func TestConnectionPerMessageAtTheCap(t *testing.T) {
	m := &metrics{}
	const limit = 3
	s := newServerWith(t, smtpin.Config{MaxConnectionsPerIP: limit}, m)
	local := netip.MustParseAddr("127.0.0.1")
	for range limit - 1 {
		if r := dialRaw(t, s.addr, local).reply(); !strings.HasPrefix(r, "220 ") {
			t.Fatalf("held connection: %q", r)
		}
	}
	for i := range 25 {
		c := dialRaw(t, s.addr, local)
		if r := c.reply(); !strings.HasPrefix(r, "220 ") {
			t.Fatalf("cycle %d: greeting %q", i, r)
		}
		for _, step := range []struct{ cmd, want string }{
			{"EHLO test.example", "250"}, {"MAIL FROM:<a@example.com>", "250 "},
			{"RCPT TO:<0501234567@sms.example.com>", "250 "}, {"DATA", "354 "},
			{fmt.Sprintf("Subject: %d\r\n\r\nmessage %d\r\n.", i, i), "250 "}, {"QUIT", "221 "},
		} {
			if r := c.cmd(step.cmd); !strings.HasPrefix(r, step.want) {
				t.Fatalf("cycle %d: %s: %q", i, strings.Fields(step.cmd)[0], r)
			}
		}
		c.Close()
	}
	if n := m.count(bridge.ReasonRateLimited); n != 0 {
		t.Errorf("%d connections refused", n)
	}
}

// A connection over its client's cap waits for one of the client's
// sessions to end, then is served.
func TestOverTheCapWaitsForASessionToEnd(t *testing.T) {
	s := newServerWith(t, smtpin.Config{MaxConnectionsPerIP: 1}, &metrics{})
	local := netip.MustParseAddr("127.0.0.1")
	first := dialRaw(t, s.addr, local)
	if r := first.reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("first connection: %q", r)
	}
	second := dialRaw(t, s.addr, local)
	if r := first.cmd("QUIT"); !strings.HasPrefix(r, "221 ") {
		t.Fatalf("QUIT: %q", r)
	}
	if r := second.reply(); !strings.HasPrefix(r, "220 ") {
		t.Errorf("second connection, after the first ended: %q, want 220", r)
	}
}

func TestTooManyErrors(t *testing.T) {
	m := &metrics{}
	s := newServerWith(t, smtpin.Config{MaxBadCommands: 3}, m)
	c := dialRaw(t, s.addr, netip.Addr{})
	c.reply()
	c.cmd("EHLO test.example")
	if r := c.cmd("MAIL FROM:<a@example.com>"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("MAIL: %q", r)
	}
	for i := range 3 {
		if r := c.cmd("RCPT TO:<050123456" + string(rune('0'+i)) + "@evil.com>"); !strings.HasPrefix(r, "550 5.7.1 ") {
			t.Fatalf("bad RCPT %d: %q, want 550 5.7.1", i+1, r)
		}
	}
	// Up to the cap, refusals are answered as usual and the session goes
	// on; a good command does not wipe the slate.
	if r := c.cmd("RCPT TO:<0501234567@sms.example.com>"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("good RCPT after 3 refusals: %q, want 250", r)
	}
	if r := c.cmd("RCPT TO:<0501234569@evil.com>"); r != "421 4.7.0 too many errors" {
		t.Errorf("4th bad RCPT: %q, want 421 4.7.0 too many errors", r)
	}
	if r := c.reply(); r != "EOF" {
		t.Errorf("connection still open after 421: %q", r)
	}
	if n := m.count(bridge.ReasonBadDomain); n != 4 {
		t.Errorf("%d refusals counted, want 4", n)
	}
	if s.queued(t) != 0 {
		t.Error("something was queued")
	}
}

// Failed AUTH counts, and the count survives STARTTLS (where go-smtp
// starts a fresh session on the same connection).
func TestTooManyErrorsAcrossTLS(t *testing.T) {
	s := newServer(t, smtpin.Config{TLS: selfSigned(t), MaxBadCommands: 2})
	c := dialRaw(t, s.addr, netip.Addr{})
	c.reply()
	c.cmd("EHLO test.example")
	c.cmd("MAIL FROM:<a@example.com>")
	if r := c.cmd("RCPT TO:<0501234567@evil.com>"); !strings.HasPrefix(r, "550 5.7.1 ") {
		t.Fatalf("RCPT: %q", r)
	}
	if r := c.cmd("STARTTLS"); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("STARTTLS: %q", r)
	}
	tc := &rawConn{t: t, Conn: tls.Client(c.Conn, &tls.Config{InsecureSkipVerify: true})}
	tc.r = bufio.NewReader(tc.Conn)
	tc.cmd("EHLO test.example")
	plain := func(pass string) string {
		return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00a\x00"+pass))
	}
	if r := tc.cmd(plain("wrong")); !strings.HasPrefix(r, "535 5.7.8 ") {
		t.Fatalf("first wrong password: %q, want 535 5.7.8", r)
	}
	if r := tc.cmd(plain("wrong again")); r != "421 4.7.0 too many errors" {
		t.Errorf("second wrong password: %q, want 421 4.7.0 too many errors", r)
	}
	if r := tc.reply(); r != "EOF" {
		t.Errorf("connection still open after 421: %q", r)
	}
}

func TestAllowedNetworks(t *testing.T) {
	s := newServer(t, smtpin.Config{TLS: selfSigned(t),
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("127.0.0.2/32")}})

	t.Run("outside", func(t *testing.T) {
		c := dial(t, s.addr) // from 127.0.0.1
		if err := c.Mail("a@example.com", nil); code(err) != "550 5.7.1" {
			t.Errorf("MAIL: %v, want 550 5.7.1", err)
		}
	})
	t.Run("inside", func(t *testing.T) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		conn, err := d.Dial("tcp", s.addr)
		if err != nil {
			t.Skipf("cannot dial from 127.0.0.2: %v", err)
		}
		c := smtp.NewClient(conn)
		defer c.Close()
		before := s.queued(t)
		if err := c.SendMail("a@example.com", []string{"0501234567@sms.example.com"}, strings.NewReader(mail)); err != nil {
			t.Fatalf("send: %v", err)
		}
		if s.queued(t) != before+1 {
			t.Error("not queued")
		}
	})
	t.Run("outside but authenticated", func(t *testing.T) {
		c, err := smtp.DialStartTLS(s.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Auth(sasl.NewPlainClient("", "a", "correct horse battery")); err != nil {
			t.Fatal(err)
		}
		before := s.queued(t)
		if err := c.SendMail("a@example.com", []string{"0501234567@sms.example.com"}, strings.NewReader(mail)); err != nil {
			t.Fatalf("send: %v", err)
		}
		if s.queued(t) != before+1 {
			t.Error("not queued")
		}
	})
}

func TestImplicitTLS(t *testing.T) {
	s := newServer(t, smtpin.Config{TLS: selfSigned(t), RequireAuth: true, MaxConnectionsPerIP: 1})
	c, err := smtp.DialTLS(s.tlsAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("test.example"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered inside TLS")
	}
	if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") {
		t.Fatalf("AUTH = %v %q, want PLAIN offered at once", ok, mechs)
	}
	if err := c.Auth(sasl.NewPlainClient("", "a", "correct horse battery")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.SendMail("a@example.com", []string{"0501234567@sms.example.com"}, strings.NewReader(mail)); err != nil {
		t.Fatalf("send: %v", err)
	}
	if q := s.queued(t); q != 1 {
		t.Errorf("%d queued, want 1", q)
	}

	// Over the cap, the refusal is spoken in TLS too, and the cap
	// counts both listeners together.
	for name, dial := range map[string]func() (net.Conn, error){
		"tls":   func() (net.Conn, error) { return tls.Dial("tcp", s.tlsAddr, &tls.Config{InsecureSkipVerify: true}) },
		"plain": func() (net.Conn, error) { return net.Dial("tcp", s.addr) },
	} {
		conn, err := dial()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(conn)
		conn.Close()
		if got := string(b); got != "421 4.7.0 too many connections from your address\r\n" {
			t.Errorf("%s connection over the cap: %q (%v)", name, got, err)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	s := newServer(t, smtpin.Config{ReadTimeout: 200 * time.Millisecond})
	c := dialRaw(t, s.addr, netip.Addr{})
	start := time.Now()
	if r := c.reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("greeting: %q", r)
	}
	r := c.reply()
	idle := time.Since(start)
	if !strings.HasPrefix(r, "421 4.4.2 ") {
		t.Errorf("idle client got %q, want 421 4.4.2", r)
	}
	// The server's clock starts just before ours: allow some slack.
	if idle < 150*time.Millisecond || idle > 3*time.Second {
		t.Errorf("dropped after %s, want about 200ms", idle)
	}
	if r := c.reply(); r != "EOF" {
		t.Errorf("connection still open: %q", r)
	}
}

// Shutdown may run before a Serve goroutine got going (a daemon stopped
// at once); that Serve must return instead of accepting forever.
func TestServeAfterShutdown(t *testing.T) {
	srv := smtpin.New(nil, smtpin.Config{Domains: []string{"sms.example.com"}}, nil, slog.New(slog.DiscardHandler))
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		ln.Close()
		t.Fatal("Serve kept running after Shutdown")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("listener still open")
	}
}

// A session still open when Shutdown's grace runs out is cut off, and
// Shutdown says that the grace ran out.
func TestShutdownClosesLingeringSessions(t *testing.T) {
	srv := smtpin.New(nil, smtpin.Config{Domains: []string{"sms.example.com"}, ReadTimeout: time.Minute}, nil, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	c := dialRaw(t, ln.Addr().String(), netip.Addr{})
	if r := c.reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("greeting: %q", r)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline error", err)
	}
	if r := c.reply(); r != "EOF" {
		t.Errorf("lingering session still open: %q", r)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
