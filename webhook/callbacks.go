package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/smsbridge/smsbridge/bridge"
)

// maxDedupeKey caps a provider id used as a dedupe key; a longer one is
// replaced by its digest, which dedupes just as well.
const maxDedupeKey = 200

// maxDetail caps the provider's explanation kept with a delivery report.
const maxDetail = 500

// callback is a provider's callback configuration, ready to check
// requests against.
type callback struct {
	secret  string // scrubbed from the raw text kept in the log
	digest  [sha256.Size]byte
	inbound InboundFields
	status  StatusFields
}

// SetCallbacks replaces the providers' callback settings (on a reload);
// requests already being handled finish with the old ones.
func (s *Server) SetCallbacks(cfg map[string]Callback) {
	cb := callbacks(cfg)
	s.callbacks.Store(&cb)
}

// callbacks keeps the providers that have a secret: a callback endpoint
// without one would take SMS from anybody.
func callbacks(cfg map[string]Callback) map[string]callback {
	out := make(map[string]callback, len(cfg))
	for name, c := range cfg {
		if c.Secret == "" {
			continue
		}
		out[name] = callback{secret: c.Secret, digest: sha256.Sum256([]byte(c.Secret)), inbound: c.InboundFields, status: c.StatusFields}
	}
	return out
}

// callbackFor finds and authenticates the provider a callback is for, or
// answers 404 (not configured) or 401 (wrong secret) and returns false.
func (s *Server) callbackFor(w http.ResponseWriter, r *http.Request) (string, callback, bool) {
	name := mux.Vars(r)["name"]
	cb, ok := (*s.callbacks.Load())[name]
	if !ok {
		// The same answer as for any unknown path: a scanner learns
		// nothing about which providers are configured.
		writeError(w, http.StatusNotFound, "not_found", "", "no such endpoint")
		return "", callback{}, false
	}
	given := r.URL.Query().Get(secretParam)
	// Comparing digests keeps the comparison constant-time even in the
	// secret's length.
	sum := sha256.Sum256([]byte(given))
	if given == "" || subtle.ConstantTimeCompare(sum[:], cb.digest[:]) != 1 {
		s.log.WarnContext(r.Context(), "provider callback refused: missing or wrong secret",
			"provider", name, "path", r.URL.Path, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "bad_secret", secretParam, "missing or wrong ?secret=")
		return "", callback{}, false
	}
	return name, cb, true
}

// readCallback reads the request, or answers why it cannot and returns
// false.
func (s *Server) readCallback(w http.ResponseWriter, r *http.Request, name string, cb callback) (*callbackRequest, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "", fmt.Sprintf("request body over %d bytes", tooBig.Limit))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, string(bridge.ReasonInvalid), "", "unreadable request body")
		return nil, false
	}
	req, err := readCallback(r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.URL.Query(), body, cb.secret)
	if err != nil {
		s.badCallback(w, r, name, err)
		return nil, false
	}
	return req, true
}

// badCallback answers a request that cannot be read. It is logged: a
// provider that keeps sending what we cannot read needs configuration
// (Callback.InboundFields), and only the log tells the operator so.
func (s *Server) badCallback(w http.ResponseWriter, r *http.Request, provider string, err error) {
	s.log.WarnContext(r.Context(), "provider callback refused", "provider", provider, "path", r.URL.Path, "error", err)
	s.refuse(w, r, err)
}

// refuse answers a *badRequest with its own status, anything else with
// the usual mapping.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var bad *badRequest
	if !errors.As(err, &bad) {
		s.answerError(w, r, err)
		return
	}
	writeError(w, bad.status, bad.reason, bad.field, bad.msg)
}

// inboundAnswer is the answer to an inbound callback: our id for the SMS,
// or for a duplicate (a success too, so that the provider stops retrying)
// none, since nothing new was stored.
type inboundAnswer struct {
	ID        string `json:"id,omitempty"`
	Duplicate bool   `json:"duplicate"`
}

// providerInbound takes an inbound SMS: POST or GET
// /v1/providers/{name}/inbound?secret=...
func (s *Server) providerInbound(w http.ResponseWriter, r *http.Request) {
	name, cb, ok := s.callbackFor(w, r)
	if !ok {
		return
	}
	req, ok := s.readCallback(w, r, name, cb)
	if !ok {
		return
	}
	sms, err := parseInbound(req.fields, cb.inbound)
	if err != nil {
		s.badCallback(w, r, name, err)
		return
	}
	in := &bridge.Inbound{
		Provider:  name,
		DedupeKey: dedupeKey(sms.ID, req.digest),
		From:      sms.From,
		To:        sms.To,
		Text:      sms.Text,
		Received:  sms.Received,
		Raw:       req.raw,
	}
	dup, err := s.bridge.Receive(r.Context(), in)
	if err != nil {
		s.answerError(w, r, err)
		return
	}
	if dup {
		// The bridge logs what it records; a provider's retry it drops.
		s.log.InfoContext(r.Context(), "duplicate inbound SMS ignored", "provider", name, "dedupe_key", in.DedupeKey)
	}
	answer := inboundAnswer{Duplicate: dup}
	if !dup {
		answer.ID = in.ID
	}
	writeJSON(w, http.StatusOK, answer)
}

// dedupeKey is the provider's id for the SMS, or without one the digest
// of the request, so that a provider retrying the same request is
// recorded once.
func dedupeKey(providerID, digest string) string {
	switch {
	case providerID == "":
		return digest
	case len(providerID) > maxDedupeKey:
		sum := sha256.Sum256([]byte(providerID))
		return "sha256-id:" + hex.EncodeToString(sum[:])
	}
	return providerID
}

// statusAnswer is the answer to a delivery report: how many recipients it
// changed (0 for a report that is no news, or names nothing we sent).
type statusAnswer struct {
	Updated int `json:"updated"`
}

// providerStatus takes a delivery report: POST or GET
// /v1/providers/{name}/status?secret=...
func (s *Server) providerStatus(w http.ResponseWriter, r *http.Request) {
	name, cb, ok := s.callbackFor(w, r)
	if !ok {
		return
	}
	req, ok := s.readCallback(w, r, name, cb)
	if !ok {
		return
	}
	rep, err := parseStatus(req.fields, cb.status)
	if err != nil {
		s.badCallback(w, r, name, err)
		return
	}
	if rep.State == bridge.StateSent {
		// Accepted, queued, en route: the recipient is already sent.
		writeJSON(w, http.StatusOK, statusAnswer{})
		return
	}
	at := rep.At
	if at.IsZero() {
		at = time.Now().UTC()
	}
	n, err := s.bridge.Report(r.Context(), bridge.DeliveryReport{
		Provider:   name,
		ProviderID: rep.ID,
		To:         rep.To,
		State:      rep.State,
		Detail:     clip(rep.Detail, maxDetail),
		At:         at,
	})
	if err != nil {
		s.answerError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "delivery report", "provider", name, "provider_id", rep.ID,
		"state", rep.State, "updated", n)
	writeJSON(w, http.StatusOK, statusAnswer{Updated: n})
}

// clip cuts s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
