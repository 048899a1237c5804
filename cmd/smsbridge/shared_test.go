package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/internal/pgtest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// Two serve processes share one PostgreSQL database. Mail goes to both; one
// is SIGKILLed midway. Every acknowledged message reaches the provider, and
// none twice except those in flight at the kill.
func TestTwoInstancesOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns daemons")
	}
	dbURL, _ := pgtest.NewDatabase(t)
	fake := voipcomtest.NewServer(t, "k", "p", "17134567890")
	dir := t.TempDir()

	startOne := func(i int) (addr string, cmd *exec.Cmd) {
		addr = freePort(t)
		cfg := filepath.Join(dir, fmt.Sprintf("i%d.toml", i))
		os.WriteFile(cfg, []byte(fmt.Sprintf("[store]\nurl = %q\n", dbURL)+daemonConfig(addr, fake.URL)), 0o600)
		return addr, spawn(t, addr, "serve", "-config", cfg)
	}
	aAddr, aCmd := startOne(0)
	bAddr, bCmd := startOne(1)

	const total = 1000
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += 4 {
				num := fmt.Sprintf("97250%07d", i)
				target := aAddr
				if i%2 == 1 {
					target = bAddr
				}
				if err := sendPlain(target, "+"+num+"@sms.example.com", "Subject: x\r\n\r\nshared "+num+"\r\n"); err != nil {
					continue // instance a is gone: that message was never acknowledged
				}
				mu.Lock()
				acked[num] = true
				n := len(acked)
				mu.Unlock()
				if n == total/2 {
					aCmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}()
	}
	wg.Wait()
	aCmd.Wait()

	got := awaitDelivered(t, fake, acked, 60*time.Second)
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	t.Logf("acknowledged %d of %d, delivered %d distinct, %d duplicates", len(acked), total, len(got), dups)
	if len(acked) < total/2 {
		t.Errorf("only %d acknowledged", len(acked))
	}
	// In flight at the kill: at most one batch per worker (8) of instance a.
	if dups > 8 {
		t.Errorf("%d duplicates; only sends in flight at the kill may repeat", dups)
	}
	bCmd.Process.Signal(syscall.SIGTERM)
	if err := bCmd.Wait(); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
}
