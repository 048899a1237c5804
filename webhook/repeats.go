package webhook

import (
	"container/list"
	"sync"
	"time"
)

// maxRepeats bounds the notifications remembered for repeat suppression:
// beyond it the oldest is forgotten (and a repeat of it sent again),
// whatever an HTTP client sends.
const maxRepeats = 10_000

// repeats remembers the alert notifications sent, by what they say and
// to whom, so that an unchanged group repeated within its window (an
// Alertmanager's repeat_interval, or two replicas of one sending the
// same) pages nobody twice. It is memory only: a restart, or another
// instance, sends a repeat once more.
type repeats struct {
	mu    sync.Mutex
	max   int
	seen  map[string]*list.Element // of *repeat
	order *list.List               // oldest claim first
}

type repeat struct {
	key   string
	until time.Time
}

func newRepeats(max int) *repeats {
	return &repeats{max: max, seen: map[string]*list.Element{}, order: list.New()}
}

// claim reports whether the notification key may be sent at now: not
// when the same was claimed less than its window ago. A claim holds for
// window from now; release undoes it when the send fails.
func (r *repeats) claim(key string, now time.Time, window time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for e := r.order.Front(); e != nil && !e.Value.(*repeat).until.After(now); e = r.order.Front() {
		r.forget(e)
	}
	if e, ok := r.seen[key]; ok {
		if e.Value.(*repeat).until.After(now) {
			return false
		}
		r.forget(e)
	}
	r.seen[key] = r.order.PushBack(&repeat{key: key, until: now.Add(window)})
	for r.order.Len() > r.max {
		r.forget(r.order.Front())
	}
	return true
}

// release forgets key's claim.
func (r *repeats) release(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.seen[key]; ok {
		r.forget(e)
	}
}

func (r *repeats) forget(e *list.Element) {
	delete(r.seen, e.Value.(*repeat).key)
	r.order.Remove(e)
}
