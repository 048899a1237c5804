// Package providertest holds what the provider fakes share: injected
// faults. Each fake lives beside its client, as net/http/httptest beside
// net/http (providers/ippanel/ippaneltest, providers/mindcrm/mindcrmtest,
// providers/voipcom/voipcomtest), so its names need no prefix to tell it
// from the others.
package providertest

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Fault is a failure a fake injects instead of answering normally.
type Fault struct {
	Status     int           // HTTP status to answer with (e.g. 500, 429)
	RetryAfter time.Duration // sets Retry-After (seconds) when > 0
	Body       string        // raw body to answer with; "" for a generic one
	Delay      time.Duration // sleep before answering (simulates a slow provider)
	Close      bool          // hijack and close the connection without answering
}

// Faults is a FIFO of faults shared by the fakes: each request consumes the
// next queued fault, if any. Safe for concurrent use.
type Faults struct {
	mu sync.Mutex
	q  []Fault
}

// Push queues faults for the next requests, in order.
func (f *Faults) Push(faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.q = append(f.q, faults...)
}

// next pops the next fault.
func (f *Faults) next() (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.q) == 0 {
		return Fault{}, false
	}
	x := f.q[0]
	f.q = f.q[1:]
	return x, true
}

// Apply consumes the next fault and, if there was one that answers the
// request, writes it and returns true. A fault with only Delay set sleeps
// and returns false so the request is then served normally.
func (f *Faults) Apply(w http.ResponseWriter, r *http.Request) bool {
	x, ok := f.next()
	if !ok {
		return false
	}
	if x.Delay > 0 {
		select {
		case <-time.After(x.Delay):
		case <-r.Context().Done():
			return true
		}
	}
	if x.Close {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return true
	}
	if x.Status == 0 {
		return false
	}
	if x.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((x.RetryAfter+time.Second-1)/time.Second)))
	}
	body := x.Body
	if body == "" {
		body = `{"error": true, "error_message": "injected fault"}`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(x.Status)
	_, _ = w.Write([]byte(body))
	return true
}
