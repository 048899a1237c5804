package mailout

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Queue is the part of the durable mail queue the worker uses
// (bridge.MailQueue has it).
type Queue interface {
	// ClaimMail returns up to limit mails due at now, each with Attempts
	// incremented and hidden from other claims until now+lease.
	ClaimMail(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]bridge.OutMail, error)
	// CompleteMail records one attempt's outcome.
	CompleteMail(ctx context.Context, id string, state bridge.MailState, errText string, next, at time.Time) error
}

// Sender delivers one mail (*Client is one).
type Sender interface {
	Send(ctx context.Context, from, to string, data []byte) error
}

// Options configures a Worker. Zero values take the defaults.
type Options struct {
	Concurrency int // mails sent at once (default 4)
	// Batch is the most mails claimed in one call (default and at most
	// Concurrency): a claimed mail never waits for a free sender, so its
	// lease need only outlast one send.
	Batch int
	// Lease is how long a claimed mail is hidden from other claims (default
	// 5 minutes); it is also the retry delay after a crash. A send is cut
	// off at half of it, so it never runs into a second claim.
	Lease    time.Duration
	RetryMin time.Duration // first backoff step (default 1 minute)
	RetryMax time.Duration // backoff cap (default 1 hour)
	// MaxAge is how long after its creation a mail is retried before it
	// fails for good (default 5 days, as MTAs do).
	MaxAge time.Duration
	// PollInterval is how often an idle worker looks for due mail that
	// nobody woke it for: retries, and mail queued by other instances
	// (default 5 seconds).
	PollInterval time.Duration
	// Grace is how long Run waits, once its context ends, for sends under
	// way before it cuts them off (default 10 seconds).
	Grace time.Duration
	Now   func() time.Time
	Log   *slog.Logger
	// Observe, if set, is told the outcome of every attempt (for metrics).
	Observe func(kind bridge.MailKind, state bridge.MailState)
}

// completeTimeout bounds recording one outcome, which must happen even
// while shutting down: the send is done either way.
const completeTimeout = 30 * time.Second

// Worker delivers the mail queue to the smarthost: at least once, with
// backoff between attempts, failing a mail when the smarthost refuses it
// for good or when it grows older than MaxAge.
type Worker struct {
	queue  Queue
	sender Sender
	opt    Options
	wake   chan struct{}
}

// NewWorker returns a worker delivering q's mail through s.
func NewWorker(q Queue, s Sender, opt Options) *Worker {
	if opt.Concurrency <= 0 {
		opt.Concurrency = 4
	}
	if opt.Batch <= 0 || opt.Batch > opt.Concurrency {
		opt.Batch = opt.Concurrency
	}
	if opt.Lease <= 0 {
		opt.Lease = 5 * time.Minute
	}
	if opt.RetryMin <= 0 {
		opt.RetryMin = time.Minute
	}
	if opt.RetryMax <= 0 {
		opt.RetryMax = max(opt.RetryMin, time.Hour)
	}
	opt.RetryMax = max(opt.RetryMax, opt.RetryMin)
	if opt.MaxAge <= 0 {
		opt.MaxAge = 5 * 24 * time.Hour
	}
	if opt.PollInterval <= 0 {
		opt.PollInterval = 5 * time.Second
	}
	if opt.Grace <= 0 {
		opt.Grace = 10 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &Worker{queue: q, sender: s, opt: opt, wake: make(chan struct{}, 1)}
}

// Wake makes the worker look for due mail now (after queueing some).
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers mail until ctx ends. Then it claims no more, gives sends
// under way Grace to finish and cuts off the rest; it returns when every
// send has ended and its outcome is recorded. A send cut off stays
// queued and is retried at once by the next Run.
func (w *Worker) Run(ctx context.Context) {
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	var wg sync.WaitGroup
	done := make(chan struct{}, w.opt.Concurrency) // one per finished send; never blocks
	timer := time.NewTimer(0)
	defer timer.Stop()
	inflight := 0
	// more is false after a claim that found less than it asked for, until
	// something may have changed: a wake, the poll, a finished send.
	more := true
	for ctx.Err() == nil {
		if free := w.opt.Concurrency - inflight; free > 0 && more {
			limit := min(free, w.opt.Batch)
			mails := w.claim(ctx, limit)
			for _, m := range mails {
				inflight++
				wg.Add(1)
				go func() {
					defer wg.Done()
					w.deliver(sendCtx, m)
					done <- struct{}{}
				}()
			}
			more = len(mails) == limit
			if more && inflight < w.opt.Concurrency {
				continue
			}
		}
		timer.Reset(w.opt.PollInterval)
		select {
		case <-ctx.Done():
		case <-done:
			inflight--
			more = true
		case <-w.wake:
			more = true
		case <-timer.C:
			more = true
		}
	}

	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	grace := time.NewTimer(w.opt.Grace)
	defer grace.Stop()
	select {
	case <-finished:
	case <-grace.C:
		cancelSends()
		<-finished
	}
}

// claim takes up to limit due mails.
func (w *Worker) claim(ctx context.Context, limit int) []bridge.OutMail {
	mails, err := w.queue.ClaimMail(ctx, w.opt.Now(), limit, w.opt.Lease)
	if err != nil {
		if ctx.Err() == nil {
			w.opt.Log.ErrorContext(ctx, "claiming due mail", "err", err)
		}
		return nil
	}
	return mails
}

// deliver makes one attempt at m and records its outcome.
func (w *Worker) deliver(ctx context.Context, m bridge.OutMail) {
	sctx, cancel := context.WithTimeout(ctx, w.opt.Lease/2)
	err := w.sender.Send(sctx, m.From, m.To, m.Data)
	cancel()
	now := w.opt.Now()
	state, next, errText := bridge.MailSent, time.Time{}, ""
	log := w.opt.Log.With("mail", m.ID, "kind", m.Kind, "to", m.To, "attempt", m.Attempts)
	switch {
	case err == nil:
		log.DebugContext(ctx, "mail sent")
	case ctx.Err() != nil:
		// Cut off by our shutdown: that says nothing about the mail.
		state, next, errText = bridge.MailQueued, now, "interrupted by shutdown: "+err.Error()
		log.WarnContext(ctx, "mail interrupted by shutdown", "err", err)
	case !bridge.IsTemporary(err):
		state, errText = bridge.MailFailed, err.Error()
		log.ErrorContext(ctx, "mail refused for good", "err", err)
	default:
		delay := w.backoff(m.Attempts)
		if ra := bridge.RetryAfterOf(err); ra > delay {
			delay = ra
		}
		next, errText = now.Add(delay), err.Error()
		state = bridge.MailQueued
		if deadline := m.Created.Add(w.opt.MaxAge); next.After(deadline) {
			state, next = bridge.MailFailed, time.Time{}
			errText = (&bridge.Error{Reason: bridge.ReasonExpired,
				Msg: "gave up after " + w.opt.MaxAge.String(), Err: err}).Error()
			log.ErrorContext(ctx, "mail expired", "err", err)
		} else {
			log.WarnContext(ctx, "mail deferred", "err", err, "retry", next)
		}
	}
	// Recording must survive shutdown: the attempt happened.
	cctx, cancelRecord := context.WithTimeout(context.WithoutCancel(ctx), completeTimeout)
	defer cancelRecord()
	if err := w.queue.CompleteMail(cctx, m.ID, state, errText, next, now); err != nil {
		// The claim's lease still holds it: the mail is tried again when
		// that runs out (at least once, never lost).
		log.ErrorContext(ctx, "recording a mail attempt", "state", state, "err", err)
	}
	if w.opt.Observe != nil {
		w.opt.Observe(m.Kind, state)
	}
}

// backoff is the delay before the next try of a mail after attempts
// tries, this one included (see bridge.Backoff).
func (w *Worker) backoff(attempts int) time.Duration {
	return bridge.Backoff(attempts, w.opt.RetryMin, w.opt.RetryMax)
}
