package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// alertmanagerBinary finds the real Alertmanager (built from its Go module
// by .ci/run): $SMSBRIDGE_TEST_ALERTMANAGER, else alertmanager on PATH.
// Without one the test skips, saying so, except under CI=true, where it
// fails: a skipped end-to-end test must not pass for a passed one.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("SMSBRIDGE_TEST_ALERTMANAGER")
	if bin == "" {
		bin, _ = exec.LookPath("alertmanager")
	}
	if bin != "" {
		if _, err := os.Stat(bin); err == nil {
			return bin
		}
	}
	msg := "no alertmanager binary: set SMSBRIDGE_TEST_ALERTMANAGER (.ci/run builds github.com/prometheus/alertmanager/cmd/alertmanager v0.35.0)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freePort returns a port nothing listens on now, on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// alertmanagerProc is a real Alertmanager run for one test.
type alertmanagerProc struct {
	URL string
	log *bytes.Buffer
}

// startAlertmanager runs bin on 127.0.0.1:port with a configuration
// whose only receiver is smsbridge's hook at hookURL (with token), groups
// by alertname and instance and waits groupWait before the first
// notification; it is stopped (its own PID) at cleanup.
func startAlertmanager(t *testing.T, bin string, port int, hookURL, token string) *alertmanagerProc {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: sms
  group_by: ['alertname', 'instance']
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sms
    webhook_configs:
      - url: %q
        send_resolved: false
        http_config:
          authorization:
            credentials: %q
`, hookURL, token)
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &alertmanagerProc{URL: fmt.Sprintf("http://127.0.0.1:%d", port), log: &bytes.Buffer{}}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting alertmanager: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("alertmanager's log:\n%s", p.log)
		}
	})
	// Ready when its API answers; a process that exits (port taken,
	// bad flag) fails at once with its log.
	eventually(t, 30*time.Second, "alertmanager's API", func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("alertmanager exited: %v\n%s", err, p.log)
		default:
		}
		resp, err := http.Get(p.URL + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// do calls Alertmanager's API and decodes the JSON answer into out.
func (p *alertmanagerProc) do(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, p.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return resp.StatusCode
}

// amSilence is a silence as Alertmanager's API v2 lists it.
type amSilence struct {
	ID       string `json:"id"`
	Matchers []struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		IsRegex bool   `json:"isRegex"`
		IsEqual *bool  `json:"isEqual"`
	} `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
	Status    struct {
		State string `json:"state"`
	} `json:"status"`
}

func (p *alertmanagerProc) silences(t *testing.T) []amSilence {
	t.Helper()
	var out []amSilence
	if code := p.do(t, "GET", "/api/v2/silences", nil, &out); code != 200 {
		t.Fatalf("GET /api/v2/silences: %d", code)
	}
	return out
}
