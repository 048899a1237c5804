package console

import (
	"net/http"
	"sync"
	"time"
)

// Broker tells open pages that the conversation log changed: an inbound
// SMS recorded, a send's outcome, a delivery report. An event carries no
// data: the page fetches itself again through its own handler, which
// shows only what its session may see, so nothing of one account can
// reach another's browser through the stream.
type Broker struct {
	max int // open streams at once; more get 503

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// NewBroker returns a broker allowing max streams at once (0: 256).
func NewBroker(max int) *Broker {
	if max <= 0 {
		max = 256
	}
	return &Broker{max: max, subs: map[chan struct{}]struct{}{}}
}

// Changed wakes every stream. It never blocks: a stream already woken
// and not yet drained has the news.
func (b *Broker) Changed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (b *Broker) subscribe() (chan struct{}, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) >= b.max {
		return nil, false
	}
	ch := make(chan struct{}, 1)
	b.subs[ch] = struct{}{}
	return ch, true
}

func (b *Broker) unsubscribe(ch chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, ch)
}

// keepAlive is how often an idle stream gets a comment line, so proxies
// and the listener's write timeout see traffic.
const keepAlive = 15 * time.Second

// events streams "changed" events (text/event-stream) until the browser
// leaves or the daemon stops.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *session) {
	ch, ok := c.broker.subscribe()
	if !ok {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many live pages open", http.StatusServiceUnavailable)
		return
	}
	defer c.broker.unsubscribe(ch)
	rc := http.NewResponseController(w)
	// The listener's write timeout would cut a long stream; each write
	// below extends the deadline instead.
	_ = rc.SetWriteDeadline(time.Now().Add(2 * keepAlive))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("retry: 3000\n\n"))
	_ = rc.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		var msg string
		select {
		case <-r.Context().Done():
			return
		case <-c.stop:
			return
		case <-ch:
			msg = "event: changed\ndata: {}\n\n"
		case <-tick.C:
			msg = ": keep-alive\n\n"
		}
		_ = rc.SetWriteDeadline(time.Now().Add(2 * keepAlive))
		if _, err := w.Write([]byte(msg)); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
