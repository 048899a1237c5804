package mailout

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/bridge"
)

// TLSMode says how the connection to the smarthost is secured.
type TLSMode string

const (
	// TLSStartTLS upgrades with STARTTLS when the smarthost offers it and
	// stays in plain text when it does not (the default).
	TLSStartTLS TLSMode = "starttls"
	// TLSRequired upgrades with STARTTLS and refuses a smarthost that
	// does not offer it.
	TLSRequired TLSMode = "required"
	// TLSImplicit speaks TLS from the first byte (SMTPS, port 465).
	TLSImplicit TLSMode = "implicit"
	// TLSNone never uses TLS.
	TLSNone TLSMode = "none"
)

// Config is how to reach the smarthost.
type Config struct {
	Addr      string // host:port
	HelloName string // our name in EHLO; default: the host name
	// Username and Password, when Username is set, authenticate with AUTH
	// PLAIN, which is only done over TLS unless AllowInsecureAuth.
	Username          string
	Password          string
	AllowInsecureAuth bool
	TLS               TLSMode // default TLSStartTLS
	// TLSConfig verifies the smarthost (nil: the system roots). Its
	// ServerName defaults to Addr's host.
	TLSConfig *tls.Config
	// Timeout bounds one whole Send, from dialling to the reply to the
	// message (default 1 minute).
	Timeout time.Duration
}

// Client sends mail to the smarthost, one connection per message. It is
// safe for concurrent use.
type Client struct {
	cfg  Config
	host string
	tls  *tls.Config
}

// NewClient checks cfg and returns a client for it.
func NewClient(cfg Config) (*Client, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("mailout: smarthost address %q: want host:port", cfg.Addr)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSStartTLS, TLSRequired, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("mailout: TLS mode %q: want starttls, required, implicit or none", cfg.TLS)
	}
	if cfg.Username != "" && cfg.TLS == TLSNone && !cfg.AllowInsecureAuth {
		return nil, errors.New("mailout: a password is only sent over TLS; choose a TLS mode or allow insecure auth")
	}
	if cfg.HelloName == "" {
		if cfg.HelloName, err = os.Hostname(); err != nil || cfg.HelloName == "" {
			cfg.HelloName = "localhost"
		}
	}
	if strings.ContainsFunc(cfg.HelloName, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return nil, fmt.Errorf("mailout: hello name %q: want a host name", cfg.HelloName)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	tc := &tls.Config{}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	return &Client{cfg: cfg, host: host, tls: tc}, nil
}

// Send delivers data from the envelope sender from ("" is the null sender,
// MAIL FROM:<>) to one recipient. Its errors are *bridge.Error: permanent
// when the smarthost refused the message for good (5xx to MAIL, RCPT or
// DATA), temporary for anything else, among them 4xx replies, network
// errors, timeouts, TLS failures and refusals of our session or our
// credentials (which no message is at fault for). The text includes the
// smarthost's reply, never the password.
func (c *Client) Send(ctx context.Context, from, to string, data []byte) error {
	if strings.ContainsAny(from, "\r\n<>") || to == "" || strings.ContainsAny(to, "\r\n<>") {
		return bridge.Permanent(bridge.ReasonInvalid, "to", "envelope from %q to %q is not valid", from, to)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	sc, _, done, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	opts := &smtp.MailOptions{Size: int64(len(data))}
	if !isASCII(from) || !isASCII(to) {
		if ok, _ := sc.Extension("SMTPUTF8"); !ok {
			return bridge.Permanent(bridge.ReasonInvalid, "to",
				"smarthost %s does not accept UTF-8 addresses (SMTPUTF8) for <%s> to <%s>", c.cfg.Addr, from, to)
		}
		opts.UTF8 = true
	}
	if err := sc.Mail(from, opts); err != nil {
		return c.fail(ctx, "MAIL FROM:<"+from+">", true, err)
	}
	if err := sc.Rcpt(to, nil); err != nil {
		return c.fail(ctx, "RCPT TO:<"+to+">", true, err)
	}
	w, err := sc.Data()
	if err != nil {
		return c.fail(ctx, "DATA", true, err)
	}
	if _, err := w.Write(data); err != nil {
		return c.fail(ctx, "sending the message", true, err)
	}
	if err := w.Close(); err != nil {
		return c.fail(ctx, "end of message", true, err)
	}
	// The smarthost has the message; a failed QUIT changes nothing.
	_ = sc.Quit()
	return nil
}

// dial connects to the smarthost and runs the session up to the point
// where a mail transaction can start (see session). The connection is cut
// when ctx ends; done releases it and must be called unless err is set.
// tc is the TLS connection, nil when the session is in plain text.
func (c *Client) dial(ctx context.Context) (sc *smtp.Client, tc *tls.Conn, done func(), err error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, nil, nil, c.fail(ctx, "connecting", false, err)
	}
	// go-smtp sets a deadline of its own before every command, undoing
	// any set here; closing the connection is what cuts a session off
	// when ctx ends, whatever it is waiting for.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	if sc, tc, err = c.session(ctx, raw); err != nil {
		stop()
		raw.Close()
		return nil, nil, nil, err
	}
	return sc, tc, func() {
		sc.Close()
		stop()
		raw.Close()
	}, nil
}

// session returns a go-smtp client on raw that has said EHLO, upgraded to
// TLS as the mode asks and authenticated if configured, and the TLS
// connection if there is one.
func (c *Client) session(ctx context.Context, raw net.Conn) (*smtp.Client, *tls.Conn, error) {
	var conn net.Conn = raw
	var tc *tls.Conn
	switch c.cfg.TLS {
	case TLSImplicit:
		tc = tls.Client(raw, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, c.fail(ctx, "TLS handshake", false, err)
		}
		conn = tc
	case TLSStartTLS, TLSRequired:
		var err error
		if conn, tc, err = c.starttls(ctx, raw); err != nil {
			return nil, nil, err
		}
	}
	sc := smtp.NewClient(conn)
	sc.CommandTimeout, sc.SubmissionTimeout = c.cfg.Timeout, c.cfg.Timeout
	if err := sc.Hello(c.cfg.HelloName); err != nil {
		sc.Close()
		return nil, nil, c.fail(ctx, "EHLO", false, err)
	}
	if c.cfg.Username == "" {
		return sc, tc, nil
	}
	var err error
	switch {
	case tc == nil && !c.cfg.AllowInsecureAuth:
		err = &bridge.Error{Reason: bridge.ReasonProviderAuth, Temp: true,
			Msg: fmt.Sprintf("smarthost %s: does not offer STARTTLS; not sending the password in plain text", c.cfg.Addr)}
	case !sc.SupportsAuth(sasl.Plain):
		err = &bridge.Error{Reason: bridge.ReasonProviderAuth, Temp: true,
			Msg: fmt.Sprintf("smarthost %s: does not offer AUTH PLAIN", c.cfg.Addr)}
	default:
		if err = sc.Auth(sasl.NewPlainClient("", c.cfg.Username, c.cfg.Password)); err != nil {
			err = c.fail(ctx, "AUTH PLAIN as "+c.cfg.Username, false, err)
		}
	}
	if err != nil {
		sc.Close()
		return nil, nil, err
	}
	return sc, tc, nil
}

// starttls runs the plain-text start of a session itself: go-smtp keeps
// its STARTTLS to itself, and its NewClientStartTLS would greet as
// "localhost" and cannot fall back to plain text. It returns the
// connection go-smtp is to continue on, TLS if the smarthost offered it,
// with the greeting replayed: go-smtp reads one before its EHLO; and the
// TLS connection, nil if it stayed plain.
func (c *Client) starttls(ctx context.Context, raw net.Conn) (net.Conn, *tls.Conn, error) {
	// Not closed: that would close raw, which the caller owns.
	tp := textproto.NewConn(raw)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, nil, c.fail(ctx, "greeting", false, replyErr(err))
	}
	if err := tp.PrintfLine("EHLO %s", c.cfg.HelloName); err != nil {
		return nil, nil, c.fail(ctx, "EHLO", false, err)
	}
	_, ehlo, err := tp.ReadResponse(250)
	offered := false
	if err != nil {
		var te *textproto.Error
		if !errors.As(err, &te) || te.Code != 500 && te.Code != 502 {
			return nil, nil, c.fail(ctx, "EHLO", false, replyErr(err))
		}
		// A server that does not know EHLO offers no STARTTLS either;
		// go-smtp will fall back to HELO.
	}
	for _, line := range strings.Split(ehlo, "\n")[1:] {
		if kw, _, _ := strings.Cut(line, " "); strings.EqualFold(kw, "STARTTLS") {
			offered = true
		}
	}
	greeting := "220 " + c.host + "\r\n"
	if !offered {
		if c.cfg.TLS == TLSRequired {
			return nil, nil, &bridge.Error{Reason: bridge.ReasonProviderDown, Temp: true,
				Msg: fmt.Sprintf("smarthost %s: does not offer STARTTLS, which tls = required demands", c.cfg.Addr)}
		}
		// go-smtp says EHLO again, which RFC 5321 §4.1.4 allows.
		return &replayConn{Conn: raw, r: io.MultiReader(strings.NewReader(greeting), tp.R)}, nil, nil
	}
	if err := tp.PrintfLine("STARTTLS"); err != nil {
		return nil, nil, c.fail(ctx, "STARTTLS", false, err)
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, nil, c.fail(ctx, "STARTTLS", false, replyErr(err))
	}
	if tp.R.Buffered() > 0 {
		// Bytes sent before the handshake must never be read as if they
		// came over TLS (the STARTTLS command injection of CVE-2011-0411).
		return nil, nil, &bridge.Error{Reason: bridge.ReasonProviderDown, Temp: true,
			Msg: fmt.Sprintf("smarthost %s: sent data after its STARTTLS reply, before the TLS handshake", c.cfg.Addr)}
	}
	tc := tls.Client(raw, c.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, c.fail(ctx, "TLS handshake", false, err)
	}
	return &replayConn{Conn: tc, r: io.MultiReader(strings.NewReader(greeting), tc)}, tc, nil
}

// replayConn reads r (a replayed greeting, then the connection) instead
// of the connection itself.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// fail classifies an error of the session stage named: a 5xx reply to the
// message itself (inTransaction) is permanent; every other failure is
// temporary, including 5xx replies to the greeting, EHLO, STARTTLS or
// AUTH, and 530/534/535/538 anywhere: they refuse our session or our
// credentials, not the message, and a fixed configuration will let the
// message through.
func (c *Client) fail(ctx context.Context, stage string, inTransaction bool, err error) error {
	prefix := "smarthost " + c.cfg.Addr + ": " + stage
	cause := ctx.Err()
	if dl, ok := ctx.Deadline(); ok && cause == nil && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		cause = context.DeadlineExceeded // the connection's deadline fired a moment before ctx's
	}
	if cause != nil {
		// Whatever the connection reported, it failed because we cut it off.
		what := "interrupted"
		if errors.Is(cause, context.DeadlineExceeded) {
			what = "timed out"
		}
		return &bridge.Error{Reason: bridge.ReasonProviderDown, Temp: true, Msg: prefix + ": " + what, Err: cause}
	}
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return &bridge.Error{Reason: bridge.ReasonProviderDown, Temp: true, Msg: prefix, Err: err}
	}
	e := &bridge.Error{Reason: bridge.ReasonProviderDown, Temp: true, Msg: prefix, Err: &replyError{se}}
	switch {
	case se.Code == 530 || se.Code == 534 || se.Code == 535 || se.Code == 538 || strings.HasPrefix(stage, "AUTH"):
		e.Reason = bridge.ReasonProviderAuth
	case se.Code >= 500 && se.Code < 600 && inTransaction:
		e.Reason, e.Temp = bridge.ReasonProviderRejected, false
	}
	return e
}

// replyErr turns a reply read with net/textproto into the *smtp.SMTPError
// go-smtp would have returned.
func replyErr(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return &smtp.SMTPError{Code: te.Code, Message: te.Msg}
	}
	return err
}

// replyError shows a reply the way the smarthost wrote it, on one line:
// "550 5.1.1 no such user".
type replyError struct{ reply *smtp.SMTPError }

func (e *replyError) Error() string {
	msg := strings.Join(strings.Fields(e.reply.Message), " ")
	if c := e.reply.EnhancedCode; c[0] != 0 {
		return fmt.Sprintf("%03d %d.%d.%d %s", e.reply.Code, c[0], c[1], c[2], msg)
	}
	return fmt.Sprintf("%03d %s", e.reply.Code, msg)
}

func (e *replyError) Unwrap() error { return e.reply }
