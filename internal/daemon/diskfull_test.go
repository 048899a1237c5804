package daemon_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// A full disk makes the bridge answer "try again later" (SMTP 451 4.3.0,
// HTTP 503) instead of accepting what it cannot store, and it carries on
// by itself once there is space again. The store lives on a small tmpfs,
// filled up by a file the test then removes.
func TestDiskFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })

	voip := voipcomtest.NewServer(t, "k", "p", "17134567890")
	edge := ippaneltest.NewServer(t, "edge-token", "+983000505")
	d := startStore(t, httpConfig(voip.URL, edge.URL, ""), filepath.Join(dir, "smsbridge.db"))
	base := "http://" + d.HTTPAddr()

	// Fill the file system to the last byte.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for {
		if _, err := filler.Write(chunk[:512]); err != nil {
			break
		}
	}
	filler.Close()

	// The WAL reuses space it already has, so the first few messages may
	// still fit; keep sending until the store runs out.
	var smtpErr error
	n := 0
	for ; n < 3000; n++ {
		_, smtpErr = sendMail(t, d.SMTPAddr(), "ops@example.com", []string{fmt.Sprintf("05030%05d@sms.example.com", n)},
			"Subject: x\n\ndisk full test\n")
		if smtpErr != nil {
			break
		}
	}
	if code, enh := smtpCode(smtpErr); code != 451 || enh != "4.3.0" {
		t.Fatalf("after %d messages: %v, want 451 4.3.0", n, smtpErr)
	}
	r := call(t, "POST", base+"/v1/messages", opsToken, `{"to": "0503999999", "text": "disk full"}`)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.Body["reason"] != "store_unavailable" {
		t.Errorf("HTTP while full: %d %v", r.Status, r.Body)
	}

	// Space comes back: no restart needed.
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "accepting again", func() bool {
		_, err := sendMail(t, d.SMTPAddr(), "ops@example.com", []string{"0503888888@sms.example.com"}, "Subject: x\n\nback\n")
		return err == nil
	})
	if r := call(t, "POST", base+"/v1/messages", opsToken, `{"to": "0503777777", "text": "back"}`); r.Status != 202 {
		t.Errorf("HTTP after space returned: %d %v", r.Status, r.Body)
	}
}
