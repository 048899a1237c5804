// Package group commits the writes of concurrent callers together. One
// goroutine takes the requests waiting, lingers briefly for more when the
// store is busy, and hands them to the store to run in one transaction:
// a commit, and its flush to disk, is then shared by many callers instead
// of paid by each. Every caller is answered once the transaction that
// holds its write has committed, or has failed.
//
// A request that fails on its own (a duplicate key, an unknown id) fails
// only its caller: the store rolls the transaction back and the group
// runs again without it. What a store does in a transaction, and in how
// many round trips, is its own business (see Try).
package group

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// ErrAlone, wrapped in the err a Try returns, says the transaction may
// have failed because of the grouping itself (a deadlock with another
// process whose transactions take the same rows in another order): the
// group runs each of its requests again in a transaction of its own.
var ErrAlone = errors.New("group: run each request alone")

// Try runs works in one transaction and commits it, returning failed =
// -1. If a work fails on its own, Try rolls back and returns its position
// in works and its error: the group runs again without it. A failure of
// the store itself (unreachable, out of disk) is err, and fails them all.
//
// Try runs on the group's goroutine, one call at a time. It must not use
// a caller's context for its statements: cancelling one would break the
// transaction of all the others.
type Try[W any] func(works []W) (failed int, ferr, err error)

// Options tune a Group; the zero value takes the defaults.
type Options struct {
	// MaxBatch caps the requests committed together (default 128):
	// enough to amortise a commit over a burst of callers, small enough
	// that one commit does not keep the first of them waiting long.
	MaxBatch int
	// MaxLinger bounds how long the group waits for a batch to fill
	// (default 1ms, about one flush to disk: the time a caller waits
	// anyway for a commit).
	MaxLinger time.Duration
	// LingerFrom is the smallest previous batch that makes the group
	// linger (default 4): a store that few callers use at once has
	// little to share a commit with, and would only see its latency
	// grow.
	LingerFrom int
	// MaxJoin bounds how long a batch of late works (see Later) waits
	// for one that is not, to commit with it (0: it does not wait).
	MaxJoin time.Duration
	// Closed is the error of a request made after Close.
	Closed error
	// Log receives a line when writes start failing and when they work
	// again (default slog.Default()).
	Log *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 128
	}
	if o.MaxLinger <= 0 {
		o.MaxLinger = time.Millisecond
	}
	if o.LingerFrom <= 0 {
		o.LingerFrom = 4
	}
	if o.Closed == nil {
		o.Closed = errors.New("store is closed")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return o
}

// request is one write waiting for the group's goroutine.
type request[W any] struct {
	ctx  context.Context // the caller's: checked before the work runs, never passed to SQL
	work W
	late bool // see Later
	// done receives the outcome once the transaction that ran work has
	// committed or failed. Buffered, so the group never blocks on a
	// caller that stopped waiting.
	done chan error
}

// Answerer is a work that must know its outcome whether or not its caller
// still waits: Answered is called once, with nil when the transaction that
// ran it committed, the error otherwise (also when it never ran: its
// caller's context had ended, or the group was closed), before its caller
// is answered.
type Answerer interface {
	Answered(err error)
}

// Later is a work that may be late: the record of what already happened,
// which no client waits on to be answered (a send's outcome). A batch of
// nothing but late works waits, up to Options.MaxJoin, for a work that
// is not late (a message to store) and commits with it: at a low rate a
// message and the outcome of an earlier one then share one commit, and
// its flush, instead of paying one each.
type Later interface {
	Late() bool
}

func isLate[W any](w W) bool {
	l, ok := any(w).(Later)
	return ok && l.Late()
}

// answer tells w its outcome, if it wants it, and returns err.
func answer[W any](w W, err error) error {
	if a, ok := any(w).(Answerer); ok {
		a.Answered(err)
	}
	return err
}

// Group commits the works handed to Do in shared transactions.
type Group[W any] struct {
	try     Try[W]
	opt     Options
	reqs    chan *request[W]
	quit    chan struct{} // closed by Close: the goroutine should stop
	stopped chan struct{} // closed by the goroutine when it has stopped
	once    sync.Once
	failing bool // the last transaction failed (owned by the goroutine)
}

// New starts a Group running try. The caller must Close it.
func New[W any](try Try[W], opt Options) *Group[W] {
	opt = opt.withDefaults()
	g := &Group[W]{
		try:     try,
		opt:     opt,
		reqs:    make(chan *request[W], opt.MaxBatch),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go g.run()
	return g
}

// Close stops taking requests, commits those already handed over, and
// returns once the group's goroutine has stopped. Calls after the first
// return at once.
func (g *Group[W]) Close() {
	g.once.Do(func() { close(g.quit) })
	<-g.stopped
}

// Waiting returns how many requests wait for the group's goroutine to
// take them.
func (g *Group[W]) Waiting() int { return len(g.reqs) }

// Do runs w in the group's current transaction and returns once that
// transaction has committed (nil) or failed. w's results must be left
// where the caller reads them only after a nil return.
//
// If ctx ends while the request waits, Do returns ctx's error at once; w
// may then still run and commit. A store's work must be harmless then
// (a duplicate message after a client retries, an outcome recorded that
// the caller will record again).
func (g *Group[W]) Do(ctx context.Context, w W) error {
	// A select with several ready cases picks one at random: check first
	// so a cancelled context never reaches the group.
	if err := ctx.Err(); err != nil {
		return answer(w, err)
	}
	select {
	case <-g.quit:
		return answer(w, g.opt.Closed)
	default:
	}
	r := &request[W]{ctx: ctx, work: w, done: make(chan error, 1), late: isLate(w)}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return answer(w, ctx.Err())
	case <-g.quit:
		return answer(w, g.opt.Closed)
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stopped:
		// The goroutine answers before it stops; a request that slipped
		// into the channel after its last look is never run.
		select {
		case err := <-r.done:
			return err
		default:
			return g.opt.Closed
		}
	}
}

// run is the group's goroutine. It blocks for one request, takes every
// other one already waiting (up to MaxBatch), lingers for a few more, and
// commits them together. Requests that arrive during a commit form the
// next batch: the busier the store, the bigger the batches, the fewer
// commits per request.
func (g *Group[W]) run() {
	defer close(g.stopped)
	batch := make([]*request[W], 0, g.opt.MaxBatch)
	linger := time.NewTimer(g.opt.MaxLinger)
	linger.Stop() // armed by g.linger
	last := 0     // the previous batch's size
	for {
		batch = batch[:0]
		select {
		case r := <-g.reqs:
			batch = append(batch, r)
		case <-g.quit:
			// Finish what callers already handed over, then stop.
			for {
				batch = g.collect(batch[:0])
				if len(batch) == 0 {
					return
				}
				g.commit(batch)
			}
		}
		batch = g.collect(batch)
		batch = g.linger(batch, last, linger)
		batch = g.join(batch, linger)
		last = len(batch)
		g.commit(batch)
	}
}

// linger waits, at most MaxLinger, for batch to grow to want requests,
// the size of the previous batch, if that was LingerFrom or more. Much of
// a commit's cost is per transaction, not per row: under load a batch as
// big as the last one costs less per request than committing a few
// stragglers now and the rest in the next commit. When the load drops, a
// smaller batch waits once, and want shrinks with it.
func (g *Group[W]) linger(batch []*request[W], want int, t *time.Timer) []*request[W] {
	want = min(want, g.opt.MaxBatch)
	if want < g.opt.LingerFrom || len(batch) >= want {
		return batch
	}
	return g.gather(batch, g.opt.MaxLinger, t, func(b []*request[W]) bool { return len(b) >= want })
}

// join, when every request in batch is late, waits at most MaxJoin for
// one that is not, and takes it and what came with it into the batch.
func (g *Group[W]) join(batch []*request[W], t *time.Timer) []*request[W] {
	if g.opt.MaxJoin <= 0 || len(batch) >= g.opt.MaxBatch || onTime(batch) {
		return batch
	}
	return g.collect(g.gather(batch, g.opt.MaxJoin, t, onTime[W]))
}

// onTime reports whether batch holds a request that is not late.
func onTime[W any](batch []*request[W]) bool {
	return slices.ContainsFunc(batch, func(r *request[W]) bool { return !r.late })
}

// gather adds the requests that come within d to batch, until it is full
// or enough says it has what it waits for.
func (g *Group[W]) gather(batch []*request[W], d time.Duration, t *time.Timer, enough func([]*request[W]) bool) []*request[W] {
	t.Reset(d)
	defer t.Stop()
	for len(batch) < g.opt.MaxBatch && !enough(batch) {
		select {
		case r := <-g.reqs:
			batch = append(batch, r)
		case <-t.C:
			return batch
		case <-g.quit:
			return batch
		}
	}
	return batch
}

// collect appends the requests waiting in the channel, without blocking.
func (g *Group[W]) collect(batch []*request[W]) []*request[W] {
	for len(batch) < g.opt.MaxBatch {
		select {
		case r := <-g.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit runs a batch and answers every request in it.
func (g *Group[W]) commit(batch []*request[W]) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- answer(r.work, err) // its caller has gone: do not write on its behalf
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	works := make([]W, len(live))
	for i, r := range live {
		works[i] = r.work
	}
	errs := make([]error, len(live))
	err := g.runBatch(works, errs)
	if errors.Is(err, ErrAlone) && len(works) > 1 {
		err = nil
		for i := range works {
			if errs[i] != nil {
				continue // it failed on its own, and was rolled back
			}
			if e := g.runBatch(works[i:i+1], errs[i:i+1]); e != nil {
				errs[i], err = e, e // err: for the log below
			}
		}
	} else if err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	switch {
	// Log transitions only: a full disk fails every batch until fixed.
	case err != nil && !g.failing:
		g.opt.Log.Error("message store write failed", "requests", len(live), "err", err)
	case err == nil && g.failing:
		g.opt.Log.Info("message store writes work again")
	}
	g.failing = err != nil
	for i, r := range live {
		r.done <- answer(r.work, errs[i])
	}
}

// runBatch runs works in one transaction, again without each one that
// fails on its own (its error goes to errs, at its position), until one
// commits. A failure of the store itself ends it: it is returned.
//
// A request's own failure is rare, so the batch runs optimistically: the
// store need not guard each request (savepoints cost statements, and
// round trips, that every caller waits on).
func (g *Group[W]) runBatch(works []W, errs []error) error {
	live := works
	index := make([]int, len(works)) // position of live[i] in works
	for i := range index {
		index[i] = i
	}
	for len(live) > 0 {
		failed, ferr, err := g.try(live)
		if err != nil {
			return err
		}
		if failed < 0 {
			return nil
		}
		errs[index[failed]] = ferr
		live = append(live[:failed:failed], live[failed+1:]...)
		index = append(index[:failed:failed], index[failed+1:]...)
	}
	return nil
}

// Alone wraps err, a failure of the store, so that errors.Is(err,
// ErrAlone) holds; its text and what it unwraps to stay err's.
func Alone(err error) error { return aloneErr{err} }

type aloneErr struct{ error }

func (e aloneErr) Unwrap() error        { return e.error }
func (e aloneErr) Is(target error) bool { return target == ErrAlone }
