package smtpin

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/internal/auththrottle"
)

// Connection policy lives below go-smtp (and below TLS), where a client
// over a cap can be answered before go-smtp spends a session on it, and
// where per-connection state survives STARTTLS (which starts a new
// go-smtp session on the same connection).

const (
	msgTooManyConns       = "421 4.7.0 too many connections, try again later\r\n"
	msgTooManyConnsFromIP = "421 4.7.0 too many connections from your address\r\n"

	// rejectTimeout bounds how long answering a refused connection may
	// take (for the TLS listener that includes a handshake).
	rejectTimeout = 5 * time.Second
	// maxRejecting bounds the goroutines answering refused connections
	// (or waiting for a slot, see admitGrace), so a flood of connections
	// cannot turn into a flood of goroutines; past it a refused
	// connection is closed without a word.
	maxRejecting = 64
	// admitGrace is how long a connection over its client's cap waits
	// for one of that client's sessions to end before it is refused. A
	// client that opens a connection per message (Postfix, up to its
	// destination concurrency of 20) reconnects the moment it reads the
	// 221 to QUIT, which go-smtp writes before it closes the session and
	// releases the slot: refusing at once would answer that new
	// connection 421 while the client has no other session left.
	admitGrace = time.Second
)

// connLimiter counts open connections, in all and per client, across all
// of a Server's listeners.
type connLimiter struct {
	total     chan struct{} // nil: no overall cap
	perClient int           // 0: no per-client cap
	rejecting chan struct{}
	refused   func() // counts a refused connection in the metrics

	mu     sync.Mutex
	active map[netip.Prefix]int
	conns  map[*guardConn]struct{}
	// freed is closed (and replaced) whenever a slot is released, to
	// wake the connections waiting for one.
	freed chan struct{}
}

func newConnLimiter(total, perClient int, refused func()) *connLimiter {
	l := &connLimiter{perClient: perClient, refused: refused,
		rejecting: make(chan struct{}, maxRejecting), active: map[netip.Prefix]int{}, conns: map[*guardConn]struct{}{},
		freed: make(chan struct{})}
	if total > 0 {
		l.total = make(chan struct{}, total)
	}
	return l
}

// clientKey is what the per-client cap counts by: the IPv4 address, or
// the IPv6 /64, since one IPv6 host usually holds a whole /64 and could
// otherwise pick a fresh address for every connection.
func clientKey(a netip.Addr) netip.Prefix { return auththrottle.ClientKey(a) }

// remoteAddr is the client's IP address, or the zero Addr for a
// connection that has none (such as a pipe in a test).
func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// admit takes a slot for c, or returns the reply refusing it.
func (l *connLimiter) admit(c net.Conn) (*guardConn, string) {
	if l.total != nil {
		select {
		case l.total <- struct{}{}:
		default:
			return nil, msgTooManyConns
		}
	}
	addr := remoteAddr(c)
	key := netip.Prefix{}
	if addr.IsValid() {
		key = clientKey(addr)
	}
	l.mu.Lock()
	if l.perClient > 0 && addr.IsValid() && l.active[key] >= l.perClient {
		l.mu.Unlock()
		if l.total != nil {
			<-l.total
		}
		return nil, msgTooManyConnsFromIP
	}
	gc := &guardConn{Conn: c, addr: addr}
	gc.release = func() { l.release(gc, key) }
	l.active[key]++
	l.conns[gc] = struct{}{}
	l.mu.Unlock()
	return gc, ""
}

func (l *connLimiter) release(gc *guardConn, key netip.Prefix) {
	l.mu.Lock()
	if l.active[key]--; l.active[key] <= 0 {
		delete(l.active, key)
	}
	delete(l.conns, gc)
	if l.total != nil {
		<-l.total
	}
	close(l.freed)
	l.freed = make(chan struct{})
	l.mu.Unlock()
}

// admitWaiting is admit for a connection refused only for its client's
// cap: it waits up to admitGrace for a slot to be released (a session of
// that client ending) and returns the reply refusing it if none was.
func (l *connLimiter) admitWaiting(c net.Conn, stop <-chan struct{}) (*guardConn, string) {
	deadline := time.NewTimer(admitGrace)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		freed := l.freed
		l.mu.Unlock()
		gc, refusal := l.admit(c)
		if refusal != msgTooManyConnsFromIP {
			return gc, refusal
		}
		select {
		case <-freed:
		case <-deadline.C:
			return nil, refusal
		case <-stop:
			return nil, refusal
		}
	}
}

// closeAll closes every open connection.
func (l *connLimiter) closeAll() {
	l.mu.Lock()
	open := make([]*guardConn, 0, len(l.conns))
	for c := range l.conns {
		open = append(open, c)
	}
	l.mu.Unlock()
	// Close releases the slot, which takes l.mu.
	for _, c := range open {
		_ = c.Close()
	}
}

// refuse answers a refused connection with msg and closes it, without
// holding up the accept loop: a TLS client needs a handshake first, which
// a slow or hostile client could drag out. A connection refused for its
// client's cap first waits for a slot (admitWaiting); if it gets one, it
// is handed to late instead.
func (l *connLimiter) refuse(c net.Conn, msg string, tlsCfg *tls.Config, late chan<- *guardConn, stop <-chan struct{}) {
	select {
	case l.rejecting <- struct{}{}:
	default:
		l.refused()
		_ = c.Close()
		return
	}
	go func() {
		defer func() { <-l.rejecting }()
		if msg == msgTooManyConnsFromIP {
			gc, refusal := l.admitWaiting(c, stop)
			if refusal == "" {
				select {
				case late <- gc:
					return
				case <-stop:
					_ = gc.Close()
					return
				}
			}
			msg = refusal
		}
		l.refused()
		_ = c.SetDeadline(time.Now().Add(rejectTimeout))
		if tlsCfg != nil {
			c = tls.Server(c, tlsCfg)
		}
		_, _ = io.WriteString(c, msg)
		_ = c.Close()
	}()
}

// guardListener applies a connLimiter to a listener. Accepting runs in a
// goroutine of its own (see start), so that a connection admitted after
// waiting for a slot can be handed to go-smtp while Accept is blocked.
type guardListener struct {
	net.Listener
	limits *connLimiter
	tls    *tls.Config // set when the connections will speak TLS at once
	// maxCommands and maxDuration bound each session (0: no bound).
	maxCommands int
	maxDuration time.Duration
	ended       func(*guardConn, error) // told why the guard ended a session

	startOnce sync.Once
	accepted  chan acceptResult
	late      chan *guardConn
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
}

type acceptResult struct {
	c   *guardConn
	err error
}

func newGuardListener(ln net.Listener, limits *connLimiter, tlsCfg *tls.Config) *guardListener {
	return &guardListener{Listener: ln, limits: limits, tls: tlsCfg,
		accepted: make(chan acceptResult), late: make(chan *guardConn), done: make(chan struct{})}
}

// start runs the accept loop until Close. Errors go to go-smtp as
// Accept's result, which decides whether to go on (too many open files)
// or stop; each waits for an Accept call, so a broken listener does not
// spin.
func (l *guardListener) start() {
	go func() {
		for {
			c, err := l.Listener.Accept()
			var gc *guardConn
			if err == nil {
				var refusal string
				if gc, refusal = l.limits.admit(c); refusal != "" {
					l.limits.refuse(c, refusal, l.tls, l.late, l.done)
					continue
				}
			}
			select {
			case l.accepted <- acceptResult{gc, err}:
			case <-l.done:
				if gc != nil {
					_ = gc.Close()
				}
				return
			}
		}
	}()
}

// prepare sets the session bounds of a connection go-smtp is about to
// serve: its lifetime starts now, not when it was first accepted.
func (l *guardListener) prepare(gc *guardConn) *guardConn {
	gc.maxCommands, gc.ended = l.maxCommands, l.ended
	if l.maxDuration > 0 {
		gc.expires = time.Now().Add(l.maxDuration)
		gc.maxDuration = l.maxDuration
	}
	if l.tls == nil {
		gc.top = gc
	}
	return gc
}

func (l *guardListener) Accept() (net.Conn, error) {
	l.startOnce.Do(l.start)
	select {
	case r := <-l.accepted:
		if r.err != nil {
			return nil, r.err
		}
		return l.prepare(r.c), nil
	case c := <-l.late:
		return l.prepare(c), nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close is idempotent: both Server.Shutdown and go-smtp close the
// listener, and only the first close's result means anything.
func (l *guardListener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.closeErr = l.Listener.Close()
	})
	return l.closeErr
}

// guardConn is one admitted connection. It holds what must outlive a
// go-smtp session: the count of refused commands, and the decision to
// hang up.
type guardConn struct {
	net.Conn
	addr    netip.Addr
	release func()
	once    sync.Once

	// strikes counts the permanent refusals on this connection. Only
	// the connection's own goroutine touches it.
	strikes int
	// hangUp closes the connection once the reply being written has
	// gone out, so the client reads why it is being dropped.
	hangUp atomic.Bool

	// The session bounds and the state enforcing them (sessionguard.go).
	// Only the connection's own goroutine touches these.
	maxCommands int
	maxDuration time.Duration
	ended       func(*guardConn, error)
	expires     time.Time // zero: no lifetime bound
	commands    int
	// top is where the guard writes its own last reply: this conn for
	// plain SMTP, the *tls.Conn above it once a session runs over TLS,
	// nil while TLS is being set up and no session has shown the
	// *tls.Conn yet.
	top     io.Writer
	greeted bool
	// readErr is the first read error; once set the connection is over
	// and nothing read after the last complete line is acted upon.
	readErr error
	// silent drops whatever go-smtp still writes after the guard has
	// said the last word.
	silent bool
}

func (c *guardConn) Write(p []byte) (int, error) {
	if c.silent {
		return len(p), nil
	}
	c.noteReply(p)
	n, err := c.Conn.Write(p)
	if c.hangUp.Load() {
		_ = c.Close()
	}
	return n, err
}

func (c *guardConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// guardOf finds the guardConn under c, looking through TLS.
func guardOf(c net.Conn) *guardConn {
	for {
		switch v := c.(type) {
		case *guardConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

// loopback is what accounts trust when neither they nor
// Config.AllowedNetworks name networks.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

// defaultNetworks are the networks an account without its own trusts.
func (s *Server) defaultNetworks() []netip.Prefix {
	if s.cfg.AllowedNetworks == nil {
		return loopback
	}
	return s.cfg.AllowedNetworks
}

// sessionEnded logs a session the guard ended, counting those ended by
// a limit as throttled clients.
func (s *Server) sessionEnded(gc *guardConn, why error) {
	if errors.Is(why, errTooManyCommands) || errors.Is(why, errSessionExpired) {
		s.metrics.Refused(bridge.ChannelSMTP, bridge.ReasonRateLimited)
		s.log.Warn("session limit reached, closing the connection", "channel", "smtp", "remote", gc.addr, "err", why, "commands", gc.commands)
		return
	}
	s.log.Info("connection ended", "channel", "smtp", "remote", gc.addr, "err", why)
}

// refusedConnection is what an over-cap connection counts as in metrics:
// the client is being throttled.
func (s *Server) refusedConnection() {
	s.metrics.Refused(bridge.ChannelSMTP, bridge.ReasonRateLimited)
}
