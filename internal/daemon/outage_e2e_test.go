package daemon_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/internal/daemon"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// flaky stands in front of a provider fake: it answers 503 while down, and
// while refusing it resets every connection as soon as it is accepted,
// before reading a byte of the request. To the daemon's HTTP client that
// is the same failure as a closed port (a network error, the provider took
// nothing), but the front sees it and can count it, so a test waits for the
// daemon to have met the outage instead of sleeping through it.
type flaky struct {
	t        *testing.T
	addr     string
	down     atomic.Bool
	refusing atomic.Bool
	// flapEvery, when positive, makes the front go down and up by turns
	// every flapEvery requests (starting down), instead of following down.
	flapEvery atomic.Int64
	requests  atomic.Int64  // requests read (answered 503 or passed on)
	answered  atomic.Int64  // requests answered 503
	resets    atomic.Int64  // connections reset while refusing
	changed   chan struct{} // a counter moved (capacity 1: a wake-up, not a count)
	srv       *http.Server
}

func newFlaky(t *testing.T, target string) *flaky {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	f := &flaky{t: t, changed: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := f.requests.Add(1) - 1
		down := f.down.Load()
		if every := f.flapEvery.Load(); every > 0 {
			down = (k/every)%2 == 0
		}
		if down {
			f.answered.Add(1)
			f.notify()
			http.Error(w, `{"error": true, "error_message": "maintenance"}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
		f.notify()
	})}
	// One request per connection: a connection kept alive from before an
	// outage would let a request past the refusing listener.
	f.srv.SetKeepAlivesEnabled(false)
	go func() { _ = f.srv.Serve(resetListener{ln, f}) }()
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *flaky) notify() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond holds, re-checking it each time a counter of
// the front moves; the timeout only guards against a hang.
func (f *flaky) waitFor(timeout time.Duration, what string, cond func() bool) {
	f.t.Helper()
	hang := time.NewTimer(timeout)
	defer hang.Stop()
	for !cond() {
		select {
		case <-f.changed:
		case <-hang.C:
			f.t.Fatalf("timed out waiting for %s (503s %d, resets %d, requests %d)",
				what, f.answered.Load(), f.resets.Load(), f.requests.Load())
		}
	}
}

// resetListener resets connections while its front is refusing.
type resetListener struct {
	net.Listener
	f *flaky
}

func (l resetListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.f.refusing.Load() {
			return c, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST, as a refusal would
		}
		_ = c.Close()
		l.f.resets.Add(1)
		l.f.notify()
	}
}

// flakyConfig routes every +972 number, one per call, to a
// voip-communications provider at addr (a flaky front), with the given
// backoff.
func flakyConfig(addr, retryMin, retryMax string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[queue]
retry_min = %q
retry_max = %q
max_age = "1h"
send_timeout = "1s"
[[accounts]]
name = "a"
emails = ["*@example.com"]
sender_ids = ["972500000001"]
[[providers]]
name = "voip"
type = "voipcom"
base_url = "http://%s"
api_key = "key"
api_password = "pw"
numbers = ["972500000001"]
batch_size = 1
[[routes]]
prefix = "+972"
provider = "voip"
`, retryMin, retryMax, addr)
}

// queueEmpty waits until no recipient is queued in the store: every one is
// final, so no further provider request can be made for them.
func queueEmpty(t *testing.T, d *daemon.Daemon, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "an empty queue", func() bool {
		st, err := d.Store().Stats(t.Context())
		return err == nil && st.Queued == 0
	})
}

// sentOnce checks that the provider was asked to send to n distinct
// numbers, each exactly once.
func sentOnce(t *testing.T, fake *voipcomtest.Server, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range fake.Requests() {
		for _, to := range r.To {
			seen[to]++
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct numbers sent, want %d", len(seen), n)
	}
	for to, c := range seen {
		if c != 1 {
			t.Errorf("%s sent %d times", to, c)
		}
	}
}

// A provider down for a while, answering 503 and then refusing
// connections: nothing accepted is lost or sent twice, and sends resume
// once it is back without any recipient waiting out its own backoff.
func TestProviderOutageRecovery(t *testing.T) {
	fake := voipcomtest.NewServer(t, "key", "pw", "972500000001")
	front := newFlaky(t, fake.URL)
	// Each recipient backs off 30s from its first failure (retry_min =
	// retry_max), while the circuit probes after 1s, 2s, 4s: only the
	// probe and the retry of what waited can make recovery quicker than a
	// recipient's own backoff.
	const backoff = 30 * time.Second
	d := start(t, flakyConfig(front.addr, backoff.String(), backoff.String()))

	front.down.Store(true)
	const n = 20
	for i := range n {
		if _, err := sendMail(t, d.SMTPAddr(), "ops@example.com", []string{fmt.Sprintf("05010000%02d@sms.example.com", i)}, "Subject: x\n\nduring the outage\n"); err != nil {
			t.Fatal(err)
		}
	}
	// Answering 503: the breaker threshold (5) opens the circuit, and a
	// failed probe after it makes its cooldown grow.
	front.waitFor(20*time.Second, "the circuit to open and a probe to fail on 503", func() bool { return front.answered.Load() >= 5+1 })
	front.refusing.Store(true)
	// Refusing connections: the next probe fails without a request.
	front.waitFor(20*time.Second, "a probe to meet a refused connection", func() bool { return front.resets.Load() >= 1 })
	if got := len(fake.Requests()); got != 0 {
		t.Fatalf("%d requests reached the provider while it was down", got)
	}
	front.down.Store(false)
	front.refusing.Store(false)
	// The circuit's probe, not each recipient's backoff, bounds the wait
	// (proved under a fake clock by bridge's TestDispatchCircuitBreaker).
	// Here the bound is only an outcome: the guard is 2/3 of the backoff,
	// so a recipient left to wait out its own 30s fails the test, while a
	// slow machine does not (the next probe is due within 4s).
	eventually(t, backoff*2/3, "every SMS sent after the outage", func() bool { return len(fake.Requests()) >= n })
	queueEmpty(t, d, 10*time.Second)
	sentOnce(t, fake, n)
}

// A flapping provider (down and up by turns, every three requests) delays
// sends but loses none and sends none twice: a 503 means it took nothing.
func TestFlappingProvider(t *testing.T) {
	fake := voipcomtest.NewServer(t, "key", "pw", "972500000001")
	front := newFlaky(t, fake.URL)
	front.flapEvery.Store(3)
	d := start(t, flakyConfig(front.addr, "50ms", "300ms"))

	const n = 30
	for i := range n {
		if _, err := sendMail(t, d.SMTPAddr(), "ops@example.com", []string{fmt.Sprintf("05020000%02d@sms.example.com", i)}, "Subject: x\n\nflapping\n"); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "every SMS sent", func() bool { return len(fake.Requests()) >= n })
	queueEmpty(t, d, 10*time.Second)
	sentOnce(t, fake, n)
	if front.answered.Load() == 0 {
		t.Error("no request met the provider down: the test exercised nothing")
	}
}
