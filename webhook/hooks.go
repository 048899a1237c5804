package webhook

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/webhook/alerts"
)

// The hooks' names, as accounts configure them ([accounts.alerts.<name>]).
const (
	sourceAlertmanager = "alertmanager"
	sourceGrafana      = "grafana"
)

func (s *Server) alertmanager(w http.ResponseWriter, r *http.Request) {
	s.alert(w, r, sourceAlertmanager)
}

func (s *Server) grafana(w http.ResponseWriter, r *http.Request) {
	s.alert(w, r, sourceGrafana)
}

// alert turns one alerting notification into SMS to the numbers in ?to=
// (comma-separated or repeated) or the account's on-call numbers. When
// the account can silence the hook's alerts by SMS, each phone's text
// carries the phone's reference for the group (#3), and phones with
// different references get messages of their own.
func (s *Server) alert(w http.ResponseWriter, r *http.Request, source string) {
	acct := account(r)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.badJSON(w, err)
		return
	}
	n, err := alerts.Parse(body, source == sourceGrafana)
	if err != nil {
		if bridge.ReasonOf(err) == bridge.ReasonInvalid {
			s.metrics.Refused(bridge.ChannelHTTP, bridge.ReasonInvalid)
			var field string
			if be, ok := err.(*bridge.Error); ok {
				field = be.Field
			}
			writeError(w, http.StatusBadRequest, "malformed_json", field, err.Error())
			return
		}
		s.fail(w, r, err)
		return
	}
	if n.Resolved() && !acct.Alerts.SendResolved {
		writeJSON(w, http.StatusOK, alertDropped{Dropped: "resolved",
			Message: "resolved notifications are not sent for this account (accounts.alerts.send_resolved)"})
		return
	}
	var to []string
	for _, v := range r.URL.Query()["to"] {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				to = append(to, n)
			}
		}
	}
	if len(to) == 0 {
		to = acct.OnCall
	}
	if len(to) == 0 {
		s.fail(w, r, bridge.Permanent(bridge.ReasonInvalid, "to", "no ?to= numbers and no on_call numbers for account %s", acct.Name))
		return
	}
	format := alerts.Format{MaxSegments: acct.Alerts.MaxSegments}
	text := n.Text(format)
	// A phone that opted out is left out with a note, not a refusal of
	// the whole alert: the others must still be paged. With none left,
	// submit refuses every one (422, to[i]: opted_out).
	var send []string
	var skipped []fieldError
	for i, dest := range to {
		_, err := s.bridge.ResolveTo(r.Context(), acct, dest)
		var be *bridge.Error
		switch {
		case err == nil:
			send = append(send, dest)
		case bridge.ReasonOf(err) == bridge.ReasonOptedOut && errors.As(err, &be):
			skipped = append(skipped, fieldError{Field: fmt.Sprintf("to[%d]", i), Reason: string(bridge.ReasonOptedOut),
				Message: clip(be.Msg, maxErrorText)})
		default:
			// Any other refusal: submit reports them all, numbered as
			// the client wrote them.
			s.submit(w, r, &bridge.Submission{Account: acct, Channel: bridge.ChannelHTTP, Text: text}, to, nil)
			return
		}
	}
	if len(send) == 0 {
		send, skipped = to, nil
	}
	for range skipped {
		s.metrics.Refused(bridge.ChannelHTTP, bridge.ReasonOptedOut)
	}
	sub := &bridge.Submission{Account: acct, Channel: bridge.ChannelHTTP, Text: text}
	if !s.resolve(w, r, sub, send) {
		return
	}
	phones := make([]string, len(sub.Recipients))
	for i, rc := range sub.Recipients {
		phones[i] = rc.To
	}
	if window := acct.Alerts.RepeatWindow; window > 0 {
		key := repeatKey(acct.Name, source, phones, n)
		if !s.repeats.claim(key, time.Now(), window) {
			writeJSON(w, http.StatusOK, alertDropped{Dropped: "repeat",
				Message: "the same notification was sent to the same phones less than accounts.alerts.repeat_window ago"})
			return
		}
		// Unless it is accepted below, a retry must not be taken for
		// a repeat.
		sent := false
		defer func() {
			if !sent {
				s.repeats.release(key)
			}
		}()
		w = &acceptWatch{ResponseWriter: w, accepted: &sent}
	}
	refs, err := s.bridge.PageAlert(r.Context(), bridge.AlertPage{Account: acct, Source: source, Labels: n.GroupLabels()}, phones)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if refs == nil {
		s.acceptOne(w, r, sub, skipped)
		return
	}
	// One message per reference: on-call phones paged alike share one.
	byRef := map[int][]bridge.Recipient{}
	for _, rc := range sub.Recipients {
		byRef[refs[rc.To]] = append(byRef[refs[rc.To]], rc)
	}
	answer := alertAnswer{Messages: []messageView{}, Skipped: skipped}
	for _, ref := range slices.Sorted(maps.Keys(byRef)) {
		one := *sub
		format.Ref = ref
		one.Recipients, one.Text = byRef[ref], n.Text(format)
		m, ok := s.accept(w, r, &one)
		if !ok {
			return
		}
		answer.Messages = append(answer.Messages, view(m))
	}
	writeJSON(w, http.StatusAccepted, answer)
}

// alertDropped is the answer to a notification the account does not
// send: 200, so that the sender does not retry it.
type alertDropped struct {
	Dropped string `json:"dropped"` // "resolved" or "repeat"
	Message string `json:"message"`
}

// repeatKey identifies a notification for repeat suppression: who sent
// it through which hook, to which phones, saying what.
func repeatKey(account, source string, phones []string, n *alerts.Notification) string {
	sorted := slices.Sorted(slices.Values(phones))
	return account + "\x00" + source + "\x00" + strings.Join(sorted, ",") + "\x00" + n.Fingerprint()
}

// acceptWatch notes whether the answer written is 202 Accepted.
type acceptWatch struct {
	http.ResponseWriter
	accepted *bool
}

func (a *acceptWatch) WriteHeader(code int) {
	*a.accepted = code == http.StatusAccepted
	a.ResponseWriter.WriteHeader(code)
}

// alertAnswer is the answer to an alert whose phones got messages of
// their own (one per reference).
type alertAnswer struct {
	Messages []messageView `json:"messages"`
	Skipped  []fieldError  `json:"skipped,omitempty"`
}
