package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// InboxPoller is a provider without inbound callbacks whose received SMS
// are fetched instead.
type InboxPoller interface {
	// PollInbox returns the SMS received after the one whose DedupeKey is
	// after ("" for the start), oldest first. Each one's DedupeKey is the
	// cursor from which the next poll goes on.
	PollInbox(ctx context.Context, after string) ([]Inbound, error)
}

// ReportPoller is a provider whose delivery reports are fetched.
type ReportPoller interface {
	// PollReports returns what the provider knows of the SMS it accepted
	// under providerID.
	PollReports(ctx context.Context, providerID string) ([]DeliveryReport, error)
}

// PollOptions configures a Poller.
type PollOptions struct {
	Interval time.Duration
	// Holder names this daemon instance: of several instances sharing a
	// store, only the one holding the job's lease polls, and another takes
	// over when it stops renewing (after three intervals).
	Holder string
	// ReportsFor is how long after sending a delivery report is still
	// asked for (default 48h).
	ReportsFor time.Duration
	Now        func() time.Time
	Log        *slog.Logger
	// Ran, if set, is called after each round, when Status has its news.
	Ran func()
}

// Poller fetches one provider's inbound SMS and delivery reports.
type Poller struct {
	b        *Bridge
	provider string
	opt      PollOptions
	started  time.Time

	mu   sync.Mutex
	last PollStatus // what the last round did (Status)
}

// PollStatus is what a poller's last round did, as this instance saw it.
type PollStatus struct {
	Provider string
	Interval time.Duration
	// Ran is when the last round ended; zero before the first.
	Ran time.Time
	// Elsewhere is set when another instance holds the job's lease, so
	// this one did not poll.
	Elsewhere bool
	// Err is why the round, or part of it, failed; "" when it went well.
	Err string
}

// Status reports the poller's last round.
func (p *Poller) Status() PollStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *Poller) ran(elsewhere bool, errs ...error) {
	st := PollStatus{Provider: p.provider, Interval: p.opt.Interval, Ran: p.opt.Now(), Elsewhere: elsewhere}
	if err := errors.Join(errs...); err != nil {
		st.Err = err.Error()
	}
	p.mu.Lock()
	p.last = st
	p.mu.Unlock()
	if p.opt.Ran != nil {
		p.opt.Ran()
	}
}

// NewPoller returns a poller for the provider named name, which must be
// one of the bridge's providers and implement InboxPoller, ReportPoller or
// both.
func (b *Bridge) NewPoller(name string, opt PollOptions) (*Poller, error) {
	p := b.pol().providers[name]
	_, ip := p.(InboxPoller)
	_, rp := p.(ReportPoller)
	if !ip && !rp {
		return nil, errors.New("bridge: provider " + name + " cannot be polled")
	}
	if opt.Interval <= 0 {
		opt.Interval = time.Minute
	}
	if opt.ReportsFor <= 0 {
		opt.ReportsFor = 48 * time.Hour
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = b.opt.Log
	}
	return &Poller{b: b, provider: name, opt: opt, started: opt.Now(),
		last: PollStatus{Provider: name, Interval: opt.Interval}}, nil
}

// Run polls every interval until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	t := time.NewTicker(p.opt.Interval)
	defer t.Stop()
	for {
		p.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll runs one round, if this instance holds the job's lease. Errors are
// logged: the next round tries again from the saved cursor.
func (p *Poller) Poll(ctx context.Context) {
	job := "poll:" + p.provider
	ok, err := p.b.store.Lease(ctx, job, p.opt.Holder, p.opt.Now(), 3*p.opt.Interval)
	if err != nil {
		p.opt.Log.WarnContext(ctx, "taking the poll lease", "provider", p.provider, "err", err)
		p.ran(false, fmt.Errorf("taking the poll lease: %w", err))
		return
	}
	if !ok {
		p.ran(true) // another instance polls
		return
	}
	// The provider as currently configured: a reload may have replaced it
	// (or removed it).
	prov := p.b.pol().providers[p.provider]
	var inErr, reportErr error
	if ip, ok := prov.(InboxPoller); ok {
		if err := p.pollInbox(ctx, ip); err != nil && ctx.Err() == nil {
			p.opt.Log.WarnContext(ctx, "polling inbound SMS", "provider", p.provider, "err", err)
			inErr = fmt.Errorf("inbound SMS: %w", err)
		}
	}
	if rp, ok := prov.(ReportPoller); ok {
		if err := p.pollReports(ctx, rp); err != nil && ctx.Err() == nil {
			p.opt.Log.WarnContext(ctx, "polling delivery reports", "provider", p.provider, "err", err)
			reportErr = fmt.Errorf("delivery reports: %w", err)
		}
	}
	p.ran(false, inErr, reportErr)
}

func (p *Poller) pollInbox(ctx context.Context, inbox InboxPoller) error {
	name := "inbox:" + p.provider
	after, err := p.b.store.Cursor(ctx, name)
	if err != nil {
		return err
	}
	msgs, err := inbox.PollInbox(ctx, after)
	if err != nil {
		return err
	}
	for i := range msgs {
		in := msgs[i]
		in.Provider = p.provider
		// With no cursor yet (the first poll ever), the inbox holds the
		// account's whole history: log it, but mail only what arrived
		// since this daemon started (give or take a poll: provider times
		// are whole seconds), or people get months of old SMS.
		logOnly := after == "" && !in.Received.IsZero() && in.Received.Before(p.started.Add(-p.opt.Interval))
		// The cursor moves with each message, in its transaction: a crash
		// between two leaves neither a gap nor a message counted twice.
		if _, err := p.b.receive(ctx, &in, &Cursor{Name: name, Value: in.DedupeKey}, logOnly); err != nil {
			var e *Error
			if errors.As(err, &e) && !e.Temp {
				// A message we can never take (no sender) must not stop
				// the ones after it; the next one moves the cursor past it.
				p.opt.Log.WarnContext(ctx, "skipping an inbound SMS", "provider", p.provider, "id", in.DedupeKey, "err", err)
				continue
			}
			return err
		}
	}
	return nil
}

// reportsPerPoll is how many provider ids one round asks about: with n
// sends waiting for a final report, each is asked about at least every
// n/reportsPerPoll rounds (see Conversations.Outstanding), until
// ReportsFor after it was sent.
const reportsPerPoll = 100

func (p *Poller) pollReports(ctx context.Context, reports ReportPoller) error {
	now := p.opt.Now()
	ids, err := p.b.store.Outstanding(ctx, p.provider, now.Add(-p.opt.ReportsFor), now, reportsPerPoll)
	if err != nil {
		return err
	}
	for _, id := range ids {
		got, err := reports.PollReports(ctx, id)
		if err != nil {
			if IsTemporary(err) {
				// The provider is unwell: end the round. The ids it did
				// not reach count as asked and wait one turn, as the
				// others do.
				return err
			}
			// An id the provider will never answer for must not stop
			// the ones after it.
			p.opt.Log.WarnContext(ctx, "polling a delivery report", "provider", p.provider, "id", id, "err", err)
			continue
		}
		for _, r := range got {
			r.Provider, r.ProviderID = p.provider, id
			if _, err := p.b.Report(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}
