package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// SuppressionKeeper changes and reads the suppression list on behalf of
// an account; it decides what the account may see and change.
type SuppressionKeeper interface {
	Suppress(ctx context.Context, acct *bridge.Account, account, phone, sender, reason, source string) (*bridge.Suppression, int, error)
	Unsuppress(ctx context.Context, acct *bridge.Account, account, phone, sender, reason, source string) error
	ListSuppressions(ctx context.Context, acct *bridge.Account, f bridge.SuppressionFilter) ([]bridge.Suppression, error)
	SuppressionHistory(ctx context.Context, acct *bridge.Account, f bridge.SuppressionFilter) ([]bridge.SuppressionEvent, error)
}

const (
	defaultSuppressions = 100
	maxSuppressions     = 500
)

type suppressionView struct {
	Phone   string    `json:"phone"`
	Scope   string    `json:"scope"`            // number, account or all
	Number  string    `json:"number,omitempty"` // our number (E.164) or sender ID
	Account string    `json:"account,omitempty"`
	Reason  string    `json:"reason"`
	Source  string    `json:"source"` // sms, api, cli, console
	By      string    `json:"by"`
	Created time.Time `json:"created"`
	// Cancelled, in the answer to an add, is how many queued SMS to the
	// phone the suppression cancelled.
	Cancelled *int `json:"cancelled,omitempty"`
}

type suppressionEventView struct {
	ID     int64  `json:"id"`
	Action string `json:"action"` // add, remove
	suppressionView
	At time.Time `json:"at"`
}

func suppressionOf(s bridge.Suppression) suppressionView {
	return suppressionView{Phone: s.Phone, Scope: string(s.Scope()), Number: s.Our, Account: s.Account,
		Reason: s.Reason, Source: s.Source, By: s.By, Created: s.Created}
}

func (s *Server) keeper() SuppressionKeeper {
	k, _ := s.bridge.(SuppressionKeeper)
	return k
}

func suppressionFilter(q url.Values) (bridge.SuppressionFilter, error) {
	if err := onlyParams(q, "phone", "account", "limit"); err != nil {
		return bridge.SuppressionFilter{}, err
	}
	f := bridge.SuppressionFilter{Phone: strings.TrimSpace(q.Get("phone")), Account: strings.TrimSpace(q.Get("account"))}
	var err error
	f.Limit, err = queryLimit(q, defaultSuppressions, maxSuppressions)
	return f, err
}

// suppressionQuery reads the filter of a suppression listing and the
// keeper that answers it; on false the refusal has been written.
func (s *Server) suppressionQuery(w http.ResponseWriter, r *http.Request) (SuppressionKeeper, bridge.SuppressionFilter, bool) {
	k := s.keeper()
	f, err := suppressionFilter(r.URL.Query())
	if err == nil && k == nil {
		err = bridge.Permanent(bridge.ReasonNotFound, "", "no suppression list")
	}
	if err != nil {
		s.refuse(w, r, err)
		return nil, f, false
	}
	return k, f, true
}

// listSuppressions is GET /v1/suppressions: the suppressions that stop
// the token's account's sends (an admin's: all, or ?account='s).
func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request) {
	k, f, ok := s.suppressionQuery(w, r)
	if !ok {
		return
	}
	list, err := k.ListSuppressions(r.Context(), account(r), f)
	if err != nil {
		s.queryError(w, r, "phone", err)
		return
	}
	out := struct {
		Suppressions []suppressionView `json:"suppressions"`
	}{Suppressions: make([]suppressionView, 0, len(list))}
	for _, x := range list {
		out.Suppressions = append(out.Suppressions, suppressionOf(x))
	}
	writeJSON(w, http.StatusOK, out)
}

// suppressionHistory is GET /v1/suppressions/history: every change, who
// made it, when and why, newest first.
func (s *Server) suppressionHistory(w http.ResponseWriter, r *http.Request) {
	k, f, ok := s.suppressionQuery(w, r)
	if !ok {
		return
	}
	list, err := k.SuppressionHistory(r.Context(), account(r), f)
	if err != nil {
		s.queryError(w, r, "phone", err)
		return
	}
	out := struct {
		Events []suppressionEventView `json:"events"`
	}{Events: make([]suppressionEventView, 0, len(list))}
	for _, e := range list {
		out.Events = append(out.Events, suppressionEventView{ID: e.ID, Action: e.Action, suppressionView: suppressionOf(e.Suppression), At: e.At})
	}
	writeJSON(w, http.StatusOK, out)
}

// suppressionRequest is the body of POST /v1/suppressions.
type suppressionRequest struct {
	Phone   string `json:"phone"`
	Number  string `json:"number"`  // one of the account's sender IDs; "" for all of them
	Account string `json:"account"` // admin only; "" with an admin token: every account
	Reason  string `json:"reason"`
}

// postSuppression is POST /v1/suppressions: add one (an import from
// another system, an opt-out received elsewhere). Queued SMS to the phone
// that it covers are cancelled.
func (s *Server) postSuppression(w http.ResponseWriter, r *http.Request) {
	k := s.keeper()
	if k == nil {
		s.fail(w, r, bridge.Permanent(bridge.ReasonNotFound, "", "no suppression list"))
		return
	}
	var req suppressionRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.badJSON(w, err)
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		s.badJSON(w, errors.New("more than one JSON value in the body"))
		return
	}
	if strings.TrimSpace(req.Phone) == "" {
		s.fail(w, r, bridge.Permanent(bridge.ReasonInvalid, "phone", "phone: required"))
		return
	}
	x, n, err := k.Suppress(r.Context(), account(r), req.Account, req.Phone, req.Number, req.Reason, "api")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := suppressionOf(*x)
	v.Cancelled = &n
	s.log.InfoContext(r.Context(), "suppression added", "account", account(r).Name, "scope", v.Scope, "cancelled", n)
	writeJSON(w, http.StatusCreated, v)
}

// deleteSuppression is DELETE /v1/suppressions?phone=&number=&account=&reason=:
// removes the suppression a POST with the same values adds.
func (s *Server) deleteSuppression(w http.ResponseWriter, r *http.Request) {
	k := s.keeper()
	q := r.URL.Query()
	err := onlyParams(q, "phone", "number", "account", "reason")
	if err == nil && strings.TrimSpace(q.Get("phone")) == "" {
		err = badQuery("phone", "phone: required")
	}
	if err == nil && k == nil {
		err = bridge.Permanent(bridge.ReasonNotFound, "", "no suppression list")
	}
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	err = k.Unsuppress(r.Context(), account(r), q.Get("account"), q.Get("phone"), q.Get("number"), q.Get("reason"), "api")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "suppression removed", "account", account(r).Name)
	w.WriteHeader(http.StatusNoContent)
}
