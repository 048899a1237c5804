// Package console is the daemon's web console at /ui/: sign-in with an
// account's API token or SMTP password, the conversation log as chat
// threads with a compose box, message detail with cancel, the suppression
// list, and an operations page for admins. It is served
// from templates and assets embedded in the binary and calls the same
// bridge methods as the JSON API, so it can show or do nothing the
// account could not through the API.
package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/internal/auththrottle"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Bridge is what the console needs from the bridge: the calls the JSON
// API makes, plus password sign-in.
type Bridge interface {
	Authenticate(user, password string) (*bridge.Account, error)
	AccountByToken(token string) (*bridge.Account, error)
	ResolveTo(ctx context.Context, acct *bridge.Account, dest string) (bridge.Recipient, error)
	Submit(ctx context.Context, s *bridge.Submission) (*bridge.Message, error)
	Message(ctx context.Context, acct *bridge.Account, id string) (*bridge.Message, error)
	Cancel(ctx context.Context, acct *bridge.Account, id string) (*bridge.Message, error)
	Conversations(ctx context.Context, acct *bridge.Account, f bridge.ConversationFilter) ([]bridge.Conversation, error)
	ConversationLog(ctx context.Context, acct *bridge.Account, id string, limit int) (*bridge.Conversation, []bridge.LogEntry, error)
	Suppress(ctx context.Context, acct *bridge.Account, account, phone, sender, reason, source string) (*bridge.Suppression, int, error)
	Unsuppress(ctx context.Context, acct *bridge.Account, account, phone, sender, reason, source string) error
	ListSuppressions(ctx context.Context, acct *bridge.Account, f bridge.SuppressionFilter) ([]bridge.Suppression, error)
}

// Config configures the console; zero fields take the defaults noted.
type Config struct {
	// Secure marks the session cookie Secure even on a plain connection:
	// set when a TLS-terminating proxy is in front (public_url https).
	// A request that arrived over TLS gets a Secure cookie regardless.
	Secure bool
	// IdleTimeout signs out a session unused this long (30m).
	IdleTimeout time.Duration
	// MaxSessions caps the sessions held in memory (1000).
	MaxSessions int
	// Throttle counts failed sign-ins; share SMTP AUTH's so a guesser
	// gains nothing by switching. nil: 10 per client, 20 per account an
	// hour.
	Throttle *auththrottle.Throttle
	// Now is the clock (time.Now); tests inject one for idle expiry.
	Now func() time.Time
	// Broker feeds the pages' live updates; nil: one of the console's
	// own, which nothing wakes.
	Broker *Broker
	// Ops reads the operations page's figures; nil: no such page.
	Ops Operations
	// Providers lists the configured providers, for the conversation
	// list's provider filter; nil: no such filter.
	Providers func() []string
}

// Prefix is where the daemon mounts the console.
const Prefix = "/ui/"

const (
	cookieName   = "smsbridge_session"
	maxFormBytes = 64 << 10
	threadLimit  = 200
	pageSize     = 50
)

// Console serves the web console.
type Console struct {
	bridge   Bridge
	cfg      Config
	log      *slog.Logger
	sessions *sessions
	broker   *Broker
	stop     chan struct{}
	stopOnce sync.Once
	tmpl     map[string]*template.Template
	mux      *http.ServeMux
}

// New builds the console.
func New(b Bridge, cfg Config, log *slog.Logger) *Console {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 1000
	}
	if cfg.Throttle == nil {
		cfg.Throttle = auththrottle.New(10, 20, nil)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Broker == nil {
		cfg.Broker = NewBroker(0)
	}
	c := &Console{bridge: b, cfg: cfg, log: log, sessions: newSessions(cfg.IdleTimeout, cfg.MaxSessions, cfg.Now),
		broker: cfg.Broker, stop: make(chan struct{}),
		tmpl: parseTemplates(), mux: http.NewServeMux()}
	static, _ := fs.Sub(staticFS, "static")
	m := c.mux
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /ui/login", c.loginPage)
	m.HandleFunc("POST /ui/login", c.login)
	m.HandleFunc("POST /ui/logout", c.authed(c.logout))
	m.HandleFunc("GET /ui/{$}", c.authed(c.conversations))
	m.HandleFunc("GET /ui/c/{id}", c.authed(c.thread))
	m.HandleFunc("POST /ui/c/{id}/send", c.authed(c.send))
	m.HandleFunc("GET /ui/events", c.authed(c.events))
	m.HandleFunc("GET /ui/m/{id}", c.authed(c.message))
	m.HandleFunc("POST /ui/m/{id}/cancel", c.authed(c.cancel))
	m.HandleFunc("GET /ui/ops", c.authed(c.adminOnly(c.ops)))
	m.HandleFunc("GET /ui/suppressions", c.authed(c.suppressions))
	m.HandleFunc("POST /ui/suppressions", c.authed(c.suppress))
	m.HandleFunc("POST /ui/suppressions/remove", c.authed(c.unsuppress))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) { c.notFound(w, r, nil) })
	return c
}

// notFound is the answer for a page that does not exist, and for one
// that exists only for admins to anyone else: the same 404, so that a
// page is no more confirmed than another account's data is.
func (c *Console) notFound(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, http.StatusNotFound, "error", s, page{Title: "Not found", Error: "There is no such page."})
}

// adminOnly passes admin accounts' sessions; others get notFound.
func (c *Console) adminOnly(next func(http.ResponseWriter, *http.Request, *session)) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		if !s.acct.Admin {
			c.notFound(w, r, s)
			return
		}
		next(w, r, s)
	}
}

// Close ends the live-update streams, so that the HTTP server's
// graceful shutdown does not wait for browsers to leave.
func (c *Console) Close() { c.stopOnce.Do(func() { close(c.stop) }) }

// ServeHTTP implements http.Handler for every path under Prefix.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	h := w.Header()
	// Everything the pages use is ours: no inline script, no framing.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

type ctxKey struct{}

// authed passes only requests of a live session, and only POSTs that
// carry the session's CSRF token; others go to the sign-in page (GET) or
// get 403 (POST).
func (c *Console) authed(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var s *session
		if ck, err := r.Cookie(cookieName); err == nil {
			s = c.sessions.get(ck.Value)
		}
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
				return
			}
			c.render(w, r, http.StatusForbidden, "error", nil, page{Title: "Signed out", Error: "Your session has ended: sign in again."})
			return
		}
		if r.Method == http.MethodPost {
			got := r.PostFormValue("csrf")
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
				c.render(w, r, http.StatusForbidden, "error", s, page{Title: "Refused", Error: "The form's security token is missing or stale: reload the page and try again."})
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)), s)
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", nil, page{Title: "Sign in"})
}

var errThrottled = errors.New("too many failed sign-ins: try again later")

// login signs in with an API token (account name optional) or the
// account's SMTP password. Failures are counted in the throttle shared
// with SMTP AUTH; while it refuses, no secret is checked.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		// A page elsewhere must not sign a browser in to an account of
		// its choosing (login CSRF); SameSite covers the rest.
		c.render(w, r, http.StatusForbidden, "login", nil, page{Title: "Sign in", Error: "Sign in from this site's own page."})
		return
	}
	name, secret := r.PostFormValue("account"), r.PostFormValue("secret")
	client := auththrottle.ClientKey(clientAddr(r))
	now := c.cfg.Now()
	fail := func(status int, msg string) {
		c.render(w, r, status, "login", nil, page{Title: "Sign in", Error: msg, Form: map[string]string{"account": name}})
	}
	if !c.cfg.Throttle.Allowed(client, name, now) {
		c.log.Warn("console sign-in throttled", "remote", r.RemoteAddr, "user", name)
		w.Header().Set("Retry-After", "3600")
		fail(http.StatusTooManyRequests, "Too many failed sign-ins: try again later.")
		return
	}
	acct, err := c.bridge.AccountByToken(secret)
	if err != nil || (name != "" && acct.Name != name) {
		acct, err = c.bridge.Authenticate(name, secret)
	}
	if secret == "" || err != nil {
		c.cfg.Throttle.Failed(client, name, now)
		c.log.Warn("console sign-in failed", "remote", r.RemoteAddr, "user", name)
		fail(http.StatusUnauthorized, "Wrong account name, password or API token.")
		return
	}
	s := c.sessions.create(acct)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.id, Path: Prefix, HttpOnly: true,
		Secure: c.cfg.Secure || r.TLS != nil, SameSite: http.SameSiteStrictMode})
	c.log.Info("console sign-in", "account", acct.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.remove(s.id)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true,
		Secure: c.cfg.Secure || r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// clientAddr is the peer's address (the listener sees no proxy headers:
// trusting X-Forwarded-For would let a guesser pick its own bucket).
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
