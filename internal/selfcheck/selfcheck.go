// Package selfcheck is `smsbridge check-config -live`: given a
// configuration that loads, it proves that what the configuration names
// works, without sending an SMS or a mail and without changing the store.
// Each check makes the cheapest harmless call there is: a provider its
// API's cheapest authenticated read (Checker, implemented by each provider
// package), the smarthost a session up to AUTH and QUIT, the store a
// read of its schema version, a listener a bind and close.
package selfcheck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Checker is what can prove it works. Check answers what it found, shown
// after "ok", or why it does not work. An error that is Skipped makes the
// check a skip rather than a failure.
type Checker interface {
	Check(ctx context.Context) (string, error)
}

// CheckFunc is a function that is a Checker.
type CheckFunc func(ctx context.Context) (string, error)

// Check calls f.
func (f CheckFunc) Check(ctx context.Context) (string, error) { return f(ctx) }

// The verdicts, as printed.
const (
	OK   = "ok"
	Fail = "FAIL"
	Skip = "skip"
)

// Item is one check: what it is about ("provider ippanel-main") and what
// checks it. With Skip set there is nothing to check, and Skip says why.
type Item struct {
	Name    string
	Checker Checker
	Skip    string
}

// Result is the outcome of one Item.
type Result struct {
	Name    string
	Verdict string // OK, Fail or Skip
	Detail  string // what was found, or why it failed or was skipped
}

// String is the result's line of output: "provider x: ok (credit 12)".
func (r Result) String() string {
	if r.Detail == "" {
		return r.Name + ": " + r.Verdict
	}
	return r.Name + ": " + r.Verdict + " (" + r.Detail + ")"
}

// skipped is an error that makes a check a skip.
type skipped struct{ reason string }

func (s skipped) Error() string { return s.reason }

// Skipped returns an error that makes a check a skip, for why: something
// found at run time that leaves nothing to check.
func Skipped(why string) error { return skipped{why} }

// Run runs every item at once, each bounded by timeout, and returns the
// results in the items' order. A check still running shortly after its
// deadline is reported as failed then, whether or not it has noticed. Every detail
// goes through redact, so that no configured secret reaches the output
// even if some error were to carry one.
func Run(ctx context.Context, items []Item, timeout time.Duration, redact func(string) string) []Result {
	out := make([]Result, len(items))
	done := make([]chan Result, len(items))
	for i, it := range items {
		done[i] = make(chan Result, 1)
		go func() { done[i] <- run(ctx, it, timeout) }()
	}
	for i := range items {
		out[i] = <-done[i]
		out[i].Detail = redact(out[i].Detail)
	}
	return out
}

// run runs one item.
func run(ctx context.Context, it Item, timeout time.Duration) Result {
	r := Result{Name: it.Name}
	if it.Checker == nil {
		r.Verdict, r.Detail = Skip, it.Skip
		return r
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type answer struct {
		what string
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		what, err := it.Checker.Check(cctx)
		ch <- answer{what, err}
	}()
	var a answer
	select {
	case a = <-ch:
	case <-cctx.Done():
		// A check that noticed its deadline says where it was
		// cut off; one that did not is not waited for long.
		t := time.NewTimer(lateGrace)
		defer t.Stop()
		select {
		case a = <-ch:
		case <-t.C:
			r.Verdict, r.Detail = Fail, fmt.Sprintf("no answer within %s", timeout)
			return r
		}
	}
	var sk skipped
	switch {
	case a.err == nil:
		r.Verdict, r.Detail = OK, a.what
	case errors.As(a.err, &sk):
		r.Verdict, r.Detail = Skip, sk.reason
	default:
		r.Verdict, r.Detail = Fail, own(it.Name, a.err.Error())
		if errors.Is(cctx.Err(), context.DeadlineExceeded) && errors.Is(a.err, context.DeadlineExceeded) {
			// What was cut off stays; the cause is said once.
			r.Detail = fmt.Sprintf("no answer within %s", timeout)
			if where := strings.TrimSuffix(own(it.Name, a.err.Error()), context.DeadlineExceeded.Error()); where != "" {
				r.Detail += ": " + strings.TrimSuffix(where, ": ")
			}
		}
	}
	return r
}

// lateGrace is how long past its deadline a check may take to return.
const lateGrace = 250 * time.Millisecond

// own drops from an error's text the name of what it is about, which
// the line already starts with: "smarthost h:25: connecting: ..." and
// "ippanel-main: HTTP 401 ..." under "smarthost h:25" and "provider
// ippanel-main".
func own(name, msg string) string {
	msg = strings.TrimPrefix(msg, name+": ")
	if _, short, ok := strings.Cut(name, " "); ok {
		msg = strings.TrimPrefix(msg, short+": ")
	}
	return msg
}

// Passed reports whether no check failed.
func Passed(results []Result) bool {
	for _, r := range results {
		if r.Verdict == Fail {
			return false
		}
	}
	return true
}
