package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/internal/pgtest"
	"github.com/smsbridge/smsbridge/providers/providertest"
)

// Two serve processes share one PostgreSQL database. Mail goes to both; one
// is SIGKILLed midway. Every acknowledged message reaches the provider, and
// none twice except those in flight at the kill.
func TestTwoInstancesOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns daemons")
	}
	dbURL, _ := pgtest.NewDatabase(t)
	fake := providertest.NewVoipcom(t, "k", "p", "17134567890")
	dir := t.TempDir()

	type instance struct {
		addr string
		cmd  *exec.Cmd
		logs *bytes.Buffer
	}
	startOne := func(i int) *instance {
		addr := freePort(t)
		cfg := filepath.Join(dir, fmt.Sprintf("i%d.toml", i))
		os.WriteFile(cfg, []byte(fmt.Sprintf(`
[store]
url = %q
[smtp]
listen = %q
domains = ["sms.example.com"]
[http]
listen = "127.0.0.1:0"
[queue]
retry_min = "100ms"
retry_max = "500ms"
send_timeout = "2s"
[[accounts]]
name = "a"
emails = ["*@example.com"]
sender_ids = ["+17134567890"]
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "k"
api_password = "p"
numbers = ["+17134567890"]
batch_size = 1
[[routes]]
prefix = "+"
provider = "voip"
`, dbURL, addr, fake.URL)), 0o600)
		in := &instance{addr: addr, cmd: daemonCmd("serve", "-config", cfg), logs: &bytes.Buffer{}}
		in.cmd.Stderr = in.logs
		if err := in.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return in
			}
			if time.Now().After(deadline) {
				in.cmd.Process.Kill()
				t.Fatalf("instance %d did not listen: %s", i, in.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	a, b := startOne(0), startOne(1)

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
				target := a
				if i%2 == 1 {
					target = b
				}
				if err := sendPlain(target.addr, "+"+num+"@sms.example.com", "Subject: x\r\n\r\nshared "+num+"\r\n"); err != nil {
					continue // instance a is gone: that message was never acknowledged
				}
				mu.Lock()
				acked[num] = true
				n := len(acked)
				mu.Unlock()
				if n == total/2 {
					a.cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}()
	}
	wg.Wait()
	a.cmd.Wait()

	deadline := time.Now().Add(60 * time.Second)
	var got map[string]int
	for {
		got = map[string]int{}
		for _, r := range fake.Requests() {
			for _, to := range r.To {
				got[to]++
			}
		}
		missing := 0
		for num := range acked {
			if got[num] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never reached the provider\n%s", missing, len(acked), b.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	b.cmd.Process.Signal(syscall.SIGTERM)
	if err := b.cmd.Wait(); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
}
