package webhook

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
)

func TestDecodeSendRequest(t *testing.T) {
	for body, want := range map[string]int{
		`{"to": "0501234567", "text": "hi"}`:                       1,
		`{"to": ["0501234567", "+972 52 765 4321"]}`:               2,
		`{"to": [], "text": "x"}`:                                  0,
		`{"to": null, "text": "x"}`:                                0,
		`{"to": "1", "send_at": "2030-01-02T09:00:00+02:00"}`:      1,
		`{"TO": ["1", "2", "3"], "Text": "case as encoding/json"}`: 3,
		` {"to": ["1"]} `:                                          1,
	} {
		req, err := decodeSendRequest(strings.NewReader(body), 3)
		if err != nil || len(req.To) != want {
			t.Errorf("%s: to = %v, %v; want %d", body, req.To, err, want)
		}
	}
	for _, body := range []string{``, `{`, `{"to": 5}`, `{"to": [1]}`, `{"to": [["1"]]}`, `{"to": {"a": "1"}}`,
		`{"txt": "x"}`, `{"to": "1"} {"to": "2"}`, `{"send_at": "tomorrow"}`, `[]`, `{"to": ["1"`, `{"to": "1"} x`} {
		if _, err := decodeSendRequest(strings.NewReader(body), 3); err == nil {
			t.Errorf("%q: no error", body)
		}
	}
}

// countingReader counts what is read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestDecodeSendRequestToCap: a to list over the cap is refused as too
// many recipients, naming to, after reading little more than the entries
// allowed: a huge list is neither read whole nor parsed.
func TestDecodeSendRequestToCap(t *testing.T) {
	if _, err := decodeSendRequest(strings.NewReader(`{"to": ["1", "2", "3"]}`), 3); err != nil {
		t.Fatalf("3 of 3: %v", err)
	}
	huge := `{"text": "x", "to": [` + strings.Repeat(`"+972501234567", `, 700_000) + `"1"]}` // ~12 MB
	r := &countingReader{r: strings.NewReader(huge)}
	_, err := decodeSendRequest(r, 100)
	var be *bridge.Error
	if !errors.As(err, &be) || be.Reason != bridge.ReasonTooManyRecipients || be.Field != "to" {
		t.Fatalf("err = %v; want too_many_recipients on to", err)
	}
	if r.n > 64<<10 {
		t.Errorf("read %d bytes of a %d-byte body to refuse it at entry 101", r.n, len(huge))
	}
	t.Logf("refused after reading %d of %d bytes", r.n, len(huge))
}

func TestSendRequestDigest(t *testing.T) {
	decode := func(body string) string {
		t.Helper()
		req, err := decodeSendRequest(strings.NewReader(body), 0)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return req.digest()
	}
	a := decode(`{"to": ["1", "2"], "text": "hi", "params": {"a": "1", "b": "2"}, "send_at": "2030-01-02T09:00:00+02:00"}`)
	same := decode(`{"send_at": "2030-01-02T07:00:00Z", "params": {"b": "2", "a": "1"},"text":"hi","to":["1","2"]}`)
	if a != same {
		t.Errorf("the same request spelt otherwise has another digest")
	}
	for _, other := range []string{
		`{"to": ["1", "2"], "text": "hi!", "params": {"a": "1", "b": "2"}, "send_at": "2030-01-02T09:00:00+02:00"}`,
		`{"to": ["2", "1"], "text": "hi", "params": {"a": "1", "b": "2"}, "send_at": "2030-01-02T09:00:00+02:00"}`,
		`{"to": ["1", "2"], "text": "hi", "params": {"a": "1", "b": "3"}, "send_at": "2030-01-02T09:00:00+02:00"}`,
		`{"to": ["1", "2"], "text": "hi", "params": {"a": "1", "b": "2"}}`,
	} {
		if decode(other) == a {
			t.Errorf("%s: same digest as another request", other)
		}
	}
}

func FuzzDecodeSendRequest(f *testing.F) {
	for _, s := range []string{`{"to": "0501234567", "text": "hi"}`, `{"to": ["1","2"], "params": {"a": "b"}}`,
		`{"send_at": "2030-01-02T09:00:00Z"}`, `{`, `{"to": ["1","2","3","4"]}`, `{"TO": null}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decodeSendRequest(strings.NewReader(body), 3)
		if err != nil {
			return
		}
		if len(req.To) > 3 {
			t.Fatalf("%d destinations accepted with a cap of 3", len(req.To))
		}
		for _, to := range req.To {
			if !utf8.ValidString(to) {
				t.Fatalf("invalid UTF-8 destination %q accepted", to)
			}
		}
	})
}

func TestErrorBodyBounded(t *testing.T) {
	huge := strings.Repeat("é", 10_000)
	e := errorBody{Error: huge, Reason: "invalid", Field: huge,
		Errors: []fieldError{{Field: huge, Reason: "bad_number", Message: huge}}}.bounded()
	if len(e.Error) > maxErrorText || len(e.Field) > maxQuoted || len(e.Errors[0].Field) > maxQuoted ||
		len(e.Errors[0].Message) > maxErrorText {
		t.Errorf("bounded: error %d, field %d, errors[0] %d/%d bytes", len(e.Error), len(e.Field), len(e.Errors[0].Field), len(e.Errors[0].Message))
	}
	if !utf8.ValidString(e.Error) || !utf8.ValidString(e.Errors[0].Field) {
		t.Error("cut inside a character")
	}
}

func TestParseSendAt(t *testing.T) {
	want := time.Date(2030, 1, 2, 7, 0, 0, 0, time.UTC)
	for raw, ok := range map[string]bool{
		``: true, `null`: true, `"2030-01-02T09:00:00+02:00"`: true, `"2030-01-02T07:00:00Z"`: true,
		`"tomorrow"`: false, `"2030-01-02 09:00"`: false, `5`: false, `{"at": 1}`: false, `""`: false,
	} {
		got, err := parseSendAt(json.RawMessage(raw))
		switch {
		case ok && err != nil:
			t.Errorf("%s: %v", raw, err)
		case ok && (raw == "" || raw == "null") && got != nil:
			t.Errorf("%s: %v, want none", raw, got)
		case ok && raw != "" && raw != "null" && (got == nil || !got.Equal(want)):
			t.Errorf("%s: %v, want %v", raw, got, want)
		case !ok:
			var be *bridge.Error
			if err == nil || !asBridgeError(err, &be) || be.Field != "send_at" || be.Reason != bridge.ReasonInvalid {
				t.Errorf("%s: err = %v, want %q on send_at", raw, err, bridge.ReasonInvalid)
			}
		}
	}
}

func asBridgeError(err error, be **bridge.Error) bool {
	e, ok := err.(*bridge.Error)
	*be = e
	return ok
}

func FuzzParseSendAt(f *testing.F) {
	for _, s := range []string{`"2030-01-02T09:00:00+02:00"`, `null`, `"x"`, `5`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, err := parseSendAt(json.RawMessage(raw))
		if err == nil {
			return
		}
		e, ok := err.(*bridge.Error)
		if !ok || e.Field != "send_at" || len(e.Msg) > 200 {
			t.Fatalf("err = %v: want a short error on send_at", err)
		}
	})
}
