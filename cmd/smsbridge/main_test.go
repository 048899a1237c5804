package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// The test binary doubles as the smsbridge binary: with this variable set
// it runs main, so crash tests can SIGKILL a real daemon process.
func TestMain(m *testing.M) {
	if os.Getenv("SMSBRIDGE_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func daemonCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SMSBRIDGE_TEST_MAIN=1")
	return cmd
}

func TestCheckConfig(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "-config", "../../config.example.toml"}, &out, &errb); code != 0 {
		t.Fatalf("config.example.toml: exit %d: %s", code, errb.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[smtp]\ndomains = []\nfoo = 1\n[[routes]]\nprefix = \"x\"\nprovider = \"p\"\n"), 0o600)
	errb.Reset()
	if code := run([]string{"check-config", "-config", bad}, &out, &errb); code != 1 {
		t.Fatalf("bad config: exit %d, want 1", code)
	}
	for _, key := range []string{"smtp.foo: unknown key", "smtp.domains:", "accounts:", "routes[0].prefix:", "routes[0].provider:"} {
		if !strings.Contains(errb.String(), "\n  "+key) {
			t.Errorf("problem list lacks %q:\n%s", key, errb.String())
		}
	}
	// Valid but dangerous: warned about on stderr, exit status still 0.
	example, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	open := strings.Replace(strings.Replace(string(example), `listen = "127.0.0.1:2525"`, `listen = "0.0.0.0:2525"`, 1),
		`allowed_networks = ["127.0.0.1/32", "::1/128"]`, `allowed_networks = ["0.0.0.0/0"]`, 1)
	if open == string(example) {
		t.Fatal("config.example.toml no longer has the lines this test edits")
	}
	exposed := filepath.Join(t.TempDir(), "exposed.toml")
	os.WriteFile(exposed, []byte(open), 0o600)
	out.Reset()
	errb.Reset()
	if code := run([]string{"check-config", "-config", exposed}, &out, &errb); code != 0 {
		t.Fatalf("exposed config: exit %d, want 0 (a warning): %s", code, errb.String())
	}
	if want := "smsbridge: WARNING: smtp.allowed_networks[0]: 0.0.0.0/0 trusts unauthenticated mail from everywhere, and smtp.listen 0.0.0.0:2525 is not on loopback"; !strings.HasPrefix(errb.String(), want) {
		t.Errorf("stderr %q, want it to start %q", errb.String(), want)
	}
	if !strings.HasSuffix(out.String(), ": ok\n") {
		t.Errorf("stdout %q", out.String())
	}
	errb.Reset()
	if code := run([]string{"check-config", "-config", "../../config.example.toml"}, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Errorf("config.example.toml: exit %d, stderr %q; want no warning", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "smsbridge ") {
		t.Errorf("version: exit %d, %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

// TestCheckConfigObsoleteWorkers: a configuration from before per-provider
// limits, setting queue.workers, still passes check-config, with a
// warning on stderr that the key is ignored and what replaced it.
func TestCheckConfigObsoleteWorkers(t *testing.T) {
	example, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(example), "# workers = 8\n", "workers = 8\n", 1)
	if old == string(example) {
		t.Fatal("config.example.toml no longer has the line this test edits")
	}
	path := filepath.Join(t.TempDir(), "old.toml")
	os.WriteFile(path, []byte(old), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "-config", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, want 0 (a warning): %s", code, errb.String())
	}
	want := "smsbridge: WARNING: queue.workers = 8 is obsolete and ignored: it limits nothing. " +
		"Provider calls are limited per provider only, by each provider's adaptive concurrency limit " +
		"(up to providers[].max_concurrency, default 64) or its fixed providers[].concurrency; remove queue.workers\n"
	if errb.String() != want {
		t.Errorf("stderr %q, want %q", errb.String(), want)
	}
	if !strings.HasSuffix(out.String(), ": ok\n") {
		t.Errorf("stdout %q", out.String())
	}
}

// TestCheckConfigSharedNumber: check-config refuses a number phones can
// answer listed by two accounts, naming both accounts and the number.
func TestCheckConfigSharedNumber(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "shared.toml")
	os.WriteFile(cfg, []byte(`
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "clinic"
emails = ["*@clinic.example"]
sender_ids = ["Clinic", "+972500000001"]
[[accounts]]
name = "shop"
emails = ["*@shop.example"]
sender_ids = ["Clinic", "050-000-0001"]
[[providers]]
name = "c"
type = "console"
[[routes]]
prefix = "+"
provider = "c"
`), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "-config", cfg}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errb.String())
	}
	if e := errb.String(); !strings.Contains(e, "accounts[1].sender_ids[1]:") || !strings.Contains(e, `"050-000-0001"`) ||
		!strings.Contains(e, `"clinic"`) || !strings.Contains(e, `"shop"`) || strings.Contains(e, "sender_ids[0]") {
		t.Errorf("problems:\n%s\nwant one for accounts[1].sender_ids[1] naming the number and both accounts (the shared one-way Clinic is fine)", e)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Crash safety: mail is acknowledged while the daemon is SIGKILLed; after a
// restart every acknowledged message reaches the provider, and only those
// in flight at the kill may arrive twice. Then SIGTERM stops it with exit 0.
func TestCrashRestartLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns daemons")
	}
	fake := voipcomtest.NewServer(t, "k", "p", "17134567890")
	dir := t.TempDir()
	addr := freePort(t)
	cfgPath := filepath.Join(dir, "smsbridge.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("[store]\npath = %q\n", filepath.Join(dir, "q.db"))+daemonConfig(addr, fake.URL)), 0o600)

	startDaemon := func() *exec.Cmd { return spawn(t, addr, "serve", "-config", cfgPath) }

	var mu sync.Mutex
	acked := map[string]bool{}
	ackedOne := make(chan struct{}, 1) // a wake-up after an acknowledgement
	inflight := 0
	send := func(wg *sync.WaitGroup, worker int, stop <-chan struct{}) {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			num := fmt.Sprintf("9725%d%07d", worker, i)
			err := sendPlain(addr, "+"+num+"@sms.example.com", "Subject: x\r\n\r\ncrash test "+num+"\r\n")
			if err != nil {
				return // the daemon is gone
			}
			mu.Lock()
			acked[num] = true
			mu.Unlock()
			select {
			case ackedOne <- struct{}{}:
			default:
			}
		}
	}

	const kills = 3
	for k := 0; k < kills; k++ {
		cmd := startDaemon()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go send(&wg, k*4+w, stop)
		}
		// Kill mid-stream, once this run has acknowledged some mail (the
		// senders wake us on each 250): a fixed pause may end before the
		// first one on a loaded machine. The timer only guards a hang.
		mu.Lock()
		before := len(acked)
		mu.Unlock()
		hang := time.NewTimer(15 * time.Second)
		for n := 0; n < 10; {
			select {
			case <-ackedOne:
			case <-hang.C:
				cmd.Process.Kill()
				cmd.Wait()
				close(stop)
				wg.Wait()
				t.Fatalf("run %d: %d mails acknowledged in 15s, want 10 before the kill", k, n)
			}
			mu.Lock()
			n = len(acked) - before
			mu.Unlock()
		}
		hang.Stop()
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		close(stop)
		wg.Wait()
		inflight += 4 * 2 // at most a couple of batches per worker in flight
	}

	cmd := startDaemon()
	mu.Lock()
	want := len(acked)
	mu.Unlock()
	if want < 20 {
		t.Fatalf("only %d messages acknowledged; the test is not exercising anything", want)
	}
	got := awaitDelivered(t, fake, acked, 30*time.Second)
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	t.Logf("acknowledged %d, delivered %d distinct, %d duplicates over %d kills", want, len(got), dups, kills)
	if dups > inflight {
		t.Errorf("%d duplicates; at most the in-flight sends (%d) may repeat", dups, inflight)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("SIGTERM: %v, want exit 0", err)
	}
}

// sendPlain sends one mail without STARTTLS (the daemon under test has no
// certificate; go-smtp's SendMail insists on TLS).
func sendPlain(addr, to, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail("load@example.com", []string{to}, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

func TestHashPassword(t *testing.T) {
	var out, errb bytes.Buffer
	if code := hashPassword(strings.NewReader("correct horse battery\n"), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	hash := strings.TrimSpace(out.String())
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse battery")); err != nil {
		t.Errorf("hash %q does not match: %v", hash, err)
	}
	if code := hashPassword(strings.NewReader("short\n"), &out, &errb); code != 1 {
		t.Errorf("short password: exit %d, want 1", code)
	}
}

// `hash-password -h` prints what the command does and reads nothing; it
// used to wait silently for a password on standard input.
func TestHashPasswordHelp(t *testing.T) {
	r, w, err := os.Pipe() // a standard input that never ends
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, flag := range []string{"-h", "-help", "--help"} {
		var out, errb bytes.Buffer
		if code := hashPasswordCmd([]string{flag}, r, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "usage: smsbridge hash-password") {
			t.Errorf("hash-password %s: exit %d, stdout %q, stderr %q; want 0 and the usage", flag, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := hashPasswordCmd([]string{"secret"}, r, &out, &errb); code != 2 {
		t.Errorf("hash-password secret: exit %d, want 2 (the password is read from stdin, never an argument)", code)
	}
}

// daemonConfig is the daemon configuration the process tests share: SMTP on
// addr, one voip-communications provider at url, fast retries, one
// recipient per call; the store section is the test's own.
func daemonConfig(addr, url string) string {
	return fmt.Sprintf(`
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
`, addr, url)
}

// spawn starts the daemon binary (this test binary, see TestMain) with
// args and waits for its sd_notify READY=1, which it sends once its
// listeners (addr among them) are bound.
func spawn(t *testing.T, addr string, args ...string) *exec.Cmd {
	t.Helper()
	ns := listenNotify(t)
	cmd := daemonCmd(args...)
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+ns.name)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ns.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 4096)
	k, err := ns.conn.Read(buf)
	if got := string(buf[:max(k, 0)]); err != nil || got != "READY=1\nSTATUS=serving" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("daemon for %s did not report ready (%q, %v): %s", addr, got, err, logs.String())
	}
	return cmd
}

// waitUntil polls cond until it holds or timeout, a guard against a hang,
// passes. It is for states the test can only read, such as a provider
// fake's request log; where the daemon or a sender can say when something
// happened, the tests wait on that instead.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	hang := time.NewTimer(timeout)
	defer hang.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-hang.C:
			return cond()
		}
	}
	return true
}

// awaitDelivered waits until every acknowledged number reached the fake
// provider and returns how often each number arrived.
func awaitDelivered(t *testing.T, fake *voipcomtest.Server, acked map[string]bool, timeout time.Duration) map[string]int {
	t.Helper()
	var got map[string]int
	missing := 0
	if !waitUntil(timeout, func() bool {
		got = map[string]int{}
		for _, r := range fake.Requests() {
			for _, to := range r.To {
				got[to]++
			}
		}
		missing = 0
		for num := range acked {
			if got[num] == 0 {
				missing++
			}
		}
		return missing == 0
	}) {
		t.Fatalf("%d of %d acknowledged messages never reached the provider", missing, len(acked))
	}
	return got
}
