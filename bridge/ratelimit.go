package bridge

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters hands out one token bucket per key (an account, a phone
// number), refilled at perMinute per minute with a burst of perMinute.
// Buckets that are full again are forgotten, so the map holds only the
// keys that sent recently.
type limiters struct {
	perMinute int
	mu        sync.Mutex
	m         map[string]*rate.Limiter
	sweep     time.Time
}

func newLimiters(perMinute int) *limiters {
	return &limiters{perMinute: perMinute, m: map[string]*rate.Limiter{}}
}

func (l *limiters) get(key string, now time.Time) *rate.Limiter {
	if now.Sub(l.sweep) > time.Minute {
		for k, lim := range l.m {
			if lim.TokensAt(now) >= float64(l.perMinute) {
				delete(l.m, k)
			}
		}
		l.sweep = now
	}
	lim := l.m[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Every(time.Minute/time.Duration(l.perMinute)), l.perMinute)
		l.m[key] = lim
	}
	return lim
}

// admit takes n tokens for each key, all or none. When any bucket lacks
// them it takes nothing and says how long until it would have them. A
// request for more tokens than its bucket ever holds can never pass,
// however long one waits: admit returns it as never, and takes nothing.
func admit(now time.Time, reqs []limitReq) (wait time.Duration, never *limitReq, ok bool) {
	for i, r := range reqs {
		if r.l != nil && r.l.perMinute > 0 && r.n > r.l.perMinute {
			return 0, &reqs[i], false
		}
	}
	var taken []*rate.Reservation
	for _, r := range reqs {
		if r.l == nil || r.l.perMinute <= 0 || r.n == 0 {
			continue
		}
		r.l.mu.Lock()
		res := r.l.get(r.key, now).ReserveN(now, r.n)
		r.l.mu.Unlock()
		if d := res.DelayFrom(now); d > 0 {
			res.CancelAt(now)
			if d > wait {
				wait = d
			}
			continue
		}
		taken = append(taken, res)
	}
	if wait > 0 {
		for _, res := range taken {
			res.CancelAt(now)
		}
		return wait, nil, false
	}
	return 0, nil, true
}

type limitReq struct {
	l    *limiters
	key  string
	n    int
	what string // the limit, as a refusal names it
}
