package bridge

import (
	"context"
	"log/slog"
	"time"
)

// PurgeKind names one kind of record that retention deletes.
type PurgeKind string

const (
	// PurgeMessages are messages whose recipients are all final and
	// were last updated before the cutoff, with their recipients (the
	// outbound side of the conversation log) and idempotency keys.
	PurgeMessages PurgeKind = "messages"
	// PurgeInbound are SMS received from phones, with the provider's
	// request as received.
	PurgeInbound PurgeKind = "inbound"
	// PurgeMail is mail for the smarthost that was delivered or given up.
	PurgeMail PurgeKind = "mail"
	// PurgeConversations are conversations with no activity since the
	// cutoff: who wrote to a phone last, and the subject replies answer.
	PurgeConversations PurgeKind = "conversations"
)

// PurgeClaims are sender claims (SenderClaims) that ran out: not old
// records but useless ones, deleted whatever Keep says, by a ClaimPurger.
const PurgeClaims PurgeKind = "sender_claims"

// ClaimPurger is an optional Store method: deleting sender claims that
// ran out before now, at most limit, returning how many it deleted.
// Claims delete some themselves (see SenderClaims); this takes the rest,
// of phones nobody writes to any more.
type ClaimPurger interface {
	PurgeDeadClaims(ctx context.Context, now time.Time, limit int) (int, error)
}

// PurgeKinds are the kinds in the order a purge goes through them:
// conversations last, so that one emptied by the others goes in the same
// run.
var PurgeKinds = []PurgeKind{PurgeMessages, PurgeInbound, PurgeMail, PurgeAlertRefs, PurgeConversations}

// PurgeMark is a position in a kind's purge order: by time (creation, or
// last update for what changes after it), then id.
type PurgeMark struct {
	At time.Time
	ID string
}

// PurgeBatch is what one Purge call did.
type PurgeBatch struct {
	// Scanned is how many candidates (records of the kind older than the
	// cutoff) it looked at; fewer than the limit means it reached the
	// end. Deleted is how many of them it deleted: a message still
	// queued is a candidate by age but not deleted.
	Scanned, Deleted int
	// Next is the mark of the last candidate looked at.
	Next PurgeMark
}

// Purger is an optional Store method: deleting what retention no longer
// keeps. The loop around it (batches, pauses, the schedule) is shared
// (Retention); a store supplies only the SQL.
type Purger interface {
	// Purge deletes, in one short transaction, the records of kind older
	// than cutoff among the first limit candidates after mark in the
	// kind's order (see PurgeMark).
	Purge(ctx context.Context, kind PurgeKind, cutoff time.Time, after PurgeMark, limit int) (PurgeBatch, error)
}

// Retention deletes finished records older than Keep from a store, in
// batches small enough that the queue never waits long on them.
type Retention struct {
	Store Purger
	// Keep is how long finished records are kept (store.retention).
	Keep time.Duration
	// Batch caps the records one transaction looks at (default 200).
	// SQLite has one writer: a batch holds it, and every enqueue behind
	// it, for its duration, and deleting a message deletes its recipients
	// and updates eight indexes: keep a batch to tens of milliseconds.
	Batch int
	// Pause is the time between batches (default 100ms), in which the
	// queue's own writes go first; even so a purge deletes over a
	// thousand messages a second, more than any bridge takes in.
	Pause time.Duration
	Now   func() time.Time
	Log   *slog.Logger
}

func (r *Retention) defaults() {
	if r.Batch <= 0 {
		r.Batch = 200
	}
	if r.Pause <= 0 {
		r.Pause = 100 * time.Millisecond
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
}

// Purge deletes every record older than Keep, batch by batch, and
// returns how many of each kind it deleted. It stops at the first error
// (what was deleted stays deleted) or when ctx ends.
func (r *Retention) Purge(ctx context.Context) (map[PurgeKind]int, error) {
	r.defaults()
	cutoff := r.Now().Add(-r.Keep)
	deleted := map[PurgeKind]int{}
	for _, kind := range PurgeKinds {
		var mark PurgeMark
		for {
			b, err := r.Store.Purge(ctx, kind, cutoff, mark, r.Batch)
			if err != nil {
				return deleted, err
			}
			deleted[kind] += b.Deleted
			if b.Scanned < r.Batch {
				break
			}
			mark = b.Next
			if err := r.pause(ctx); err != nil {
				return deleted, err
			}
		}
	}
	if p, ok := r.Store.(ClaimPurger); ok {
		now := r.Now()
		for {
			n, err := p.PurgeDeadClaims(ctx, now, r.Batch)
			if err != nil {
				return deleted, err
			}
			if n > 0 {
				deleted[PurgeClaims] += n
			}
			if n < r.Batch {
				break
			}
			if err := r.pause(ctx); err != nil {
				return deleted, err
			}
		}
	}
	return deleted, nil
}

func (r *Retention) pause(ctx context.Context) error {
	t := time.NewTimer(r.Pause)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run purges at once and then every interval until ctx ends. A failed
// purge is logged and tried again at the next interval: nothing is lost
// by keeping records a little longer.
func (r *Retention) Run(ctx context.Context, interval time.Duration) {
	r.defaults()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		start := time.Now()
		n, err := r.Purge(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.Log.ErrorContext(ctx, "retention: purge failed; trying again later", "err", err)
		} else if total(n) > 0 {
			r.Log.InfoContext(ctx, "retention: purged", "messages", n[PurgeMessages], "inbound", n[PurgeInbound],
				"mail", n[PurgeMail], "conversations", n[PurgeConversations], "sender_claims", n[PurgeClaims], "took", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func total(n map[PurgeKind]int) int {
	s := 0
	for _, v := range n {
		s += v
	}
	return s
}
