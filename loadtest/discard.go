package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/emersion/go-smtp"
)

// DiscardServer starts a minimal go-smtp server on 127.0.0.1:0 that accepts
// any MAIL and RCPT, reads and discards DATA and answers 250. It does no
// work beyond the protocol itself, so its rate is the ceiling any go-smtp
// based server, smsbridge included, can reach on the same machine under the
// same load. stop closes the listener and every open connection.
func DiscardServer() (addr string, stop func() error, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("loadtest: discard server: %w", err)
	}
	s, done := serveSMTP(l, func() smtp.Session { return discardSession{} })
	// Once, so a second stop neither blocks on done nor reports the
	// server as closed twice.
	stop = sync.OnceValue(func() error {
		if err := s.Close(); err != nil {
			return fmt.Errorf("loadtest: stop discard server: %w", err)
		}
		// Wait for Serve so its goroutine does not outlive stop.
		if err := <-done; err != nil {
			return fmt.Errorf("loadtest: discard server: %w", err)
		}
		return nil
	})
	return l.Addr().String(), stop, nil
}

// serveSMTP serves l with a go-smtp server whose sessions newSession
// makes, as the load tool's own servers do; the channel gets Serve's
// result.
func serveSMTP(l net.Listener, newSession func() smtp.Session) (*smtp.Server, <-chan error) {
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return newSession(), nil
	}))
	s.Domain = "localhost"
	// Clients cut off mid-session (a cancelled run) are expected here, not
	// worth a line on stderr for each.
	s.ErrorLog = slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	return s, done
}

type discardSession struct{}

func (discardSession) Mail(string, *smtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (discardSession) Reset()                               {}
func (discardSession) Logout() error                        { return nil }

func (discardSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// RunDiscard runs the load o describes against a discard server started
// for the purpose (o.Addr is not used): the ceiling a target is compared
// with. The result is nil only if the server could not be started.
func RunDiscard(ctx context.Context, o Options) (*Result, error) {
	addr, stop, err := DiscardServer()
	if err != nil {
		return nil, err
	}
	o.Addr = addr
	res, err := Run(ctx, o)
	return &res, errors.Join(err, stop())
}
