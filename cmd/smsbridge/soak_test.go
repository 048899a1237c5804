package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge/store/sqlite"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

const (
	soakToken        = "tok-soak-3f9a"
	soakKillInterval = 1500 * time.Millisecond
	// soakConcurrency is the provider's fixed concurrency in the soak
	// config: the calls that can be under way when a kill comes. (Left to
	// adapt, the limit could reach max_concurrency, and the duplicate
	// bound below would follow it.)
	soakConcurrency = 8
	// soakBatch is the config's batch_size: one recipient per provider call.
	soakBatch = 1
)

// soakConfig is daemonConfig with a store, a fixed HTTP address (the HTTP
// senders must find the daemon again after each restart) and an API token
// for the account.
func soakConfig(dbPath, smtpAddr, httpAddr, providerURL string) string {
	sum := sha256.Sum256([]byte(soakToken))
	return fmt.Sprintf(`
[store]
path = %q
[smtp]
listen = %q
domains = ["sms.example.com"]
[http]
listen = %q
[queue]
retry_min = "100ms"
retry_max = "500ms"
send_timeout = "2s"
[[accounts]]
name = "a"
emails = ["*@example.com"]
sender_ids = ["+17134567890"]
api_token_sha256 = %q
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "k"
api_password = "p"
numbers = ["+17134567890"]
batch_size = %d
concurrency = %d
[[routes]]
prefix = "+"
provider = "voip"
`, dbPath, smtpAddr, httpAddr, hex.EncodeToString(sum[:]), providerURL, soakBatch, soakConcurrency)
}

// soakDuration is how long the stream runs: 3 kill intervals in CI, or
// SOAK_DURATION (a time.ParseDuration string) for a longer run by hand.
func soakDuration(t *testing.T) time.Duration {
	d := 3 * soakKillInterval
	if s := os.Getenv("SOAK_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SOAK_DURATION: %v", err)
		}
		d = max(v, d)
	}
	return d
}

// soakLedger records which numbers the senders tried and which the daemon
// acknowledged (250 over SMTP, 202 over HTTP).
type soakLedger struct {
	mu        sync.Mutex
	attempted map[string]bool
	acked     map[string]bool
}

func (l *soakLedger) record(num string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempted[num] = true
	if ok {
		l.acked[num] = true
	}
}

// sendHTTP submits one message through the HTTP API and reports whether
// the daemon accepted it for num.
func sendHTTP(ctx context.Context, c *http.Client, base, num, text string) error {
	body, err := json.Marshal(map[string]any{"to": []string{"+" + num}, "text": text})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/messages", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+soakToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	var out struct {
		Recipients []struct {
			To string `json:"to"`
		} `json:"recipients"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("decoding answer: %w", err)
	}
	if len(out.Recipients) != 1 || out.Recipients[0].To != "+"+num {
		return fmt.Errorf("answer names recipients %+v, want +%s", out.Recipients, num)
	}
	return nil
}

// Soak: a steady stream of mail over SMTP and HTTP while the daemon is
// SIGKILLed and restarted every soakKillInterval. Afterwards every
// acknowledged message reached the provider, only sends in flight at a
// kill were repeated, SIGTERM exits 0 and the SQLite file is intact.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns daemons")
	}
	duration := soakDuration(t)
	kills := int(duration / soakKillInterval)

	fake := voipcomtest.NewServer(t, "k", "p", "17134567890")
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "q.db")
	smtpAddr, httpAddr := freePort(t), freePort(t)
	cfgPath := filepath.Join(dir, "smsbridge.toml")
	if err := os.WriteFile(cfgPath, []byte(soakConfig(dbPath, smtpAddr, httpAddr, fake.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd { return spawn(t, smtpAddr, "serve", "-config", cfgPath) }

	ledger := &soakLedger{attempted: map[string]bool{}, acked: map[string]bool{}}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	// Each sender owns one digit of the number, so numbers never repeat:
	// +972 50 <sender> <6-digit counter>. A failed send is not retried;
	// the sender moves on to the next number, so any number the provider
	// sees twice is a duplicate delivery, not a resubmission.
	var wg sync.WaitGroup
	// Should the test fail early, the senders still stop before it ends.
	defer func() { stop(); wg.Wait() }()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				num := fmt.Sprintf("97250%d%06d", w, i)
				text := "soak " + num
				var err error
				if w < 2 {
					err = sendPlain(smtpAddr, "+"+num+"@sms.example.com", "Subject: x\r\n\r\n"+text+"\r\n")
				} else {
					err = sendHTTP(ctx, client, "http://"+httpAddr, num, text)
				}
				ledger.record(num, err == nil)
				if err != nil {
					// The daemon is down or starting: don't spin through
					// numbers while it is gone (pacing the load, not
					// waiting for anything).
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}

	// The kills are paced on the wall clock on purpose: a soak is load,
	// and a kill should land wherever the stream happens to be, not at a
	// moment the test chose. Nothing is checked until the last restart,
	// and the checks wait on the provider's request log, not on time.
	cmd := start()
	for k := range kills {
		time.Sleep(soakKillInterval)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if k < kills-1 {
			cmd = start()
		}
	}
	stop()
	wg.Wait()
	cmd = start()

	got := awaitDelivered(t, fake, ledger.acked, 60*time.Second)

	sent, lost, dups, unacked := len(ledger.acked), 0, 0, 0
	for num := range ledger.acked {
		if got[num] == 0 {
			lost++
		}
	}
	for num, n := range got {
		dups += n - 1
		if !ledger.attempted[num] {
			t.Errorf("provider got %s, which no sender submitted", num)
		}
		if !ledger.acked[num] {
			unacked++ // accepted, but the answer was lost in a kill
		}
	}
	for _, r := range fake.Requests() {
		if len(r.To) != soakBatch || r.Form.Get("msg") != "soak "+r.To[0] {
			t.Errorf("provider call to %v carries %q", r.To, r.Form.Get("msg"))
		}
	}
	// A kill can repeat only sends whose outcome was not yet committed:
	// per concurrency slot the batch at the provider plus at most one more
	// whose result was still queued for the store's writer. Hence
	// 2 × concurrency × batch_size per kill.
	maxDups := 2 * kills * soakConcurrency * soakBatch
	t.Logf("soak %v, %d kills: attempted %d, sent (acknowledged) %d, lost %d, duplicated %d (bound %d), delivered unacknowledged %d",
		duration, kills, len(ledger.attempted), sent, lost, dups, maxDups, unacked)
	// Enough traffic that each kill interrupts something.
	if sent < 20*kills {
		t.Errorf("only %d messages acknowledged over %d kills; the soak exercises nothing", sent, kills)
	}
	if dups > maxDups {
		t.Errorf("%d duplicates; at most %d sends can be in flight over %d kills", dups, maxDups, kills)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("SIGTERM: %v, want exit 0", err)
	}
	st, err := sqlite.Open(context.Background(), dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.IntegrityCheck(context.Background()); err != nil {
		t.Errorf("store after soak: %v", err)
	}
}
