package daemon_test

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/providers/ippanel/ippaneltest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// hostileMail1MB returns mails of just under 1 MB (the default
// smtp.max_message_bytes) shaped to make a careless reader hold many
// times their size.
func hostileMails1MB() map[string][]byte {
	const size = 1_000_000
	fill := func(prefix, unit, suffix string) []byte {
		var b bytes.Buffer
		b.WriteString("From: alice@example.com\r\n")
		b.WriteString(prefix)
		for b.Len() < size-len(suffix)-len(unit) {
			b.WriteString(unit)
		}
		b.WriteString(suffix)
		return b.Bytes()
	}
	var line bytes.Buffer // one line of text, base64 in 76-character lines
	for line.Len() < 700_000 {
		line.WriteString("abcdefgh")
	}
	enc := base64.StdEncoding.EncodeToString(line.Bytes())
	var b64 strings.Builder
	for len(enc) > 76 {
		b64.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b64.WriteString(enc + "\r\n")
	var full bytes.Buffer // just within the header limits, then an attachment
	full.WriteString("From: alice@example.com\r\nSubject: " + strings.Repeat("s", 900) + "\r\n")
	for i := 0; full.Len() < 60_000; i++ {
		full.WriteString("X-Filler-" + strconv.Itoa(i) + ": " + strings.Repeat("f", 50) + "\r\n")
	}
	full.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nDisk full on db1\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for full.Len() < size-100 {
		full.WriteString(strings.Repeat("QUFB", 19) + "\r\n")
	}
	full.WriteString("--b--\r\n")
	return map[string][]byte{
		"full header and an attachment": full.Bytes(),
		"header of tiny fields":         fill("", "a:b\r\n", "\r\nx\r\n"),
		"part header of tiny fields":    fill("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n", "a:b\r\n", "\r\nx\r\n--b--\r\n"),
		"blank lines":                   fill("\r\nhi\r\n", "\r\n", "end\r\n"),
		"quotes between blank lines":    fill("\r\nhi:\r\n", "\r\n>q\r\n", "end\r\n"),
		"HTML blocks":                   fill("Content-Type: text/html\r\n\r\nhi", "<p>a</p>\r\n", "end\r\n"),
		"many parts":                    fill("Content-Type: multipart/mixed; boundary=b\r\n\r\n", "--b\r\nContent-Type: image/gif\r\n\r\nx\r\n", "--b--\r\n"),
		"one line in base64":            []byte("From: alice@example.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64.String()),
	}
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes, or 0
// where /proc is not there.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) * 1024
		}
	}
	return 0
}

// BenchmarkHeaderBomb runs 20 concurrent SMTP sessions against the real
// daemon, each sending 1 MB hostile mails (a header of tiny fields, a
// part header of tiny fields, a million blank lines, 100,000 HTML blocks,
// 10,000 parts, one 700 KB line in base64), and reports the process's
// peak RSS (test binary and daemon together) as peak-RSS-MB. Run it once:
// go test ./internal/daemon -run '^$' -bench HeaderBomb -benchtime 3x
func BenchmarkHeaderBomb(b *testing.B) {
	voip := voipcomtest.NewServer(b, "k", "p", "17134567890")
	edge := ippaneltest.NewServer(b, "edge-token", "+983000505")
	cfg := strings.Replace(httpConfig(voip.URL, edge.URL, ""), `domains = ["sms.example.com"]`,
		"domains = [\"sms.example.com\"]\nmax_connections_per_ip = 100\nmax_connections = 200", 1)
	storePath := filepath.Join(b.TempDir(), "smsbridge.db")
	d := startStore(b, cfg, storePath)
	var mails [][]byte
	for _, m := range hostileMails1MB() {
		mails = append(mails, m)
	}
	runtime.GC()
	// Writing 5 to clear_refs resets VmHWM (Linux), so the peak is this
	// benchmark's, not the setup's.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	const sessions = 20
	refused := 0
	for b.Loop() {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range sessions {
			wg.Go(func() {
				err := sendRaw(d.SMTPAddr(), mails[i%len(mails)])
				var se *smtp.SMTPError
				switch {
				case errors.As(err, &se):
					mu.Lock()
					refused++
					mu.Unlock()
				case err != nil:
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(peakRSS()/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(refused)/float64(b.N), "refused/op")
	// What an accepted hostile mail leaves in the store: the bytes of
	// its message row (text, the capped headers, ids), against the ~1 MB
	// the client sent.
	db, err := sql.Open("sqlite", "file:"+storePath+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n, stored int64
	if err := db.QueryRow(`SELECT count(*), coalesce(sum(length(headers) + length(text) + length(mail_message_id) +
		length(envelope_from) + coalesce(length(params), 0)), 0) FROM messages`).Scan(&n, &stored); err != nil {
		b.Fatal(err)
	}
	if n > 0 {
		b.ReportMetric(float64(stored)/float64(n), "stored-B/accepted")
	}
}

// sendRaw sends one mail in one SMTP session; an *smtp.SMTPError is the
// server's refusal.
func sendRaw(addr string, mail []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		return err
	}
	if err := c.Mail("alice@example.com", nil); err != nil {
		return err
	}
	if err := c.Rcpt("0501234567@sms.example.com", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(mail); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
