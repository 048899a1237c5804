package daemon_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
)

// The daemon purges what store.retention no longer keeps, on its own: a
// message finished 100 days ago is gone soon after start, one finished
// yesterday and one still queued stay.
func TestRetentionPurgesOldMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "smsbridge.db")
	st, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	add := func(created time.Time, state bridge.State) string {
		t.Helper()
		m := &bridge.Message{ID: bridge.NewID(), Channel: bridge.ChannelHTTP, Account: "ops", Text: "hi", Created: created,
			Recipients: []bridge.Recipient{{To: "+972501234567", Providers: []string{"c"}, Provider: "c", NextAttempt: created.Add(365 * 24 * time.Hour)}}}
		if err := st.Enqueue(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if state != bridge.StateQueued {
			if err := st.Complete(context.Background(), []bridge.Outcome{{RecipientID: m.Recipients[0].ID, State: state, Provider: "c", At: created}}); err != nil {
				t.Fatal(err)
			}
		}
		return m.ID
	}
	old := add(now.Add(-100*24*time.Hour), bridge.StateSent)
	recent := add(now.Add(-24*time.Hour), bridge.StateSent)
	waiting := add(now.Add(-100*24*time.Hour), bridge.StateQueued)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	d := startStore(t, `
[store]
retention = "720h"
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "ops"
emails = ["*@example.com"]
sender_ids = ["Ops"]
[[providers]]
name = "c"
type = "console"
[[routes]]
prefix = "+"
provider = "c"
`, path)
	eventually(t, 5*time.Second, "the old message purged", func() bool {
		_, err := d.Store().Message(t.Context(), old)
		return errors.Is(err, bridge.ErrNotFound)
	})
	for _, id := range []string{recent, waiting} {
		if _, err := d.Store().Message(t.Context(), id); err != nil {
			t.Errorf("message %s: %v, want it kept", id, err)
		}
	}
}
