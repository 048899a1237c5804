package mailout_test

import (
	"context"
	"errors"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
)

func TestCheckSendsNoMail(t *testing.T) {
	const password = "s3cret!-check"
	cases := []struct {
		name string
		opt  mailtest.Options
		cfg  func(srv *mailtest.Server) mailout.Config
		want string // a regular expression for Check's answer
		user string // who must have logged in, "" for nobody
	}{{
		name: "STARTTLS and AUTH",
		opt:  mailtest.Options{STARTTLS: true, Username: "bridge", Password: password},
		cfg: func(srv *mailtest.Server) mailout.Config {
			return mailout.Config{Addr: srv.Addr(), TLSConfig: srv.ClientTLS(), Username: "bridge", Password: password}
		},
		want: `^STARTTLS, TLS 1\.3, certificate valid until \d{4}-\d\d-\d\d, AUTH PLAIN as bridge accepted$`,
		user: "bridge",
	}, {
		name: "implicit TLS",
		opt:  mailtest.Options{ImplicitTLS: true},
		cfg: func(srv *mailtest.Server) mailout.Config {
			return mailout.Config{Addr: srv.Addr(), TLS: mailout.TLSImplicit, TLSConfig: srv.ClientTLS()}
		},
		want: `^implicit TLS, TLS 1\.3, certificate valid until [-\d]+, no AUTH configured$`,
	}, {
		name: "STARTTLS not offered",
		opt:  mailtest.Options{},
		cfg:  func(srv *mailtest.Server) mailout.Config { return mailout.Config{Addr: srv.Addr()} },
		want: `^plain text: the smarthost does not offer STARTTLS, no AUTH configured$`,
	}, {
		name: "no TLS",
		opt:  mailtest.Options{STARTTLS: true},
		cfg: func(srv *mailtest.Server) mailout.Config {
			return mailout.Config{Addr: srv.Addr(), TLS: mailout.TLSNone}
		},
		want: `^plain text \(tls = none\), no AUTH configured$`,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := mailtest.Start(t, c.opt)
			got, err := newClient(t, c.cfg(srv)).Check(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(c.want).MatchString(got) {
				t.Errorf("Check = %q, want %s", got, c.want)
			}
			var want []mailtest.Login
			if c.user != "" {
				want = []mailtest.Login{{User: c.user, TLS: true}}
			}
			if got := srv.Logins(); !slices.Equal(got, want) {
				t.Errorf("logins %v, want %v", got, want)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages sent by a check", n)
			}
		})
	}
}

func TestCheckFailures(t *testing.T) {
	const password = "hunter2-very-secret"
	t.Run("wrong password", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{STARTTLS: true, Username: "bridge", Password: "other"})
		_, err := newClient(t, mailout.Config{Addr: srv.Addr(), TLSConfig: srv.ClientTLS(), Username: "bridge", Password: password}).Check(t.Context())
		if bridge.ReasonOf(err) != bridge.ReasonProviderAuth || !strings.Contains(err.Error(), "AUTH PLAIN as bridge: 535 5.7.8") {
			t.Errorf("err %v", err)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("the password is in the error: %v", err)
		}
		if n := len(srv.Logins()); n != 0 {
			t.Errorf("%d logins", n)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{STARTTLS: true})
		_, err := newClient(t, mailout.Config{Addr: srv.Addr()}).Check(t.Context()) // the system roots
		if err == nil || !strings.Contains(err.Error(), "TLS handshake") || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("TLS required, not offered", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{})
		_, err := newClient(t, mailout.Config{Addr: srv.Addr(), TLS: mailout.TLSRequired}).Check(t.Context())
		if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{})
		srv.Down()
		_, err := newClient(t, mailout.Config{Addr: srv.Addr()}).Check(t.Context())
		if err == nil || !strings.Contains(err.Error(), "connecting") || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("silent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			if c, err := ln.Accept(); err == nil {
				accepted <- c
			}
		}()
		c := newClient(t, mailout.Config{Addr: ln.Addr().String(), Timeout: 200 * time.Millisecond})
		err = returns(t, "Check of a silent server", func() error {
			_, err := c.Check(t.Context())
			return err
		})
		(<-accepted).Close()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out") {
			t.Errorf("err %v, want a timeout", err)
		}
	})
}
