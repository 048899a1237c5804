// Package smtpin is the SMTP front end: a go-smtp backend whose sessions
// check the sender at MAIL, each recipient at RCPT and the content at DATA
// through the bridge, and answer with RFC 5321/3463 codes that name the
// reason. A message gets 250 only once the store has committed it.
package smtpin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/internal/auththrottle"
)

// Config is what the SMTP front end needs from the configuration.
type Config struct {
	Hostname        string
	Domains         []string
	RequireAuth     bool
	TLS             *tls.Config // nil: no STARTTLS
	MaxMessageBytes int64
	MaxRecipients   int
	Text            string // body, subject or subject+body
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	// MaxConnections caps open connections over all listeners, and
	// MaxConnectionsPerIP those from one client (IPv4 address or IPv6
	// /64); 0 is no cap.
	MaxConnections      int
	MaxConnectionsPerIP int
	// MaxBadCommands is how many permanent refusals a connection may
	// collect; the next one is answered 421 and the connection closed.
	// 0 is no cap.
	MaxBadCommands int
	// AllowedNetworks are the networks whose unauthenticated mail may
	// claim an account that names no networks of its own
	// (bridge.Account.Networks). nil is loopback only; an empty, non-nil
	// list is no network.
	AllowedNetworks []netip.Prefix
	// MaxSessionDuration bounds one connection's life, and MaxCommands
	// the command lines it may send without getting a message accepted
	// (NOOP, RSET, refused recipients...): a client that makes no
	// progress is cut off, one that keeps delivering is not (a relay
	// such as Postfix would defer the mail answered 421). Past either the
	// client is answered 421 4.7.0 and the connection closed. 0 is no
	// bound.
	MaxSessionDuration time.Duration
	MaxCommands        int
	// AuthFailuresPerClient and AuthFailuresPerAccount are the failed
	// AUTH attempts allowed per hour from one client (IPv4 address, IPv6
	// /64) and for one user name, across connections (a token bucket:
	// that many at once, refilled evenly over the hour). Attempts past
	// them are answered 454 4.7.0 without checking the password. 0 is no
	// limit.
	AuthFailuresPerClient  int
	AuthFailuresPerAccount int
	// AuthThrottle, if set, is used instead of one built from the two
	// limits above: the daemon shares it with the web console's sign-in.
	AuthThrottle *auththrottle.Throttle
	// MaxHeaderFields and MaxHeaderBytes bound a mail's header block and
	// each MIME part's (see Limits); 0 is the default.
	MaxHeaderFields int
	MaxHeaderBytes  int
}

// maxAddressLen is the longest address RFC 5321 (4.5.3.1.3) allows in a
// path: 256 octets with the angle brackets.
const maxAddressLen = 254

// maxDomainLen is the longest domain name (RFC 1035 2.3.4, near enough).
const maxDomainLen = 255

// Submitter is the part of the bridge the SMTP side uses. It is declared
// here, where it is used, so tests can see exactly what smtpin depends on.
type Submitter interface {
	Account(addr string) (*bridge.Account, error)
	Authenticate(user, password string) (*bridge.Account, error)
	// ResolveTo routes a destination and refuses a phone that opted out.
	ResolveTo(ctx context.Context, acct *bridge.Account, dest string) (bridge.Recipient, error)
	Submit(ctx context.Context, s *bridge.Submission) (*bridge.Message, error)
}

// Metrics counts what the SMTP side accepts and refuses.
type Metrics interface {
	Accepted(channel bridge.Channel)
	Refused(channel bridge.Channel, reason bridge.Reason)
}

type noMetrics struct{}

func (noMetrics) Accepted(bridge.Channel)               {}
func (noMetrics) Refused(bridge.Channel, bridge.Reason) {}

// Server is an SMTP listener feeding the bridge.
type Server struct {
	smtp    *smtp.Server
	bridge  Submitter
	metrics Metrics
	cfg     Config
	log     *slog.Logger
	domains map[string]bool
	limits  *connLimiter
	auth    *auththrottle.Throttle

	mu        sync.Mutex
	closed    bool
	listeners []*guardListener
}

// New returns a server; call Serve to start it. m may be nil.
func New(b Submitter, cfg Config, m Metrics, log *slog.Logger) *Server {
	if m == nil {
		m = noMetrics{}
	}
	s := &Server{bridge: b, cfg: cfg, metrics: m, log: log, domains: map[string]bool{}}
	for _, d := range cfg.Domains {
		s.domains[asciiLower(d)] = true
	}
	srv := smtp.NewServer(s)
	srv.Domain = cfg.Hostname
	// go-smtp's DATA reader refuses a message that reaches its limit
	// before it has seen the end-of-data line, so a message of exactly
	// the limit would be refused. It gets one byte more and Data
	// enforces the limit itself; MAIL SIZE= is checked in Mail. (EHLO
	// therefore advertises SIZE max+1.)
	if cfg.MaxMessageBytes > 0 {
		srv.MaxMessageBytes = cfg.MaxMessageBytes + 1
	}
	// RET, ENVID, NOTIFY and ORCPT (RFC 3461): see dsn.go.
	srv.EnableDSN = true
	// go-smtp refuses recipients past the cap itself with 452 4.5.3.
	srv.MaxRecipients = cfg.MaxRecipients
	srv.ReadTimeout = cfg.ReadTimeout
	if srv.ReadTimeout == 0 && (cfg.MaxCommands > 0 || cfg.MaxSessionDuration > 0) {
		// The session bounds hang on go-smtp arming a read deadline
		// before each command (sessionguard.go), which it does only with
		// a read timeout.
		srv.ReadTimeout = 24 * time.Hour
	}
	srv.WriteTimeout = cfg.WriteTimeout
	srv.TLSConfig = cfg.TLS
	srv.ErrorLog = slogPrinter{log}
	s.smtp = srv
	s.limits = newConnLimiter(cfg.MaxConnections, cfg.MaxConnectionsPerIP, s.refusedConnection)
	s.auth = cfg.AuthThrottle
	if s.auth == nil {
		s.auth = auththrottle.New(cfg.AuthFailuresPerClient, cfg.AuthFailuresPerAccount, nil)
	}
	return s
}

// Serve accepts plain SMTP connections (STARTTLS if configured) on ln
// until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(ln, nil)
}

// ServeTLS accepts implicit-TLS connections (SMTPS, port 465) on ln until
// Shutdown. The connection caps apply to both listeners together.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("smtpin: implicit TLS needs a TLS configuration")
	}
	return s.serve(ln, s.cfg.TLS)
}

func (s *Server) serve(ln net.Listener, tlsCfg *tls.Config) error {
	// The caps sit under TLS: go-smtp must see the *tls.Conn itself to
	// run the handshake and to offer AUTH.
	gl := newGuardListener(ln, s.limits, tlsCfg)
	gl.maxCommands, gl.maxDuration, gl.ended = s.cfg.MaxCommands, s.cfg.MaxSessionDuration, s.sessionEnded
	s.mu.Lock()
	if s.closed {
		// Shutdown has run: go-smtp would never close this listener.
		s.mu.Unlock()
		return gl.Close()
	}
	s.listeners = append(s.listeners, gl)
	s.mu.Unlock()
	var served net.Listener = gl
	if tlsCfg != nil {
		served = tls.NewListener(gl, tlsCfg)
	}
	err := s.smtp.Serve(served)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || errors.Is(err, smtp.ErrServerClosed) {
		// Shutdown closes the listener before go-smtp knows it is
		// shutting down, so go-smtp may report the closed listener.
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for open sessions to end
// until ctx is done, then closes them and returns an error wrapping ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	// Close the listeners here too: one whose Serve had not yet reached
	// go-smtp when go-smtp shut down would otherwise stay open for good.
	s.mu.Lock()
	s.closed = true
	for _, l := range s.listeners {
		_ = l.Close()
	}
	s.mu.Unlock()
	err := s.smtp.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// go-smtp's Close does nothing once Shutdown has begun, so cut
		// the remaining sessions off here.
		s.limits.closeAll()
		return fmt.Errorf("smtpin: closed the sessions still open after the grace period: %w", err)
	}
	return err
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	gc := guardOf(c.Conn())
	if gc == nil {
		// Not accepted through serve (cannot happen today); keep the
		// counts for this session alone.
		gc = &guardConn{Conn: c.Conn(), addr: remoteAddr(c.Conn()), release: func() {}}
	}
	if gc.cut() {
		return nil, errCut
	}
	// Sessions start at HELO/EHLO, over TLS once the handshake is done:
	// from here the guard can write through whatever go-smtp writes to.
	gc.top = c.Conn()
	if len(c.Hostname()) > maxDomainLen {
		// go-smtp would echo it in its greeting reply.
		return nil, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "HELO/EHLO argument longer than a domain name (255 octets)"}
	}
	return &session{srv: s, remote: c.Conn().RemoteAddr().String(), conn: gc, c: c}, nil
}

type session struct {
	srv    *Server
	remote string
	conn   *guardConn
	c      *smtp.Conn

	authed *bridge.Account // set by a successful AUTH
	from   string
	acct   *bridge.Account
	rcpts  []bridge.Recipient
	// envid and ret are MAIL's ENVID and RET (RFC 3461).
	envid string
	ret   bridge.DSNReturn
}

// AuthMechanisms implements smtp.AuthSession. go-smtp offers them only
// over TLS (AllowInsecureAuth stays false): a password must never cross
// the network in clear.
func (s *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

// Auth implements smtp.AuthSession.
func (s *session) Auth(mech string) (sasl.Server, error) {
	failed := func(user string) error {
		s.srv.metrics.Refused(bridge.ChannelSMTP, bridge.ReasonUnknownAccount)
		s.srv.log.Warn("authentication failed", "remote", s.remote, "user", user)
		return s.strike(smtp.ErrAuthFailed)
	}
	client := clientKey(s.conn.addr)
	check := func(user, pass string) error {
		if s.conn.cut() {
			return errCut
		}
		now := time.Now()
		if !s.srv.auth.Allowed(client, user, now) {
			// Neither counted as a strike nor checked: the password may
			// be right, and bcrypt is what the guesser wants us to spend.
			s.srv.metrics.Refused(bridge.ChannelSMTP, bridge.ReasonRateLimited)
			s.srv.log.Warn("authentication throttled", "remote", s.remote, "user", user)
			return errAuthThrottled
		}
		acct, err := s.srv.bridge.Authenticate(user, pass)
		if err != nil {
			s.srv.auth.Failed(client, user, now)
			return failed(user)
		}
		s.authed = acct
		return nil
	}
	if !s.srv.auth.Allowed(client, "", time.Now()) {
		s.srv.metrics.Refused(bridge.ChannelSMTP, bridge.ReasonRateLimited)
		return nil, errAuthThrottled
	}
	plain := func(identity, user, pass string) error {
		if identity != "" && identity != user {
			return failed(user)
		}
		return check(user, pass)
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(plain), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

var errAuthThrottled = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many failed logins, try again later"}

// loginServer is the server side of the (obsolete but still common) LOGIN
// mechanism: ask for the user name, then the password.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.user, l.step = string(response), 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(response))
	}
}

func (s *session) Reset() {
	s.from, s.acct, s.rcpts, s.envid, s.ret = "", nil, nil, "", ""
	if s.c != nil && len(s.c.Hostname()) > maxDomainLen {
		// A second HELO/EHLO resets the session without a new one, and
		// go-smtp's reply would echo the argument: end the connection
		// before it is written.
		_ = s.conn.finish("421 4.5.2 HELO/EHLO argument longer than a domain name (255 octets), closing\r\n", errBadHello)
	}
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.conn.cut() {
		return errCut
	}
	if len(from) > maxAddressLen {
		// go-smtp would echo it in its 250.
		return s.strike(&smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "sender address longer than RFC 5321 allows (254 octets)"})
	}
	envid, ret, derr := mailDSN(opts)
	if derr != nil {
		return s.strike(derr)
	}
	if max := s.srv.cfg.MaxMessageBytes; max > 0 && opts != nil && opts.Size > max {
		return s.refuse("MAIL", bridge.Permanent(bridge.ReasonTooLong, "size", "message size %d exceeds the limit of %d bytes", opts.Size, max))
	}
	acct := s.authed
	switch {
	case acct != nil:
		// An authenticated account sends from its own addresses only:
		// bounces and replies go to the envelope sender, which must not
		// be someone else's mailbox. The null sender is refused too: the
		// bounce of an SMS would have nowhere to go.
		if from == "" {
			return s.refuse("MAIL", bridge.Permanent(bridge.ReasonSenderNotAllowed, "from",
				"account %s must use one of its own addresses as sender, not the null sender", acct.Name))
		}
		if owner, err := s.srv.bridge.Account(from); err != nil || owner.Name != acct.Name {
			return s.refuse("MAIL", bridge.Permanent(bridge.ReasonSenderNotAllowed, "from",
				"%s is not an address of account %s", from, acct.Name))
		}
	case s.srv.cfg.RequireAuth:
		s.srv.metrics.Refused(bridge.ChannelSMTP, bridge.ReasonUnknownAccount)
		return s.strike(&smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"})
	default:
		// The envelope sender is only a claim: it picks the account only
		// from a network that account trusts. A client outside the
		// default networks gets the same answer for an unknown address
		// as for a known one, so it cannot list the accounts' addresses.
		untrusted := bridge.Permanent(bridge.ReasonSenderNotAllowed, "from",
			"clients at %s may not send as <%s> without authentication", s.conn.addr, from)
		var err error
		if acct, err = s.srv.bridge.Account(from); err != nil {
			if !(&bridge.Account{}).Trusts(s.conn.addr, s.srv.defaultNetworks()) {
				err = untrusted
			}
			return s.refuse("MAIL", err)
		}
		if !acct.Trusts(s.conn.addr, s.srv.defaultNetworks()) {
			return s.refuse("MAIL", untrusted)
		}
	}
	s.Reset()
	s.from, s.acct, s.envid, s.ret = from, acct, envid, ret
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.conn.cut() {
		return errCut
	}
	if len(to) > maxAddressLen {
		// go-smtp would echo it in its 250.
		return s.strike(&smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "recipient address longer than RFC 5321 allows (254 octets)"})
	}
	if s.acct == nil {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "MAIL first"}
	}
	notify, orcpt, derr := rcptDSN(opts)
	if derr != nil {
		return s.strike(derr)
	}
	local, err := s.srv.localPart(to)
	if err != nil {
		return s.refuse("RCPT", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.commitTimeout())
	defer cancel()
	r, err := s.srv.bridge.ResolveTo(ctx, s.acct, local)
	if err != nil {
		return s.refuse("RCPT", err)
	}
	r.Notify, r.ORCPT = notify, orcpt
	s.rcpts = append(s.rcpts, r)
	return nil
}

// localPart returns the local part of an address at one of our domains;
// anything else would be relaying. go-smtp has already stripped a source
// route (<@a,@b:x@y>) and the quotes of a quoted local part, so
// "x@evil"@us arrives as x@evil@us. Routing syntax left in the local part
// (x%evil@us, evil!x@us, x@evil@us) is refused as relaying too: no phone
// number or phonebook contains it, and an MTA behind us might honour it.
// The domain must match exactly, ASCII case aside: no trailing dot, no
// address literal, no subdomain.
func (s *Server) localPart(addr string) (string, error) {
	relaying := func() error {
		return bridge.Permanent(bridge.ReasonBadDomain, "to", "relaying to <%s> denied: only phone numbers at %s", addr, strings.Join(s.cfg.Domains, ", "))
	}
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 {
		return "", relaying()
	}
	local, domain := addr[:i], addr[i+1:]
	if !s.domains[asciiLower(domain)] || strings.ContainsAny(local, "@%!:") {
		return "", relaying()
	}
	return local, nil
}

// asciiLower lower-cases ASCII letters only. strings.ToLower would also
// fold look-alikes such as the Kelvin sign into "k", letting a domain we
// do not own compare equal to one we do.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (s *session) Data(r io.Reader) error {
	er := &errReader{r: r, max: s.srv.cfg.MaxMessageBytes}
	m, err := ReadMail(er, Limits{MaxHeaderFields: s.srv.cfg.MaxHeaderFields, MaxHeaderBytes: s.srv.cfg.MaxHeaderBytes})
	if er.err != nil {
		// The transport failed (size limit, timeout): answer that, not
		// whatever the MIME parser made of the truncated input.
		err = er.err
	}
	if err != nil {
		// Consume what is left so a broken mail never desynchronises
		// the session (go-smtp also drains, this keeps it explicit).
		_, _ = io.Copy(io.Discard, r)
		return s.refuse("DATA", err)
	}
	if s.conn.cut() {
		// The end-of-data line came, but the connection is over.
		return errCut
	}
	sub, err := s.submission(m)
	if err != nil {
		return s.refuse("DATA", err)
	}
	// The client is waiting for our answer and cannot cancel; bound the
	// commit by the write timeout so a stuck store yields a 451.
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.commitTimeout())
	defer cancel()
	msg, err := s.srv.bridge.Submit(ctx, sub)
	if err != nil {
		return s.refuse("DATA", err)
	}
	s.srv.metrics.Accepted(bridge.ChannelSMTP)
	s.conn.commands = 0 // progress: max_commands counts from here
	s.srv.log.Info("accepted", "channel", "smtp", "id", msg.ID, "account", s.acct.Name, "recipients", len(msg.Recipients))
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "queued as " + msg.ID}
}

func (s *Server) commitTimeout() time.Duration {
	if s.cfg.WriteTimeout > 0 {
		return s.cfg.WriteTimeout
	}
	return time.Minute
}

// Headers that steer a mail's SMS.
const (
	HeaderSender       = "X-SMS-Sender"        // one of the account's sender IDs
	HeaderSendAt       = "X-SMS-Send-At"       // RFC 3339 time to send at
	HeaderTemplate     = "X-SMS-Template"      // provider template id / pattern code
	HeaderParamPrefix  = "X-SMS-Param-"        // X-SMS-Param-<name>: template parameter
	HeaderOverrideText = "X-SMS-Override-Text" // "yes": with a template, send the mail text too
)

// submission turns a parsed mail into a bridge submission.
func (s *session) submission(m *Mail) (*bridge.Submission, error) {
	if isAutoReply(m.Header) {
		// An out-of-office answering one of our reply mails would text
		// the phone "I am away until Monday". Generated mail (cron,
		// monitoring: Auto-Submitted: auto-generated) is what the bridge
		// is for, so only responses are refused.
		return nil, bridge.Permanent(bridge.ReasonInvalid, "Auto-Submitted", "automatic replies (out of office, vacation) are not sent as SMS")
	}
	sub := &bridge.Submission{
		Account:       s.acct,
		Channel:       bridge.ChannelSMTP,
		EnvelopeFrom:  s.from,
		EnvelopeID:    s.envid,
		Return:        s.ret,
		MailMessageID: m.MessageID,
		Headers:       m.BounceHeaders,
		Subject:       m.Subject,
		ReplyTo:       m.ReplyAddress(s.from, s.acct.MayReplyTo),
		MailRefs:      m.Refs(),
		Sender:        strings.TrimSpace(m.Header.Get(HeaderSender)),
		Template:      strings.TrimSpace(m.Header.Get(HeaderTemplate)),
		Recipients:    s.rcpts,
	}
	if v := strings.TrimSpace(m.Header.Get(HeaderSendAt)); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if len(v) > 64 { // never echo a huge value
				v = strings.ToValidUTF8(v[:64], "") + "…"
			}
			return nil, bridge.Permanent(bridge.ReasonInvalid, "send_at", "%s: %q is not an RFC 3339 time such as 2030-01-02T15:04:05+02:00", HeaderSendAt, v)
		}
		sub.SendAt = t
	}
	fields := m.Header.Fields()
	for fields.Next() {
		k := fields.Key()
		if len(k) > len(HeaderParamPrefix) && strings.EqualFold(k[:len(HeaderParamPrefix)], HeaderParamPrefix) {
			// Key() is canonicalised ("X-Sms-Param-Code"); template
			// placeholders are case-sensitive, so take the name as written.
			if raw, err := fields.Raw(); err == nil {
				if name, _, ok := strings.Cut(string(raw), ":"); ok && len(name) == len(k) {
					k = name
				}
			}
			if sub.Params == nil {
				sub.Params = map[string]string{}
			}
			v, err := fields.Text()
			if err != nil {
				v = fields.Value()
			}
			sub.Params[k[len(HeaderParamPrefix):]] = strings.TrimSpace(v)
		}
	}
	text := m.Text(s.srv.cfg.Text)
	if sub.Template == "" {
		sub.Text = text
		if len(sub.Params) > 0 {
			return nil, bridge.Permanent(bridge.ReasonInvalid, "params", "%s headers need %s", HeaderParamPrefix+"<name>", HeaderTemplate)
		}
	} else if strings.EqualFold(strings.TrimSpace(m.Header.Get(HeaderOverrideText)), "yes") {
		sub.Text = text
	}
	return sub, nil
}

// refuse logs a refusal and turns it into the SMTP reply.
func (s *session) refuse(stage string, err error) error {
	e := Reply(err)
	s.srv.metrics.Refused(bridge.ChannelSMTP, bridge.ReasonOf(err))
	s.srv.log.Info("refused", "channel", "smtp", "stage", stage, "remote", s.remote,
		"reason", string(bridge.ReasonOf(err)), "code", e.Code, "err", err)
	return s.strike(e)
}

var errTooManyErrors = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many errors"}

// strike counts a permanent refusal against the connection. A client that
// keeps collecting them is probing (addresses, passwords) rather than
// sending mail: past the cap its refusal becomes 421 and the connection
// closes once that reply is out.
func (s *session) strike(e *smtp.SMTPError) *smtp.SMTPError {
	limit := s.srv.cfg.MaxBadCommands
	if e.Code < 500 || limit <= 0 {
		return e
	}
	s.conn.strikes++
	if s.conn.strikes <= limit {
		return e
	}
	s.conn.hangUp.Store(true)
	s.srv.log.Warn("too many errors, closing the connection", "channel", "smtp", "remote", s.remote, "refusals", s.conn.strikes)
	return errTooManyErrors
}

// Reply maps an error to the SMTP reply a client sees. It is the only place
// that does: go-smtp would turn a plain error into a permanent 554 showing
// internal text, so every error is translated here, and internal causes
// never reach the client.
func Reply(err error) *smtp.SMTPError {
	return fitLine(reply(err))
}

// maxReplyLine is the longest reply line RFC 5321 (4.5.3.1.5) allows,
// CRLF included.
const maxReplyLine = 512

// fitLine keeps a reply to one line of at most 512 octets: messages
// quote what the client sent (addresses, numbers), and a client must not
// be able to make us echo a kilobyte, or a line break, back. The cut is
// at a UTF-8 boundary and marked with "...".
func fitLine(e *smtp.SMTPError) *smtp.SMTPError {
	msg := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, e.Message)
	room := maxReplyLine - len("550 5.7.1 ") - len("\r\n")
	if len(msg) > room {
		cut := room - len("...")
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	if msg == e.Message {
		return e
	}
	return &smtp.SMTPError{Code: e.Code, EnhancedCode: e.EnhancedCode, Message: msg}
}

func reply(err error) *smtp.SMTPError {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, smtp.ErrTooLongLine) {
		return &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "line too long (RFC 5321 allows 1000 octets)"}
	}
	var be *bridge.Error
	msg := "temporary failure, try again later"
	if errors.As(err, &be) && be.Msg != "" {
		msg = be.Msg
	}
	code := func(c int, class, subject, detail int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: c, EnhancedCode: smtp.EnhancedCode{class, subject, detail}, Message: msg}
	}
	switch bridge.ReasonOf(err) {
	case bridge.ReasonBadDomain, bridge.ReasonUnknownAccount, bridge.ReasonSenderNotAllowed, bridge.ReasonOptedOut:
		return code(550, 5, 7, 1)
	case bridge.ReasonBadNumber:
		return code(550, 5, 1, 1)
	case bridge.ReasonNoRoute:
		return code(550, 5, 1, 2)
	case bridge.ReasonTooLong:
		return code(552, 5, 3, 4)
	case bridge.ReasonEmpty, bridge.ReasonTemplateUnknown, bridge.ReasonInvalid:
		return code(554, 5, 6, 0)
	case bridge.ReasonTooManyRecipients:
		return code(452, 4, 5, 3)
	case bridge.ReasonOverLimit:
		// X.5.3, too many recipients: permanent, as no retry of the same
		// message fits the limit; the text names it.
		return code(554, 5, 5, 3)
	case bridge.ReasonRateLimited:
		return code(451, 4, 7, 1)
	case bridge.ReasonStoreUnavailable:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store the message now, try again later"}
	}
	if !bridge.IsTemporary(err) && be != nil {
		return code(554, 5, 0, 0)
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure, try again later"}
}

// errReader remembers the first error of the SMTP data stream itself,
// and enforces the message size limit (see New for why go-smtp's is one
// byte higher).
type errReader struct {
	r   io.Reader
	max int64 // 0: no limit
	n   int64
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.r.Read(p)
	e.n += int64(n)
	if e.max > 0 && e.n > e.max {
		n, err = 0, bridge.Permanent(bridge.ReasonTooLong, "DATA", "message exceeds the limit of %d bytes", e.max)
	}
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// slogPrinter adapts slog to go-smtp's Printf logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn("smtp", "msg", fmt.Sprintf(format, v...))
}
func (p slogPrinter) Println(v ...any) { p.log.Warn("smtp", "msg", fmt.Sprint(v...)) }

// isAutoReply reports whether a mail is an automatic response (RFC 3834
// Auto-Submitted: auto-replied, or the older vacation headers).
func isAutoReply(h mail.Header) bool {
	v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted")))
	if strings.HasPrefix(v, "auto-replied") {
		return true
	}
	return h.Get("X-Autoreply") != "" || h.Get("X-Autorespond") != ""
}
