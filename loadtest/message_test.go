package loadtest

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func TestBodyIsExactSize(t *testing.T) {
	for n := 0; n <= 600; n++ {
		checkBody(t, n)
	}
}

func FuzzBody(f *testing.F) {
	for _, n := range []uint16{0, 1, 3, 74, 75, 76, 77, 1024, 65535} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n uint16) { checkBody(t, int(n)) })
}

// checkBody asserts body(n) is max(n, 3) bytes of lines a mail system
// passes through untouched: printable ASCII, CRLF-terminated, at most 78
// characters, no leading or trailing white space.
func checkBody(t *testing.T, n int) {
	t.Helper()
	b := body(n)
	if want := max(n, 3); len(b) != want {
		t.Fatalf("body(%d) is %d bytes; want %d", n, len(b), want)
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		t.Fatalf("body(%d) does not end in CRLF", n)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n") {
		if line == "" || len(line) > 78 || strings.TrimSpace(line) != line {
			t.Fatalf("body(%d) has line %q", n, line)
		}
		for _, c := range []byte(line) {
			if c < ' ' || c > '~' {
				t.Fatalf("body(%d) has byte %#x in line %q", n, c, line)
			}
		}
	}
}

func TestHeaderParses(t *testing.T) {
	now := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	msg, err := mail.ReadMessage(strings.NewReader(header("a@b.test", "+972501234567@sms.localhost", 42, "run", now) + "hi\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	for k, want := range map[string]string{
		"From":         "<a@b.test>",
		"To":           "<+972501234567@sms.localhost>",
		"Subject":      "load test message 42",
		"Message-ID":   "<run.42@loadtest.localhost>",
		"Content-Type": "text/plain; charset=utf-8",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q; want %q", k, got, want)
		}
	}
	if d, err := h.Date(); err != nil || !d.Equal(now) {
		t.Errorf("Date %v, %v; want %v", d, err, now)
	}
}
