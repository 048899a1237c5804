package loadtest

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/mail"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestRunAgainstDiscardServer(t *testing.T) {
	addr, stop, err := DiscardServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })

	res, err := Run(t.Context(), Options{Addr: addr, Sessions: 4, Messages: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 200 || res.Failed != 0 {
		t.Fatalf("sent %d, failed %d (%v); want 200, 0", res.Sent, res.Failed, res.Errors)
	}
	if res.Rate <= 0 || res.Elapsed <= 0 {
		t.Errorf("rate %v over %v; want both > 0", res.Rate, res.Elapsed)
	}
	if !(0 < res.P50 && res.P50 <= res.P90 && res.P90 <= res.P99 && res.P99 <= res.Max) {
		t.Errorf("percentiles out of order: p50 %v p90 %v p99 %v max %v", res.P50, res.P90, res.P99, res.Max)
	}
	if len(res.IDs) != 200 {
		t.Errorf("got %d ids; want 200", len(res.IDs))
	} else if res.IDs[0] != "2.0.0 OK: queued" {
		t.Errorf("id %q; want the DATA reply text %q", res.IDs[0], "2.0.0 OK: queued")
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestRunCountsRefusals(t *testing.T) {
	// Every third RCPT, across all sessions, is refused.
	srv := startServer(t, func(n int) error {
		if n%3 == 0 {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})

	res, err := Run(t.Context(), Options{Addr: srv.addr, Sessions: 4, Messages: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 134 || res.Failed != 66 {
		t.Errorf("sent %d, failed %d; want 134, 66", res.Sent, res.Failed)
	}
	if got := res.Errors["RCPT: 550 5.1.1 no such user"]; got != 66 || len(res.Errors) != 1 {
		t.Errorf("errors %v; want only the RCPT refusal, 66 times", res.Errors)
	}
	if got := len(srv.messages()); got != 134 {
		t.Errorf("server received %d messages; want 134", got)
	}
	// A refusal is not a reason to hang up.
	if got := srv.conns.Load(); got != 4 {
		t.Errorf("%d connections; want 4, one per session", got)
	}
}

func TestRunReconnectsAfter421(t *testing.T) {
	// 421 means the server is closing the session; the client must not
	// try to go on with it.
	srv := startServer(t, func(n int) error {
		if n%5 == 0 {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "closing"}
		}
		return nil
	})

	res, err := Run(t.Context(), Options{Addr: srv.addr, Sessions: 1, Messages: 20})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 16 || res.Failed != 4 {
		t.Errorf("sent %d, failed %d; want 16, 4", res.Sent, res.Failed)
	}
	// Messages 5, 10, 15 and 20 are refused; after the last there is
	// nothing left to reconnect for.
	if got := srv.conns.Load(); got != 4 {
		t.Errorf("%d connections; want 4 (one, then one after each 421 but the last)", got)
	}
}

func TestRunReconnectOption(t *testing.T) {
	srv := startServer(t, nil)
	res, err := Run(t.Context(), Options{Addr: srv.addr, Sessions: 2, Messages: 10, Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 10 || res.Failed != 0 {
		t.Errorf("sent %d, failed %d; want 10, 0", res.Sent, res.Failed)
	}
	if got := srv.conns.Load(); got != 10 {
		t.Errorf("%d connections; want 10, one per message", got)
	}
}

func TestRunSendsWellFormedMessages(t *testing.T) {
	srv := startServer(t, nil)
	to := func(i int) string { return "+972501234567@example.test" }
	res, err := Run(t.Context(), Options{Addr: srv.addr, Sessions: 1, Messages: 3, Size: 4096, From: "crm@example.test", To: to})
	if err != nil || res.Sent != 3 {
		t.Fatalf("sent %d, err %v; want 3, nil", res.Sent, err)
	}
	ids := map[string]bool{}
	for _, m := range srv.messages() {
		if m.from != "crm@example.test" || m.to != "+972501234567@example.test" {
			t.Errorf("envelope %s -> %s", m.from, m.to)
		}
		if n := len(m.data); n < 4000 || n > 4200 {
			t.Errorf("message is %d bytes; want about 4096", n)
		}
		msg, err := mail.ReadMessage(strings.NewReader(m.data))
		if err != nil {
			t.Fatalf("unparsable message: %v", err)
		}
		h := msg.Header
		if h.Get("From") != "<crm@example.test>" || h.Get("To") != "<+972501234567@example.test>" || h.Get("MIME-Version") != "1.0" {
			t.Errorf("headers %v", h)
		}
		if mt, params, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "text/plain" || params["charset"] != "utf-8" {
			t.Errorf("Content-Type %q", h.Get("Content-Type"))
		}
		if _, err := h.Date(); err != nil {
			t.Errorf("Date: %v", err)
		}
		ids[h.Get("Message-ID")] = true
	}
	if len(ids) != 3 {
		t.Errorf("Message-IDs %v; want 3 distinct", ids)
	}
}

func TestRunForDuration(t *testing.T) {
	addr, stop, err := DiscardServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })

	const d = 300 * time.Millisecond
	res, err := Run(t.Context(), Options{Addr: addr, Sessions: 2, Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Failed != 0 {
		t.Errorf("sent %d, failed %d; want some, 0", res.Sent, res.Failed)
	}
	if res.Elapsed < d || res.Elapsed > d+time.Second {
		t.Errorf("elapsed %v; want just over %v", res.Elapsed, d)
	}
}

func TestRunCountsConnectFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	res, err := Run(t.Context(), Options{Addr: addr, Sessions: 1, Messages: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 0 || res.Failed != 3 {
		t.Errorf("sent %d, failed %d; want 0, 3", res.Sent, res.Failed)
	}
	n := 0
	for k, v := range res.Errors {
		if strings.HasPrefix(k, "connect: ") {
			n += v
		}
	}
	if n != 3 {
		t.Errorf("errors %v; want 3 connect failures", res.Errors)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	before := runtime.NumGoroutine()

	// A server that takes DATA and never answers: only the cancellation
	// can end the run.
	inData := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := startServerWith(t, func(r io.Reader) error {
		select {
		case inData <- struct{}{}:
		default:
		}
		<-release
		_, err := io.Copy(io.Discard, r)
		return err
	})

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	var res Result
	var runErr error
	go func() {
		defer close(done)
		res, runErr = Run(ctx, Options{Addr: srv.addr, Sessions: 3, Duration: time.Hour})
	}()
	<-inData
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of cancel")
	}
	if !errors.Is(runErr, context.Canceled) {
		t.Errorf("err %v; want context.Canceled", runErr)
	}
	if res.Sent != 0 || res.Failed != 0 {
		t.Errorf("sent %d, failed %d; cut-off messages must count as neither", res.Sent, res.Failed)
	}

	close(release)
	srv.close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOptionsValidation(t *testing.T) {
	for name, o := range map[string]Options{
		"no addr":           {},
		"negative sessions": {Addr: "127.0.0.1:25", Sessions: -1},
		"negative messages": {Addr: "127.0.0.1:25", Messages: -1},
	} {
		if _, err := Run(t.Context(), o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ten []time.Duration
	for i := 1; i <= 10; i++ {
		ten = append(ten, time.Duration(i))
	}
	for _, c := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{[]time.Duration{7}, 0.99, 7},
		{ten, 0, 1},
		{ten, 0.5, 5},
		{ten, 0.9, 9},
		{ten, 0.99, 10},
		{ten, 1, 10},
	} {
		if got := percentile(c.in, c.p); got != c.want {
			t.Errorf("percentile(%v, %v) = %v; want %v", c.in, c.p, got, c.want)
		}
	}
}

// testServer is a go-smtp server that records what it receives.
type testServer struct {
	addr  string
	close func()
	conns atomic.Int64
	rcpts atomic.Int64

	mu   sync.Mutex
	msgs []received
}

type received struct{ from, to, data string }

func (s *testServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// startServer starts a recording server; rcpt, if not nil, decides the
// reply to the n-th RCPT (counting from 1) across all sessions.
func startServer(t *testing.T, rcpt func(n int) error) *testServer {
	return start(t, rcpt, nil)
}

// startServerWith starts a server whose DATA is handled by data.
func startServerWith(t *testing.T, data func(io.Reader) error) *testServer {
	return start(t, nil, data)
}

func start(t *testing.T, rcpt func(int) error, data func(io.Reader) error) *testServer {
	t.Helper()
	ts := &testServer{}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		ts.conns.Add(1)
		return &testSession{srv: ts, rcpt: rcpt, data: data}, nil
	}))
	s.Domain = "localhost"
	s.ErrorLog = nopLogger{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.Serve(l)
	}()
	ts.addr = l.Addr().String()
	ts.close = sync.OnceFunc(func() {
		s.Close()
		<-served
	})
	t.Cleanup(ts.close)
	return ts
}

type testSession struct {
	srv      *testServer
	rcpt     func(int) error
	data     func(io.Reader) error
	from, to string
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	n := int(s.srv.rcpts.Add(1))
	if s.rcpt != nil {
		if err := s.rcpt(n); err != nil {
			return err
		}
	}
	s.to = to
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	if s.data != nil {
		return s.data(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, received{s.from, s.to, string(b)})
	s.srv.mu.Unlock()
	return nil
}

func (s *testSession) Reset()        { s.from, s.to = "", "" }
func (s *testSession) Logout() error { return nil }

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}
