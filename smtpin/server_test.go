package smtpin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
	"github.com/smsbridge/smsbridge/providers/console"
	"github.com/smsbridge/smsbridge/smtpin"
)

type server struct {
	addr    string
	tlsAddr string // implicit TLS listener, when cfg.TLS is set
	store   *sqlite.Store
}

func newServer(t *testing.T, cfg smtpin.Config) *server {
	t.Helper()
	return newServerWith(t, cfg, nil)
}

// newServerWith runs a server on 127.0.0.1:0, plus an implicit-TLS
// listener when cfg.TLS is set, counting into m (which may be nil).
func newServerWith(t *testing.T, cfg smtpin.Config, m smtpin.Metrics) *server {
	t.Helper()
	return newServerFull(t, cfg, m, []bridge.Account{{Name: "a", Emails: []string{"*@example.com"}, SenderIDs: []string{"A"}, PasswordHash: testHash}}, nil)
}

// newServerFull is newServerWith with the given accounts, and with the
// bridge seen through wrap when it is not nil.
func newServerFull(t *testing.T, cfg smtpin.Config, m smtpin.Metrics, accounts []bridge.Account, wrap func(smtpin.Submitter) smtpin.Submitter) *server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(tlog{t}, nil))
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	p := console.New("console", nil, log)
	b, err := bridge.New(st, []bridge.Provider{p}, []bridge.Route{{Prefix: "+972", Providers: []string{"console"}}},
		accounts, bridge.Options{Region: "IL", MaxSegments: 10, MaxRecipients: 5})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Domains == nil {
		cfg.Domains = []string{"sms.example.com"}
	}
	cfg.Text = "body"
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	cfg.WriteTimeout = 5 * time.Second
	var sub smtpin.Submitter = b
	if wrap != nil {
		sub = wrap(b)
	}
	srv := smtpin.New(sub, cfg, m, log)
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	s := &server{store: st}
	ln := listen()
	s.addr = ln.Addr().String()
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ln) }()
	serving := 1
	if cfg.TLS != nil {
		tln := listen()
		s.tlsAddr = tln.Addr().String()
		go func() { done <- srv.ServeTLS(tln) }()
		serving++
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for range serving {
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
		st.Close()
	})
	return s
}

func (s *server) queued(t *testing.T) int {
	st, err := s.store.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Queued
}

func code(err error) string {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return fmt.Sprint(err)
	}
	return fmt.Sprintf("%d %d.%d.%d", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
}

func TestReplyMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{bridge.Permanent(bridge.ReasonBadDomain, "", "x"), "550 5.7.1"},
		{bridge.Permanent(bridge.ReasonUnknownAccount, "", "x"), "550 5.7.1"},
		{bridge.Permanent(bridge.ReasonSenderNotAllowed, "", "x"), "550 5.7.1"},
		{bridge.Permanent(bridge.ReasonBadNumber, "", "x"), "550 5.1.1"},
		{bridge.Permanent(bridge.ReasonNoRoute, "", "x"), "550 5.1.2"},
		{bridge.Permanent(bridge.ReasonTooLong, "", "x"), "552 5.3.4"},
		{bridge.Permanent(bridge.ReasonEmpty, "", "x"), "554 5.6.0"},
		{bridge.Permanent(bridge.ReasonTemplateUnknown, "", "x"), "554 5.6.0"},
		{bridge.Permanent(bridge.ReasonTooManyRecipients, "", "x"), "452 4.5.3"},
		{&bridge.Error{Reason: bridge.ReasonRateLimited, Temp: true}, "451 4.7.1"},
		{bridge.Permanent(bridge.ReasonOverLimit, "to", "x"), "554 5.5.3"},
		{&bridge.Error{Reason: bridge.ReasonStoreUnavailable, Temp: true, Err: errors.New("disk I/O error /var/lib/x")}, "451 4.3.0"},
		{errors.New("internal detail"), "451 4.3.0"},
		{fmt.Errorf("reading mail: %w", smtp.ErrDataTooLarge), "552 5.3.4"},
		{fmt.Errorf("reading mail: %w", smtp.ErrTooLongLine), "500 5.5.2"},
		{fmt.Errorf("wrapped: %w", bridge.Permanent(bridge.ReasonBadNumber, "", "x")), "550 5.1.1"},
	} {
		got := smtpin.Reply(tc.err)
		if s := code(got); s != tc.want {
			t.Errorf("Reply(%v) = %s, want %s", tc.err, s, tc.want)
		}
		if strings.Contains(got.Message, "internal detail") || strings.Contains(got.Message, "/var/lib") {
			t.Errorf("Reply(%v) leaks internals: %q", tc.err, got.Message)
		}
	}
}

func dial(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("test.example"); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLimits(t *testing.T) {
	s := newServer(t, smtpin.Config{MaxMessageBytes: 2048, MaxRecipients: 3, MaxConnections: 2})

	t.Run("too many recipients", func(t *testing.T) {
		c := dial(t, s.addr)
		c.Mail("a@example.com", nil)
		for i := range 3 {
			if err := c.Rcpt(fmt.Sprintf("050123456%d@sms.example.com", i), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Rcpt("0501234569@sms.example.com", nil); code(err) != "452 4.5.3" {
			t.Errorf("4th RCPT: %v, want 452 4.5.3", err)
		}
	})
	t.Run("too big", func(t *testing.T) {
		c := dial(t, s.addr)
		before := s.queued(t)
		err := c.SendMail("a@example.com", []string{"0501234567@sms.example.com"},
			strings.NewReader("Subject: x\r\n\r\n"+strings.Repeat(strings.Repeat("a", 70)+"\r\n", 60)))
		if code(err) != "552 5.3.4" {
			t.Errorf("got %v, want 552 5.3.4", err)
		}
		if s.queued(t) != before {
			t.Error("an oversized mail was queued")
		}
	})
	t.Run("connection cap", func(t *testing.T) {
		s := newServer(t, smtpin.Config{MaxConnections: 2})
		c1, c2 := dial(t, s.addr), dial(t, s.addr)
		_, _ = c1, c2
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(conn)
		if !strings.HasPrefix(string(b), "421 4.7.0") {
			t.Errorf("third connection got %q, want 421 4.7.0", b)
		}
	})
}

// SMTP smuggling: a lone "." between line ends other than CRLF CRLF must
// not end the message, or a client could hide a second transaction (with
// another sender's envelope) inside the first one's data, past whatever
// filtered it upstream. Every variant is one message whose text contains
// the would-be second one.
func TestNoSmuggling(t *testing.T) {
	for name, end := range map[string]string{
		`\n.\n`:      "\n.\n",
		`\r.\r`:      "\r.\r",
		`\n.\r\n`:    "\n.\r\n",
		`\r\n.\n`:    "\r\n.\n",
		`\r.\r\n`:    "\r.\r\n",
		`\r\n.\r`:    "\r\n.\r",
		`\n.\n bare`: "\n.\n",
	} {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, smtpin.Config{})
			conn, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			// The smuggled commands end in CRLF so that a server which
			// took the fake end for real would certainly run them.
			nl := "\r\n"
			if strings.HasSuffix(name, "bare") {
				nl = "\n"
			}
			script := "EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<0501234567@sms.example.com>\r\nDATA\r\n" +
				"Subject: one\r\n\r\nfirst" + end +
				"MAIL FROM:<a@example.com>" + nl + "RCPT TO:<0507654321@sms.example.com>" + nl + "DATA" + nl + "smuggled" +
				"\r\n.\r\nQUIT\r\n"
			if _, err := io.WriteString(conn, script); err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(conn)
			replies := string(b)
			if n := strings.Count(replies, "\r\n354 "); n != 1 {
				t.Errorf("%d DATA transactions started, want 1:\n%s", n, replies)
			}
			if n := strings.Count(replies, "queued as"); n != 1 {
				t.Errorf("%d messages accepted, want 1:\n%s", n, replies)
			}
			if !strings.HasSuffix(replies, "221 2.0.0 Bye\r\n") {
				t.Errorf("session did not end with QUIT's reply:\n%s", replies)
			}
			if q := s.queued(t); q != 1 {
				t.Errorf("%d recipients queued, want 1", q)
			}
		})
	}
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

// testHash is bcrypt("correct horse battery"), at the minimum cost to keep tests fast.
var testHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func TestAuth(t *testing.T) {
	s := newServer(t, smtpin.Config{RequireAuth: true, TLS: selfSigned(t)})
	if c := dial(t, s.addr); func() bool { ok, _ := c.Extension("AUTH"); return ok }() {
		t.Fatal("AUTH offered before STARTTLS")
	}
	client := func(t *testing.T) *smtp.Client {
		c, err := smtp.DialStartTLS(s.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") || !strings.Contains(mechs, "LOGIN") {
			t.Fatalf("AUTH after STARTTLS = %v %q, want PLAIN and LOGIN", ok, mechs)
		}
		return c
	}

	t.Run("no auth", func(t *testing.T) {
		c := client(t)
		if err := c.Mail("a@example.com", nil); code(err) != "530 5.7.0" {
			t.Errorf("MAIL without AUTH: %v, want 530 5.7.0", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		c := client(t)
		if err := c.Auth(sasl.NewPlainClient("", "a", "wrong")); code(err) != "535 5.7.8" {
			t.Errorf("AUTH: %v, want 535 5.7.8", err)
		}
		if err := c.Auth(sasl.NewPlainClient("", "nobody", "correct horse battery")); code(err) != "535 5.7.8" {
			t.Errorf("AUTH unknown user: %v, want 535 5.7.8", err)
		}
	})
	for name, auth := range map[string]sasl.Client{
		"PLAIN": sasl.NewPlainClient("", "a", "correct horse battery"),
		"LOGIN": sasl.NewLoginClient("a", "correct horse battery"),
	} {
		t.Run(name, func(t *testing.T) {
			c := client(t)
			if err := c.Auth(auth); err != nil {
				t.Fatalf("AUTH: %v", err)
			}
			before := s.queued(t)
			// Authenticated: the account sends from its own addresses,
			// and only from those (see TestAuthSenderAddresses).
			if err := c.SendMail("robot@example.com", []string{"0501234567@sms.example.com"},
				strings.NewReader("Subject: x\r\n\r\nauthenticated\r\n")); err != nil {
				t.Fatalf("send: %v", err)
			}
			if s.queued(t) != before+1 {
				t.Error("the mail was not queued")
			}
		})
	}
}
