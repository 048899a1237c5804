package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// crashChildEnv, when set, makes TestCrashDurability the child: it names
// the database to write to.
const crashChildEnv = "SMSBRIDGE_SQLITE_CRASH_CHILD"

// TestCrashDurability kills a process that is writing to the store and
// checks that every Enqueue that had returned nil survived. It is the
// store's side of RFC 5321's "once 250 is said, the message is ours".
// SIGKILL loses the process, not the kernel's page cache, so this shows
// that acknowledged writes are committed (not merely buffered in the
// process); synchronous=FULL is what covers power loss.
func TestCrashDurability(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "q.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAfter := 100 + rand.IntN(300) // a different moment each run
	var acked []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked = append(acked, id)
			if len(acked) == killAfter {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatal(err)
				}
			}
		}
	}
	// Lines the child wrote before it died are acknowledgements too.
	err = cmd.Wait()
	if len(acked) < killAfter {
		t.Fatalf("child stopped after %d acks (%v); stderr:\n%s", len(acked), err, stderr.String())
	}
	if err == nil {
		t.Fatal("child exited normally; it should have been killed")
	}

	s := openTest(t, path)
	ctx := context.Background()
	for _, id := range acked {
		m, err := s.Message(ctx, id)
		if err != nil {
			t.Fatalf("acknowledged message %s lost: %v", id, err)
		}
		if len(m.Recipients) != 2 || m.Recipients[0].To != "+15551234567" || m.Recipients[1].To != "+15557654321" {
			t.Fatalf("acknowledged message %s has recipients %+v", id, m.Recipients)
		}
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Queued < 2*len(acked) {
		t.Fatalf("Stats = %+v, %v; want at least %d queued", st, err, 2*len(acked))
	}
	t.Logf("killed after %d acks; %d recipients on disk", len(acked), st.Queued)
}

// crashChild enqueues from several goroutines, as SMTP sessions do, and
// prints each message's id once Enqueue has returned nil, until killed.
func crashChild(path string) {
	time.AfterFunc(time.Minute, func() { os.Exit(3) }) // never outlive a lost parent
	s, err := Open(context.Background(), path, quiet)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	for range 8 {
		go func() {
			for {
				m := testMessage("+15551234567", "+15557654321")
				m.Text = strings.Repeat("durable ", 100)
				if err := s.Enqueue(context.Background(), m); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Printf("ack %s\n", m.ID)
				mu.Unlock()
			}
		}()
	}
	select {}
}
