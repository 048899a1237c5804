package mailout_test

import (
	"context"
	"errors"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
)

func newClient(t *testing.T, cfg mailout.Config) *mailout.Client {
	t.Helper()
	if cfg.HelloName == "" {
		cfg.HelloName = "bridge.test"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	c, err := mailout.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wait(t *testing.T, srv *mailtest.Server, n int) []mailtest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msgs, err := srv.Wait(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestSendReplyOverSTARTTLSWithAuth(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{STARTTLS: true, Username: "bridge", Password: "s3cret!"})
	c := newClient(t, mailout.Config{Addr: srv.Addr(), TLSConfig: srv.ClientTLS(), Username: "bridge", Password: "s3cret!"})
	r := reply()
	data, err := mailout.BuildReply(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(t.Context(), r.From, r.To, data); err != nil {
		t.Fatal(err)
	}
	m := wait(t, srv, 1)[0]
	if !m.TLS || m.User != "bridge" || m.Helo != "bridge.test" {
		t.Errorf("arrived with TLS %v, user %q, EHLO %q: want TLS, bridge, bridge.test", m.TLS, m.User, m.Helo)
	}
	if m.From != r.From || len(m.To) != 1 || m.To[0] != r.To {
		t.Errorf("envelope %q -> %q", m.From, m.To)
	}
	e := readMail(t, m.Data)
	if got := body(t, e); got != r.Text {
		t.Errorf("text = %q, want %q", got, r.Text)
	}
}

func TestSendStaysPlainWhenSTARTTLSIsNotOffered(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	c := newClient(t, mailout.Config{Addr: srv.Addr()})
	if err := c.Send(t.Context(), "a@sms.example.com", "b@example.com", []byte("Subject: x\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	m := wait(t, srv, 1)[0]
	if m.TLS || m.Helo != "bridge.test" || string(m.Data) != "Subject: x\r\n\r\nhi\r\n" {
		t.Errorf("got TLS %v, EHLO %q, data %q", m.TLS, m.Helo, m.Data)
	}
}

func TestSendImplicitTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{ImplicitTLS: true, Username: "u", Password: "p"})
	c := newClient(t, mailout.Config{Addr: srv.Addr(), TLS: mailout.TLSImplicit, TLSConfig: srv.ClientTLS(), Username: "u", Password: "p"})
	if err := c.Send(t.Context(), "a@sms.example.com", "b@example.com", []byte("Subject: x\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	if m := wait(t, srv, 1)[0]; !m.TLS || m.User != "u" {
		t.Errorf("TLS %v, user %q", m.TLS, m.User)
	}
}

func TestSendBounceFromTheNullSender(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{STARTTLS: true})
	c := newClient(t, mailout.Config{Addr: srv.Addr(), TLSConfig: srv.ClientTLS()})
	data, err := mailout.BuildBounce(bounce())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(t.Context(), "", "dana@example.com", data); err != nil {
		t.Fatal(err)
	}
	m := wait(t, srv, 1)[0]
	if m.From != "" || m.To[0] != "dana@example.com" || !m.TLS {
		t.Errorf("envelope %q -> %q, TLS %v: want the null sender over TLS", m.From, m.To, m.TLS)
	}
	if d := readDSN(t, m.Data); len(d.perRcpt) != 2 {
		t.Errorf("%d recipients reported", len(d.perRcpt))
	}
}

// sendErr sends a small mail and returns the error, which must be a
// *bridge.Error.
func sendErr(t *testing.T, c *mailout.Client) *bridge.Error {
	t.Helper()
	err := c.Send(t.Context(), "a@sms.example.com", "b@example.com", []byte("Subject: x\r\n\r\nhi\r\n"))
	if err == nil {
		t.Fatal("sent")
	}
	var be *bridge.Error
	if !errors.As(err, &be) {
		t.Fatalf("%T %v: want a *bridge.Error", err, err)
	}
	return be
}

func TestSendClassifiesReplies(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	c := newClient(t, mailout.Config{Addr: srv.Addr()})

	srv.FailNext(1, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
	be := sendErr(t, c)
	if !bridge.IsTemporary(be) || be.Reason != bridge.ReasonProviderDown || !strings.Contains(be.Error(), "451 4.3.0 try later") {
		t.Errorf("451: %v (temporary %v, reason %s)", be, be.Temporary(), be.Reason)
	}
	var se *smtp.SMTPError
	if !errors.As(be, &se) || se.Code != 451 {
		t.Errorf("the reply is not in the chain: %v", be)
	}

	srv.FailNext(1, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	be = sendErr(t, c)
	if bridge.IsTemporary(be) || be.Reason != bridge.ReasonProviderRejected || !strings.Contains(be.Error(), "550 5.1.1 no such user") {
		t.Errorf("550: %v (temporary %v, reason %s)", be, be.Temporary(), be.Reason)
	}

	// A reply of several lines is flattened onto one.
	srv.FailNext(1, &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "queue full,\ncome back later"})
	be = sendErr(t, c)
	if !bridge.IsTemporary(be) || strings.ContainsAny(be.Error(), "\r\n") || !strings.Contains(be.Error(), "452 ") || !strings.Contains(be.Error(), "later") {
		t.Errorf("452: %q (temporary %v)", be, be.Temporary())
	}
	if n := len(srv.Messages()); n != 0 || srv.Refused() != 3 {
		t.Errorf("%d accepted, %d refused", n, srv.Refused())
	}
}

func TestSendWhenTheSmarthostIsDown(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	srv.Down()
	c := newClient(t, mailout.Config{Addr: srv.Addr()})
	if be := sendErr(t, c); !be.Temporary() || be.Reason != bridge.ReasonProviderDown {
		t.Errorf("down: %v (temporary %v, reason %s)", be, be.Temporary(), be.Reason)
	}
	srv.Up()
	if err := c.Send(t.Context(), "a@sms.example.com", "b@example.com", []byte("Subject: x\r\n\r\nhi\r\n")); err != nil {
		t.Fatalf("after Up: %v", err)
	}
}

func TestSendTLSRequiredRefusesPlainSmarthost(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	c := newClient(t, mailout.Config{Addr: srv.Addr(), TLS: mailout.TLSRequired})
	be := sendErr(t, c)
	if !be.Temporary() || !strings.Contains(be.Error(), "STARTTLS") {
		t.Errorf("%v (temporary %v)", be, be.Temporary())
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages sent without TLS", n)
	}
}

func TestSendRefusesUntrustedCertificate(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{STARTTLS: true})
	c := newClient(t, mailout.Config{Addr: srv.Addr()}) // the system roots
	if be := sendErr(t, c); !be.Temporary() || !strings.Contains(be.Error(), "TLS handshake") {
		t.Errorf("%v (temporary %v)", be, be.Temporary())
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages sent", n)
	}
}

func TestSendAuthFailures(t *testing.T) {
	const password = "hunter2-very-secret"
	t.Run("wrong password", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{STARTTLS: true, Username: "bridge", Password: "other"})
		c := newClient(t, mailout.Config{Addr: srv.Addr(), TLSConfig: srv.ClientTLS(), Username: "bridge", Password: password})
		be := sendErr(t, c)
		if !be.Temporary() || be.Reason != bridge.ReasonProviderAuth || !strings.Contains(be.Error(), "535") {
			t.Errorf("%v (temporary %v, reason %s)", be, be.Temporary(), be.Reason)
		}
		if strings.Contains(be.Error(), password) {
			t.Errorf("the password is in the error: %v", be)
		}
	})
	t.Run("no TLS offered", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{Username: "bridge", Password: password, AllowInsecureAuth: true})
		c := newClient(t, mailout.Config{Addr: srv.Addr(), Username: "bridge", Password: password})
		if be := sendErr(t, c); !be.Temporary() || be.Reason != bridge.ReasonProviderAuth {
			t.Errorf("%v (temporary %v, reason %s)", be, be.Temporary(), be.Reason)
		}
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("%d messages sent", n)
		}
	})
	t.Run("insecure auth allowed", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{Username: "bridge", Password: password, AllowInsecureAuth: true})
		c := newClient(t, mailout.Config{Addr: srv.Addr(), Username: "bridge", Password: password, AllowInsecureAuth: true})
		if err := c.Send(t.Context(), "a@sms.example.com", "b@example.com", []byte("\r\nhi\r\n")); err != nil {
			t.Fatal(err)
		}
		if m := wait(t, srv, 1)[0]; m.User != "bridge" || m.TLS {
			t.Errorf("user %q, TLS %v", m.User, m.TLS)
		}
	})
	t.Run("credentials missing", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{STARTTLS: true, Username: "bridge", Password: password})
		c := newClient(t, mailout.Config{Addr: srv.Addr(), TLSConfig: srv.ClientTLS()})
		// 530 at MAIL refuses our session, not the message.
		if be := sendErr(t, c); !be.Temporary() || be.Reason != bridge.ReasonProviderAuth {
			t.Errorf("%v (temporary %v, reason %s)", be, be.Temporary(), be.Reason)
		}
	})
}

func TestSendHonoursTheContext(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{STARTTLS: true})
	srv.Hold()
	c := newClient(t, mailout.Config{Addr: srv.Addr(), TLSConfig: srv.ClientTLS(), Timeout: time.Minute})

	// The client's own timeout is a minute: returning at all means the
	// context's deadline cut the held message off.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := returns(t, "Send past its context's deadline", func() error {
		return c.Send(ctx, "a@sms.example.com", "b@example.com", []byte("\r\nhi\r\n"))
	})
	if !errors.Is(err, context.DeadlineExceeded) || !bridge.IsTemporary(err) {
		t.Errorf("Send = %v: want a temporary deadline error", err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Send(ctx, "a@sms.example.com", "b@example.com", []byte("\r\nhi\r\n")) }()
	waitHeld(t, srv, 2)
	cancel()
	err = returns(t, "Send after its context was cancelled", func() error { return <-done })
	if !errors.Is(err, context.Canceled) || !bridge.IsTemporary(err) {
		t.Errorf("Send = %v: want a temporary cancellation", err)
	}
}

// returns runs fn and returns its error, failing the test if fn has not
// returned after a minute: a hang (a timeout or cancellation ignored),
// not a speed limit; the timeouts under test are far shorter.
func returns(t *testing.T, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

func TestSendTimeout(t *testing.T) {
	// A server that accepts the connection and never says a word.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	for _, mode := range []mailout.TLSMode{mailout.TLSStartTLS, mailout.TLSNone, mailout.TLSImplicit} {
		c := newClient(t, mailout.Config{Addr: ln.Addr().String(), TLS: mode, Timeout: 200 * time.Millisecond})
		err := returns(t, "Send to a silent server", func() error {
			return c.Send(t.Context(), "a@sms.example.com", "b@example.com", []byte("Subject: x\r\n\r\nhi\r\n"))
		})
		var be *bridge.Error
		if !errors.As(err, &be) || !be.Temporary() || !errors.Is(be, context.DeadlineExceeded) {
			t.Errorf("%s: %v: want a temporary timeout", mode, err)
		}
	}
}

func TestSendRefusesInvalidEnvelope(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	c := newClient(t, mailout.Config{Addr: srv.Addr()})
	for _, env := range [][2]string{{"a@x\r\nRCPT TO:<evil@x>", "b@x"}, {"a@x", "b@x>\r\nDATA"}, {"a@x", ""}} {
		err := c.Send(t.Context(), env[0], env[1], []byte("\r\nhi\r\n"))
		if err == nil || bridge.IsTemporary(err) {
			t.Errorf("%q: %v: want a permanent error", env, err)
		}
	}
	// UTF-8 addresses need SMTPUTF8, which this server does not offer.
	if err := c.Send(t.Context(), "a@x", "דנה@example.com", []byte("\r\nhi\r\n")); err == nil || bridge.IsTemporary(err) {
		t.Errorf("UTF-8 address: %v: want a permanent error", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages sent", n)
	}
}

func TestSendUTF8Address(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{SMTPUTF8: true})
	c := newClient(t, mailout.Config{Addr: srv.Addr()})
	if err := c.Send(t.Context(), "a@sms.example.com", "דנה@example.com", []byte("\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	if m := wait(t, srv, 1)[0]; m.To[0] != "דנה@example.com" {
		t.Errorf("to %q", m.To)
	}
}

func TestNewClientChecksConfig(t *testing.T) {
	for name, cfg := range map[string]mailout.Config{
		"no port":            {Addr: "smarthost.example.com"},
		"unknown TLS mode":   {Addr: "smarthost:25", TLS: "sometimes"},
		"password in clear":  {Addr: "smarthost:25", TLS: mailout.TLSNone, Username: "u", Password: "p"},
		"hello name with LF": {Addr: "smarthost:25", HelloName: "a\nMAIL FROM:<x>"},
	} {
		if _, err := mailout.NewClient(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// waitHeld waits until the server holds n messages, failing the test
// after 10 seconds (a hang, not a speed limit).
func waitHeld(t *testing.T, srv *mailtest.Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := srv.WaitHeld(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// scripted runs a one-connection SMTP server on 127.0.0.1 that answers
// each command with script's reply for it; it reports what it read.
func scripted(t *testing.T, greeting string, script func(cmd string) (reply string, ok bool)) (addr string, got <-chan []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan []string, 1)
	go func() {
		var cmds []string
		defer func() { out <- cmds }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tp := textproto.NewConn(c)
		_ = tp.PrintfLine("%s", greeting)
		for {
			line, err := tp.ReadLine()
			if err != nil {
				return
			}
			cmds = append(cmds, line)
			if strings.EqualFold(line, "DATA") {
				_ = tp.PrintfLine("354 go on")
				if _, err := tp.ReadDotBytes(); err != nil {
					return
				}
				line = "."
				cmds = append(cmds, line)
			}
			reply, ok := script(line)
			if _, err := c.Write([]byte(reply)); err != nil || !ok {
				return
			}
		}
	}()
	return ln.Addr().String(), out
}

func TestSendToAServerWithoutEHLO(t *testing.T) {
	addr, got := scripted(t, "220 old.example.com", func(cmd string) (string, bool) {
		switch verb, _, _ := strings.Cut(cmd, " "); strings.ToUpper(verb) {
		case "EHLO":
			return "502 5.5.1 what?\r\n", true
		case "QUIT":
			return "221 bye\r\n", false
		}
		return "250 ok\r\n", true
	})
	c := newClient(t, mailout.Config{Addr: addr})
	if err := c.Send(t.Context(), "a@sms.example.com", "b@example.com", []byte("\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	cmds := <-got
	if !slices.Contains(cmds, "HELO bridge.test") || !slices.Contains(cmds, "MAIL FROM:<a@sms.example.com>") {
		t.Errorf("commands %q: want HELO and the mail", cmds)
	}
	if !slices.Contains(cmds, ".") {
		t.Errorf("commands %q: the message was not sent", cmds)
	}
}

// TestSendRefusesDataInjectedBeforeTLS: bytes a man in the middle adds
// after the STARTTLS reply must never be read as the server's replies
// over TLS (CVE-2011-0411).
func TestSendRefusesDataInjectedBeforeTLS(t *testing.T) {
	addr, got := scripted(t, "220 mx.example.com", func(cmd string) (string, bool) {
		switch verb, _, _ := strings.Cut(cmd, " "); strings.ToUpper(verb) {
		case "EHLO":
			return "250-mx.example.com\r\n250 STARTTLS\r\n", true
		case "STARTTLS":
			return "220 go ahead\r\n250 injected\r\n", false
		}
		return "500 unexpected\r\n", false
	})
	c := newClient(t, mailout.Config{Addr: addr})
	be := sendErr(t, c)
	if !be.Temporary() || !strings.Contains(be.Error(), "before the TLS handshake") {
		t.Errorf("%v (temporary %v)", be, be.Temporary())
	}
	if cmds := <-got; !slices.Equal(cmds, []string{"EHLO bridge.test", "STARTTLS"}) {
		t.Errorf("commands %q", cmds)
	}
}
