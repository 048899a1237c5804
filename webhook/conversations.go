package webhook

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/smsbridge/smsbridge/bridge"
)

// Page sizes of the conversation endpoints.
const (
	defaultConversations = 50
	maxConversations     = 500
	defaultLog           = 100
	maxLog               = 1000
)

// conversationView is a conversation as the API shows it.
type conversationView struct {
	ID            string    `json:"id"`
	Phone         string    `json:"phone"`
	Our           string    `json:"our,omitempty"`
	Provider      string    `json:"provider,omitempty"` // the provider the phone's SMS come through
	Account       string    `json:"account,omitempty"`
	ReplyTo       string    `json:"reply_to,omitempty"`
	MailMessageID string    `json:"mail_message_id,omitempty"`
	Subject       string    `json:"subject,omitempty"`
	LastOut       time.Time `json:"last_out,omitzero"`
	Created       time.Time `json:"created,omitzero"`
	Updated       time.Time `json:"updated,omitzero"`
}

func conversation(c *bridge.Conversation) conversationView {
	return conversationView{ID: c.ID, Phone: c.Phone, Our: c.Our, Provider: c.Provider, Account: c.Account, ReplyTo: c.ReplyTo,
		MailMessageID: c.MailMessageID, Subject: c.Subject, LastOut: c.LastOut, Created: c.Created, Updated: c.Updated}
}

// conversationPage answers GET /v1/conversations. NextBefore and
// NextBeforeID, set when the page is full, are the before= and before_id=
// of the next page.
type conversationPage struct {
	Conversations []conversationView `json:"conversations"`
	NextBefore    time.Time          `json:"next_before,omitzero"`
	NextBeforeID  string             `json:"next_before_id,omitempty"`
}

// conversationLog answers GET /v1/conversations/{id}: the conversation and
// its SMS both ways, oldest first.
type conversationLog struct {
	conversationView
	Log []logEntryView `json:"log"`
}

type logEntryView struct {
	At          time.Time `json:"at"`
	Direction   string    `json:"direction"`
	Phone       string    `json:"phone,omitempty"`
	Our         string    `json:"our,omitempty"`
	Account     string    `json:"account,omitempty"`
	Text        string    `json:"text,omitempty"`
	State       string    `json:"state,omitempty"`
	Error       string    `json:"error,omitempty"`
	Notified    string    `json:"notified,omitempty"` // delivery notifications mailed about it
	MessageID   string    `json:"message_id,omitempty"`
	RecipientID int64     `json:"recipient_id,omitempty"`
	InboundID   string    `json:"inbound_id,omitempty"`
	MailTo      string    `json:"mail_to,omitempty"`
	Provider    string    `json:"provider,omitempty"`
	Raw         string    `json:"raw,omitempty"` // the provider's request, for field mappings
}

func logEntry(e bridge.LogEntry) logEntryView {
	return logEntryView{At: e.At, Direction: string(e.Direction), Phone: e.Phone, Our: e.Our, Account: e.Account,
		Text: e.Text, State: string(e.State), Error: e.Error, Notified: e.Notified, MessageID: e.MessageID, RecipientID: e.RecipientID,
		InboundID: e.InboundID, MailTo: e.MailTo, Provider: e.Provider, Raw: e.Raw}
}

// parseConversationFilter reads the query of GET /v1/conversations.
// Unknown parameters are refused: a misspelt filter would otherwise
// silently list everything.
func parseConversationFilter(q url.Values) (bridge.ConversationFilter, error) {
	f := bridge.ConversationFilter{Limit: defaultConversations}
	if err := onlyParams(q, "phone", "account", "provider", "state", "since", "before", "before_id", "limit"); err != nil {
		return f, err
	}
	f.Phone = strings.TrimSpace(q.Get("phone"))
	f.Account = strings.TrimSpace(q.Get("account"))
	f.Provider = strings.TrimSpace(q.Get("provider"))
	f.State = bridge.State(strings.TrimSpace(q.Get("state")))
	var err error
	if f.Since, err = queryTime(q, "since"); err != nil {
		return f, err
	}
	if f.Before, err = queryTime(q, "before"); err != nil {
		return f, err
	}
	if f.BeforeID = strings.TrimSpace(q.Get("before_id")); f.BeforeID != "" && f.Before.IsZero() {
		return f, badQuery("before_id", "before_id: goes with before (next_before and next_before_id of the previous page)")
	}
	if f.Limit, err = queryLimit(q, defaultConversations, maxConversations); err != nil {
		return f, err
	}
	return f, nil
}

func onlyParams(q url.Values, known ...string) error {
	for k := range q {
		if !slices.Contains(known, k) {
			return badQuery(k, "%s: unknown parameter (known: %s)", k, strings.Join(known, ", "))
		}
	}
	return nil
}

// queryTime reads an optional RFC 3339 time (next_before is one).
func queryTime(q url.Values, name string) (time.Time, error) {
	s := strings.TrimSpace(q.Get(name))
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badQuery(name, "%s: want an RFC 3339 time such as 2025-03-12T21:20:02Z, not %q", name, s)
	}
	return t, nil
}

// queryLimit reads an optional limit between 1 and max.
func queryLimit(q url.Values, def, max int) (int, error) {
	s := strings.TrimSpace(q.Get("limit"))
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, badQuery("limit", "limit: want an integer from 1 to %d, not %q", max, s)
	}
	return n, nil
}

func badQuery(field, format string, args ...any) *badRequest {
	b := malformed(format, args...)
	b.field = field
	return b
}

// queryError answers a bridge error about a query value with 400: the
// request is wrong, not the content of anything sent. Other errors take
// the usual mapping.
func (s *Server) queryError(w http.ResponseWriter, r *http.Request, field string, err error) {
	switch bridge.ReasonOf(err) {
	case bridge.ReasonBadNumber, bridge.ReasonInvalid:
		msg := err.Error()
		var be *bridge.Error
		if errors.As(err, &be) && be.Msg != "" {
			msg = be.Msg
		}
		writeError(w, http.StatusBadRequest, string(bridge.ReasonOf(err)), field, field+": "+msg)
		return
	}
	s.answerError(w, r, err)
}

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request) {
	f, err := parseConversationFilter(r.URL.Query())
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	list, err := s.bridge.Conversations(r.Context(), account(r), f)
	if err != nil {
		// The bridge parses the phone and checks the state further.
		field := "phone"
		var be *bridge.Error
		if errors.As(err, &be) && be.Field == "state" {
			field = "state"
		}
		s.queryError(w, r, field, err)
		return
	}
	page := conversationPage{Conversations: make([]conversationView, 0, len(list))}
	for i := range list {
		page.Conversations = append(page.Conversations, conversation(&list[i]))
	}
	if len(list) > 0 && len(list) >= f.Limit {
		page.NextBefore = list[len(list)-1].Updated
		page.NextBeforeID = list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	err := onlyParams(q, "limit")
	limit := 0
	if err == nil {
		limit, err = queryLimit(q, defaultLog, maxLog)
	}
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	c, entries, err := s.bridge.ConversationLog(r.Context(), account(r), mux.Vars(r)["id"], limit)
	if err != nil {
		s.answerError(w, r, err)
		return
	}
	out := conversationLog{conversationView: conversation(c), Log: make([]logEntryView, 0, len(entries))}
	for _, e := range entries {
		out.Log = append(out.Log, logEntry(e))
	}
	writeJSON(w, http.StatusOK, out)
}
