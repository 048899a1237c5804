package bridge_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/smsbridge/smsbridge/bridge"
)

// submission returns a valid one-recipient submission of w's ops account.
func (w *twoWay) submission(t *testing.T, ch bridge.Channel) *bridge.Submission {
	t.Helper()
	acct, err := w.b.Account("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.b.Resolve(acct, "0501234567")
	if err != nil {
		t.Fatal(err)
	}
	return &bridge.Submission{Account: acct, Channel: ch, EnvelopeFrom: "alice@example.com", Text: "hello",
		Recipients: []bridge.Recipient{r}}
}

func params(n int, value string) map[string]string {
	p := map[string]string{}
	for i := range n {
		p["p"+strings.Repeat("x", i)] = value
	}
	return p
}

// Sizes, counts and control characters a submission may not carry are
// refused naming the field (the X-SMS-* header over SMTP); at the caps it
// is accepted.
func TestSubmitContentCaps(t *testing.T) {
	w := newTwoWay(t, "")
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name   string
		edit   func(s *bridge.Submission)
		field  string // "" if accepted
		header string // named in the SMTP message
	}{
		{"caps reached", func(s *bridge.Submission) {
			s.Template, s.Params = long(bridge.MaxTemplateBytes), params(bridge.MaxParams, long(bridge.MaxParamValue))
			s.Params[long(bridge.MaxParamName)] = "v"
			delete(s.Params, "p")
		}, "", ""},
		{"sender too long", func(s *bridge.Submission) { s.Sender = long(bridge.MaxSenderBytes + 1) }, "sender", "X-SMS-Sender"},
		{"template too long", func(s *bridge.Submission) { s.Template = long(bridge.MaxTemplateBytes + 1) }, "template", "X-SMS-Template"},
		{"too many params", func(s *bridge.Submission) { s.Template, s.Params = "t", params(bridge.MaxParams+1, "v") }, "params", "X-SMS-Param-<name>"},
		{"param name too long", func(s *bridge.Submission) {
			s.Template, s.Params = "t", map[string]string{long(bridge.MaxParamName + 1): "v"}
		}, "params", "X-SMS-Param-<name>"},
		{"param value too long", func(s *bridge.Submission) {
			s.Template, s.Params = "t", map[string]string{"code": long(bridge.MaxParamValue + 1)}
		}, "params.code", "X-SMS-Param-code"},
		{"empty param name", func(s *bridge.Submission) { s.Template, s.Params = "t", map[string]string{"": "v"} }, "params", ""},
		{"NUL in sender", func(s *bridge.Submission) { s.Sender = "Ops\x00" }, "sender", "X-SMS-Sender"},
		{"escape in template", func(s *bridge.Submission) { s.Template = "t\x1b[2J" }, "template", "X-SMS-Template"},
		{"C1 in param value", func(s *bridge.Submission) { s.Template, s.Params = "t", map[string]string{"code": "12\u008534"} }, "params.code", ""},
		{"newline in param value", func(s *bridge.Submission) { s.Template, s.Params = "t", map[string]string{"code": "12\n34"} }, "params.code", ""},
		{"DEL in param name", func(s *bridge.Submission) { s.Template, s.Params = "t", map[string]string{"co\x7fde": "1"} }, "params", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, ch := range []bridge.Channel{bridge.ChannelHTTP, bridge.ChannelSMTP} {
				s := w.submission(t, ch)
				tt.edit(s)
				_, err := w.b.Submit(t.Context(), s)
				if tt.field == "" {
					if err != nil {
						t.Fatalf("%s: %v", ch, err)
					}
					continue
				}
				var be *bridge.Error
				if !errors.As(err, &be) || be.Reason != bridge.ReasonInvalid || be.Field != tt.field || be.Temp {
					t.Fatalf("%s: err = %#v, want a permanent %q error on %q", ch, err, bridge.ReasonInvalid, tt.field)
				}
				if ch == bridge.ChannelSMTP && tt.header != "" && !strings.HasPrefix(be.Msg, tt.header+":") {
					t.Errorf("SMTP message %q does not name %s", be.Msg, tt.header)
				}
				if ch == bridge.ChannelHTTP && !strings.HasPrefix(be.Msg, tt.field+":") {
					t.Errorf("HTTP message %q does not name %s", be.Msg, tt.field)
				}
			}
		})
	}
}

// Control characters in the text are stripped before the message is
// stored, so the provider never gets them; a text of nothing else is empty.
func TestSubmitStripsControlCharacters(t *testing.T) {
	w := newTwoWay(t, "")
	s := w.submission(t, bridge.ChannelHTTP)
	s.Text = "a\x00b\x1b[31mc\u0085d\x7fe\tf\r\ng\rh\u009bi\x07"
	m, err := w.b.Submit(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	const want = "ab[31mcde f\ng\nhi"
	if m.Text != want {
		t.Errorf("stored text %q, want %q", m.Text, want)
	}
	w.drain(t)
	calls := w.prov.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d provider calls", len(calls))
	}
	if calls[0].Text != want {
		t.Errorf("provider got %q, want %q", calls[0].Text, want)
	}
	for _, r := range calls[0].Text {
		if r != '\n' && unicode.IsControl(r) {
			t.Errorf("provider got control character %U", r)
		}
	}

	s = w.submission(t, bridge.ChannelSMTP)
	s.Text = "\x00\x1b\u0085"
	if _, err := w.b.Submit(t.Context(), s); bridge.ReasonOf(err) != bridge.ReasonEmpty {
		t.Errorf("text of control characters only: err %v, want %q", err, bridge.ReasonEmpty)
	}
}

// A send may be scheduled up to the horizon ahead, not further.
func TestSubmitScheduleHorizon(t *testing.T) {
	w := newTwoWay(t, "")
	s := w.submission(t, bridge.ChannelHTTP)
	s.SendAt = w.now.Add(bridge.DefaultScheduleHorizon)
	if _, err := w.b.Submit(t.Context(), s); err != nil {
		t.Fatalf("at the horizon: %v", err)
	}
	for _, ch := range []bridge.Channel{bridge.ChannelHTTP, bridge.ChannelSMTP} {
		s = w.submission(t, ch)
		s.SendAt = w.now.Add(bridge.DefaultScheduleHorizon + time.Second)
		_, err := w.b.Submit(t.Context(), s)
		var be *bridge.Error
		if !errors.As(err, &be) || be.Field != "send_at" || be.Reason != bridge.ReasonInvalid || !strings.Contains(be.Msg, "365 days") {
			t.Fatalf("%s: err = %#v, want %q on send_at naming the horizon", ch, err, bridge.ReasonInvalid)
		}
	}
}

// The header block kept for bounces is capped at a line end.
func TestSubmitCapsStoredHeaders(t *testing.T) {
	w := newTwoWay(t, "")
	s := w.submission(t, bridge.ChannelSMTP)
	s.Headers = strings.Repeat("X-Filler: "+strings.Repeat("f", 88)+"\r\n", 200) // 20,000 bytes
	m, err := w.b.Submit(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.store.Message(t.Context(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Headers) > bridge.MaxStoredHeaders || !strings.HasSuffix(got.Headers, "\r\n") || len(got.Headers) < bridge.MaxStoredHeaders-100 {
		t.Errorf("stored %d bytes of header ending %q", len(got.Headers), got.Headers[max(0, len(got.Headers)-4):])
	}
}

func FuzzCleanText(f *testing.F) {
	f.Add("a\x00b\r\nc\rd\te\u0085")
	f.Add("plain")
	f.Fuzz(func(t *testing.T, s string) {
		got := bridge.CleanText(s)
		for _, r := range got {
			if r != '\n' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f)) {
				t.Fatalf("CleanText(%q) = %q keeps %U", s, got, r)
			}
		}
		if len(got) > 3*len(s) {
			t.Fatalf("CleanText(%q) = %q grew", s, got)
		}
		if bridge.CleanText(got) != got {
			t.Fatalf("CleanText not idempotent on %q", s)
		}
	})
}
