package console

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// session is one signed-in browser. It lives only in the daemon's memory:
// the cookie holds a random id and nothing else, so a restart signs
// everyone out and nothing a browser sends can forge an account.
type session struct {
	id      string
	csrf    string // every form carries it; a POST without it is refused
	acct    *bridge.Account
	touched time.Time
}

// sessions is the server-side session map: idle sessions expire, and the
// map holds at most max, so signing in again and again cannot grow it.
type sessions struct {
	idle time.Duration
	max  int
	now  func() time.Time

	mu sync.Mutex
	m  map[string]*session
}

func newSessions(idle time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{idle: idle, max: max, now: now, m: map[string]*session{}}
}

func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session for acct. When the map is full, expired
// sessions go first, then the least recently used: only a signed-in
// account can create one, so at worst it signs out the idlest browser.
func (s *sessions) create(acct *bridge.Account) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m) >= s.max {
		var oldest *session
		for id, x := range s.m {
			if now.Sub(x.touched) > s.idle {
				delete(s.m, id)
				continue
			}
			if oldest == nil || x.touched.Before(oldest.touched) {
				oldest = x
			}
		}
		if len(s.m) >= s.max && oldest != nil {
			delete(s.m, oldest.id)
		}
	}
	x := &session{id: randomID(), csrf: randomID(), acct: acct, touched: now}
	s.m[x.id] = x
	return x
}

// get returns the live session id names, touching it, or nil.
func (s *sessions) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[id]
	if x == nil {
		return nil
	}
	now := s.now()
	if now.Sub(x.touched) > s.idle {
		delete(s.m, id)
		return nil
	}
	x.touched = now
	return x
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
