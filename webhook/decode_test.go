package webhook

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeSendRequest(t *testing.T) {
	for body, want := range map[string]int{
		`{"to": "0501234567", "text": "hi"}`:                  1,
		`{"to": ["0501234567", "+972 52 765 4321"]}`:          2,
		`{"to": [], "text": "x"}`:                             0,
		`{"to": "1", "send_at": "2030-01-02T09:00:00+02:00"}`: 1,
	} {
		req, err := decodeSendRequest(strings.NewReader(body))
		if err != nil || len(req.To) != want {
			t.Errorf("%s: to = %v, %v; want %d", body, req.To, err, want)
		}
	}
	for _, body := range []string{``, `{`, `{"to": 5}`, `{"to": [1]}`, `{"txt": "x"}`, `{"to": "1"} {"to": "2"}`, `{"send_at": "tomorrow"}`, `[]`} {
		if _, err := decodeSendRequest(strings.NewReader(body)); err == nil {
			t.Errorf("%q: no error", body)
		}
	}
}

func FuzzDecodeSendRequest(f *testing.F) {
	for _, s := range []string{`{"to": "0501234567", "text": "hi"}`, `{"to": ["1","2"], "params": {"a": "b"}}`, `{"send_at": "2030-01-02T09:00:00Z"}`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decodeSendRequest(strings.NewReader(body))
		if err != nil {
			return
		}
		for _, to := range req.To {
			if !utf8.ValidString(to) {
				t.Fatalf("invalid UTF-8 destination %q accepted", to)
			}
		}
	})
}
