// Package webhook is the HTTP side of smsbridge (gorilla/mux): the JSON
// send API, the conversation log, provider callbacks (inbound SMS and
// delivery reports), alerting receivers, health and metrics. Every refusal
// is a JSON error naming the reason and, where there is one, the field.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/net/netutil"

	"github.com/smsbridge/smsbridge/bridge"
)

// Bridge is what the HTTP side needs from the bridge.
type Bridge interface {
	AccountByToken(token string) (*bridge.Account, error)
	// ResolveTo routes a destination and refuses a phone that opted out.
	ResolveTo(ctx context.Context, acct *bridge.Account, dest string) (bridge.Recipient, error)
	Submit(ctx context.Context, s *bridge.Submission) (*bridge.Message, error)
	// PageAlert files an alert SMS to phones (E.164) under a reference
	// per phone; nil when the account's hook has no silencing.
	PageAlert(ctx context.Context, p bridge.AlertPage, phones []string) (map[string]int, error)
	Message(ctx context.Context, acct *bridge.Account, id string) (*bridge.Message, error)
	Cancel(ctx context.Context, acct *bridge.Account, id string) (*bridge.Message, error)
	Inbox
	ConversationReader
}

// Inbox takes what providers report through their callbacks.
type Inbox interface {
	// Receive records an inbound SMS (parsing in.From, filing it under
	// its conversation, queueing the reply mail) and sets in.ID. dup is
	// true, with a nil error, when the provider already delivered an
	// inbound with the same Provider and DedupeKey.
	Receive(ctx context.Context, in *bridge.Inbound) (dup bool, err error)
	// Report applies a delivery report and returns how many recipients
	// it changed.
	Report(ctx context.Context, r bridge.DeliveryReport) (int, error)
}

// ConversationReader reads the conversation log on behalf of an account;
// it decides what the account may see (ReasonNotFound for the rest).
type ConversationReader interface {
	Conversations(ctx context.Context, acct *bridge.Account, f bridge.ConversationFilter) ([]bridge.Conversation, error)
	ConversationLog(ctx context.Context, acct *bridge.Account, id string, limit int) (*bridge.Conversation, []bridge.LogEntry, error)
}

// Metrics counts what the HTTP side accepts and refuses.
type Metrics interface {
	Accepted(channel bridge.Channel)
	Refused(channel bridge.Channel, reason bridge.Reason)
	Handler() http.Handler
}

// Config configures the HTTP side.
type Config struct {
	MaxBodyBytes int64 // request bodies larger than this get 413
	// MaxRecipients caps the destinations of one send request (its to
	// list, an alert's ?to=); a longer list gets 422 naming to before any
	// entry is parsed. 0: no cap but the body's size.
	MaxRecipients int
	// Ready reports whether the daemon can take work (store reachable,
	// listeners up); nil means always.
	Ready func(ctx context.Context) error
	// Callbacks enables /v1/providers/{name}/inbound and .../status for
	// the providers named; a provider missing here or without a secret
	// gets 404.
	Callbacks map[string]Callback
}

// Callback configures the callback endpoints of one provider.
type Callback struct {
	// Secret must be given as ?secret= in the callback URL configured at
	// the provider.
	Secret        string
	InboundFields InboundFields
	StatusFields  StatusFields
}

// Server routes the HTTP API.
type Server struct {
	bridge    Bridge
	metrics   Metrics
	cfg       Config
	log       *slog.Logger
	router    *mux.Router
	callbacks atomic.Pointer[map[string]callback] // swapped by SetCallbacks
	repeats   *repeats                            // alert notifications sent lately
}

// New builds the router.
func New(b Bridge, m Metrics, cfg Config, log *slog.Logger) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	s := &Server{bridge: b, metrics: m, cfg: cfg, log: log, router: mux.NewRouter(), repeats: newRepeats(maxRepeats)}
	s.SetCallbacks(cfg.Callbacks)
	r := s.router
	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	r.Handle("/metrics", m.Handler()).Methods(http.MethodGet)
	r.HandleFunc("/v1/messages", s.auth(s.postMessage)).Methods(http.MethodPost)
	r.HandleFunc("/v1/messages/{id}", s.auth(s.getMessage)).Methods(http.MethodGet)
	r.HandleFunc("/v1/messages/{id}", s.auth(s.deleteMessage)).Methods(http.MethodDelete)
	r.HandleFunc("/v1/hooks/alertmanager", s.auth(s.alertmanager)).Methods(http.MethodPost)
	r.HandleFunc("/v1/hooks/grafana", s.auth(s.grafana)).Methods(http.MethodPost)
	r.HandleFunc("/v1/suppressions", s.auth(s.listSuppressions)).Methods(http.MethodGet)
	r.HandleFunc("/v1/suppressions", s.auth(s.postSuppression)).Methods(http.MethodPost)
	r.HandleFunc("/v1/suppressions", s.auth(s.deleteSuppression)).Methods(http.MethodDelete)
	r.HandleFunc("/v1/suppressions/history", s.auth(s.suppressionHistory)).Methods(http.MethodGet)
	r.HandleFunc("/v1/conversations", s.auth(s.listConversations)).Methods(http.MethodGet)
	r.HandleFunc("/v1/conversations/{id}", s.auth(s.getConversation)).Methods(http.MethodGet)
	// Providers authenticate with the secret in the URL, not a token.
	r.HandleFunc("/v1/providers/{name}/inbound", s.providerInbound).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/v1/providers/{name}/status", s.providerStatus).Methods(http.MethodGet, http.MethodPost)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "", "no such endpoint")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "", r.Method+" is not allowed here")
	})
	return s
}

// Handler returns the root handler, with the body size limit applied.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		s.router.ServeHTTP(w, r)
	})
}

// Routes lists "METHOD /path" for every route, for the OpenAPI check.
func (s *Server) Routes() []string {
	var out []string
	_ = s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, _ := route.GetMethods()
		for _, m := range methods {
			out = append(out, m+" "+path)
		}
		return nil
	})
	return out
}

// Limits bounds what the HTTP server lets one client spend; zero fields
// take the defaults in the comments.
type Limits struct {
	MaxConnections    int           // open at once; more wait to be accepted (256)
	MaxHeaderBytes    int           // request line and headers (64 KiB)
	ReadHeaderTimeout time.Duration // to send the headers (10s)
	ReadTimeout       time.Duration // to send the whole request (30s)
	WriteTimeout      time.Duration // to take the whole answer (30s)
	IdleTimeout       time.Duration // between requests on a kept-alive connection (2m)
}

func (l Limits) withDefaults() Limits {
	set := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = 256
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 64 << 10
	}
	set(&l.ReadHeaderTimeout, 10*time.Second)
	set(&l.ReadTimeout, 30*time.Second)
	set(&l.WriteTimeout, 30*time.Second)
	set(&l.IdleTimeout, 2*time.Minute)
	return l
}

// NewHTTPServer wraps h with the timeouts and header cap of l, fit for a
// public listener: a client that trickles its headers, or holds a
// connection open doing nothing, is cut off.
func NewHTTPServer(h http.Handler, l Limits) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// Listen opens the HTTP listener on addr, accepting at most
// l.MaxConnections connections at once: the rest wait in the kernel's
// backlog until one closes, so a flood of connections costs the daemon
// neither goroutines nor file descriptors beyond the cap.
func Listen(addr string, l Limits) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return netutil.LimitListener(ln, l.withDefaults().MaxConnections), nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			// /readyz answers anyone who can reach the listener: the
			// store's error (a host name, a path, a user name) goes to
			// the log, not to them.
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			writeError(w, http.StatusServiceUnavailable, "not_ready", "", "not ready: see the daemon's log")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type ctxKey struct{}

// auth resolves the Bearer token to an account.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		acct, err := s.bridge.AccountByToken(strings.TrimSpace(token))
		if !ok || err != nil {
			s.metrics.Refused(bridge.ChannelHTTP, bridge.ReasonUnknownAccount)
			w.Header().Set("WWW-Authenticate", `Bearer realm="smsbridge"`)
			msg := "missing or unknown API token (Authorization: Bearer <token>)"
			writeError(w, http.StatusUnauthorized, string(bridge.ReasonUnknownAccount), "Authorization", msg)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, acct)))
	}
}

func account(r *http.Request) *bridge.Account { return r.Context().Value(ctxKey{}).(*bridge.Account) }

// fieldError is one entry of a 422's error list.
type fieldError struct {
	Field   string `json:"field"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type errorBody struct {
	Error  string       `json:"error"`
	Reason string       `json:"reason"`
	Field  string       `json:"field,omitempty"`
	Errors []fieldError `json:"errors,omitempty"`
}

// maxQuoted caps a client's value quoted back in an error message, and
// maxErrorText the message itself: an error never echoes unbounded input.
const (
	maxQuoted    = 64
	maxErrorText = 512
)

// bounded cuts every text of an error body to maxErrorText bytes, whatever
// the code that made it quoted.
func (e errorBody) bounded() errorBody {
	e.Error, e.Field = clip(e.Error, maxErrorText), clip(e.Field, maxQuoted)
	if len(e.Errors) > 0 {
		errs := make([]fieldError, len(e.Errors))
		for i, f := range e.Errors {
			errs[i] = fieldError{Field: clip(f.Field, maxQuoted), Reason: f.Reason, Message: clip(f.Message, maxErrorText)}
		}
		e.Errors = errs
	}
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if e, ok := v.(errorBody); ok {
		v = e.bounded()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, reason, field, msg string) {
	writeJSON(w, status, errorBody{Error: msg, Reason: reason, Field: field})
}

// status maps a bridge error to an HTTP status: the one place that does.
func status(err error) int {
	switch bridge.ReasonOf(err) {
	case bridge.ReasonUnknownAccount:
		return http.StatusUnauthorized
	case bridge.ReasonSenderNotAllowed:
		return http.StatusForbidden
	case bridge.ReasonBadNumber, bridge.ReasonNoRoute, bridge.ReasonTooLong, bridge.ReasonEmpty,
		bridge.ReasonTemplateUnknown, bridge.ReasonInvalid, bridge.ReasonTooManyRecipients, bridge.ReasonBadDomain,
		bridge.ReasonOverLimit, bridge.ReasonOptedOut:
		return http.StatusUnprocessableEntity
	case bridge.ReasonRateLimited:
		return http.StatusTooManyRequests
	case bridge.ReasonNotFound:
		return http.StatusNotFound
	case bridge.ReasonIdempotencyConflict:
		return http.StatusConflict
	case bridge.ReasonStoreUnavailable:
		return http.StatusServiceUnavailable
	}
	if bridge.IsTemporary(err) {
		return http.StatusServiceUnavailable
	}
	return http.StatusUnprocessableEntity
}

// fail answers err, counting the refusal.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.metrics.Refused(bridge.ChannelHTTP, bridge.ReasonOf(err))
	s.answerError(w, r, err)
}

// answerError answers err without counting it as a refused submission.
func (s *Server) answerError(w http.ResponseWriter, r *http.Request, err error) {
	code := status(err)
	reason := bridge.ReasonOf(err)
	var be *bridge.Error
	msg, field := "temporary failure, try again later", ""
	if errors.As(err, &be) && be.Msg != "" {
		msg, field = be.Msg, be.Field
	}
	if code >= 500 {
		s.log.WarnContext(r.Context(), "request failed", "path", r.URL.Path, "err", err)
		msg = "temporary failure, try again later"
		if reason == bridge.ReasonStoreUnavailable {
			msg = "cannot store the message now, try again later"
		}
	}
	if wait := bridge.RetryAfterOf(err); wait > 0 || code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		secs := int((wait + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if reason == "" {
		reason = "internal"
	}
	body := errorBody{Error: msg, Reason: string(reason), Field: field}
	if code == http.StatusUnprocessableEntity {
		body.Errors = []fieldError{{Field: field, Reason: string(reason), Message: msg}}
	}
	writeJSON(w, code, body)
}
