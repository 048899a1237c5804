package smtpin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/emersion/go-smtp"
)

// The session bounds go-smtp has no hooks for are kept at the
// connection, where go-smtp's behaviour is visible:
//
//   - go-smtp arms the read deadline before reading every command line
//     (conn.go readLine), through TLS too (tls.Conn passes
//     SetReadDeadline down). Counting those calls counts command lines
//     (AUTH continuation lines included, message content not; Data resets
//     the count when it accepts a message), and is the moment to check the
//     session's lifetime.
//   - go-smtp reads lines with textproto, whose bufio.Reader.ReadLine
//     hands back the bytes read so far with a nil error when the read
//     fails after them: a command line cut by a timeout or a hang-up
//     ("QUIT", "RCPT TO:<x>", "AUTH PLAIN <creds>" with no CRLF) would be
//     executed. A read can only fail while the buffer holds no complete
//     line, so the first read error ends the connection: the guard says
//     why (421) and go-smtp's answer to the fragment is dropped, and the
//     session methods refuse to act once it is set.

var (
	errTooManyCommands = fmt.Errorf("%w: too many commands", net.ErrClosed)
	errSessionExpired  = fmt.Errorf("%w: session lifetime reached", net.ErrClosed)
	errIdle            = fmt.Errorf("%w: idle timeout", net.ErrClosed)
	errBadHello        = fmt.Errorf("%w: HELO argument too long", net.ErrClosed)
)

// SetReadDeadline is called by go-smtp before each command line.
func (c *guardConn) SetReadDeadline(t time.Time) error {
	if c.readErr != nil {
		return c.readErr
	}
	c.commands++
	if c.maxCommands > 0 && c.commands > c.maxCommands {
		return c.finish(fmt.Sprintf("421 4.7.0 too many commands (%d) without a message, closing\r\n", c.maxCommands), errTooManyCommands)
	}
	if !c.expires.IsZero() {
		if !time.Now().Before(c.expires) {
			return c.finish(c.expiredReply(), errSessionExpired)
		}
		// Waiting for a command may not outlast the session either.
		if t.IsZero() || t.After(c.expires) {
			t = c.expires
		}
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *guardConn) expiredReply() string {
	return fmt.Sprintf("421 4.7.0 session longer than %s, closing\r\n", c.maxDuration)
}

func (c *guardConn) Read(p []byte) (int, error) {
	if c.readErr != nil {
		return 0, c.readErr
	}
	n, err := c.Conn.Read(p)
	if err == nil {
		return n, nil
	}
	var ne net.Error
	switch {
	case c.top == nil:
		// TLS is being set up and there is no way to write a reply the
		// client can read: remember the failure (so nothing more is
		// acted upon) and let go-smtp answer as it does.
		c.readErr = err
		return n, err
	case errors.As(err, &ne) && ne.Timeout():
		if !c.expires.IsZero() && !time.Now().Before(c.expires) {
			return n, c.finish(c.expiredReply(), errSessionExpired)
		}
		return n, c.finish("421 4.4.2 idle for too long, closing\r\n", errIdle)
	default:
		// The client hung up (or the network did): no one to answer.
		return n, c.finish("", err)
	}
}

// finish writes the guard's last reply, if any and if it can, and closes
// the connection; go-smtp's own answers from then on are dropped. It
// returns the error every later read gets.
func (c *guardConn) finish(reply string, cause error) error {
	if c.readErr != nil {
		return c.readErr
	}
	c.readErr = cause
	if reply != "" && c.top != nil {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(rejectTimeout))
		_, _ = io.WriteString(c.top, reply)
		c.linger()
	}
	c.silent = true
	_ = c.Close()
	if c.ended != nil {
		c.ended(c, cause)
	}
	return cause
}

// lingerTimeout bounds how long a connection being closed is drained.
const lingerTimeout = time.Second

// linger lets the last reply reach the client: closing a socket with
// unread input (the next pipelined command, the line the guard refused to
// read) sends a reset, and the client's kernel may drop the reply before
// the client has read it. So the write side is shut first and the input
// drained until the client closes, briefly and only so much.
func (c *guardConn) linger() {
	tc, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || tc.CloseWrite() != nil {
		return
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(c.Conn, 64<<10))
}

// cut reports whether the connection is over: a read failed, so any
// command still being handled is a fragment and must not be executed.
func (c *guardConn) cut() bool { return c.readErr != nil }

// noteReply follows the replies going out for what they say about the
// stream: after the greeting, a 220 can only be STARTTLS's "ready"
// (RFC 3207), after which the bytes are TLS and the guard can no longer
// write on its own until the next session shows it the *tls.Conn.
func (c *guardConn) noteReply(p []byte) {
	if c.top != c {
		return
	}
	if c.greeted && bytes.HasPrefix(p, []byte("220")) {
		c.top = nil
	}
	c.greeted = true
}

// errCut answers a command that was cut off; the client never sees it
// (the guard has already answered and closed), it only keeps the
// session from acting.
var errCut = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "command line incomplete, not executed"}
