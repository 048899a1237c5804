package bridge

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// DispatchOptions configures the Dispatcher.
type DispatchOptions struct {
	Workers     int           // concurrent provider calls in total
	RetryMin    time.Duration // first backoff step
	RetryMax    time.Duration // backoff cap
	MaxAge      time.Duration // give up this long after a recipient became due
	SendTimeout time.Duration // one provider call
	// FailoverAfter is how many temporary failures a recipient takes at
	// one provider before it moves to the route's next provider.
	FailoverAfter int
	// Concurrency limits simultaneous calls per provider name (default 4).
	Concurrency map[string]int
	// Touch, if set, names the conversation each recorded outcome files its
	// recipient under (Bridge.Touch); it is stored with the outcome.
	Touch func(m *Message, r Recipient, o Outcome) *ConversationTouch
	// Bounce, if set, builds the notification for recipients of m that
	// failed for good (Bridge.Bounce); it is queued with their outcomes,
	// in the same transaction, so no failure goes untold. nil: none.
	Bounce func(m *Message, failed []Failure) *OutMail
	// Final, if set, is called once for every recipient that reaches a
	// final state through this dispatcher (for bounces and metrics).
	Final func(ctx context.Context, m *Message, o Outcome)
	// Observe, if set, is told of each provider call once its outcomes
	// are recorded: how long it took and what came of each recipient
	// (for metrics).
	Observe func(provider string, took time.Duration, outcomes []Outcome)
	// BreakerThreshold is how many consecutive calls to a provider may
	// fail as a whole (down, timing out) before its circuit opens
	// (default 5). BreakerChanged, if set, is told when one opens or closes.
	BreakerThreshold int
	BreakerChanged   func(provider string, open bool)
	Now              func() time.Time
	Log              *slog.Logger
}

// Dispatcher takes due recipients from the store and sends them. Each
// attempt is recorded in the store before the provider is called (Claim
// increments attempts and pushes the next attempt out by a lease), so a
// crash at any moment leaves every recipient either sent or due again
// later: at-least-once, never lost, never retried in a hot loop.
type Dispatcher struct {
	store Store
	opt   DispatchOptions
	set   atomic.Pointer[providerSet] // swapped by SetProviders
	wake  chan struct{}
	// recovered names providers whose circuit closed: their waiting
	// recipients are made due now (see Rescheduler).
	recovered chan string
	capacity  int // recipients claimed and not yet completed, at most
}

// maxProbeInterval caps how long a provider that is down goes unprobed,
// however large queue.retry_max: its return is noticed within a minute,
// and then everything waiting for it is retried at once.
const maxProbeInterval = time.Minute

// providerSet is the providers a dispatcher sends through, with each one's
// concurrency slots and circuit breaker.
type providerSet struct {
	providers map[string]Provider
	sem       map[string]chan struct{}
	breakers  map[string]*breaker
}

// NewDispatcher returns a dispatcher over store and providers.
func NewDispatcher(store Store, providers []Provider, opt DispatchOptions) *Dispatcher {
	if opt.Workers <= 0 {
		opt.Workers = 8
	}
	if opt.RetryMin <= 0 {
		opt.RetryMin = 30 * time.Second
	}
	if opt.RetryMax < opt.RetryMin {
		opt.RetryMax = opt.RetryMin
	}
	if opt.SendTimeout <= 0 {
		opt.SendTimeout = 30 * time.Second
	}
	if opt.MaxAge <= 0 {
		opt.MaxAge = 24 * time.Hour
	}
	if opt.FailoverAfter <= 0 {
		opt.FailoverAfter = 3
	}
	if opt.BreakerThreshold <= 0 {
		opt.BreakerThreshold = 5
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	d := &Dispatcher{
		store:     store,
		opt:       opt,
		wake:      make(chan struct{}, 1),
		recovered: make(chan string, 16),
		capacity:  opt.Workers * 8,
	}
	d.SetProviders(providers, opt.Concurrency)
	return d
}

// SetProviders replaces the providers (on a configuration reload). A
// provider that stays keeps its circuit breaker, and its concurrency slots
// if its limit is unchanged; sends under way finish with what they
// started with.
func (d *Dispatcher) SetProviders(providers []Provider, concurrency map[string]int) {
	old := d.set.Load()
	set := &providerSet{providers: map[string]Provider{}, sem: map[string]chan struct{}{}, breakers: map[string]*breaker{}}
	for _, p := range providers {
		name := p.Name()
		n := concurrency[name]
		if n <= 0 {
			n = 4
		}
		set.providers[name] = p
		if old != nil && old.sem[name] != nil && cap(old.sem[name]) == n {
			set.sem[name] = old.sem[name]
		} else {
			set.sem[name] = make(chan struct{}, n)
		}
		if old != nil && old.breakers[name] != nil {
			set.breakers[name] = old.breakers[name]
			continue
		}
		changed := func(open bool) {
			if d.opt.BreakerChanged != nil {
				d.opt.BreakerChanged(name, open)
			}
			if !open {
				select {
				case d.recovered <- name:
				default: // Run is behind; the recipients still come due by themselves
				}
			}
		}
		set.breakers[name] = newBreaker(d.opt.BreakerThreshold, d.opt.RetryMin, max(d.opt.RetryMin, min(d.opt.RetryMax, maxProbeInterval)), changed)
	}
	d.set.Store(set)
	d.Wake()
}

// Wake makes the dispatcher look for due work now (after an enqueue).
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// batch is recipients of one message going to one provider in one call.
type batch struct {
	msg      *Message
	provider string
	jobs     []Job
	slot     chan struct{} // the concurrency slots it holds one of (nil: none)
}

// lease is how long a claimed recipient stays invisible to Claim. It must
// outlast the wait for a worker plus the provider call, or a slow send
// would be claimed twice; it is also the retry delay after a crash.
func (d *Dispatcher) lease(attempts int) time.Duration {
	min := time.Duration(d.capacity/d.opt.Workers+1)*d.opt.SendTimeout + 5*time.Second
	if b := d.backoff(attempts); b > min {
		return b
	}
	return min
}

// backoff is capped exponential backoff with full jitter (the AWS
// architecture blog's "full jitter"), never below RetryMin.
func (d *Dispatcher) backoff(attempts int) time.Duration {
	ceil := d.opt.RetryMin
	for i := 1; i < attempts && ceil < d.opt.RetryMax; i++ {
		ceil *= 2
	}
	if ceil > d.opt.RetryMax {
		ceil = d.opt.RetryMax
	}
	if ceil <= d.opt.RetryMin {
		return d.opt.RetryMin
	}
	return d.opt.RetryMin + rand.N(ceil-d.opt.RetryMin)
}

// Run dispatches until ctx is cancelled, then waits for in-flight sends
// for at most grace before cancelling them; it returns when every worker
// has finished. Sends cut off by the grace period stay queued (their
// attempt was recorded) and are retried after the next start.
func (d *Dispatcher) Run(ctx context.Context, grace time.Duration) {
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()

	batches := make(chan batch)
	done := make(chan int, d.opt.Workers) // recipients completed
	// A worker makes provider calls only. Recording a batch's outcomes
	// waits for a store commit, which under load is the longest wait of
	// all; a worker that waited for it too would hold the dispatcher to
	// Workers batches per commit, and let the queue grow behind SMTP
	// sessions that share those commits. Each batch sent is recorded by
	// a goroutine of its own instead: at most capacity of them, as every
	// batch is claimed work counted in pending. The store groups their
	// writes into its commits, and as many requests as the SMTP sessions
	// have in its queue keep the dispatcher's share of the store's time
	// close to theirs, so the queue does not grow under load. (One
	// recorder taking everything waiting into one Complete sent a quarter
	// of what was acknowledged under load.)
	var workers, recorders sync.WaitGroup
	for range d.opt.Workers {
		workers.Go(func() {
			for b := range batches {
				sb := sentBatch{batch: b}
				d.send(sendCtx, &sb)
				recorders.Go(func() {
					d.record(sendCtx, sb)
					done <- len(b.jobs)
				})
			}
		})
	}
	workersDone := make(chan struct{})
	go func() { workers.Wait(); recorders.Wait(); close(workersDone) }()

	pending := 0 // claimed, not completed
	var queue []batch
	ready := -1         // index in queue of a batch holding its provider's slot
	claimNeeded := true // something changed since the last claim
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastClaim time.Time
	for ctx.Err() == nil {
		// Claim when the queue has run dry, or now and then while what
		// is queued waits for busy providers (so other providers' work
		// is not stuck behind it). Claiming on every completion instead
		// costs a store write each and slowed dispatch fivefold.
		if claimNeeded && pending < d.capacity &&
			(len(queue) == 0 || time.Since(lastClaim) > 20*time.Millisecond) {
			claimed := d.claim(ctx, d.capacity-pending)
			for _, b := range claimed {
				pending += len(b.jobs)
			}
			queue = append(queue, claimed...)
			claimNeeded, lastClaim = false, time.Now()
		}
		// A batch goes to a worker only with a slot of its provider's
		// concurrency limit in hand, so a slow provider's batches wait
		// here instead of holding workers other providers need.
		if ready < 0 {
			for i := range queue {
				if d.acquire(&queue[i]) {
					ready = i
					break
				}
			}
		}
		var out chan batch
		var next batch
		if ready >= 0 {
			out, next = batches, queue[ready]
		} else if len(queue) == 0 {
			timer.Reset(d.idle(ctx))
		}
		select {
		case <-ctx.Done():
		case out <- next:
			queue = append(queue[:ready], queue[ready+1:]...)
			ready = -1
		case n := <-done:
			pending -= n
			claimNeeded = true
		case <-d.wake:
			claimNeeded = true
		case name := <-d.recovered:
			d.retryNow(ctx, name)
			claimNeeded = true
		case <-timer.C:
			claimNeeded = true
		}
	}
	if ready >= 0 {
		release(queue[ready])
	}
	// Claimed but never started: they stay queued and are retried after
	// their lease; nothing is lost.
	close(batches)
	graceTimer := time.NewTimer(grace)
	defer graceTimer.Stop()
	for {
		select {
		case <-done:
		case <-graceTimer.C:
			cancelSends()
		case <-workersDone:
			return
		}
	}
}

// acquire takes a slot of b's provider's concurrency limit if one is free.
// A provider no longer configured has no limit. The batch keeps the slots
// it took one of, so a reload that changes the limit meanwhile gives it
// back to the right place.
func (d *Dispatcher) acquire(b *batch) bool {
	sem := d.set.Load().sem[b.provider]
	if sem == nil {
		return true
	}
	select {
	case sem <- struct{}{}:
		b.slot = sem
		return true
	default:
		return false
	}
}

func release(b batch) {
	if b.slot != nil {
		<-b.slot
	}
}

// retryNow makes the recipients waiting for a provider that is back due
// now, if the store can.
func (d *Dispatcher) retryNow(ctx context.Context, provider string) {
	r, ok := d.store.(Rescheduler)
	if !ok {
		return
	}
	n, err := r.RetryNow(ctx, provider, d.opt.Now())
	if err != nil {
		d.opt.Log.WarnContext(ctx, "rescheduling after a provider came back", "provider", provider, "err", err)
		return
	}
	d.opt.Log.InfoContext(ctx, "provider answers again; retrying what waited for it", "provider", provider, "recipients", n)
}

// idle returns how long to sleep when there is nothing to send.
func (d *Dispatcher) idle(ctx context.Context) time.Duration {
	const maxIdle = 5 * time.Second // also bounds the wait for other instances' work
	t, ok, err := d.store.NextDue(ctx)
	if err != nil || !ok {
		return maxIdle
	}
	wait := t.Sub(d.opt.Now())
	switch {
	case wait < 10*time.Millisecond:
		return 10 * time.Millisecond
	case wait > maxIdle:
		return maxIdle
	}
	return wait
}

// claim takes up to limit due recipients and groups them into batches.
func (d *Dispatcher) claim(ctx context.Context, limit int) []batch {
	jobs, err := d.store.Claim(ctx, d.opt.Now(), limit, d.lease)
	if err != nil {
		if ctx.Err() == nil {
			d.opt.Log.ErrorContext(ctx, "claiming due recipients", "err", err)
		}
		return nil
	}
	set := d.set.Load()
	var out []batch
	index := map[[2]string]int{}
	for _, j := range jobs {
		key := [2]string{j.Message.ID, j.Recipient.Provider}
		max := 1
		if b, ok := set.providers[j.Recipient.Provider].(Batcher); ok && b.MaxBatch() > 1 {
			max = b.MaxBatch()
		}
		i, ok := index[key]
		if !ok || len(out[i].jobs) >= max {
			out = append(out, batch{msg: j.Message, provider: j.Recipient.Provider})
			i = len(out) - 1
			index[key] = i
		}
		out[i].jobs = append(out[i].jobs, j)
	}
	return out
}

// send makes one provider call for sb's batch and puts every outcome in
// sb, for record. The batch holds a slot of its provider's concurrency
// limit (see Run), which send gives back once the call is over.
func (d *Dispatcher) send(ctx context.Context, sb *sentBatch) {
	b := sb.batch
	defer release(b)
	sb.call = -1
	set := d.set.Load()
	now := d.opt.Now()
	outcomes := make([]Outcome, 0, len(b.jobs))
	var live []Job
	for _, j := range b.jobs {
		if now.After(d.deadline(b.msg, j.Recipient)) {
			outcomes = append(outcomes, d.fail(j, b.provider, &Error{Reason: ReasonExpired,
				Msg: "gave up after " + d.opt.MaxAge.String() + lastError(j.Recipient.Error)}, now))
			continue
		}
		live = append(live, j)
	}
	p := set.providers[b.provider]
	if len(live) > 0 && p == nil {
		// Its provider was removed from the configuration.
		err := &Error{Reason: ReasonNoRoute, Msg: "provider " + b.provider + " is no longer configured"}
		for _, j := range live {
			outcomes = append(outcomes, d.retryOrFail(j, b.provider, err, now))
		}
		live = nil
	}
	req := b.msg.request()
	if len(live) > 0 && !req.SendAt.IsZero() && !schedulesNatively(p, req) {
		if req.SendAt.After(now) {
			// Failed over from a provider that schedules natively to
			// one that does not: hold it until due.
			for _, j := range live {
				outcomes = append(outcomes, Outcome{RecipientID: j.Recipient.ID, State: StateQueued,
					Provider: b.provider, Error: j.Recipient.Error, NextAttempt: req.SendAt, At: now})
			}
			live = nil
		}
		req.SendAt = time.Time{} // we held it until due
	}
	if len(live) > 0 {
		for _, j := range live {
			req.To = append(req.To, j.Recipient.To)
		}
		start := d.opt.Now()
		// The circuit the call goes through, and how often it had closed
		// before: both from the provider set the call uses, should a
		// reload swap the set meanwhile.
		sb.br = set.breakers[b.provider]
		sb.closings = sb.br.closings.Load()
		results, err := d.call(ctx, sb.br, p, req)
		now = d.opt.Now()
		sb.call, sb.took = len(outcomes), now.Sub(start)
		for i, j := range live {
			rerr := err
			if err == nil {
				rerr = results[i].Err
			}
			if rerr == nil {
				outcomes = append(outcomes, Outcome{RecipientID: j.Recipient.ID, State: StateSent,
					Provider: b.provider, ProviderID: results[i].ProviderID, Info: results[i].Info, At: now})
				continue
			}
			outcomes = append(outcomes, d.retryOrFail(j, b.provider, rerr, now))
		}
	}
	d.annotate(b, outcomes)
	sb.outcomes = outcomes
}

// sentBatch is a batch that has been sent, with its outcomes.
type sentBatch struct {
	batch
	outcomes []Outcome
	// call is the index in outcomes of the first one that came from the
	// provider call, -1 if no call was made; took is how long it took.
	call     int
	took     time.Duration
	br       *breaker // the circuit the call went through; nil without a call
	closings uint64   // br.closings just before the call
}

// missedRecovery reports whether sb holds a retry at its provider from a
// call that started before the provider's circuit last closed. Run made
// what was waiting for the provider due when it came back (retryNow), but
// a retry recorded after that would wait out its backoff unless made due
// too. (A call that started just before the closing and failed on its own
// is retried at once as well: one early retry, in a narrow window.)
func (sb *sentBatch) missedRecovery() bool {
	if sb.br == nil || sb.br.closings.Load() == sb.closings {
		return false
	}
	for _, o := range sb.outcomes {
		if o.State == StateQueued && o.Provider == sb.provider {
			return true
		}
	}
	return false
}

// record stores a batch's outcomes and then reports the call and the
// final outcomes: once told, an observer finds them in the store.
func (d *Dispatcher) record(ctx context.Context, sb sentBatch) {
	// Recording outcomes must survive shutdown: the send already happened.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := d.store.Complete(cctx, sb.outcomes)
	if sb.call >= 0 && d.opt.Observe != nil {
		d.opt.Observe(sb.provider, sb.took, sb.outcomes[sb.call:])
	}
	if err != nil {
		// The attempt stays recorded with its lease: the recipients will
		// be tried again (at-least-once), not lost.
		d.opt.Log.ErrorContext(ctx, "recording send outcomes", "message", sb.msg.ID, "err", err)
		return
	}
	if sb.missedRecovery() {
		d.retryNow(ctx, sb.provider)
	}
	if d.opt.Final == nil {
		return
	}
	for _, o := range sb.outcomes {
		if o.State.Final() {
			d.opt.Final(cctx, sb.msg, o)
		}
	}
}

// annotate adds to a batch's outcomes what is stored with them: the
// conversation of each recipient and one bounce for those that failed.
func (d *Dispatcher) annotate(b batch, outcomes []Outcome) {
	if d.opt.Touch == nil && d.opt.Bounce == nil {
		return
	}
	byID := make(map[int64]Recipient, len(b.jobs))
	for _, j := range b.jobs {
		byID[j.Recipient.ID] = j.Recipient
	}
	var failed []Failure
	first := -1
	for i := range outcomes {
		o := &outcomes[i]
		r := byID[o.RecipientID]
		if d.opt.Touch != nil {
			o.Conversation = d.opt.Touch(b.msg, r, *o)
		}
		if o.State == StateFailed {
			if first < 0 {
				first = i
			}
			failed = append(failed, Failure{To: r.To, Provider: o.Provider, Reason: o.Reason, Error: o.Error, At: o.At})
		}
	}
	if first >= 0 && d.opt.Bounce != nil {
		outcomes[first].Mail = d.opt.Bounce(b.msg, failed)
	}
}

// call runs one provider call under its timeout and circuit breaker, and
// checks the provider kept its contract.
func (d *Dispatcher) call(ctx context.Context, br *breaker, p Provider, req *SendRequest) ([]Result, error) {
	if ok, next := br.allow(d.opt.Now()); !ok {
		return nil, &Error{Reason: ReasonProviderDown, Temp: true, RetryAfter: next.Sub(d.opt.Now()),
			Msg: p.Name() + ": circuit open after repeated failures; not calling it until " + next.UTC().Format(time.RFC3339)}
	}
	cctx, cancel := context.WithTimeout(ctx, d.opt.SendTimeout)
	defer cancel()
	start := d.opt.Now()
	results, err := p.Send(cctx, req)
	if err == nil && len(results) != len(req.To) {
		err = Temporary(ReasonProviderDown, nil, "%s returned %d results for %d recipients", p.Name(), len(results), len(req.To))
	}
	if ctx.Err() == nil { // a call cut off by our shutdown says nothing of the provider
		br.record(d.opt.Now(), err != nil && IsTemporary(err))
	}
	d.opt.Log.DebugContext(ctx, "provider call", "provider", p.Name(), "message", req.MessageID,
		"recipients", len(req.To), "took", d.opt.Now().Sub(start), "err", err)
	return results, err
}

// retryOrFail decides what a failed attempt leads to: a retry (maybe at
// the next provider of the route) or a final failure.
func (d *Dispatcher) retryOrFail(j Job, provider string, err error, now time.Time) Outcome {
	r := j.Recipient
	next := nextProvider(r.Providers, provider)
	reason := ReasonOf(err)
	temporary := IsTemporary(err)
	switch {
	case !temporary && next != "" && (reason == ReasonProviderRejected || reason == ReasonProviderAuth):
		// Another provider may well accept what this one refused.
		d.opt.Log.WarnContext(context.Background(), "failing over", "recipient", r.ID, "from", provider, "to", next, "err", err)
		return Outcome{RecipientID: r.ID, State: StateQueued, Provider: next, Error: err.Error(), NextAttempt: now, At: now}
	case reason == ReasonProviderAuth:
		// Our credentials are wrong: no message is at fault, so none is
		// failed for it. Hold them until the configuration is fixed (or
		// they expire), checking back at the backoff cap.
		d.opt.Log.ErrorContext(context.Background(), "provider refused our credentials; fix its configuration", "provider", provider, "err", err)
		return Outcome{RecipientID: r.ID, State: StateQueued, Provider: provider, Error: err.Error(), NextAttempt: now.Add(d.opt.RetryMax), At: now}
	case !temporary:
		return d.fail(j, provider, err, now)
	}
	if next != "" && r.Attempts >= d.opt.FailoverAfter*(indexOf(r.Providers, provider)+1) {
		return Outcome{RecipientID: r.ID, State: StateQueued, Provider: next, Error: err.Error(), NextAttempt: now, At: now}
	}
	delay := d.backoff(r.Attempts)
	if ra := RetryAfterOf(err); ra > delay {
		delay = ra
	}
	at := now.Add(delay)
	if at.After(d.deadline(j.Message, r)) {
		return d.fail(j, provider, &Error{Reason: ReasonExpired, Msg: "gave up after " + d.opt.MaxAge.String() + lastError(err.Error()), Err: err}, now)
	}
	return Outcome{RecipientID: r.ID, State: StateQueued, Provider: provider, Error: err.Error(), NextAttempt: at, At: now}
}

func (d *Dispatcher) fail(j Job, provider string, err error, now time.Time) Outcome {
	return Outcome{RecipientID: j.Recipient.ID, State: StateFailed, Provider: provider, Error: err.Error(), Reason: ReasonOf(err), At: now}
}

// deadline is when a recipient expires: max_age after it became due.
func (d *Dispatcher) deadline(m *Message, r Recipient) time.Time {
	base := m.Created
	if m.SendAt.After(base) {
		base = m.SendAt
	}
	return base.Add(d.opt.MaxAge)
}

func lastError(s string) string {
	if s == "" {
		return ""
	}
	return "; last error: " + s
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return 0
}

func nextProvider(list []string, current string) string {
	for i, v := range list {
		if v == current && i+1 < len(list) {
			return list[i+1]
		}
	}
	return ""
}
