package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/providers/providertest"
)

// TestSIGHUPReload changes accounts and routes of a running daemon
// process: a session open across the reload stays open and follows the new
// rules, and a configuration that does not load leaves the running one.
func TestSIGHUPReload(t *testing.T) {
	oldFake := providertest.NewVoipcom(t, "k", "p", "17134567890")
	newFake := providertest.NewVoipcom(t, "k", "p", "17134567890")
	addr := freePort(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "smsbridge.toml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text+fmt.Sprintf("[store]\npath = %q\n", filepath.Join(dir, "q.db"))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(daemonConfig(addr, oldFake.URL))
	cmd := spawn(t, addr, "serve", "-config", path)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})

	// A session opened before the reload.
	open, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := open.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	// bob@other.example is nobody yet.
	if err := sendFrom(addr, "bob@other.example", "+12025550101@sms.example.com"); err == nil {
		t.Fatal("bob was accepted before he was configured")
	}

	// Add bob, and send everything through the new provider.
	reloaded := strings.Replace(daemonConfig(addr, newFake.URL), `emails = ["*@example.com"]`, `emails = ["*@example.com", "bob@other.example"]`, 1)
	write(reloaded)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for sendFrom(addr, "bob@other.example", "+12025550101@sms.example.com") != nil {
		if time.Now().After(deadline) {
			t.Fatal("bob not accepted 10s after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The session from before the reload still works, under the new route.
	if err := open.SendMail("a@example.com", []string{"+12025550102@sms.example.com"}, strings.NewReader("Subject: x\r\n\r\nstill here\r\n")); err != nil {
		t.Fatalf("session opened before the reload: %v", err)
	}
	waitFor(t, "both SMS at the new provider", func() bool { return len(newFake.Requests()) == 2 })
	if n := len(oldFake.Requests()); n != 0 {
		t.Errorf("%d SMS went to the provider the reload replaced", n)
	}

	// A file that does not load: refused, the running configuration stays.
	// It would drop bob if it were applied, so a wrongly applied reload
	// fails the check below.
	write(daemonConfig(addr, newFake.URL) + "[limits]\nno_such_key = 1\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let it read and refuse the file
	if err := sendFrom(addr, "bob@other.example", "+12025550103@sms.example.com"); err != nil {
		t.Fatalf("after a broken reload: %v", err)
	}
	waitFor(t, "the third SMS", func() bool { return len(newFake.Requests()) == 3 })
	if err := open.Quit(); err != nil {
		t.Errorf("quit on the old session: %v", err)
	}
}

func sendFrom(addr, from, to string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.SendMail(from, []string{to}, strings.NewReader("Subject: x\r\n\r\nhello\r\n"))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
