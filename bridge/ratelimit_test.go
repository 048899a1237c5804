package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

// TestRateLimitNeverFits: a message with more recipients than the
// account may send in a minute is refused for good, naming the field; one
// that fits later is told when.
func TestRateLimitNeverFits(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "q.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	prov := &reporter{asked: map[string]int{}}
	b, err := bridge.New(st, []bridge.Provider{prov}, []bridge.Route{{Prefix: "+", Providers: []string{"p"}}},
		[]bridge.Account{{Name: "ops", Emails: []string{"*@example.com"}, MessagesPerMinute: 3}},
		bridge.Options{Region: "IL", Log: log, DestinationPerMinute: 1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := b.Account("ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	submit := func(first, n int) error {
		t.Helper()
		s := &bridge.Submission{Account: acct, Channel: bridge.ChannelHTTP, Text: "hi"}
		for i := range n {
			r, err := b.Resolve(acct, fmt.Sprintf("+97250%07d", first+i))
			if err != nil {
				t.Fatal(err)
			}
			s.Recipients = append(s.Recipients, r)
		}
		_, err := b.Submit(context.Background(), s)
		return err
	}

	err = submit(0, 4)
	var be *bridge.Error
	if !errors.As(err, &be) || be.Temp || be.Reason != bridge.ReasonOverLimit || be.Field != "to" {
		t.Fatalf("4 recipients, 3 a minute: %#v; want a permanent over_limit error on to", err)
	}
	// Refused before anything was taken: three still fit.
	if err := submit(0, 3); err != nil {
		t.Fatalf("3 recipients: %v", err)
	}
	err = submit(10, 1)
	if !errors.As(err, &be) || !be.Temp || be.Reason != bridge.ReasonRateLimited || be.RetryAfter != 20*time.Second {
		t.Fatalf("over the limit for now: %#v; want rate_limited, retry after 20s", err)
	}
	// Also when the bucket is empty: 4 can never fit, whatever the wait.
	if err := submit(20, 4); !errors.As(err, &be) || be.Temp || be.Reason != bridge.ReasonOverLimit {
		t.Errorf("4 recipients with the bucket empty: %v; want over_limit", err)
	}
	if st, err := st.Stats(context.Background()); err != nil || st.Queued != 3 {
		t.Errorf("Stats = %+v, %v; want the 3 admitted queued", st, err)
	}
}
