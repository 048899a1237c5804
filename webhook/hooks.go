package webhook

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/webhook/alerts"
)

func (s *Server) alertmanager(w http.ResponseWriter, r *http.Request) {
	s.alert(w, r, alerts.Alertmanager)
}

func (s *Server) grafana(w http.ResponseWriter, r *http.Request) {
	s.alert(w, r, alerts.Grafana)
}

// alert turns one alerting notification into one SMS to the numbers in
// ?to= (comma-separated or repeated) or the account's on-call numbers.
func (s *Server) alert(w http.ResponseWriter, r *http.Request, format func([]byte) (string, error)) {
	acct := account(r)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.badJSON(w, err)
		return
	}
	text, err := format(body)
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
	s.submit(w, r, &bridge.Submission{Account: acct, Channel: bridge.ChannelHTTP, Text: text}, send, skipped)
}
