package bridge_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

// modelSeeds is how many seeded schedules TestDispatchModel runs: 50 by
// default, 4 under the race detector (see raceEnabled); -model.seeds=1000
// explores further, -model.seed=N replays one.
var (
	modelSeeds = flag.Int("model.seeds", 0, "TestDispatchModel: number of seeds (0: 50, or 4 under -race)")
	modelSeed  = flag.Uint64("model.seed", 0, "TestDispatchModel: run this seed only")
)

// The model's dispatcher settings: small, so that retries, backoff caps,
// circuits and expiry all happen within a few minutes of the fake clock.
const (
	mRetryMin      = time.Second
	mRetryMax      = 8 * time.Second
	mSendTimeout   = 4 * time.Second
	mMaxAge        = time.Minute
	mFailoverAfter = 3
	mSubmitFor     = 30 * time.Second // submissions arrive over this long
	mScheduleMax   = 30 * time.Second // how far ahead a scheduled one is due
	mTick          = time.Second      // invariants are checked this often
	// mSlack is how long a due recipient of a provider with a free slot
	// may stay unclaimed: the dispatcher's claim gap, and a millisecond
	// for the store's millisecond times.
	mSlack = 25 * time.Millisecond
)

// behaviour is what a model provider does with one call.
type behaviour int

const (
	bSuccess behaviour = iota
	b503               // temporary, no Retry-After
	b429               // temporary, with Retry-After
	b401               // our credentials refused
	bReject            // permanent refusal of this message
	bHang              // no answer until the send timeout
	bSlow              // success after a while (less than the timeout)
)

func (b behaviour) String() string {
	return [...]string{"success", "503", "429", "401", "reject", "hang", "slow"}[b]
}

// outage is a time when a provider is down: every call fails with kind.
type outage struct {
	from, to time.Duration // since the schedule's start
	kind     behaviour     // b503 or bHang
}

// modelCall is one call a model provider received.
type modelCall struct {
	provider string
	at       time.Time
	did      behaviour
}

// modelProvider answers as the seeded schedule says: during an outage as
// the outage does, otherwise by a hash of (seed, provider, number, how
// many times this number came to this provider), so a schedule replays the
// same whatever order the goroutines run in.
type modelProvider struct {
	name    string
	seed    uint64
	start   time.Time
	outages []outage
	w       *modelWorld
}

// modelWorld is what the model's providers did, for the invariants.
type modelWorld struct {
	mu       sync.Mutex
	calls    map[string][]modelCall // by number
	inflight map[string]int         // calls under way, by provider
	at       map[string][]time.Time // when each call came, by provider
	ended    map[string]time.Time   // when the last call ended, by provider
	rates    map[string]modelRate   // the paced providers
	claimed  map[string]int         // recipients claimed, by provider, at the check
	open     map[string]bool        // providers whose circuit is open
	limit    map[string]int         // each provider's concurrency limit, as the dispatcher reports it
	most     map[string]int         // the most calls a provider may take at once: its fixed limit or cap
	over     []string               // calls that went over a provider's most
}

// modelRate is a provider's pace as the model sees it: at most burst
// calls in any window.
type modelRate struct {
	burst  int
	window time.Duration
}

// full reports whether a provider paced at r may have had no room to
// claim another recipient within the last slack: its calls in the window
// before it and the recipients claimed for it (which the dispatcher
// counts against the pace before they start) fill the burst.
func (r modelRate) full(calls []time.Time, claimed int, now time.Time) bool {
	n := claimed
	for _, at := range calls {
		if !at.Before(now.Add(-r.window - mSlack)) {
			n++
		}
	}
	return n >= r.burst
}

func (p *modelProvider) Name() string { return p.name }

func (p *modelProvider) decide(to string, n int) (behaviour, time.Duration) {
	since := time.Since(p.start)
	for _, o := range p.outages {
		if since >= o.from && since < o.to {
			return o.kind, 0
		}
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%s|%d", p.name, to, n)
	r := rand.New(rand.NewPCG(p.seed, h.Sum64()))
	switch x := r.IntN(100); {
	case x < 66:
		return bSuccess, 0
	case x < 74:
		return b503, 0
	case x < 82:
		return b429, time.Duration(1+r.IntN(5)) * time.Second
	case x < 86:
		return b401, 0
	case x < 90:
		return bReject, 0
	case x < 95:
		return bHang, 0
	default:
		return bSlow, time.Duration(500+r.IntN(3000)) * time.Millisecond
	}
}

func (p *modelProvider) Send(ctx context.Context, req *bridge.SendRequest) ([]bridge.Result, error) {
	to := req.To[0] // no Batcher: one recipient a call
	w := p.w
	w.mu.Lock()
	n := 0
	for _, c := range w.calls[to] {
		if c.provider == p.name {
			n++
		}
	}
	did, d := p.decide(to, n)
	w.calls[to] = append(w.calls[to], modelCall{provider: p.name, at: time.Now(), did: did})
	w.at[p.name] = append(w.at[p.name], time.Now())
	w.inflight[p.name]++
	if n := w.inflight[p.name]; n > w.most[p.name] {
		w.over = append(w.over, fmt.Sprintf("%s: %d calls at once at %v, at most %d", p.name, n, time.Since(p.start), w.most[p.name]))
	}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.inflight[p.name]--
		w.ended[p.name] = time.Now()
		w.mu.Unlock()
	}()
	switch did {
	case b503:
		return nil, bridge.Temporary(bridge.ReasonProviderDown, nil, "HTTP 503")
	case b429:
		return nil, &bridge.Error{Reason: bridge.ReasonProviderDown, Temp: true, RetryAfter: d, Msg: "HTTP 429"}
	case b401:
		return nil, &bridge.Error{Reason: bridge.ReasonProviderAuth, Msg: "HTTP 401"}
	case bReject:
		return nil, bridge.Permanent(bridge.ReasonProviderRejected, "", "HTTP 400: refused")
	case bHang:
		<-ctx.Done()
		return nil, bridge.Temporary(bridge.ReasonProviderDown, ctx.Err(), "timeout")
	case bSlow:
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, bridge.Temporary(bridge.ReasonProviderDown, ctx.Err(), "timeout")
		}
	}
	return []bridge.Result{{ProviderID: p.name + "-" + to}}, nil
}

// TestDispatchModel runs seeded random schedules through the dispatcher
// and the real SQLite store, on synctest's fake clock: submissions (some
// scheduled) over routes with fallbacks, to providers that succeed, fail
// (503, 429 with Retry-After, 401, refusal), hang until the timeout, answer
// slowly, or go down for a while. Every second of the schedule, it checks:
//   - every recipient is final, or queued with a future due time, or due
//     for no longer than the claim gap, or waiting for a provider whose
//     slots are all taken (or came free within the claim gap), or whose
//     circuit is open;
//   - the providers a recipient was sent to follow its route in order,
//     with at most FailoverAfter calls at a provider that has a next one;
//   - no recipient was accepted by a provider twice (the model has no
//     crash);
//   - no paced provider got more calls than its rate allows (burst in any
//     window), and a due recipient waits for its pace only while the
//     provider had all the calls it allows;
//   - no provider had more calls at once than its fixed limit, or the cap
//     of its adaptive limit, and an adaptive limit stays between 1 and
//     its cap (the "free slot" above is by the limit as it stands);
//   - recipients the dispatcher claimed wait for their call only while
//     their provider has no free slot (or its pace no room).
//
// At the end every recipient is final, and sent exactly when a provider
// accepted it.
func TestDispatchModel(t *testing.T) {
	n := *modelSeeds
	if n == 0 {
		n = 50
		if raceEnabled {
			n = 4
		}
	}
	seeds := make([]uint64, 0, n)
	if *modelSeed != 0 {
		seeds = append(seeds, *modelSeed)
	} else {
		for i := range n {
			seeds = append(seeds, uint64(i+1))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			bubble(t, func(t *testing.T) { runModel(t, seed) })
		})
	}
}

func runModel(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dbPath := filepath.Join(t.TempDir(), "q.db")
	st, err := sqlite.Open(t.Context(), dbPath, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	start := time.Now()
	w := &modelWorld{calls: map[string][]modelCall{}, inflight: map[string]int{}, at: map[string][]time.Time{},
		ended: map[string]time.Time{}, rates: map[string]modelRate{}, open: map[string]bool{}, limit: map[string]int{},
		most: map[string]int{}}
	names := []string{"p0", "p1", "p2"}
	var provs []bridge.Provider
	concurrency := map[string]int{}
	// Paces from a stream of their own, so that each seed's schedule is
	// what it was before providers were paced: a third of the providers
	// at 1 to 3 a second, in bursts of one or two seconds' worth.
	rates := map[string]bridge.Rate{}
	pr := rand.New(rand.NewPCG(seed, 0x9ace))
	for _, name := range names {
		if pr.IntN(3) == 0 {
			k := 1 + pr.IntN(3)
			secs := 1 + pr.IntN(2)
			rates[name] = bridge.Rate{PerSecond: float64(k), Burst: k * secs}
			w.rates[name] = modelRate{burst: k * secs, window: time.Duration(secs) * time.Second}
		}
	}
	for _, name := range names {
		p := &modelProvider{name: name, seed: seed, start: start, w: w}
		for range r.IntN(3) {
			from := time.Duration(r.IntN(80)) * time.Second
			kind := b503
			if r.IntN(2) == 0 {
				kind = bHang
			}
			p.outages = append(p.outages, outage{from, from + time.Duration(5+r.IntN(20))*time.Second, kind})
		}
		provs = append(provs, p)
		concurrency[name] = 1 + r.IntN(3)
		w.most[name] = concurrency[name]
	}
	// A third of the providers adapt their concurrency instead, up to a
	// cap of 1 to 4 (from a stream of their own, as the paces).
	maxConcurrency := map[string]int{}
	ar := rand.New(rand.NewPCG(seed, 0xada9))
	for _, name := range names {
		if ar.IntN(3) == 0 {
			delete(concurrency, name)
			maxConcurrency[name] = 1 + ar.IntN(4)
			w.most[name] = maxConcurrency[name]
		}
	}
	// Three prefixes, each with a route of one to three distinct providers.
	prefixes := []string{"+97250", "+97252", "+97254"}
	var routes []bridge.Route
	routeOf := map[string][]string{}
	for _, prefix := range prefixes {
		perm := r.Perm(len(names))
		var rt []string
		for _, i := range perm[:1+r.IntN(len(names))] {
			rt = append(rt, names[i])
		}
		routes = append(routes, bridge.Route{Prefix: prefix, Providers: rt})
		routeOf[prefix] = rt
	}

	d := bridge.NewDispatcher(st, provs, bridge.DispatchOptions{
		RetryMin: mRetryMin, RetryMax: mRetryMax, SendTimeout: mSendTimeout, MaxAge: mMaxAge,
		FailoverAfter: mFailoverAfter, BreakerThreshold: 2 + r.IntN(4), Concurrency: concurrency,
		MaxConcurrency: maxConcurrency, Rates: rates, Log: log,
		BreakerChanged: func(provider string, open bool) {
			w.mu.Lock()
			w.open[provider] = open
			w.mu.Unlock()
		},
		LimitChanged: func(provider string, limit int) {
			w.mu.Lock()
			w.limit[provider] = limit
			w.mu.Unlock()
		},
	})
	bopt := bridge.Options{Region: "IL", Enqueued: d.Wake, Log: log}
	if seed%2 == 1 {
		// Half the schedules hand fresh recipients over as they are
		// stored, as the daemon does; the others leave all to Claim.
		bopt.Handoff = d.Handoff
	}
	b, err := bridge.New(st, provs, routes, []bridge.Account{{Name: "ops", Emails: []string{"*@example.com"}, SenderIDs: []string{"Ops"}}}, bopt)
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := b.Account("a@example.com")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, mSendTimeout); close(done) }()
	defer func() { cancel(); <-done }()

	// The schedule: submissions at random times, a few scheduled for later.
	type submission struct {
		at     time.Duration
		sendAt time.Duration // 0: now
		to     []string
	}
	var subs []submission
	number := 0
	for range 10 + r.IntN(15) {
		s := submission{at: time.Duration(r.Int64N(int64(mSubmitFor)))}
		if r.IntN(6) == 0 {
			s.sendAt = s.at + time.Duration(1+r.IntN(int(mScheduleMax/time.Second)))*time.Second
		}
		for range 1 + r.IntN(3) {
			number++
			s.to = append(s.to, fmt.Sprintf("0%s%07d", prefixes[r.IntN(len(prefixes))][4:], number))
		}
		subs = append(subs, s)
	}
	slices.SortFunc(subs, func(a, b submission) int { return int(a.at - b.at) })

	// The invariants read the queue straight from the file, through a
	// read-only connection of the test's own: one light query a check.
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.PrepareContext(t.Context(), `SELECT to_addr, provider, state, next_attempt, provider_attempts,
		claimed, error FROM recipients`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	check := func(final bool) {
		t.Helper()
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		rs, err := rows.QueryContext(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		var all []queued
		w.claimed = map[string]int{}
		for rs.Next() {
			var q queued
			var next int64
			if err := rs.Scan(&q.to, &q.provider, &q.state, &next, &q.providerAttempts, &q.claimed, &q.err); err != nil {
				t.Fatal(err)
			}
			q.next = time.UnixMilli(next)
			all = append(all, q)
			if q.claimed && q.state == bridge.StateQueued {
				w.claimed[q.provider]++
			}
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		for _, q := range all {
			modelCheck(t, now, final, q, routeOf[q.to[:6]], w)
		}
		for _, o := range w.over {
			t.Error(o)
		}
		for _, name := range names {
			if l := w.limit[name]; l < 1 || l > w.most[name] {
				t.Errorf("%s: concurrency limit %d, want 1 to %d", name, l, w.most[name])
			}
			// Recipients in the dispatcher's hands but not in a call
			// wait for a slot, or for the pace.
			if w.claimed[name] > w.inflight[name] && w.inflight[name] < w.limit[name] && !w.open[name] &&
				now.After(w.ended[name].Add(mSlack)) &&
				(w.rates[name].burst == 0 || !w.rates[name].full(w.at[name], w.claimed[name], now)) {
				t.Errorf("%s: %d recipients claimed, %d in calls, while %d of %d slots are free", name, w.claimed[name],
					w.inflight[name], w.limit[name]-w.inflight[name], w.limit[name])
			}
		}
		// No paced provider is called more than its pace allows.
		for name, rate := range w.rates {
			at := w.at[name]
			for i := rate.burst; i < len(at); i++ {
				if gap := at[i].Sub(at[i-rate.burst]); gap < rate.window {
					t.Errorf("%s paced at %d in %v: calls %d and %d only %v apart", name, rate.burst, rate.window,
						i-rate.burst, i, gap)
				}
			}
		}
	}

	// The last to expire is one scheduled as late as the schedule goes.
	end := mSubmitFor + mScheduleMax + mMaxAge + 2*mRetryMax
	for step := time.Duration(0); step <= end; step += mTick {
		for len(subs) > 0 && subs[0].at <= step {
			s := subs[0]
			subs = subs[1:]
			pass(start.Add(s.at).Sub(time.Now()))
			sub := &bridge.Submission{Account: acct, Channel: bridge.ChannelHTTP, Text: "x"}
			if s.sendAt > 0 {
				sub.SendAt = start.Add(s.sendAt)
			}
			for _, n := range s.to {
				rc, err := b.Resolve(acct, n)
				if err != nil {
					t.Fatalf("resolve %s: %v", n, err)
				}
				sub.Recipients = append(sub.Recipients, rc)
			}
			if _, err := b.Submit(t.Context(), sub); err != nil {
				t.Fatal(err)
			}
		}
		pass(start.Add(step).Sub(time.Now()))
		synctest.Wait()
		check(false)
		if t.Failed() {
			t.Fatalf("seed %d: invariant broken at %v of the schedule", seed, step)
		}
	}
	check(true)
}

// queued is a recipients row as the model reads it.
type queued struct {
	to, provider, err string
	state             bridge.State
	next              time.Time
	providerAttempts  int
	claimed           bool
}

// modelCheck checks one stored recipient against the invariants.
func modelCheck(t *testing.T, now time.Time, final bool, rr queued, route []string, w *modelWorld) {
	t.Helper()
	calls := w.calls[rr.to]
	accepted := 0
	for _, c := range calls {
		if c.did == bSuccess || c.did == bSlow {
			accepted++
		}
	}
	// No recipient is sent twice.
	if accepted > 1 {
		t.Errorf("%s accepted by providers %d times: %+v", rr.to, accepted, calls)
	}
	// The providers called follow the route, forward only, with at most
	// FailoverAfter calls at one that has a next.
	pos, at := 0, 0
	for _, c := range calls {
		i := slices.Index(route, c.provider)
		if i < pos {
			t.Errorf("%s: called %s after %s, against route %v", rr.to, c.provider, route[pos], route)
		}
		if i > pos {
			pos, at = i, 0
		}
		at++
		if pos < len(route)-1 && at > mFailoverAfter {
			t.Errorf("%s: %d calls at %s, which has a fallback (route %v): %+v", rr.to, at, c.provider, route, calls)
		}
	}
	if rr.providerAttempts > mFailoverAfter && slices.Index(route, rr.provider) < len(route)-1 {
		t.Errorf("%s: %d attempts at %s, which has a fallback (route %v, claimed %v, due %v, now %v, error %q): %+v",
			rr.to, rr.providerAttempts, rr.provider, route, rr.claimed, rr.next, now, rr.err, calls)
	}
	switch {
	case rr.state == bridge.StateSent && accepted != 1:
		t.Errorf("%s: sent, but accepted %d times", rr.to, accepted)
	case rr.state.Final() && rr.state != bridge.StateSent && accepted != 0:
		t.Errorf("%s: %s, but accepted %d times", rr.to, rr.state, accepted)
	case rr.state.Final():
	case final:
		t.Errorf("%s: still %s at the end (next attempt %v, %v from now, error %q)", rr.to, rr.state, rr.next, rr.next.Sub(now), rr.err)
	case rr.claimed || !now.After(rr.next.Add(mSlack)):
		// In a dispatcher's hands, or not (long) due.
	case w.inflight[rr.provider] >= w.limit[rr.provider] || !now.After(w.ended[rr.provider].Add(mSlack)):
		// Due, but every slot of its provider is taken, or one came free
		// so lately that the claim after it (which may come up to the
		// claim gap later) is still to come.
	case w.open[rr.provider]:
		// Due at a provider whose circuit is open: it is claimed only to
		// be put off past the cooldown (or failed over), as fast as the
		// claim gap and the pace's room allow; a failed probe leaves
		// every recipient that waited for it due at once, and a paced
		// provider drains them a few at a time. The end state checks
		// that none is stranded.
	case w.rates[rr.provider].burst > 0 && w.rates[rr.provider].full(w.at[rr.provider], w.claimed[rr.provider], now):
		// Due, but its provider's pace is taken, by calls and by claimed
		// recipients waiting for a slot.
	default:
		t.Errorf("%s: due at %v, %v ago, unclaimed, while %s has %d of %d slots free", rr.to, rr.next,
			now.Sub(rr.next), rr.provider, w.limit[rr.provider]-w.inflight[rr.provider], w.limit[rr.provider])
	}
}
