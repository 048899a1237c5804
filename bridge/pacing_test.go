package bridge_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// sendTimes is when each recipient reached p: a call's time once per
// recipient in it.
func sendTimes(p *scripted) []time.Time {
	var out []time.Time
	for i, c := range p.Calls() {
		at := p.Times()[i]
		for range c.To {
			out = append(out, at)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// maxInWindow is the most of times (sorted) within any window [t, t+w).
func maxInWindow(times []time.Time, w time.Duration) int {
	most := 0
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Before(times[i].Add(w)); j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

// With rate = 5, fifty recipients reach the paced provider five a second,
// never more in any one second (one recipient counts one, in whatever
// batches it travels), all of them in nine seconds, each group when its
// second comes (the dispatcher wakes for it, not at its 5 s idle bound);
// meanwhile they wait in the store, not claimed. Fifty recipients of
// another provider go out at once.
func TestDispatchPacesProvider(t *testing.T) {
	for _, batch := range []int{1, 10} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				paced := &scripted{name: "paced", batch: batch}
				free := &scripted{name: "free", batch: batch}
				e := newEnv(t, bridge.DispatchOptions{Rates: map[string]bridge.Rate{"paced": {PerSecond: 5}}},
					twoRoutes("paced", "free"), paced, free)
				start := time.Now()
				var msgs []*bridge.Message
				for i := range 5 {
					var to []string
					for j := range 10 {
						to = append(to, fmt.Sprintf("050%05d%02d", i, j), fmt.Sprintf("052%05d%02d", i, j))
					}
					msgs = append(msgs, e.submit(t, "x", time.Time{}, to...))
				}

				// 3.5 s in: 20 sent (at 0, 1, 2 and 3 s), the other 30 in
				// the store, none claimed ahead of its turn.
				pass(3500 * time.Millisecond)
				sent, claimed := 0, 0
				for _, m := range msgs {
					got, err := e.store.Message(t.Context(), m.ID)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range got.Recipients {
						switch {
						case r.Provider != "paced":
						case r.State == bridge.StateSent:
							sent++
						case r.Attempts > 0:
							claimed++
						}
					}
				}
				if sent != 20 || claimed != 0 {
					t.Errorf("after 3.5s: %d sent, %d claimed waiting; want 20 sent, none claimed", sent, claimed)
				}

				for range 100 {
					if o := e.final(t); o.State != bridge.StateSent {
						t.Fatalf("outcome %+v", o)
					}
				}
				times := sendTimes(paced)
				if len(times) != 50 {
					t.Fatalf("paced provider got %d recipients, want 50", len(times))
				}
				if n := maxInWindow(times, time.Second); n > 5 {
					t.Errorf("%d recipients within one second, want at most 5", n)
				}
				for i, at := range times {
					want := start.Add(time.Duration(i/5) * time.Second)
					if at.Before(want) || at.After(want.Add(50*time.Millisecond)) {
						t.Errorf("recipient %d sent at %v, want at %v", i, at.Sub(start), want.Sub(start))
					}
				}
				for _, at := range sendTimes(free) {
					if took := at.Sub(start); took > 50*time.Millisecond {
						t.Errorf("unpaced provider sent %v after submission, want at once", took)
					}
				}
			})
		})
	}
}
