package storeutil

import (
	"cmp"
	"slices"

	"github.com/smsbridge/smsbridge/bridge"
)

// Release is one claim a dispatcher gives back unstarted (see
// bridge.Releaser): the recipient, and the attempts and next attempt
// (unix milliseconds, as stored) its claim recorded. A store releases the
// recipient only while it still holds exactly these: a later claim (after
// the lease ran out) counts another attempt and another lease, and an
// outcome unclaims it, so neither is ever released by mistake.
type Release struct {
	ID          int64
	Attempts    int
	NextAttempt int64
}

// Releases returns the claims of jobs to give back, each recipient once,
// in id order: the order PostgreSQL's writes lock recipients in, and a
// stable one for SQLite.
func Releases(jobs []bridge.Job) []Release {
	out := make([]Release, 0, len(jobs))
	for _, j := range jobs {
		r := j.Recipient
		out = append(out, Release{ID: r.ID, Attempts: r.Attempts, NextAttempt: Millis(r.NextAttempt)})
	}
	slices.SortFunc(out, func(a, b Release) int { return cmp.Compare(a.ID, b.ID) })
	return slices.CompactFunc(out, func(a, b Release) bool { return a.ID == b.ID })
}
