package console

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// page is what every template gets.
type page struct {
	Title   string
	Account *bridge.Account
	CSRF    string
	Error   string
	Notice  string
	Form    map[string]string
	Data    any
}

func parseTemplates() map[string]*template.Template {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"stateLabel": func(st bridge.State) string {
			if st == bridge.StateReceived {
				return "received (the phone wrote last)"
			}
			return string(st)
		},
		"age": func(t, now time.Time) string {
			if t.IsZero() {
				return ""
			}
			return span(now.Sub(t))
		},
		"span": span,
		"cost": func(s string) string {
			c, _ := bridge.ParseCost(s)
			return c
		},
	}
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "conversations", "thread", "message", "error", "ops", "suppressions"} {
		out[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}

// span writes d to the second, without zero tails: 1h, 1h30m, 45s.
func span(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, p page) {
	if s != nil {
		p.Account, p.CSRF = s.acct, s.csrf
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := c.tmpl[name].Execute(w, p); err != nil {
		c.log.Warn("console template", "page", name, "err", err)
	}
}

// problem renders err on the error page with the status the JSON API
// would answer, and the bridge's own message when it has one.
func (c *Console) problem(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg := explain(err)
	if status >= 500 {
		c.log.Warn("console request failed", "path", r.URL.Path, "err", err)
	}
	c.render(w, r, status, "error", s, page{Title: http.StatusText(status), Error: msg})
}

// explain maps a bridge error to a status and a message fit to show.
func explain(err error) (int, string) {
	var be *bridge.Error
	msg := "Temporary failure, try again later."
	if errors.As(err, &be) && be.Msg != "" && !bridge.IsTemporary(err) {
		msg = be.Msg
	}
	switch bridge.ReasonOf(err) {
	case bridge.ReasonNotFound:
		return http.StatusNotFound, "Not found (or not yours to see)."
	case bridge.ReasonSenderNotAllowed:
		return http.StatusForbidden, msg
	case bridge.ReasonRateLimited:
		return http.StatusTooManyRequests, msg
	}
	if bridge.IsTemporary(err) {
		return http.StatusServiceUnavailable, msg
	}
	return http.StatusUnprocessableEntity, msg
}

type conversationsData struct {
	Phone, AccountFilter string
	Provider             string
	State                bridge.State
	Providers            []string       // the provider filter's choices; none: no filter
	States               []bridge.State // the state filter's choices
	Conversations        []bridge.Conversation
	Next                 string // query of the next page, "" on the last
}

func (c *Console) conversations(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := conversationsData{Phone: strings.TrimSpace(q.Get("phone")), AccountFilter: strings.TrimSpace(q.Get("account")),
		Provider: strings.TrimSpace(q.Get("provider")), State: bridge.State(strings.TrimSpace(q.Get("state"))),
		States: bridge.ConversationStates}
	if c.cfg.Providers != nil {
		d.Providers = c.cfg.Providers()
		if d.Provider != "" && !slices.Contains(d.Providers, d.Provider) {
			// A provider no longer configured still has its conversations.
			d.Providers = append(slices.Clip(d.Providers), d.Provider)
		}
	}
	f := bridge.ConversationFilter{Phone: d.Phone, Provider: d.Provider, State: d.State, Limit: pageSize, BeforeID: q.Get("before_id")}
	if s.acct.Admin {
		f.Account = d.AccountFilter
	}
	if b := q.Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			c.render(w, r, http.StatusBadRequest, "error", s, page{Title: "Bad request", Error: "before: not a time"})
			return
		}
		f.Before = t
	}
	if f.BeforeID != "" && f.Before.IsZero() {
		f.BeforeID = ""
	}
	list, err := c.bridge.Conversations(r.Context(), s.acct, f)
	if err != nil {
		if bridge.ReasonOf(err) == bridge.ReasonBadNumber || bridge.ReasonOf(err) == bridge.ReasonInvalid {
			// A search that is no phone number, a state that is none, a
			// listing by state that took too long: said beside the box.
			_, msg := explain(err)
			c.render(w, r, http.StatusUnprocessableEntity, "conversations", s, page{Title: "Conversations", Error: msg, Data: d})
			return
		}
		c.problem(w, r, s, err)
		return
	}
	d.Conversations = list
	if len(list) == pageSize {
		last := list[len(list)-1]
		nq := url.Values{"before": {last.Updated.UTC().Format(time.RFC3339Nano)}, "before_id": {last.ID}}
		if d.Phone != "" {
			nq.Set("phone", d.Phone)
		}
		for k, v := range map[string]string{"account": f.Account, "provider": f.Provider, "state": string(f.State)} {
			if v != "" {
				nq.Set(k, v)
			}
		}
		d.Next = nq.Encode()
	}
	c.render(w, r, http.StatusOK, "conversations", s, page{Title: "Conversations", Data: d})
}

type threadData struct {
	Conversation *bridge.Conversation
	Log          []bridge.LogEntry
}

func (c *Console) thread(w http.ResponseWriter, r *http.Request, s *session) {
	c.showThread(w, r, s, http.StatusOK, "", "")
}

func (c *Console) showThread(w http.ResponseWriter, r *http.Request, s *session, status int, errMsg, text string) {
	conv, log, err := c.bridge.ConversationLog(r.Context(), s.acct, r.PathValue("id"), threadLimit)
	if err != nil {
		c.problem(w, r, s, err)
		return
	}
	log = c.withPending(r, s, conv, log)
	c.render(w, r, status, "thread", s, page{Title: conv.Phone, Error: errMsg,
		Form: map[string]string{"text": text}, Data: threadData{Conversation: conv, Log: log}})
}

// send answers in the thread: to its phone, from its sender, through the
// same ResolveTo and Submit as POST /v1/messages, so the same checks
// (opt-out, sender IDs, length, rate limits) refuse the same things.
func (c *Console) send(w http.ResponseWriter, r *http.Request, s *session) {
	conv, _, err := c.bridge.ConversationLog(r.Context(), s.acct, r.PathValue("id"), 1)
	if err != nil {
		c.problem(w, r, s, err)
		return
	}
	text := r.PostFormValue("text")
	refuse := func(err error) {
		status, msg := explain(err)
		c.showThread(w, r, s, status, msg, text)
	}
	rcpt, err := c.bridge.ResolveTo(r.Context(), s.acct, conv.Phone)
	if err != nil {
		refuse(err)
		return
	}
	sub := &bridge.Submission{Account: s.acct, Channel: bridge.ChannelHTTP, Sender: conv.Our, Text: text,
		Recipients: []bridge.Recipient{rcpt}}
	if conv.Account == s.acct.Name {
		// The phone's answers keep going to the mailbox they went to:
		// answering in the console does not take the thread away from
		// it (the HTTP API's reply_to, which Submit checks likewise).
		sub.ReplyTo = conv.ReplyTo
	}
	m, err := c.bridge.Submit(r.Context(), sub)
	if err != nil {
		refuse(err)
		return
	}
	c.log.Info("accepted", "channel", "console", "id", m.ID, "account", s.acct.Name)
	http.Redirect(w, r, Prefix+"c/"+url.PathEscape(conv.ID)+"?sent="+url.QueryEscape(m.ID), http.StatusSeeOther)
}

type messageData struct {
	*bridge.Message
	Cancellable bool
}

// withPending adds the message named by ?sent= (the one just sent from
// this thread) while the log does not hold it yet: the store files a
// recipient under its conversation only with its first outcome, and the
// sender wants to see it queued before that.
func (c *Console) withPending(r *http.Request, s *session, conv *bridge.Conversation, log []bridge.LogEntry) []bridge.LogEntry {
	id := r.URL.Query().Get("sent")
	if id == "" {
		return log
	}
	for _, e := range log {
		if e.MessageID == id {
			return log
		}
	}
	m, err := c.bridge.Message(r.Context(), s.acct, id)
	if err != nil {
		return log
	}
	for _, rc := range m.Recipients {
		if rc.To == conv.Phone {
			log = append(log, bridge.LogEntry{At: m.Created, Direction: bridge.DirOut, Phone: rc.To, Our: conv.Our,
				Account: m.Account, Text: m.Text, Encoding: m.Encoding, Parts: m.Parts, State: rc.State,
				Error: rc.Error, MessageID: m.ID, RecipientID: rc.ID})
		}
	}
	return log
}

func (c *Console) message(w http.ResponseWriter, r *http.Request, s *session) {
	m, err := c.bridge.Message(r.Context(), s.acct, r.PathValue("id"))
	if err != nil {
		c.problem(w, r, s, err)
		return
	}
	d := messageData{Message: m}
	for _, rc := range m.Recipients {
		// What bridge.Cancel can still stop: queued here, or handed to
		// a provider that holds it until its time.
		if rc.State == bridge.StateQueued || rc.State == bridge.StateSent && m.SendAt.After(c.cfg.Now()) {
			d.Cancellable = true
		}
	}
	c.render(w, r, http.StatusOK, "message", s, page{Title: "Message " + m.ID, Data: d})
}

// cancel cancels the message's queued or scheduled recipients through
// bridge.Cancel, which refuses another account's message.
func (c *Console) cancel(w http.ResponseWriter, r *http.Request, s *session) {
	m, err := c.bridge.Cancel(r.Context(), s.acct, r.PathValue("id"))
	if err != nil {
		c.problem(w, r, s, err)
		return
	}
	http.Redirect(w, r, Prefix+"m/"+url.PathEscape(m.ID), http.StatusSeeOther)
}
