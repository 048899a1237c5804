package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// The hot read queries are prepared once and kept: a second consent check
// of the same shape, and every NextDue, reuse their statement; a query
// shape past maxReadStmts runs unprepared, and still answers.
func TestReadStatementsArePreparedOnceAndBounded(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "q.db"))
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, err := s.Suppress(ctx, bridge.SuppressionChange{Suppression: bridge.Suppression{Phone: "+972501234567",
		Account: "acme", Reason: "STOP", Source: "sms", By: "+972501234567", Created: at}, At: at}); err != nil {
		t.Fatal(err)
	}
	cached := func() int {
		s.reads.mu.Lock()
		defer s.reads.mu.Unlock()
		return len(s.reads.m)
	}
	for range 3 {
		got, err := s.Suppressed(ctx, "acme", "", []string{"+972501234567"})
		if err != nil || len(got) != 1 {
			t.Fatalf("Suppressed = %v, %v; want the one opt-out", got, err)
		}
		if _, _, err := s.NextDue(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.NextDue(ctx, "p"); err != nil {
			t.Fatal(err)
		}
	}
	if n := cached(); n != 3 {
		t.Errorf("%d statements prepared for 3 query shapes run 3 times each", n)
	}
	// Consent checks of 1 to 40 phones: 40 shapes, no more than
	// maxReadStmts kept, each answered.
	var phones []string
	for i := range 40 {
		phones = append(phones, fmt.Sprintf("+9725000000%02d", i))
		if i == 39 {
			phones[i] = "+972501234567"
		}
		got, err := s.Suppressed(ctx, "acme", "", phones)
		if err != nil || (i == 39) != (len(got) == 1) {
			t.Fatalf("Suppressed(%d phones) = %v, %v", len(phones), got, err)
		}
	}
	if n := cached(); n != maxReadStmts {
		t.Errorf("%d statements kept, want the bound %d", n, maxReadStmts)
	}
}
