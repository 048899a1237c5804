package loadtest

import (
	"io"
	"net/mail"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Each message's text starts with its reference, and Accepts names every
// acknowledged one, so a fake provider can tell which message it got.
func TestRunRefsMatchAccepts(t *testing.T) {
	srv := startServer(t, nil)
	res, err := Run(t.Context(), Options{Addr: srv.addr, Sessions: 2, Messages: 10})
	if err != nil || res.Sent != 10 {
		t.Fatalf("sent %d, err %v; want 10, nil", res.Sent, err)
	}
	accepted := map[string]bool{}
	for _, a := range res.Accepts {
		if a.At.IsZero() {
			t.Errorf("accept %q has no time", a.Ref)
		}
		accepted[a.Ref] = true
	}
	if len(accepted) != 10 {
		t.Fatalf("%d distinct refs accepted; want 10", len(accepted))
	}
	for _, m := range srv.messages() {
		msg, err := mail.ReadMessage(strings.NewReader(m.data))
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(msg.Body)
		ref, ok := RefOf(string(text))
		if !ok || !accepted[ref] {
			t.Errorf("text starting %q: ref %q, %v; want one of the accepted", text[:min(len(text), 40)], ref, ok)
		}
	}
}

func TestRefOf(t *testing.T) {
	for text, want := range map[string]string{
		"ref ABC-1\r\nyour appointment": "ABC-1",
		"ref ABC-12 your appointment":   "ABC-12", // lines joined
		"ref ABC-3":                     "ABC-3",
		"ref \r\n":                      "",
		"your appointment":              "",
	} {
		if got, ok := RefOf(text); got != want || ok != (want != "") {
			t.Errorf("RefOf(%q) = %q, %v; want %q", text, got, ok, want)
		}
	}
}

// Open loop: messages go out on their timetable, and a server that
// stalls is charged for the messages it kept waiting. The first DATA is
// held 40 ms; with one session, messages due 1-9 ms after the start wait
// behind it, so the median latency, measured from the due time, is at
// least 40 - 9 ms (measured from sending, it would be well under 1 ms).
func TestRunOpenLoopMeasuresFromTheTimetable(t *testing.T) {
	const stall = 40 * time.Millisecond
	var n atomic.Int64
	srv := startServerWith(t, func(r io.Reader) error {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		if n.Add(1) == 1 {
			<-time.After(stall) // the stimulus: a server that stalls
		}
		return nil
	})
	res, err := Run(t.Context(), Options{Addr: srv.addr, Sessions: 1, Messages: 10, Rate: 1000})
	if err != nil || res.Sent != 10 {
		t.Fatalf("sent %d, err %v; want 10, nil", res.Sent, err)
	}
	if res.P50 < stall-9*time.Millisecond {
		t.Errorf("p50 %v; want at least %v (latency from the due time)", res.P50, stall-9*time.Millisecond)
	}
}

// The timetable bounds a run for a duration: at 200 msgs/s for 100 ms,
// messages 0-19 are due inside it, and no more are sent however fast the
// server answers.
func TestRunOpenLoopKeepsTheRate(t *testing.T) {
	srv := startServer(t, nil)
	res, err := Run(t.Context(), Options{Addr: srv.addr, Sessions: 4, Duration: 100 * time.Millisecond, Rate: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 20 || res.Failed != 0 {
		t.Errorf("sent %d, failed %d; want 20, 0", res.Sent, res.Failed)
	}
	if res.Elapsed < 95*time.Millisecond {
		t.Errorf("elapsed %v; want the 20 spread over at least 95 ms", res.Elapsed)
	}
}
