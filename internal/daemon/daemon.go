// Package daemon wires the configuration to the components and runs them:
// store, bridge, dispatcher, SMTP listener. It holds no domain logic; it
// exists apart from cmd/smsbridge so tests can run the whole daemon in
// process on 127.0.0.1:0.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/postgres"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/metrics"
	"github.com/smsbridge/smsbridge/smtpin"
	"github.com/smsbridge/smsbridge/webhook"
)

// Daemon is a running smsbridge.
type Daemon struct {
	cfg        *config.Config
	log        *slog.Logger
	store      Store
	bridge     *bridge.Bridge
	dispatcher *bridge.Dispatcher
	smtp       *smtpin.Server
	smtpLn     net.Listener
	smtpsLn    net.Listener // implicit TLS; nil when smtp.tls_listen is ""
	http       *http.Server
	httpLn     net.Listener
}

// New opens the store and builds every component, and binds the
// listeners, so that configuration and port errors surface before Run.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: log}
	var provs []bridge.Provider
	for _, pc := range cfg.Providers {
		p, err := newProvider(pc, log)
		if err != nil {
			return nil, err
		}
		provs = append(provs, p)
	}
	st, err := openStore(ctx, cfg.Store, log)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	d.store = st
	// Sends in flight when the last run died are due again now.
	if n, err := st.Recover(ctx, time.Now()); err != nil {
		st.Close()
		return nil, fmt.Errorf("recovering the queue: %w", err)
	} else if n > 0 {
		log.Warn("retrying sends that were in flight when the last run stopped", "recipients", n)
	}

	m := metrics.New(st.Stats)
	concurrency := map[string]int{}
	for _, pc := range cfg.Providers {
		concurrency[pc.Name] = pc.Concurrency
	}
	d.dispatcher = bridge.NewDispatcher(st, provs, bridge.DispatchOptions{
		Workers:        cfg.Queue.Workers,
		RetryMin:       cfg.Queue.RetryMin,
		RetryMax:       cfg.Queue.RetryMax,
		MaxAge:         cfg.Queue.MaxAge,
		SendTimeout:    cfg.Queue.SendTimeout,
		Concurrency:    concurrency,
		Observe:        m.Attempt,
		BreakerChanged: m.Circuit,
		Log:            log.With("component", "dispatcher"),
	})
	var routes []bridge.Route
	for _, r := range cfg.Routes {
		routes = append(routes, bridge.Route{Prefix: r.Prefix, Providers: append([]string{r.Provider}, r.Fallback...)})
	}
	var accounts []bridge.Account
	for _, a := range cfg.Accounts {
		accounts = append(accounts, bridge.Account{Name: a.Name, Emails: a.Emails, SenderIDs: a.SenderIDs,
			AllowPhonebooks: a.AllowPhonebooks, TokenSHA256: a.APITokenSHA256,
			MessagesPerMinute: a.MessagesPerMinute, OnCall: a.OnCall, PasswordHash: a.SMTPPasswordHash})
	}
	d.bridge, err = bridge.New(st, provs, routes, accounts, bridge.Options{
		Region:               cfg.SMTP.DefaultRegion,
		MaxSegments:          cfg.SMTP.MaxSegments,
		MaxRecipients:        cfg.SMTP.MaxRecipients,
		DestinationPerMinute: cfg.Limits.DestinationPerMinute,
		Enqueued:             d.dispatcher.Wake,
		Log:                  log,
	})
	if err != nil {
		st.Close()
		return nil, err
	}

	var tlsCfg *tls.Config
	if cfg.SMTP.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.SMTP.TLSCert, cfg.SMTP.TLSKey)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("smtp.tls_cert: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var networks []netip.Prefix
	for _, n := range cfg.SMTP.AllowedNetworks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("smtp.allowed_networks: %w", err)
		}
		networks = append(networks, p)
	}
	d.smtp = smtpin.New(d.bridge, smtpin.Config{
		Hostname:            cfg.SMTP.Hostname,
		Domains:             cfg.SMTP.Domains,
		RequireAuth:         cfg.SMTP.RequireAuth,
		TLS:                 tlsCfg,
		MaxMessageBytes:     cfg.SMTP.MaxMessageBytes,
		MaxRecipients:       cfg.SMTP.MaxRecipients,
		Text:                cfg.SMTP.Text,
		ReadTimeout:         cfg.SMTP.ReadTimeout,
		WriteTimeout:        cfg.SMTP.WriteTimeout,
		MaxConnections:      cfg.SMTP.MaxConnections,
		MaxConnectionsPerIP: cfg.SMTP.MaxConnectionsPerIP,
		MaxBadCommands:      cfg.SMTP.MaxBadCommands,
		AllowedNetworks:     networks,
	}, m, log.With("component", "smtp"))
	// On a bind error, close what is already open.
	fail := func(err error) (*Daemon, error) {
		for _, ln := range []net.Listener{d.smtpLn, d.smtpsLn} {
			if ln != nil {
				ln.Close()
			}
		}
		st.Close()
		return nil, err
	}
	d.smtpLn, err = net.Listen("tcp", cfg.SMTP.Listen)
	if err != nil {
		return fail(fmt.Errorf("smtp.listen: %w", err))
	}
	if cfg.SMTP.TLSListen != "" {
		if tlsCfg == nil {
			return fail(errors.New("smtp.tls_listen: needs smtp.tls_cert and smtp.tls_key"))
		}
		if d.smtpsLn, err = net.Listen("tcp", cfg.SMTP.TLSListen); err != nil {
			return fail(fmt.Errorf("smtp.tls_listen: %w", err))
		}
	}
	api := webhook.New(d.bridge, m, webhook.Config{Ready: st.Ping}, log.With("component", "http"))
	d.http = webhook.NewHTTPServer(api.Handler())
	d.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fail(fmt.Errorf("http.listen: %w", err))
	}
	return d, nil
}

// HTTPAddr is the address the HTTP listener is bound to.
func (d *Daemon) HTTPAddr() string { return d.httpLn.Addr().String() }

// SMTPAddr is the address the SMTP listener is bound to.
func (d *Daemon) SMTPAddr() string { return d.smtpLn.Addr().String() }

// SMTPTLSAddr is the address the implicit-TLS SMTP listener is bound to,
// or "" when smtp.tls_listen is not set.
func (d *Daemon) SMTPTLSAddr() string {
	if d.smtpsLn == nil {
		return ""
	}
	return d.smtpsLn.Addr().String()
}

// Store returns the daemon's store.
func (d *Daemon) Store() Store { return d.store }

// Store is a bridge.Store that can say whether it takes writes (/readyz).
type Store interface {
	bridge.Store
	Ping(ctx context.Context) error
}

// storeName says which store is in use without printing a URL's password.
func storeName(cfg config.Store) string {
	if cfg.URL.Value() != "" {
		return "postgres"
	}
	return cfg.Path
}

// openStore opens PostgreSQL when store.url is set, else the SQLite file.
func openStore(ctx context.Context, cfg config.Store, log *slog.Logger) (Store, error) {
	if u := cfg.URL.Value(); u != "" {
		return postgres.Open(ctx, u, log.With("component", "store"))
	}
	return sqlite.Open(ctx, cfg.Path, log.With("component", "store"))
}

// Bridge returns the daemon's bridge.
func (d *Daemon) Bridge() *bridge.Bridge { return d.bridge }

// Run serves until ctx is cancelled, then shuts down gracefully: stop
// accepting mail, let open sessions and in-flight sends finish within
// queue.shutdown_grace, close the store. It returns nil on a clean stop.
func (d *Daemon) Run(ctx context.Context) error {
	grace := d.cfg.Queue.ShutdownGrace
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	wg.Add(3)
	go func() {
		defer wg.Done()
		d.dispatcher.Run(runCtx, grace)
	}()
	go func() {
		defer wg.Done()
		if err := d.smtp.Serve(d.smtpLn); err != nil {
			errc <- fmt.Errorf("smtp: %w", err)
			cancel()
		}
	}()
	if d.smtpsLn != nil {
		// The same server: one set of connection caps, and Shutdown
		// below drains both listeners' sessions.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.smtp.ServeTLS(d.smtpsLn); err != nil {
				errc <- fmt.Errorf("smtp tls: %w", err)
				cancel()
			}
		}()
	}
	go func() {
		defer wg.Done()
		if err := d.http.Serve(d.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
			cancel()
		}
	}()
	d.log.Info("smsbridge running", "smtp", d.SMTPAddr(), "smtps", d.SMTPTLSAddr(), "http", d.HTTPAddr(), "store", storeName(d.cfg.Store))

	<-runCtx.Done()
	d.log.Info("shutting down", "grace", grace)
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer scancel()
	err := errors.Join(d.smtp.Shutdown(sctx), d.http.Shutdown(sctx))
	wg.Wait()
	if cerr := d.store.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	select {
	case e := <-errc:
		err = errors.Join(e, err)
	default:
	}
	return err
}
