package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// TestSIGHUPReload changes accounts and routes of a running daemon
// process: a session open across the reload stays open and follows the new
// rules, and a configuration that does not load leaves the running one.
// Each step waits for the daemon's own word (sd_notify) that the reload
// was taken and applied or refused, so no check can run before it.
func TestSIGHUPReload(t *testing.T) {
	oldFake := voipcomtest.NewServer(t, "k", "p", "17134567890")
	newFake := voipcomtest.NewServer(t, "k", "p", "17134567890")
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
	ns := listenNotify(t)
	cmd := daemonCmd("serve", "-config", path)
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+ns.name)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	ns.expect(t, "READY=1\nSTATUS=serving")

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
	ns.expect(t, "RELOADING=1")
	ns.expect(t, "READY=1\nSTATUS=reloaded "+path)
	if err := sendFrom(addr, "bob@other.example", "+12025550101@sms.example.com"); err != nil {
		t.Fatalf("bob after the reload: %v", err)
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
	ns.expect(t, "RELOADING=1")
	ns.expect(t, "READY=1\nSTATUS=reload refused, the running configuration stays: see the log")
	if err := sendFrom(addr, "bob@other.example", "+12025550103@sms.example.com"); err != nil {
		t.Fatalf("after a broken reload: %v", err)
	}
	waitFor(t, "the third SMS", func() bool { return len(newFake.Requests()) == 3 })
	if err := open.Quit(); err != nil {
		t.Errorf("quit on the old session: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ns.expect(t, "STOPPING=1")
}

// notifySocket stands in for systemd's end of sd_notify: an abstract
// unix datagram socket the daemon is told of with NOTIFY_SOCKET.
type notifySocket struct {
	name string
	conn *net.UnixConn
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	name := fmt.Sprintf("@smsbridge-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifySocket{name: name, conn: c}
}

// expect reads the daemon's next notification, which must be want. The
// read deadline only bounds a daemon that never says anything.
func (n *notifySocket) expect(t *testing.T, want string) {
	t.Helper()
	n.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 4096)
	k, err := n.conn.Read(buf)
	if err != nil {
		t.Fatalf("waiting for %q from the daemon: %v", want, err)
	}
	if got := string(buf[:k]); got != want {
		t.Fatalf("daemon notified %q, want %q", got, want)
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

// waitFor waits until the fake provider's request log shows what the
// test expects; the log has no hook, so it is polled (see waitUntil).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !waitUntil(10*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}
