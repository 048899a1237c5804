package bridge

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DispatchOptions configures the Dispatcher.
type DispatchOptions struct {
	RetryMin    time.Duration // first backoff step
	RetryMax    time.Duration // backoff cap
	MaxAge      time.Duration // give up this long after a recipient became due
	SendTimeout time.Duration // one provider call
	// FailoverAfter is how many temporary failures a recipient takes at
	// one provider before it moves to the route's next provider.
	FailoverAfter int
	// Concurrency, MaxConcurrency and Rates limit the calls to each
	// provider (see Limits).
	Concurrency    map[string]int
	MaxConcurrency map[string]int
	Rates          map[string]Rate
	// LimitChanged, if set, is told each provider's concurrency limit
	// when it is set up and whenever it moves (for metrics).
	LimitChanged func(provider string, limit int)
	// Touch, if set, names the conversation each recorded outcome files its
	// recipient under (Bridge.Touch); it is stored with the outcome.
	Touch func(m *Message, r Recipient, o Outcome) *ConversationTouch
	// Bounce, if set, builds the notification for recipients of m that
	// failed for good (Bridge.Bounce); it is queued with their outcomes,
	// in the same transaction, so no failure goes untold. nil: none.
	Bounce func(m *Message, failed []Failure) *OutMail
	// Notice, if set, builds the success and delay notifications
	// (Bridge.Notice), queued with their outcomes as bounces are: "relayed"
	// for recipients that asked for NOTIFY=SUCCESS when a provider that
	// reports no delivery took the SMS, "delayed" for those that asked for
	// NOTIFY=DELAY at the first retry after DelayWarning.
	Notice func(m *Message, action Action, ns []Notice) *OutMail
	// DelayWarning is how long a recipient waits before NOTIFY=DELAY is
	// answered (queue.delay_warning); 0: never.
	DelayWarning time.Duration
	// MailQueued, if set, is called after outcomes carrying mail are
	// recorded, to wake the mail worker.
	MailQueued func()
	// Final, if set, is called once for every recipient that reaches a
	// final state through this dispatcher (for bounces and metrics).
	Final func(ctx context.Context, m *Message, o Outcome)
	// Observe, if set, is told of each provider call once its outcomes
	// are recorded: how long it took and what came of each recipient
	// (for metrics).
	Observe func(provider string, took time.Duration, outcomes []Outcome)
	// Consent, if set, is the last look before a call (Bridge.HeldBack):
	// the phones of a message that opted out since it was accepted, with
	// why; they are cancelled, not sent.
	Consent func(ctx context.Context, m *Message, phones []string) (map[string]string, error)
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
//
// Liveness: nothing one provider does (hang, answer slowly, sit at its
// concurrency limit, have its circuit open) delays another provider's
// sends beyond their due time plus claimGap. Each provider has its own
// concurrency slots and its own share of what the dispatcher holds claimed
// (its quota, see Run), and the dispatcher wakes for the next due
// recipient of every provider that has room.
//
// Pacing: a paced provider's quota is also no more than its pace lets
// start now (see pacer), and the dispatcher wakes when its pace has room
// again; its backlog waits in the store, and other providers do not wait
// for it.
type Dispatcher struct {
	store Store
	opt   DispatchOptions
	set   atomic.Pointer[providerSet] // swapped by SetProviders
	wake  chan struct{}
	// recovered names providers whose circuit closed: their waiting
	// recipients are made due now (see Rescheduler).
	recovered chan string
	// recordBackoff is the first wait before an outcome the store failed
	// to record is tried again (doubling up to 5 s).
	recordBackoff time.Duration
	handoff       *Handoff
}

// backlogPerSlot is how many recipients the dispatcher holds claimed per
// concurrency slot of their provider: enough to keep the provider's slots
// busy between claims, few enough that a claimed recipient's wait for a
// slot stays within its lease (see lease).
const backlogPerSlot = 8

// othersQuota is the claim quota of recipients whose provider is no longer
// configured: they need no slot (send settles them at once), but they
// should not crowd out anything else.
const othersQuota = 16

// claimGap is the least time between two claims while batches wait for
// their providers' slots: claiming on every completion costs a store write
// each and slowed dispatch fivefold. A recipient of a provider with room
// is claimed within claimGap of its due time.
const claimGap = 20 * time.Millisecond

// maxIdle bounds the dispatcher's sleep, and so the wait for work another
// instance (or a tool) queued without waking it.
const maxIdle = 5 * time.Second

// Limits limit the calls to each provider, by provider name. Concurrency
// and pacing are the only limits on calls: a provider's calls never wait
// for another provider's (see Run).
type Limits struct {
	// Concurrency is a fixed limit on simultaneous calls. Absent (or 0),
	// the limit adapts to how the provider answers (see limiter), up to
	// MaxConcurrency (absent or 0: DefaultMaxConcurrency).
	Concurrency    map[string]int
	MaxConcurrency map[string]int
	// Rates paces the sends (see Rate; absent: unpaced), whatever the
	// concurrency. Paced recipients wait in the store: the dispatcher
	// claims no more of a provider's than its pace lets start now.
	Rates map[string]Rate
}

// providerSet is the providers a dispatcher sends through, with each one's
// concurrency limit, circuit breaker and, if paced, pacer.
type providerSet struct {
	providers map[string]Provider
	limits    map[string]*limiter
	breakers  map[string]*breaker
	pacers    map[string]*pacer
}

// NewDispatcher returns a dispatcher over store and providers.
func NewDispatcher(store Store, providers []Provider, opt DispatchOptions) *Dispatcher {
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
		store:         store,
		opt:           opt,
		wake:          make(chan struct{}, 1),
		recovered:     make(chan string, 16),
		recordBackoff: 100 * time.Millisecond,
	}
	d.handoff = newHandoff(d)
	d.SetProviders(providers, Limits{Concurrency: opt.Concurrency, MaxConcurrency: opt.MaxConcurrency, Rates: opt.Rates})
	return d
}

// SetProviders replaces the providers (on a configuration reload). A
// provider that stays keeps its circuit breaker, and its concurrency limit
// (adapted so far) and pacer if their settings are unchanged; sends under
// way finish with what they started with.
func (d *Dispatcher) SetProviders(providers []Provider, limits Limits) {
	old := d.set.Load()
	set := &providerSet{providers: map[string]Provider{}, limits: map[string]*limiter{}, breakers: map[string]*breaker{},
		pacers: map[string]*pacer{}}
	var fresh []*limiter // new limits, to report once in use
	for _, p := range providers {
		name := p.Name()
		if r := limits.Rates[name]; r.PerSecond > 0 {
			if old != nil && old.pacers[name] != nil && old.pacers[name].rate == r {
				set.pacers[name] = old.pacers[name]
			} else {
				set.pacers[name] = newPacer(r)
			}
		}
		set.providers[name] = p
		n, most := limits.Concurrency[name], limits.MaxConcurrency[name]
		if old != nil && old.limits[name] != nil && old.limits[name].same(n, most) {
			set.limits[name] = old.limits[name]
		} else {
			var l *limiter
			changed := func(limit int) {
				// Only the limit in use reports: one a reload replaced
				// still sees the calls it let through end.
				if d.opt.LimitChanged != nil && d.set.Load().limits[name] == l {
					d.opt.LimitChanged(name, limit)
				}
			}
			if n > 0 {
				l = newFixedLimiter(n, changed)
			} else {
				l = newAdaptiveLimiter(most, changed)
			}
			set.limits[name] = l
			fresh = append(fresh, l)
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
		cool := min(d.opt.RetryMin, probeMin)
		set.breakers[name] = newBreaker(d.opt.BreakerThreshold, cool, min(d.opt.RetryMax, probeMax), changed)
	}
	d.set.Store(set)
	for _, l := range fresh {
		l.announce()
	}
	d.Wake()
}

// Handoff is where submissions hand the dispatcher what they claimed as
// they stored it (see EnqueueClaimer).
func (d *Dispatcher) Handoff() *Handoff { return d.handoff }

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
	slot     *limiter // the concurrency limit it holds a slot of (nil: none)
	// floor is its provider's concurrency limit when it was claimed: it
	// is started under that limit even if the limit was cut since (see
	// lease).
	floor   int
	pacer   *pacer // the pacer it was counted by at pacedAt (nil: none)
	pacedAt time.Time
	// handedOff: claimed as it was stored (see Handoff), after Submit
	// read its recipients' consent.
	handedOff bool
}

// consentFresh is how long after a consent read (at RCPT or by Submit)
// Submit and then the dispatcher, for a batch handed off with the message,
// go on without reading it again: a STOP recorded in that moment is as
// late as one recorded just after a send-time read would have been.
const consentFresh = time.Second

// lease is how long a claimed recipient stays invisible to Claim. It must
// outlast the wait for a slot of its provider plus the provider call, or a
// slow send would be claimed twice; it is also the retry delay after a
// crash. A provider holds at most backlogPerSlot recipients claimed per
// slot of its limit at the claim, at most one call's worth per slot at a
// time, and what it holds is started under that limit at least (however
// the limit is cut meanwhile: see batch.floor), so a recipient waits at
// most backlogPerSlot calls before its own.
func (d *Dispatcher) lease(attempts int) time.Duration {
	min := time.Duration(backlogPerSlot+1)*d.opt.SendTimeout + 5*time.Second
	if b := d.backoff(attempts); b > min {
		return b
	}
	return min
}

// backoff is the delay before the next try of a recipient (see Backoff).
func (d *Dispatcher) backoff(attempts int) time.Duration {
	return Backoff(attempts, d.opt.RetryMin, d.opt.RetryMax)
}

// finished is a batch whose outcomes are recorded (or given up on).
type finished struct {
	provider string
	n        int
	// requeued: an outcome put a recipient back in the queue, due at a
	// time the dispatcher's wake-up does not know of.
	requeued bool
}

// Run dispatches until ctx is cancelled, then waits for in-flight sends
// for at most grace before cancelling them; it returns when every send has
// finished and its outcomes are recorded. Sends cut off by the grace
// period stay queued (their attempt was recorded) and are retried after
// the next start. Recipients claimed but not started when ctx ends are
// released at once, in one write (see Releaser), while the sends in
// flight finish: another instance on the same queue can send them now.
//
// Each batch with a slot of its provider's concurrency limit in hand is
// sent and recorded by a goroutine of its own: the slots are the only
// limit on calls, so a provider whose calls hang holds its own slots and
// nothing another provider needs. (A shared pool of workers let a
// provider at its limit, hanging, hold every worker when the pool was no
// larger than its limit.) Recording waits for a store commit, which under
// load is the longest wait of all; the slot is given back before it, and
// the store groups the recorders' writes into its commits.
//
// What is claimed is bounded per provider (backlogPerSlot per slot of its
// concurrency limit as it stands): a provider whose calls hang stops being
// claimed for once its share is full, and its due backlog does not keep
// other providers' recipients in the store.
func (d *Dispatcher) Run(ctx context.Context, grace time.Duration) {
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()

	done := make(chan finished)
	freed := make(chan struct{}, 1) // a slot was given back
	var sends sync.WaitGroup
	start := func(b batch) {
		sends.Go(func() {
			sb := sentBatch{batch: b}
			d.send(sendCtx, &sb)
			select {
			case freed <- struct{}{}:
			default:
			}
			d.record(sendCtx, sb)
			requeued := slices.ContainsFunc(sb.outcomes, func(o Outcome) bool { return o.State == StateQueued })
			done <- finished{b.provider, len(b.jobs), requeued}
		})
	}

	held := map[string]int{}        // claimed, not yet recorded, by provider
	waiting := map[string][]batch{} // claimed, waiting for a slot, by provider
	claimNeeded := true             // something changed since the last claim
	// backlog: the last claim took all its quota allowed of some provider,
	// so more may be due in the store once a slot is free. Otherwise a
	// finished batch needs no claim: what comes due later is in wakeAt,
	// and fresh submissions come through the hand-off or wake Run.
	backlog := false
	var pacedFull []string // paced providers with no room left at the last claim
	var lastClaim, wakeAt time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		// The claim gap and the timer run on the clock timers use; due
		// times on opt.Now, the clock recipients are scheduled by.
		clock := time.Now()
		for _, b := range d.batches(d.handoff.take()) {
			b.handedOff = true
			held[b.provider] += len(b.jobs)
			waiting[b.provider] = append(waiting[b.provider], b)
		}
		if claimNeeded && (len(waiting) == 0 || clock.Sub(lastClaim) >= claimGap) {
			now := d.opt.Now()
			quota, limit := d.quota(held, d.room(waiting, clock))
			got := map[string]int{}
			n := 0
			for _, b := range d.claim(ctx, now, limit, quota) {
				held[b.provider] += len(b.jobs)
				waiting[b.provider] = append(waiting[b.provider], b)
				got[b.provider] += len(b.jobs)
				n += len(b.jobs)
			}
			backlog = n >= limit
			for p, q := range quota {
				backlog = backlog || got[p] >= q
			}
			claimNeeded, lastClaim = false, clock
			// Sleep until the next due recipient of a provider with room
			// (the claim may have filled some); a paced provider without
			// room wakes the dispatcher when its pace gives some (paceAt).
			room := d.room(waiting, clock)
			pacedFull = pacedFull[:0]
			for p, n := range room {
				if n <= 0 {
					pacedFull = append(pacedFull, p)
				}
			}
			wakeAt = clock.Add(d.idle(ctx, now, d.fullAfter(held, room)))
		}
		// Every waiting batch whose provider has a free slot, and room in
		// its pace, goes now (or its first recipients, as many as the pace
		// lets go).
		for p, q := range waiting {
			floor := 0
			for _, b := range q {
				floor = max(floor, b.floor)
			}
			for len(q) > 0 {
				b, ok := d.acquire(&q[0], floor)
				if !ok {
					break
				}
				start(b)
				if len(q[0].jobs) == 0 {
					q = q[1:]
				}
			}
			if len(q) == 0 {
				delete(waiting, p)
			} else {
				waiting[p] = q
			}
		}
		// Wake for the next due recipient, or for a claim postponed by
		// claimGap: however long batches wait for slots, due work of
		// other providers is noticed when due.
		at := wakeAt
		if claimNeeded {
			at = lastClaim.Add(claimGap)
		}
		if t, ok := d.paceAt(waiting, pacedFull, !claimNeeded); ok && t.Before(at) {
			at = t
		}
		timer.Reset(max(time.Until(at), 0))
		quota, _ := d.quota(held, d.room(waiting, clock))
		d.handoff.publish(quota)
		select {
		case <-ctx.Done():
		case f := <-done:
			held[f.provider] -= f.n
			if held[f.provider] <= 0 {
				delete(held, f.provider)
			}
			claimNeeded = claimNeeded || backlog || f.requeued
		case <-d.handoff.ready:
		case <-freed:
		case <-d.wake:
			claimNeeded = true
		case name := <-d.recovered:
			d.retryNow(ctx, name)
			claimNeeded = true
		case <-timer.C:
			claimNeeded = true
		}
	}
	// What is claimed but never started (waiting for a slot or its pace,
	// or handed off since the last turn) is given back to the store, so
	// that another instance sends it now rather than after its lease. The
	// hand-off takes nothing more; what it accepted from submissions whose
	// transactions are still under way is waited for (within the grace
	// period) and given back with the rest, in one write, while the sends
	// in flight go on.
	d.handoff.publish(nil)
	var unstarted []Job
	for _, q := range waiting {
		for _, b := range q {
			unstarted = append(unstarted, b.jobs...)
		}
	}
	graceEnd := time.Now().Add(grace)
	graceTimer := time.NewTimer(grace)
	defer graceTimer.Stop()
	graceC := graceTimer.C
	for graceC != nil && !d.handoff.settled() {
		select {
		case <-done:
		case <-freed:
		case <-d.handoff.ready:
		case <-graceC:
			// What the hand-off delivers from now on stays claimed
			// until its lease.
			graceC = nil
			cancelSends()
		}
		unstarted = append(unstarted, d.handoff.take()...)
	}
	// The release may run past the grace period by releaseAfterGrace at
	// most, so that what waited is given back even when the grace ran
	// out first.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), max(time.Until(graceEnd), releaseAfterGrace))
	d.release(rctx, append(unstarted, d.handoff.take()...))
	rcancel()

	sendsDone := make(chan struct{})
	go func() { sends.Wait(); close(sendsDone) }()
	for {
		select {
		case <-done:
		case <-freed:
		case <-graceC:
			graceC = nil
			cancelSends()
		case <-sendsDone:
			return
		}
	}
}

// releaseAfterGrace is how long the write that gives back, at shutdown,
// what was claimed but never started may take once the grace period is
// over.
const releaseAfterGrace = time.Second

// release gives back to the store, at shutdown, jobs it claimed that were
// never started (see Releaser). It cannot fail anything: a store that
// cannot release them leaves them to their lease, or to Recover.
func (d *Dispatcher) release(ctx context.Context, jobs []Job) {
	r, ok := d.store.(Releaser)
	if !ok || len(jobs) == 0 {
		return
	}
	n, err := r.Release(ctx, jobs, d.opt.Now())
	if err != nil {
		d.opt.Log.WarnContext(ctx, "releasing recipients claimed but not sent; they wait for their lease", "recipients", len(jobs), "err", err)
		return
	}
	d.opt.Log.InfoContext(ctx, "released recipients claimed but not sent", "recipients", n)
}

// quota is what the next claim may take: for each configured provider,
// backlogPerSlot per slot of its concurrency limit now less what it holds,
// and for a paced one no more than its room (see room); for providers no
// longer configured, othersQuota less what they hold. limit is the sum.
func (d *Dispatcher) quota(held, room map[string]int) (quota map[string]int, limit int) {
	set := d.set.Load()
	quota = make(map[string]int, len(set.limits))
	others := othersQuota
	for p, n := range held {
		if set.limits[p] == nil {
			others -= n
		}
	}
	limit = max(others, 0)
	for p, l := range set.limits {
		q := max(l.current()*backlogPerSlot-held[p], 0)
		if r, paced := room[p]; paced {
			q = max(min(q, r), 0)
		}
		quota[p] = q
		limit += q
	}
	return quota, limit
}

// fullAfter names the configured providers whose quota is used up: their
// due recipients cannot be claimed now, and must not wake the dispatcher.
func (d *Dispatcher) fullAfter(held, room map[string]int) []string {
	quota, _ := d.quota(held, room)
	var full []string
	for p, q := range quota {
		if q == 0 {
			full = append(full, p)
		}
	}
	slices.Sort(full)
	return full
}

// acquire takes a slot of b's provider's concurrency limit (or of floor,
// if higher) if one is free, and if the provider is paced, counts b's
// recipients by its pacer: it returns the batch to start, b whole or, if
// the pace lets only some go now, its first recipients (leaving the others
// in b). A provider no longer configured has no limit. The batch keeps the
// limit and the pacer it took from, so a reload that changes them
// meanwhile gets back what it gives to the right place.
func (d *Dispatcher) acquire(b *batch, floor int) (batch, bool) {
	set := d.set.Load()
	lim := set.limits[b.provider]
	if lim != nil && !lim.acquire(floor) {
		return batch{}, false
	}
	out := *b
	out.slot = lim
	if pc := set.pacers[b.provider]; pc != nil {
		now := time.Now() // the clock the pacer's timers run on
		n := pc.take(now, len(b.jobs))
		if n == 0 {
			if lim != nil {
				lim.release(callSample{})
			}
			return batch{}, false
		}
		out.jobs, out.pacer, out.pacedAt = b.jobs[:n:n], pc, now
	}
	b.jobs = b.jobs[len(out.jobs):]
	return out, true
}

// release gives back b's slot, with what its call said of the provider.
func release(b batch, s callSample) {
	if b.slot != nil {
		b.slot.release(s)
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

// idle returns how long to sleep before the next due recipient of a
// provider not in full. It is at least claimGap: a recipient whose
// provider is gone from the configuration, due while othersQuota is used
// up, must not make the dispatcher spin.
func (d *Dispatcher) idle(ctx context.Context, now time.Time, full []string) time.Duration {
	t, ok, err := d.store.NextDue(ctx, full...)
	if err != nil || !ok {
		return maxIdle
	}
	return min(max(t.Sub(now), claimGap), maxIdle)
}

// claim takes up to limit due recipients, within quota, and groups them
// into batches.
func (d *Dispatcher) claim(ctx context.Context, now time.Time, limit int, quota map[string]int) []batch {
	if limit <= 0 {
		return nil
	}
	jobs, err := d.store.Claim(ctx, now, limit, quota, d.lease)
	if err != nil {
		if ctx.Err() == nil {
			d.opt.Log.ErrorContext(ctx, "claiming due recipients", "err", err)
		}
		return nil
	}
	return d.batches(jobs)
}

// batches groups claimed jobs into batches: the recipients of one message
// going to one provider, as many in one call as the provider takes.
func (d *Dispatcher) batches(jobs []Job) []batch {
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
			nb := batch{msg: j.Message, provider: j.Recipient.Provider}
			if l := set.limits[nb.provider]; l != nil {
				nb.floor = l.current()
			}
			out = append(out, nb)
			i = len(out) - 1
			index[key] = i
		}
		out[i].jobs = append(out[i].jobs, j)
	}
	return out
}

// send makes one provider call for sb's batch and puts every outcome in
// sb, for record. The batch holds a slot of its provider's concurrency
// limit (see Run), which send gives back once the call is over, telling
// the limit how the call went.
func (d *Dispatcher) send(ctx context.Context, sb *sentBatch) {
	b := sb.batch
	var sample callSample
	defer func() { release(b, sample) }()
	var called int // recipients the provider was asked to send to
	if b.pacer != nil {
		// Those that expired, opted out, or met an open circuit were not
		// sent: their place in the pace is given back.
		defer func() { b.pacer.refund(b.pacedAt, len(b.jobs)-called) }()
	}
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
	if !b.handedOff || b.msg.consentAt.IsZero() || now.Sub(b.msg.consentAt) >= consentFresh {
		live, outcomes = d.consent(ctx, b, live, outcomes, now)
	}
	p := set.providers[b.provider]
	if len(live) > 0 && p == nil {
		// Its provider was removed from the configuration.
		err := &Error{Reason: ReasonNoRoute, Msg: "provider " + b.provider + " is no longer configured"}
		for _, j := range live {
			outcomes = append(outcomes, d.retryOrFail(set, j, b.provider, err, now))
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
		var results []Result
		var probeAt time.Time
		var err error
		results, probeAt, sample, err = d.call(ctx, sb.br, p, req)
		if sample.result != callNone {
			called = len(req.To)
		}
		now = d.opt.Now()
		sb.call, sb.took = len(outcomes), now.Sub(start)
		carried := false
		for i, j := range live {
			rerr := err
			if err == nil {
				rerr = results[i].Err
			}
			if rerr == nil {
				outcomes = append(outcomes, Outcome{RecipientID: j.Recipient.ID, State: StateSent,
					Provider: b.provider, ProviderID: results[i].ProviderID, Cost: results[i].Cost, Info: results[i].Info, At: now})
				continue
			}
			o := d.retryOrFail(set, j, b.provider, rerr, now)
			if !probeAt.IsZero() && o.State == StateQueued && o.Provider == b.provider {
				// This recipient carries the circuit's next probe.
				o.NextAttempt, carried = probeAt, true
			}
			outcomes = append(outcomes, o)
		}
		if !probeAt.IsZero() && !carried {
			sb.br.uncarry() // they failed over or for good: another carries it
		}
	}
	d.annotate(b, p, outcomes)
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

// maxRecordBackoff caps the wait between tries to record outcomes.
const maxRecordBackoff = 5 * time.Second

// record stores a batch's outcomes and then reports the call and the
// final outcomes: once told, an observer finds them in the store.
//
// The provider call already happened: if the store fails to record what
// came of it, record tries again (backoff from recordBackoff, doubling up
// to maxRecordBackoff) until the batch's lease runs out, rather than leave
// a sent SMS to be claimed again and sent twice when its lease ends. It
// stops early on an error no retry can mend (the recipient is gone), and
// after one more try once the shutdown grace period is over (ctx done):
// then the lease settles it, at-least-once.
func (d *Dispatcher) record(ctx context.Context, sb sentBatch) {
	// The lease of the batch: the earliest time any of its recipients
	// can be claimed again.
	var leaseEnd time.Time
	for _, j := range sb.jobs {
		if leaseEnd.IsZero() || j.Recipient.NextAttempt.Before(leaseEnd) {
			leaseEnd = j.Recipient.NextAttempt
		}
	}
	wait := d.recordBackoff
	var err error
	for try := 1; ; try++ {
		cctx, cancel := context.WithTimeout(Late(context.WithoutCancel(ctx)), 30*time.Second)
		err = d.store.Complete(cctx, sb.outcomes)
		cancel()
		if err == nil || errors.Is(err, ErrNotFound) || !IsTemporary(err) || ctx.Err() != nil ||
			!d.opt.Now().Add(wait).Before(leaseEnd) {
			break
		}
		d.opt.Log.WarnContext(ctx, "recording send outcomes; trying again", "message", sb.msg.ID, "try", try, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done(): // the grace period is over: one last try
		}
		t.Stop()
		wait = min(2*wait, maxRecordBackoff)
	}
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
	if d.opt.MailQueued != nil && slices.ContainsFunc(sb.outcomes, func(o Outcome) bool { return o.Mail != nil }) {
		d.opt.MailQueued()
	}
	if d.opt.Final == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, o := range sb.outcomes {
		if o.State.Final() {
			d.opt.Final(cctx, sb.msg, o)
		}
	}
}

// annotate adds to a batch's outcomes what is stored with them: the
// conversation of each recipient, one bounce for those that failed, and
// the success ("relayed", when p reports no delivery) and delay
// notifications due. Each mail rides on the first outcome of its kind, so
// no outcome carries two.
func (d *Dispatcher) annotate(b batch, p Provider, outcomes []Outcome) {
	if d.opt.Touch == nil && d.opt.Bounce == nil && d.opt.Notice == nil {
		return
	}
	byID := make(map[int64]Recipient, len(b.jobs))
	for _, j := range b.jobs {
		byID[j.Recipient.ID] = j.Recipient
	}
	var failed []Failure
	var relayed, delayed []Notice
	first, firstRelayed, firstDelayed := -1, -1, -1
	relays := p != nil && !reportsDelivery(p)
	for i := range outcomes {
		o := &outcomes[i]
		r := byID[o.RecipientID]
		if d.opt.Touch != nil {
			o.Conversation = d.opt.Touch(b.msg, r, *o)
		}
		switch {
		case o.State == StateFailed:
			if first < 0 {
				first = i
			}
			failed = append(failed, Failure{To: r.To, ORCPT: r.ORCPT, Notify: r.Notify, Provider: o.Provider,
				Reason: o.Reason, Error: o.Error, At: o.At})
		case o.State == StateSent && relays && d.opt.Notice != nil && o.Provider == p.Name() && r.Notify.Wants(NotifySuccess):
			if firstRelayed < 0 {
				firstRelayed = i
			}
			relayed = append(relayed, Notice{RecipientID: r.ID, To: r.To, ORCPT: r.ORCPT, Provider: o.Provider,
				ProviderID: o.ProviderID, At: o.At})
		case o.State == StateQueued && d.delayDue(b.msg, r, o.At):
			if firstDelayed < 0 {
				firstDelayed = i
			}
			o.DelayNotified = true
			delayed = append(delayed, Notice{RecipientID: r.ID, To: r.To, ORCPT: r.ORCPT, Provider: o.Provider,
				Detail: o.Error, At: o.At, WillRetryUntil: d.deadline(b.msg, r)})
		}
	}
	if first >= 0 && d.opt.Bounce != nil {
		outcomes[first].Mail = d.opt.Bounce(b.msg, failed)
		markNotified(outcomes, StateFailed, outcomes[first].Mail, "failed", func(r Recipient) bool { return r.Notify.Wants(NotifyFailure) }, byID)
	}
	if firstRelayed >= 0 {
		outcomes[firstRelayed].Mail = d.opt.Notice(b.msg, ActionRelayed, relayed)
		markNotified(outcomes, StateSent, outcomes[firstRelayed].Mail, ActionRelayed, func(r Recipient) bool { return r.Notify.Wants(NotifySuccess) }, byID)
	}
	if firstDelayed >= 0 {
		outcomes[firstDelayed].Mail = d.opt.Notice(b.msg, ActionDelayed, delayed)
		for i := range outcomes {
			if outcomes[i].DelayNotified && outcomes[firstDelayed].Mail != nil {
				outcomes[i].Notified = ActionDelayed
			}
		}
	}
}

// markNotified records action on the outcomes in state whose recipients
// the mail (when one was built) reports.
func markNotified(outcomes []Outcome, state State, mail *OutMail, action Action, asked func(Recipient) bool, byID map[int64]Recipient) {
	if mail == nil {
		return
	}
	for i := range outcomes {
		if outcomes[i].State == state && asked(byID[outcomes[i].RecipientID]) {
			outcomes[i].Notified = action
		}
	}
}

// delayDue reports whether r, to be retried, is owed its one NOTIFY=DELAY
// notification: it asked for one, has none yet, and has waited (since it
// became due) longer than DelayWarning.
func (d *Dispatcher) delayDue(m *Message, r Recipient, now time.Time) bool {
	if d.opt.DelayWarning <= 0 || d.opt.Notice == nil || r.DelayNotified || !r.Notify.Wants(NotifyDelay) {
		return false
	}
	base := m.Created
	if m.SendAt.After(base) {
		base = m.SendAt
	}
	return now.Sub(base) > d.opt.DelayWarning
}

// call runs one provider call under its timeout and circuit breaker, and
// checks the provider kept its contract. If the recipients are to carry
// the circuit's next probe (see breaker), probeAt is when to retry them.
// The sample is what the call says of the provider's load, for its
// concurrency limit; its result is callNone if the circuit let no call
// through, callCutOff if our shutdown cut the call short.
func (d *Dispatcher) call(ctx context.Context, br *breaker, p Provider, req *SendRequest) (results []Result, probeAt time.Time, sample callSample, err error) {
	now := d.opt.Now()
	ok, next, probe := br.allow(now)
	if !ok {
		err := &Error{Reason: ReasonProviderDown, Temp: true, RetryAfter: next.Sub(now),
			Msg: p.Name() + ": circuit open after repeated failures; not calling it until " + next.UTC().Format(time.RFC3339)}
		if probe {
			probeAt = next
		}
		return nil, probeAt, callSample{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, d.opt.SendTimeout)
	defer cancel()
	results, err = p.Send(cctx, req)
	if err == nil && len(results) != len(req.To) {
		err = Temporary(ReasonProviderDown, nil, "%s returned %d results for %d recipients", p.Name(), len(results), len(req.To))
	}
	end := d.opt.Now()
	down := err != nil && IsTemporary(err)
	if ctx.Err() == nil { // a call cut off by our shutdown says nothing of the provider
		probeAt = br.record(end, down, probe, RetryAfterOf(err))
		sample = callSample{start: now, end: end, result: callOK}
		switch {
		case down && (cctx.Err() != nil || isTimeout(err)):
			sample.result = callTimedOut
		case down:
			sample.result = callFailed
		}
	} else {
		sample.result = callCutOff
		if probe {
			br.record(end, false, true, 0) // let the next call probe
		}
	}
	d.opt.Log.DebugContext(ctx, "provider call", "provider", p.Name(), "message", req.MessageID,
		"recipients", len(req.To), "took", end.Sub(now), "err", err)
	return results, probeAt, sample, err
}

// isTimeout reports whether a call's error is a timeout (of our context,
// or of the provider client's own).
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &t) && t.Timeout())
}

// retryOrFail decides what a failed attempt leads to: a retry (maybe at
// the next provider of the route) or a final failure.
//
// Failover is decided on the attempts at the current provider (the store
// counts them, and starts again at zero at the next one), and the next
// provider is tried when it may be called: after its circuit's cooldown
// and the last Retry-After it sent, not at once.
func (d *Dispatcher) retryOrFail(set *providerSet, j Job, provider string, err error, now time.Time) Outcome {
	r := j.Recipient
	next := nextProvider(r.Providers, provider)
	reason := ReasonOf(err)
	temporary := IsTemporary(err)
	failover := func() Outcome {
		at := now
		if br := set.breakers[next]; br != nil {
			at = br.readyAt(now)
		}
		d.opt.Log.WarnContext(context.Background(), "failing over", "recipient", r.ID, "from", provider, "to", next, "at", at, "err", err)
		return Outcome{RecipientID: r.ID, State: StateQueued, Provider: next, Error: err.Error(), NextAttempt: at, At: now}
	}
	switch {
	case !temporary && next != "" && (reason == ReasonProviderRejected || reason == ReasonProviderAuth):
		// Another provider may well accept what this one refused.
		return failover()
	case reason == ReasonProviderAuth:
		// Our credentials are wrong: no message is at fault, so none is
		// failed for it. Hold them until the configuration is fixed (or
		// they expire), checking back at the backoff cap.
		d.opt.Log.ErrorContext(context.Background(), "provider refused our credentials; fix its configuration", "provider", provider, "err", err)
		return Outcome{RecipientID: r.ID, State: StateQueued, Provider: provider, Error: err.Error(), NextAttempt: now.Add(d.opt.RetryMax), At: now}
	case !temporary:
		return d.fail(j, provider, err, now)
	}
	if next != "" && r.ProviderAttempts >= d.opt.FailoverAfter {
		return failover()
	}
	delay := d.backoff(r.ProviderAttempts)
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

// nextProvider is the provider after current in a route. Configuration
// refuses a route naming a provider twice; should one be stored anyway
// (from an older version), a provider already in the route up to current
// is skipped, so failover moves only forward and ends.
func nextProvider(route []string, current string) string {
	i := slices.Index(route, current)
	if i < 0 {
		return ""
	}
	for _, p := range route[i+1:] {
		if !slices.Contains(route[:i+1], p) {
			return p
		}
	}
	return ""
}
