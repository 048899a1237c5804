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

	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// flaky stands in front of a provider fake: it answers 503 while down, and
// with refuse set it does not even listen (connection refused).
type flaky struct {
	t       *testing.T
	addr    string
	down    atomic.Bool
	refused atomic.Int64 // requests answered 503
	proxy   http.Handler
	srv     *http.Server
}

func newFlaky(t *testing.T, target string) *flaky {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{t: t, proxy: httputil.NewSingleHostReverseProxy(u)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.serve(ln)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *flaky) serve(ln net.Listener) {
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			f.refused.Add(1)
			http.Error(w, `{"error": true, "error_message": "maintenance"}`, http.StatusServiceUnavailable)
			return
		}
		f.proxy.ServeHTTP(w, r)
	})}
	go func() { _ = f.srv.Serve(ln) }()
}

// refuse stops listening; listen starts again on the same address.
func (f *flaky) refuse() { f.srv.Close() }

func (f *flaky) listen() {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", f.addr)
		if err == nil {
			f.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("relisten on %s: %v", f.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
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

// A provider down for a while, answering 503 and then refusing
// connections: nothing accepted is lost or sent twice, and sends resume
// within the backoff cap once it is back.
func TestProviderOutageRecovery(t *testing.T) {
	fake := voipcomtest.NewServer(t, "key", "pw", "972500000001")
	front := newFlaky(t, fake.URL)
	// Each recipient backs off up to 30s: only the circuit's probe and
	// the retry of what waited can make recovery quicker than that.
	d := start(t, flakyConfig(front.addr, "100ms", "30s"))

	front.down.Store(true)
	const n = 20
	for i := range n {
		if _, err := sendMail(t, d.SMTPAddr(), "ops@example.com", []string{fmt.Sprintf("05010000%02d@sms.example.com", i)}, "Subject: x\n\nduring the outage\n"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // answering 503: the circuit opens, backoff grows
	front.refuse()
	time.Sleep(2 * time.Second) // connection refused
	if got := len(fake.Requests()); got != 0 {
		t.Fatalf("%d requests reached the provider while it was down", got)
	}
	front.down.Store(false)
	front.listen()
	back := time.Now()
	eventually(t, 40*time.Second, "every SMS sent after the outage", func() bool { return len(fake.Requests()) >= n })
	recovery := time.Since(back)
	t.Logf("all %d sent %v after the provider came back (retry_max 30s)", n, recovery.Round(time.Millisecond))
	// The circuit's probes, not each recipient's backoff (up to 30s),
	// bound the wait: the first probe that succeeds makes every waiting
	// recipient due at once.
	if recovery > 5*time.Second {
		t.Errorf("recovery took %v; the circuit's probe and the retry of what waited should bound it", recovery)
	}
	time.Sleep(300 * time.Millisecond)
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
	st, err := d.Store().Stats(t.Context())
	if err != nil || st.Queued != 0 {
		t.Errorf("queue after recovery: %+v %v", st, err)
	}
}

// A flapping provider (up and down every 150ms) delays sends but loses
// none and sends none twice: a 503 means it took nothing.
func TestFlappingProvider(t *testing.T) {
	fake := voipcomtest.NewServer(t, "key", "pw", "972500000001")
	front := newFlaky(t, fake.URL)
	d := start(t, flakyConfig(front.addr, "50ms", "300ms"))

	stop := make(chan struct{})
	flapped := make(chan struct{})
	go func() {
		defer close(flapped)
		for {
			select {
			case <-stop:
				front.down.Store(false)
				return
			case <-time.After(150 * time.Millisecond):
				front.down.Store(!front.down.Load())
			}
		}
	}()
	const n = 30
	for i := range n {
		if _, err := sendMail(t, d.SMTPAddr(), "ops@example.com", []string{fmt.Sprintf("05020000%02d@sms.example.com", i)}, "Subject: x\n\nflapping\n"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	<-flapped
	eventually(t, 20*time.Second, "every SMS sent", func() bool { return len(fake.Requests()) >= n })
	time.Sleep(300 * time.Millisecond)
	seen := map[string]int{}
	for _, r := range fake.Requests() {
		for _, to := range r.To {
			seen[to]++
		}
	}
	for to, c := range seen {
		if c != 1 {
			t.Errorf("%s sent %d times", to, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d of %d numbers sent", len(seen), n)
	}
	if front.refused.Load() == 0 {
		t.Error("no request met the provider down: the test exercised nothing")
	}
}
