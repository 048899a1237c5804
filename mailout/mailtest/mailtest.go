// Package mailtest runs a capturing SMTP server on 127.0.0.1 for tests of
// code that sends mail. It records every message it accepts, and can offer
// STARTTLS or implicit TLS with a certificate made at start, require AUTH
// PLAIN (recording who logged in), refuse the next messages with a given
// reply, hold messages before answering, and go down and come back up on
// the same address.
package mailtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options says what the server offers and demands.
type Options struct {
	STARTTLS    bool // offer STARTTLS
	ImplicitTLS bool // speak TLS from the first byte (SMTPS)
	// Username and Password, when Username is set, are the only
	// credentials accepted, and MAIL is refused without them. AUTH PLAIN is
	// offered over TLS only, unless AllowInsecureAuth.
	Username          string
	Password          string
	AllowInsecureAuth bool
	SMTPUTF8          bool // offer SMTPUTF8
}

// Message is one message the server accepted.
type Message struct {
	From string // "" for the null sender
	To   []string
	Data []byte
	TLS  bool   // it came over TLS
	User string // who authenticated, if anyone
	Helo string // the EHLO name
}

// Login is one successful AUTH.
type Login struct {
	User string
	TLS  bool // over TLS
}

// Server is a capturing SMTP server.
type Server struct {
	t      testing.TB
	opt    Options
	addr   string
	tls    *tls.Config // the server's
	client *tls.Config // trusts the server's certificate

	mu      sync.Mutex
	srv     *smtp.Server // nil while down
	ln      *listener
	served  chan struct{}
	msgs    []Message
	logins  []Login
	refused int
	fail    []*smtp.SMTPError // replies for the next messages
	hold    chan struct{}     // non-nil: messages wait for it to close
	held    int
	down    chan struct{} // closed by Down: held messages give up
	changed chan struct{} // closed and replaced when a message arrives or is held
}

// Start runs a server on 127.0.0.1 with an ephemeral port until the test
// ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	s := &Server{t: t, opt: opt, changed: make(chan struct{})}
	if opt.STARTTLS || opt.ImplicitTLS {
		s.tls, s.client = certificate(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(func() {
		s.Down()
		s.mu.Lock()
		if s.hold != nil {
			close(s.hold)
			s.hold = nil
		}
		s.mu.Unlock()
	})
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// ClientTLS returns a client configuration that trusts the server's
// certificate (issued to 127.0.0.1 and localhost); nil without TLS.
func (s *Server) ClientTLS() *tls.Config {
	if s.client == nil {
		return nil
	}
	return s.client.Clone()
}

// CertificatePEM returns the server's certificate, self-signed, in PEM:
// a process that is to trust it reads it from SSL_CERT_FILE. Nil without
// TLS.
func (s *Server) CertificatePEM() []byte {
	if s.tls == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.tls.Certificates[0].Certificate[0]})
}

// FailNext makes the server answer the next n messages with reply after
// their final dot, instead of accepting them.
func (s *Server) FailNext(n int, reply *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, reply)
	}
}

// Refused is how many messages the server has refused (FailNext).
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Hold makes the server keep every message it receives after its final
// dot, without answering, until Release, Down or the end of the test.
// Released messages are accepted; those still held at Down are not.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// Release lets held messages through and stops holding new ones.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Held is how many messages are being held now.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Down closes the listener and every connection: connecting is refused
// until Up.
func (s *Server) Down() {
	s.mu.Lock()
	srv, ln, served := s.srv, s.ln, s.served
	s.srv, s.ln = nil, nil
	if srv != nil {
		close(s.down)
	}
	s.mu.Unlock()
	if srv == nil {
		return
	}
	// go-smtp's Close misses a listener its Serve has not registered yet
	// and a connection its handler has not, so the listener closes them.
	ln.Close()
	srv.Close()
	<-served
}

// Up listens again on the same address. Call it from the test goroutine.
func (s *Server) Up() {
	s.t.Helper()
	s.mu.Lock()
	up := s.srv != nil
	s.mu.Unlock()
	if up {
		return
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("mailtest: listening again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *Server) serve(inner net.Listener) {
	ln := &listener{Listener: inner, conns: map[net.Conn]bool{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = "mailtest.localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.AllowInsecureAuth = s.opt.AllowInsecureAuth
	srv.EnableSMTPUTF8 = s.opt.SMTPUTF8
	srv.ErrorLog = discard{}
	if s.opt.STARTTLS {
		srv.TLSConfig = s.tls
	}
	var served net.Listener = ln
	if s.opt.ImplicitTLS {
		served = tls.NewListener(ln, s.tls)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.ln, s.served, s.down = srv, ln, done, make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(served)
	}()
}

// Logins returns the successful AUTH commands so far, oldest first.
func (s *Server) Logins() []Login {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Login(nil), s.logins...)
}

// Messages returns the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns the accepted messages once there are at least n, or an
// error when ctx ends first.
func (s *Server) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs, changed := append([]Message(nil), s.msgs...), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return msgs, fmt.Errorf("mailtest: %d of %d messages arrived: %w", len(msgs), n, ctx.Err())
		}
	}
}

// WaitHeld returns once at least n messages are being held (see Hold),
// or an error when ctx ends first.
func (s *Server) WaitHeld(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		held, changed := s.held, s.changed
		s.mu.Unlock()
		if held >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("mailtest: %d of %d messages held: %w", held, n, ctx.Err())
		}
	}
}

type session struct {
	s    *Server
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (se *session) AuthMechanisms() []string {
	if se.s.opt.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	if se.s.opt.Username == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if (identity != "" && identity != user) || user != se.s.opt.Username || pass != se.s.opt.Password {
			return smtp.ErrAuthFailed
		}
		se.user = user
		_, isTLS := se.conn.TLSConnectionState()
		se.s.mu.Lock()
		se.s.logins = append(se.s.logins, Login{User: user, TLS: isTLS})
		se.s.mu.Unlock()
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.opt.Username != "" && se.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	se.from, se.to = from, nil
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := se.s
	s.mu.Lock()
	if len(s.fail) > 0 {
		reply := s.fail[0]
		s.fail = s.fail[1:]
		s.refused++
		s.mu.Unlock()
		return reply
	}
	hold, down := s.hold, s.down
	if hold != nil {
		s.held++
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
	if hold != nil {
		var gone bool
		select {
		case <-hold:
		case <-down:
			gone = true
		}
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
		if gone {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Going down"}
		}
	}
	_, isTLS := se.conn.TLSConnectionState()
	m := Message{From: se.from, To: se.to, Data: data, TLS: isTLS, User: se.user, Helo: se.conn.Hostname()}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func (se *session) Reset()        { se.from, se.to = "", nil }
func (se *session) Logout() error { return nil }

// certificate makes a self-signed certificate for 127.0.0.1 and localhost,
// and returns the server's configuration and a client's that trusts it.
func certificate(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	return server, &tls.Config{RootCAs: pool}
}

// listener remembers the connections it accepted, to close them all.
type listener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]bool
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = true
	return tc, nil
}

func (l *listener) Close() error {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[net.Conn]bool{}
	l.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	return l.Listener.Close()
}

type trackedConn struct {
	net.Conn
	l *listener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// discard drops go-smtp's error log: a test asserts outcomes, not logs.
type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}
