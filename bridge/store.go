package bridge

import (
	"context"
	"time"
)

// Store persists messages and the queue. Every method is safe for concurrent
// use. A store must make Enqueue durable before returning nil: the front ends
// acknowledge a message only after that.
type Store interface {
	// Enqueue stores m and all its recipients in one transaction, assigning
	// recipient IDs (written back into m.Recipients). m.ID is set by the caller.
	Enqueue(ctx context.Context, m *Message) error

	// Claim returns up to limit queued recipients whose NextAttempt is at or
	// before now, oldest first. With quota non-nil, it returns at most
	// quota[p] recipients whose current Provider is p, for each p quota
	// names, and recipients of providers it does not name share what is
	// left of limit: a provider whose calls hang then cannot fill a
	// dispatcher's hands with its backlog while other providers' work
	// waits (see Dispatcher). In the same transaction it increments each
	// one's Attempts and ProviderAttempts and sets its NextAttempt to
	// now+lease(attempts), where attempts is the new count: the attempt is
	// recorded before it is made, so a crash never loses a recipient nor
	// retries it in a hot loop. Each Job carries its message (recipients
	// of one message share the same *Message, with Recipients left empty).
	Claim(ctx context.Context, now time.Time, limit int, quota map[string]int, lease func(attempts int) time.Duration) ([]Job, error)

	// Complete records the outcomes of attempts, in one transaction. An
	// outcome that moves its recipient to another provider (failover)
	// resets the recipient's ProviderAttempts to zero.
	Complete(ctx context.Context, outcomes []Outcome) error

	// Recover makes recipients that were claimed by a run of this daemon
	// that died (their sends were in flight at the crash) due at now, so
	// they are retried at once rather than after their lease. It is called
	// at start, before the dispatcher runs.
	Recover(ctx context.Context, now time.Time) (int, error)

	// NextDue returns the earliest NextAttempt of any queued recipient
	// whose current provider is not one of skip; ok is false when there
	// is none. (A dispatcher skips the providers it cannot give more work
	// to now, whose due backlog would otherwise wake it in a busy loop.)
	NextDue(ctx context.Context, skip ...string) (t time.Time, ok bool, err error)

	// Message returns a message with all its recipients, or ErrNotFound.
	Message(ctx context.Context, id string) (*Message, error)

	// MessageByKey returns the message an account enqueued with an
	// idempotency key, or ErrNotFound.
	MessageByKey(ctx context.Context, account, key string) (*Message, error)

	// Cancel marks the message's queued recipients that no dispatcher
	// holds as cancelled, and returns how many it cancelled.
	Cancel(ctx context.Context, messageID string, at time.Time) (int, error)

	// Stats reports the queue depth and the creation time of the oldest
	// queued recipient's message.
	Stats(ctx context.Context) (QueueStats, error)

	Close() error
}

// Job is one claimed recipient with its message.
type Job struct {
	Message   *Message
	Recipient Recipient
}

// Outcome is the result of one attempt for one recipient.
type Outcome struct {
	RecipientID int64
	State       State     // StateQueued for a retry, or a final state
	Provider    string    // the provider used (may change on failover)
	ProviderID  string    // set when State is StateSent
	Cost        string    // the provider's price when State is StateSent (Result.Cost)
	Error       string    // reason for a retry or a failure
	Reason      Reason    // why it failed (not stored; picks a bounce's status)
	NextAttempt time.Time // for a retry: when to try next
	Info        map[string]string
	At          time.Time
	// DelayNotified records that the recipient's NOTIFY=DELAY
	// notification is queued (with this or another outcome of its batch).
	DelayNotified bool
	// Notified is the notification queued about the recipient with this
	// outcome's batch ("" none): added to Recipient.Notified.
	Notified Action

	// Conversation, if set, files the recipient under a conversation (see
	// ConversationTouch); stores that also implement Conversations
	// record it in the same transaction.
	Conversation *ConversationTouch
	// Mail, if set, is queued in the same transaction (a bounce for this
	// and possibly other recipients of the message), so a failure is
	// never recorded without its notification.
	Mail *OutMail
}

// QueueStats describes the queue for metrics and readiness.
type QueueStats struct {
	Queued       int
	OldestQueued time.Time // zero when nothing is queued
}

// Rescheduler is an optional Store method: when a provider that was down
// answers again, the recipients waiting for it are made due at once
// instead of each waiting out its own backoff (up to queue.retry_max).
type Rescheduler interface {
	// RetryNow makes provider's queued recipients that no dispatcher
	// holds due at now, and returns how many it moved.
	RetryNow(ctx context.Context, provider string, now time.Time) (int, error)
}

// Releaser is an optional Store method: at a graceful shutdown the
// dispatcher gives back what it claimed but never started (waiting for a
// slot or its pace), so that another instance on the same queue sends it
// at once instead of after its lease, or after this one's next start and
// Recover. A store without it leaves them to the lease, as a crash does.
type Releaser interface {
	// Release undoes, in one transaction, the claims of jobs (as Claim
	// or EnqueueClaim returned them) whose recipients are still held
	// under that very claim: queued, claimed by this store, with the
	// attempts and next attempt it recorded. Each is made due at now,
	// unclaimed, and its attempt, never made, is taken back (Attempts
	// and ProviderAttempts one less). A recipient whose claim has moved
	// on (recorded, or claimed again after its lease) is left alone, so
	// that Release never frees what another dispatcher holds. It returns
	// how many it released.
	Release(ctx context.Context, jobs []Job, now time.Time) (int, error)
}

// EnqueueClaimer is an optional Store method: Enqueue that also claims, in
// the same transaction, the recipients the dispatcher can start at once
// (see Handoff), so that a freshly accepted SMS needs no claim of its own.
type EnqueueClaimer interface {
	// EnqueueClaim is Enqueue, and in the same transaction it claims, as
	// Claim would (attempts counted, NextAttempt set to now plus
	// t.Lease), each recipient of m that is queued, due at now, and that
	// t.Take accepts. Once that transaction has committed it hands them
	// to t.Deliver as jobs (their Message sharing m's fields, Recipients
	// left empty), whether or not ctx has ended meanwhile; if it does not
	// commit, it gives back each recipient Take accepted with t.Untake.
	// It returns how many recipients it claimed.
	EnqueueClaim(ctx context.Context, m *Message, now time.Time, t Taker) (int, error)
}

// Taker chooses, inside EnqueueClaim's transaction, which recipients it
// claims, and receives them (Handoff is the dispatcher's).
type Taker interface {
	Take(r Recipient) bool
	Untake(r Recipient)
	Lease(attempts int) time.Duration
	Deliver(jobs []Job)
}

// lateKey marks a context whose writes may wait (see Late).
type lateKey struct{}

// Late marks ctx as carrying a write nobody waits on to answer a client:
// the dispatcher's record of its sends. A store may hold such a write
// back briefly, to share the commit of the next write that cannot wait.
func Late(ctx context.Context) context.Context { return context.WithValue(ctx, lateKey{}, true) }

// IsLate reports whether ctx was marked by Late.
func IsLate(ctx context.Context) bool { return ctx.Value(lateKey{}) != nil }
