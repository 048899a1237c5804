package loadtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// The credentials FakeProvider accepts; loadtest/smsbridge-voipcom.toml
// configures them.
const (
	FakeProviderKey      = "load"
	FakeProviderPassword = "load"
)

// FakeProvider is the voip-communications fake (voipcomtest, which
// checks every send as the provider documents it) served on a real
// listener, answering each send after a fixed latency, as a provider that
// takes that long. It notes when each load-test message (told by its ref
// line) first reached it.
type FakeProvider struct {
	URL string // base_url to configure the bridge's voipcom provider with

	srv    *http.Server
	served chan error

	mu      sync.Mutex
	arrived map[string]time.Time
	other   int // sends without a ref, or repeated
}

// StartFakeProvider serves the fake on addr ("127.0.0.1:0" for any port).
func StartFakeProvider(addr string, latency time.Duration) (*FakeProvider, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loadtest: fake provider: %w", err)
	}
	p := &FakeProvider{arrived: map[string]time.Time{}, served: make(chan error, 1)}
	fake := voipcomtest.NewHandler(FakeProviderKey, FakeProviderPassword)
	fake.Latency = latency
	fake.Observe = p.observe
	p.URL = "http://" + ln.Addr().String() + voipcomtest.BasePath
	p.srv = &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	go func() { p.served <- p.srv.Serve(ln) }()
	return p, nil
}

func (p *FakeProvider) observe(r voipcomtest.Request) {
	ref, ok := RefOf(r.Form.Get("msg"))
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.arrived[ref]; !ok || seen {
		p.other++
		return
	}
	p.arrived[ref] = r.Arrived
}

// Received is how many distinct load-test messages have arrived, and how
// many other sends (no ref, or one seen before: a repeat).
func (p *FakeProvider) Received() (distinct, other int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.arrived), p.other
}

// Close stops serving.
func (p *FakeProvider) Close() error {
	err := p.srv.Close()
	if serr := <-p.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// Delivery is how long acknowledged messages took from their 250 to the
// provider.
type Delivery struct {
	Arrived, Missing int // of the accepts given: reached the provider, or not (yet)
	P50, P99, Max    time.Duration
}

// Delivery matches accepts with their arrivals. A message may reach the
// provider before the client has read its 250 (the bridge sends once the
// message is stored); that counts as 0.
func (p *FakeProvider) Delivery(accepts []Accept) Delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d Delivery
	lat := make([]time.Duration, 0, len(accepts))
	for _, a := range accepts {
		at, ok := p.arrived[a.Ref]
		if !ok {
			d.Missing++
			continue
		}
		d.Arrived++
		lat = append(lat, max(at.Sub(a.At), 0))
	}
	slices.Sort(lat)
	d.P50, d.P99, d.Max = percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1)
	return d
}
