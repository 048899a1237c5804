package selfcheck

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stuck := make(chan struct{}) // a check that ignores its context waits on it
		items := []Item{
			{Name: "provider a", Checker: CheckFunc(func(context.Context) (string, error) { return "credit 12", nil })},
			{Name: "provider b", Checker: CheckFunc(func(context.Context) (string, error) {
				return "", errors.New("b: HTTP 401: invalid token tok-SECRET")
			})},
			{Name: "smarthost h:25", Checker: CheckFunc(func(context.Context) (string, error) {
				return "", errors.New("smarthost h:25: connecting: connection refused")
			})},
			{Name: "provider c", Skip: "nothing to check"},
			{Name: "listener smtp :25", Checker: CheckFunc(func(context.Context) (string, error) { return "", Skipped("in use") })},
			{Name: "provider slow", Checker: CheckFunc(func(ctx context.Context) (string, error) {
				<-ctx.Done()
				return "", ctx.Err()
			})},
			{Name: "smarthost h:26", Checker: CheckFunc(func(ctx context.Context) (string, error) {
				<-ctx.Done()
				return "", fmt.Errorf("smarthost h:26: EHLO: timed out: %w", ctx.Err())
			})},
			{Name: "provider deaf", Checker: CheckFunc(func(context.Context) (string, error) {
				<-stuck
				return "late", nil
			})},
		}
		start := time.Now()
		results := Run(t.Context(), items, 10*time.Second, func(s string) string { return strings.ReplaceAll(s, "tok-SECRET", "[REDACTED]") })
		if took := time.Since(start); took != 10*time.Second+lateGrace {
			t.Errorf("Run took %s, want the timeout, 10s, and the grace after it (checks run at once, each bounded)", took)
		}
		close(stuck)
		var lines []string
		for _, r := range results {
			lines = append(lines, r.String())
		}
		want := []string{
			"provider a: ok (credit 12)",
			"provider b: FAIL (HTTP 401: invalid token [REDACTED])",
			"smarthost h:25: FAIL (connecting: connection refused)",
			"provider c: skip (nothing to check)",
			"listener smtp :25: skip (in use)",
			"provider slow: FAIL (no answer within 10s)",
			"smarthost h:26: FAIL (no answer within 10s: EHLO: timed out)",
			"provider deaf: FAIL (no answer within 10s)",
		}
		if !slices.Equal(lines, want) {
			t.Errorf("lines\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
		if Passed(results) {
			t.Error("Passed with failures")
		}
		if !Passed(results[3:5]) || !Passed(results[:1]) {
			t.Error("skips and oks did not pass")
		}
	})
}
