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
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/postgres"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/console"
	"github.com/smsbridge/smsbridge/internal/auththrottle"
	"github.com/smsbridge/smsbridge/mailout"
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
	api        *webhook.Server
	metrics    *metrics.Metrics
	console    *console.Console // nil with [http] console = false
	changes    *console.Broker  // tells the console's open pages of new SMS and states
	mail       *mailout.Worker  // nil without a smarthost
	pollers    []*bridge.Poller // providers without callbacks
	retention  *bridge.Retention
	reloadMu   sync.Mutex
	loaded     *config.Config // the configuration last applied, under reloadMu (cfg stays the one started with)
}

// New opens the store and builds every component, and binds the
// listeners, so that configuration and port errors surface before Run.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *Daemon, err error) {
	d := &Daemon{cfg: cfg, loaded: cfg, log: log}
	// opened is what New must close, last first, if it fails after
	// opening it: every early return then needs no cleanup of its own.
	var opened []io.Closer
	defer func() {
		if err != nil {
			for _, c := range slices.Backward(opened) {
				c.Close()
			}
		}
	}()
	provs, err := providers(cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg.Store, log)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	opened = append(opened, st)
	d.store = st
	// Sends in flight when the last run died are due again now.
	if n, err := st.Recover(ctx, time.Now()); err != nil {
		return nil, fmt.Errorf("recovering the queue: %w", err)
	} else if n > 0 {
		log.Warn("retrying sends that were in flight when the last run stopped", "recipients", n)
	}
	// So are mails to the smarthost.
	if n, err := st.RecoverMail(ctx, time.Now()); err != nil {
		return nil, fmt.Errorf("recovering the mail queue: %w", err)
	} else if n > 0 {
		log.Warn("retrying mail that was in flight when the last run stopped", "mails", n)
	}

	m := metrics.New(st.Stats)
	m.WatchMailQueue(st.MailStats)
	m.WatchStore(st.Ping)
	m.Providers(providerNames(cfg))
	d.metrics = m
	var composer bridge.Composer
	if cfg.Replies.Smarthost != "" {
		composer = &mailout.Composer{Domain: cfg.Replies.FromDomain, Subject: cfg.Replies.Subject, Hostname: cfg.SMTP.Hostname}
		client, err := Smarthost(cfg)
		if err != nil {
			return nil, err
		}
		d.mail = mailout.NewWorker(st, client, mailout.Options{
			RetryMin: cfg.Replies.RetryMin,
			RetryMax: cfg.Replies.RetryMax,
			MaxAge:   cfg.Replies.MaxAge,
			Grace:    cfg.Queue.ShutdownGrace,
			Observe:  m.Mail,
			Log:      log.With("component", "mailout"),
		})
	} else {
		log.Warn("no replies.smarthost: SMS from phones are only logged and failed SMS are not reported by mail")
	}
	d.changes = console.NewBroker(0)
	opts := bridge.Options{
		Region:               cfg.SMTP.DefaultRegion,
		MaxSegments:          cfg.SMTP.MaxSegments,
		SmartEncoding:        cfg.SMTP.UseSmartEncoding(),
		MaxRecipients:        cfg.SMTP.MaxRecipients,
		DestinationPerMinute: cfg.Limits.DestinationPerMinute,
		ScheduleHorizon:      cfg.Limits.ScheduleHorizon,
		Enqueued:             func() { d.dispatcher.Wake() },
		Handoff:              func() *bridge.Handoff { return d.dispatcher.Handoff() },
		ReplyWindow:          cfg.Replies.ReplyWindow,
		CatchAll:             cfg.Replies.CatchAll,
		Ambiguous:            bridge.Ambiguous(cfg.Replies.Ambiguous),
		Composer:             composer,
		Received: func(provider string) {
			m.Inbound(provider)
			d.changes.Changed()
		},
		Reported: func(provider string, state bridge.State) {
			m.Report(provider, state)
			d.changes.Changed()
		},
		Saved: m.Saved,
		Consent: bridge.ConsentOptions{
			OptOut: cfg.Consent.OptOut, OptIn: cfg.Consent.OptIn, Help: cfg.Consent.Help,
			Scope:             bridge.Scope(cfg.Consent.Scope),
			Confirmation:      *cfg.Consent.Confirmation,
			OptInConfirmation: *cfg.Consent.OptInConfirmation,
			HelpText:          cfg.Consent.HelpText,
			MaxPerAccount:     cfg.Consent.MaxPerAccount,
			Changed:           m.Consent,
		},
		Log: log,
	}
	if d.mail != nil {
		opts.MailQueued = d.mail.Wake
	}
	accts, err := accounts(cfg)
	if err != nil {
		return nil, err
	}
	d.bridge, err = bridge.New(st, provs, routes(cfg), accts, opts)
	if err != nil {
		return nil, err
	}
	d.retention = &bridge.Retention{Store: st, Keep: cfg.Store.Retention, Log: log.With("component", "retention")}
	lim := limits(cfg)
	dopt := bridge.DispatchOptions{
		RetryMin:       cfg.Queue.RetryMin,
		RetryMax:       cfg.Queue.RetryMax,
		MaxAge:         cfg.Queue.MaxAge,
		SendTimeout:    cfg.Queue.SendTimeout,
		Concurrency:    lim.Concurrency,
		MaxConcurrency: lim.MaxConcurrency,
		Rates:          lim.Rates,
		LimitChanged:   m.ConcurrencyLimit,
		Touch:          d.bridge.Touch,
		Consent:        d.bridge.HeldBack,
		Observe: func(provider string, took time.Duration, outcomes []bridge.Outcome) {
			m.Attempt(provider, took, outcomes)
			d.changes.Changed()
		},
		BreakerChanged: func(provider string, open bool) {
			m.Circuit(provider, open)
			d.changes.Changed() // the operations page shows it
		},
		Log: log.With("component", "dispatcher"),
	}
	dopt.Final = func(_ context.Context, msg *bridge.Message, o bridge.Outcome) {
		m.Sent(msg, o)
		if o.Mail != nil && d.mail != nil {
			d.mail.Wake() // a bounce was queued with this outcome
		}
	}
	if cfg.Replies.SendBounces() {
		dopt.Bounce = d.bridge.Bounce
		dopt.Notice = d.bridge.Notice
		dopt.DelayWarning = cfg.Queue.DelayWarningOrDefault()
	}
	if d.mail != nil {
		dopt.MailQueued = d.mail.Wake // a notification was queued with an outcome
	}
	d.dispatcher = bridge.NewDispatcher(st, provs, dopt)
	holder := instanceName()
	for _, pc := range cfg.Providers {
		if pc.PollInterval <= 0 {
			continue
		}
		p, err := d.bridge.NewPoller(pc.Name, bridge.PollOptions{Interval: pc.PollInterval, Holder: holder,
			Log: log.With("component", "poller", "provider", pc.Name), Ran: d.changes.Changed})
		if err != nil {
			return nil, fmt.Errorf("providers: %s.poll_interval: %w", pc.Name, err)
		}
		d.pollers = append(d.pollers, p)
	}

	var tlsCfg *tls.Config
	if cfg.SMTP.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.SMTP.TLSCert, cfg.SMTP.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("smtp.tls_cert: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	networks, err := prefixes(cfg.SMTP.AllowedNetworks)
	if err != nil {
		return nil, fmt.Errorf("smtp.allowed_networks: %w", err)
	}
	// One throttle for SMTP AUTH and the console's sign-in: a guesser
	// gains no attempts by switching between them.
	authThrottle := auththrottle.New(cfg.SMTP.AuthFailuresPerClient, cfg.SMTP.AuthFailuresPerAccount, d.bridge.KnownAccount)
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
		MaxSessionDuration:  cfg.SMTP.MaxSessionDuration,
		MaxCommands:         cfg.SMTP.MaxCommands,
		// The throttle's counts outlive connections, not the process.
		AuthFailuresPerClient:  cfg.SMTP.AuthFailuresPerClient,
		AuthFailuresPerAccount: cfg.SMTP.AuthFailuresPerAccount,
		AuthThrottle:           authThrottle,
		MaxHeaderFields:        cfg.SMTP.MaxHeaderFields,
		MaxHeaderBytes:         cfg.SMTP.MaxHeaderBytes,
	}, m, log.With("component", "smtp"))
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	d.smtpLn, err = net.Listen("tcp", cfg.SMTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("smtp.listen: %w", err)
	}
	opened = append(opened, d.smtpLn)
	if cfg.SMTP.TLSListen != "" {
		if tlsCfg == nil {
			return nil, errors.New("smtp.tls_listen: needs smtp.tls_cert and smtp.tls_key")
		}
		if d.smtpsLn, err = net.Listen("tcp", cfg.SMTP.TLSListen); err != nil {
			return nil, fmt.Errorf("smtp.tls_listen: %w", err)
		}
		opened = append(opened, d.smtpsLn)
	}
	d.api = webhook.New(d.bridge, m, webhook.Config{Ready: st.Ping, Callbacks: callbacks(cfg),
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes, MaxRecipients: cfg.SMTP.MaxRecipients}, log.With("component", "http"))
	limits := webhook.Limits{MaxConnections: cfg.HTTP.MaxConnections, MaxHeaderBytes: cfg.HTTP.MaxHeaderBytes,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, ReadTimeout: cfg.HTTP.ReadTimeout,
		WriteTimeout: cfg.HTTP.WriteTimeout, IdleTimeout: cfg.HTTP.IdleTimeout}
	handler := d.api.Handler()
	if cfg.HTTP.ConsoleEnabled() {
		ui := console.New(d.bridge, console.Config{Throttle: authThrottle, Broker: d.changes,
			Secure: strings.HasPrefix(strings.ToLower(cfg.HTTP.PublicURL), "https:"),
			Ops:    operations{d: d}, Providers: d.configuredProviders}, log.With("component", "console"))
		handler = mountConsole(ui, handler)
		d.console = ui
	}
	d.http = webhook.NewHTTPServer(handler, limits)
	d.httpLn, err = webhook.Listen(cfg.HTTP.Listen, limits)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	return d, nil
}

// Reload applies a new configuration's accounts, routes, providers and
// provider callbacks to the running daemon, without dropping connections:
// what is under way finishes with the old settings. On any error nothing
// changes. Other sections (listeners, store, queue, replies, limits) take
// effect at the next start; Reload logs which of them differ.
func (d *Daemon) Reload(cfg *config.Config) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	provs, err := providers(cfg, d.log)
	if err != nil {
		return err
	}
	accts, err := accounts(cfg)
	if err != nil {
		return err
	}
	if err := d.bridge.Reload(provs, routes(cfg), accts); err != nil {
		return err
	}
	d.dispatcher.SetProviders(provs, limits(cfg))
	d.api.SetCallbacks(callbacks(cfg))
	d.metrics.Providers(providerNames(cfg))
	old := d.loaded
	for name, same := range map[string]bool{
		"store": reflect.DeepEqual(old.Store, cfg.Store), "log": old.Log == cfg.Log,
		"smtp": reflect.DeepEqual(old.SMTP, cfg.SMTP), "http": old.HTTP == cfg.HTTP,
		"queue": old.Queue == cfg.Queue, "limits": old.Limits == cfg.Limits,
		"replies": reflect.DeepEqual(old.Replies, cfg.Replies), "poll_interval": sameIntervals(old, cfg),
	} {
		if !same {
			d.log.Warn("configuration reloaded, but this section changes only at the next start", "section", name)
		}
	}
	d.loaded = cfg
	d.log.Info("configuration reloaded", "accounts", len(cfg.Accounts), "providers", len(cfg.Providers), "routes", len(cfg.Routes))
	return nil
}

// sameIntervals reports whether the pollers a and b would run are alike.
func sameIntervals(a, b *config.Config) bool {
	poll := func(c *config.Config) map[string]time.Duration {
		m := map[string]time.Duration{}
		for _, p := range c.Providers {
			if p.PollInterval > 0 {
				m[p.Name] = p.PollInterval
			}
		}
		return m
	}
	return reflect.DeepEqual(poll(a), poll(b))
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
	bridge.Conversations
	bridge.MailQueue
	bridge.Purger
	Ping(ctx context.Context) error
}

// purgeInterval is how often records past store.retention are purged: a
// record outlives its retention by at most this long.
const purgeInterval = time.Hour

// storeName says which store is in use without printing a URL's password.
func storeName(cfg config.Store) string {
	if cfg.URL.Value() != "" {
		return "postgres"
	}
	return cfg.Path
}

// openStore opens PostgreSQL when store.url is set, else the SQLite file.
// OpenStore opens the store a configuration names (for the CLI's
// read commands).
func OpenStore(ctx context.Context, cfg config.Store, log *slog.Logger) (Store, error) {
	return openStore(ctx, cfg, log)
}

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
	if d.mail != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.mail.Run(runCtx)
		}()
	}
	for _, p := range d.pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Run(runCtx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.retention.Run(runCtx, purgeInterval)
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
	if d.console != nil {
		d.console.Close() // its live streams would hold Shutdown for the whole grace
	}
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

// Smarthost is the client of the smarthost cfg.Replies names, for the
// daemon and for the live check.
func Smarthost(cfg *config.Config) (*mailout.Client, error) {
	c, err := mailout.NewClient(mailout.Config{
		Addr:      cfg.Replies.Smarthost,
		HelloName: cfg.SMTP.Hostname,
		Username:  cfg.Replies.Username,
		Password:  cfg.Replies.Password.Value(),
		TLS:       mailout.TLSMode(cfg.Replies.TLS),
	})
	if err != nil {
		return nil, fmt.Errorf("replies: %w", err)
	}
	return c, nil
}

// providers builds every configured provider.
func providers(cfg *config.Config, log *slog.Logger) ([]bridge.Provider, error) {
	var out []bridge.Provider
	for _, pc := range cfg.Providers {
		p, err := NewProvider(pc, log)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// routes are the configured routes, each with its fallbacks after it.
func routes(cfg *config.Config) []bridge.Route {
	var out []bridge.Route
	for _, r := range cfg.Routes {
		out = append(out, bridge.Route{Prefix: r.Prefix, Providers: append([]string{r.Provider}, r.Fallback...)})
	}
	return out
}

func accounts(cfg *config.Config) ([]bridge.Account, error) {
	var out []bridge.Account
	for _, a := range cfg.Accounts {
		// Validated by config; nil (unset) leaves smtp.allowed_networks.
		nets, _ := prefixes(a.Networks)
		notify, _ := bridge.ParseNotify(a.Notify) // validated by config
		alerts, err := alertOptions(cfg, a)
		if err != nil {
			return nil, err
		}
		out = append(out, bridge.Account{Name: a.Name, Emails: a.Emails, SenderIDs: a.SenderIDs,
			AllowPhonebooks: a.AllowPhonebooks, TokenSHA256: a.APITokenSHA256, Admin: a.Admin,
			MessagesPerMinute: a.MessagesPerMinute, OnCall: a.OnCall, PasswordHash: a.SMTPPasswordHash,
			SmartEncoding: a.SmartEncoding, MaxSegments: a.MaxSegments, Overflow: bridge.Overflow(a.Overflow),
			Networks: nets, ReplyTo: a.ReplyTo, HelpText: a.HelpText, Notify: notify, Pool: a.Pool, Alerts: alerts})
	}
	return out, nil
}

// prefixes parses CIDRs, keeping nil (unset: the default applies) apart
// from empty (no network).
func prefixes(list []string) ([]netip.Prefix, error) {
	if list == nil {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, n := range list {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func providerNames(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Providers))
	for _, pc := range cfg.Providers {
		out = append(out, pc.Name)
	}
	return out
}

// limits are the providers' concurrency limits (fixed, or adaptive up to
// a cap) and paces (per instance).
func limits(cfg *config.Config) bridge.Limits {
	out := bridge.Limits{Concurrency: map[string]int{}, MaxConcurrency: map[string]int{}, Rates: map[string]bridge.Rate{}}
	for _, pc := range cfg.Providers {
		out.Concurrency[pc.Name] = pc.Concurrency
		out.MaxConcurrency[pc.Name] = pc.MaxConcurrency
		if pc.Rate > 0 {
			out.Rates[pc.Name] = bridge.Rate{PerSecond: pc.Rate, Burst: pc.Burst}
		}
	}
	return out
}

// callbacks are the providers' callback URLs: those with an inbound_secret.
func callbacks(cfg *config.Config) map[string]webhook.Callback {
	out := map[string]webhook.Callback{}
	for _, pc := range cfg.Providers {
		if pc.InboundSecret.Value() == "" {
			continue
		}
		in, st := pc.InboundFields, pc.StatusFields
		out[pc.Name] = webhook.Callback{
			Secret:        pc.InboundSecret.Value(),
			InboundFields: webhook.InboundFields{From: in["from"], To: in["to"], Text: in["text"], ID: in["id"], Received: in["received"]},
			StatusFields:  webhook.StatusFields{ID: st["id"], To: st["to"], Status: st["status"], Detail: st["detail"]},
		}
	}
	return out
}

// instanceName tells this daemon from others sharing a store, for the
// pollers' leases: host, process and a random part (a restarted process
// may reuse a pid).
func instanceName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), bridge.NewID())
}

// mountConsole serves the console under console.Prefix (and /ui without
// the slash, redirected) and everything else from api.
func mountConsole(ui http.Handler, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ui":
			http.Redirect(w, r, console.Prefix, http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, console.Prefix):
			ui.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}
