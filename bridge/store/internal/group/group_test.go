package group

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeStore is a Try that records what each transaction held. A work is
// an int: negative fails on its own, and gate, if set, holds the first
// transaction until it is closed.
type fakeStore struct {
	mu        sync.Mutex
	tries     [][]int // every Try's works
	committed [][]int // the works of each commit
	gate      chan struct{}
	fail      error // if set, every Try fails with it (a store failure)
	alone     bool  // groups of more than one fail with ErrAlone
}

func (f *fakeStore) try(works []int) (int, error, error) {
	if f.gate != nil {
		<-f.gate
		f.gate = nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries = append(f.tries, slices.Clone(works))
	if f.fail != nil {
		return -1, nil, f.fail
	}
	if f.alone && len(works) > 1 {
		return -1, nil, Alone(errors.New("deadlock"))
	}
	for i, w := range works {
		if w < 0 {
			return i, errOwn, nil
		}
	}
	f.committed = append(f.committed, slices.Clone(works))
	return -1, nil, nil
}

var errOwn = errors.New("own failure")

// doAll runs Do for each work concurrently and returns their errors, by
// work, once the group's goroutine has taken them all (they wait in the
// channel or in its batch).
func doAll(t *testing.T, g *Group[int], ctx context.Context, works ...int) func() map[int]error {
	t.Helper()
	var mu sync.Mutex
	errs := map[int]error{}
	var wg sync.WaitGroup
	for _, w := range works {
		wg.Go(func() {
			err := g.Do(ctx, w)
			mu.Lock()
			errs[w] = err
			mu.Unlock()
		})
	}
	return func() map[int]error {
		wg.Wait()
		return errs
	}
}

// gated starts a group over f, closed when t ends, with a first write
// (100) that f holds at its gate, so that what is done next queues
// behind it.
func gated(t *testing.T, f *fakeStore, opt Options) (*fakeStore, *Group[int], func() map[int]error) {
	t.Helper()
	g := New(f.try, opt)
	t.Cleanup(g.Close)
	return f, g, doAll(t, g, t.Context(), 100)
}

func TestConcurrentRequestsShareATransaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, g, first := gated(t, &fakeStore{gate: make(chan struct{})}, Options{})
		synctest.Wait() // the group holds 100's transaction at the gate
		rest := doAll(t, g, t.Context(), 1, 2, 3, 4, 5)
		synctest.Wait() // the others wait in the channel
		close(f.gate)
		if err := first()[100]; err != nil {
			t.Fatal(err)
		}
		for w, err := range rest() {
			if err != nil {
				t.Errorf("%d: %v", w, err)
			}
		}
		if len(f.committed) != 2 || len(f.committed[1]) != 5 {
			t.Fatalf("commits %v, want [100] and then the five together", f.committed)
		}
	})
}

func TestOwnFailureFailsOnlyItsCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, g, first := gated(t, &fakeStore{gate: make(chan struct{})}, Options{})
		synctest.Wait()
		rest := doAll(t, g, t.Context(), 1, -2, 3, -4, 5)
		synctest.Wait()
		close(f.gate)
		first()
		errs := rest()
		for _, w := range []int{1, 3, 5} {
			if errs[w] != nil {
				t.Errorf("%d: %v", w, errs[w])
			}
		}
		for _, w := range []int{-2, -4} {
			if !errors.Is(errs[w], errOwn) {
				t.Errorf("%d: %v, want its own failure", w, errs[w])
			}
		}
		got := slices.Sorted(slices.Values(f.committed[len(f.committed)-1]))
		if len(f.committed) != 2 || !slices.Equal(got, []int{1, 3, 5}) {
			t.Fatalf("commits %v, want [100] and then 1, 3, 5 together", f.committed)
		}
		if len(f.tries) != 4 { // 100; the five; without the first failing; without the second
			t.Errorf("%d tries, want 4: %v", len(f.tries), f.tries)
		}
	})
}

func TestStoreFailureFailsEveryCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := errors.New("disk full")
		f := &fakeStore{fail: down}
		g := New(f.try, Options{})
		defer g.Close()
		for w, err := range doAll(t, g, t.Context(), 1, 2, 3)() {
			if !errors.Is(err, down) {
				t.Errorf("%d: %v, want the store's failure", w, err)
			}
		}
	})
}

func TestAloneRunsEachRequestAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, g, first := gated(t, &fakeStore{gate: make(chan struct{}), alone: true}, Options{})
		synctest.Wait()
		rest := doAll(t, g, t.Context(), 1, -2, 3)
		synctest.Wait()
		close(f.gate)
		first()
		errs := rest()
		if errs[1] != nil || errs[3] != nil || !errors.Is(errs[-2], errOwn) {
			t.Fatalf("errors %v", errs)
		}
		for _, c := range f.committed {
			if len(c) != 1 {
				t.Fatalf("commits %v, want each alone", f.committed)
			}
		}
		if len(f.committed) != 3 {
			t.Fatalf("commits %v, want 100, 1 and 3", f.committed)
		}
	})
}

func TestCancelledCallerIsNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, g, first := gated(t, &fakeStore{gate: make(chan struct{})}, Options{})
		synctest.Wait()
		ctx, cancel := context.WithCancel(t.Context())
		gone := doAll(t, g, ctx, 7)
		kept := doAll(t, g, t.Context(), 8)
		synctest.Wait()
		cancel()
		if err := gone()[7]; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller got %v", err)
		}
		close(f.gate)
		first()
		if err := kept()[8]; err != nil {
			t.Fatal(err)
		}
		for _, try := range f.tries {
			if slices.Contains(try, 7) {
				t.Fatalf("the cancelled request ran: %v", f.tries)
			}
		}
	})
}

func TestCloseDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeStore{gate: make(chan struct{})}
		closed := errors.New("closed")
		g := New(f.try, Options{Closed: closed})
		first := doAll(t, g, t.Context(), 100)
		synctest.Wait()
		rest := doAll(t, g, t.Context(), 1, 2, 3)
		synctest.Wait()
		done := make(chan struct{})
		go func() {
			g.Close()
			close(done)
		}()
		synctest.Wait()
		close(f.gate)
		<-done
		first()
		for w, err := range rest() {
			if err != nil {
				t.Errorf("%d handed over before Close: %v", w, err)
			}
		}
		if n := len(f.committed); n != 2 {
			t.Errorf("commits %v, want 100 and then the three", f.committed)
		}
		if err := g.Do(t.Context(), 4); !errors.Is(err, closed) {
			t.Errorf("Do after Close: %v, want %v", err, closed)
		}
	})
}

func TestLingerWaitsForAsManyAsLastTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, g, first := gated(t, &fakeStore{gate: make(chan struct{})}, Options{LingerFrom: 4})
		synctest.Wait()
		rest := doAll(t, g, t.Context(), 1, 2, 3, 4, 5, 6)
		synctest.Wait()
		close(f.gate)
		first()
		rest()
		// The group just committed six: two arriving now are held back
		// (for MaxLinger at most) for more, and a third joins them.
		a := doAll(t, g, t.Context(), 7, 8)
		synctest.Wait()
		b := doAll(t, g, t.Context(), 9)
		a()
		b()
		if last := f.committed[len(f.committed)-1]; len(last) != 3 {
			t.Fatalf("commits %v, want 7, 8 and 9 together", f.committed)
		}
	})
}

// answering is a work that records the outcomes it is told.
type answering struct {
	n   int
	mu  sync.Mutex
	got []error
}

func (a *answering) Answered(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, err)
}

func (a *answering) answers() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

// An Answerer is told its outcome once: nil when its transaction
// committed, its own error when it failed alone (after the group ran
// again without it), the context's when its caller had gone before it
// ran, Closed after Close.
func TestAnswererToldOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		try := func(works []*answering) (int, error, error) {
			if gate != nil {
				<-gate
				gate = nil
			}
			for i, w := range works {
				if w.n < 0 {
					return i, errOwn, nil
				}
			}
			return -1, nil, nil
		}
		closed := errors.New("closed")
		g := New(try, Options{Closed: closed})
		blocker := &answering{n: 0}
		go g.Do(t.Context(), blocker)
		synctest.Wait() // the group holds blocker's transaction at the gate
		ok, bad, gone := &answering{n: 1}, &answering{n: -1}, &answering{n: 2}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { g.Do(t.Context(), ok) })
		wg.Go(func() { g.Do(t.Context(), bad) })
		wg.Go(func() { g.Do(ctx, gone) })
		synctest.Wait()
		cancel()
		close(gate)
		wg.Wait()
		g.Close()
		late := &answering{n: 3}
		if err := g.Do(t.Context(), late); !errors.Is(err, closed) {
			t.Fatalf("Do after Close = %v", err)
		}
		for _, c := range []struct {
			name string
			w    *answering
			want error
		}{{"committed", ok, nil}, {"failed alone", bad, errOwn}, {"caller gone", gone, context.Canceled}, {"after Close", late, closed}, {"first", blocker, nil}} {
			got := c.w.answers()
			if len(got) != 1 || !errors.Is(got[0], c.want) {
				t.Errorf("%s: told %v, want once %v", c.name, got, c.want)
			}
		}
	})
}

// lateWork is a work that is late when n is odd.
type lateWork int

func (w lateWork) Late() bool { return w%2 == 1 }

// A batch of late works waits up to MaxJoin for one that is not, and
// commits with it; alone, it commits when MaxJoin has passed.
func TestLateWorksJoinTheNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var commits [][]lateWork
		try := func(works []lateWork) (int, error, error) {
			mu.Lock()
			defer mu.Unlock()
			commits = append(commits, slices.Clone(works))
			return -1, nil, nil
		}
		g := New(try, Options{MaxJoin: 10 * time.Millisecond})
		defer g.Close()
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { g.Do(t.Context(), lateWork(1)) })
		synctest.Wait()                    // the late work waits for company
		<-time.After(4 * time.Millisecond) // the bubble's clock: the second comes 4ms later
		g.Do(t.Context(), lateWork(2))
		wg.Wait()
		if took := time.Since(start); took != 4*time.Millisecond {
			t.Errorf("the pair committed after %v, want when the second came (4ms)", took)
		}
		start = time.Now()
		g.Do(t.Context(), lateWork(3))
		if took := time.Since(start); took != 10*time.Millisecond {
			t.Errorf("a lone late work committed after %v, want MaxJoin (10ms)", took)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(commits) != 2 || len(commits[0]) != 2 || len(commits[1]) != 1 {
			t.Errorf("commits %v, want [1 2] then [3]", commits)
		}
	})
}
