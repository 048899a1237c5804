package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/internal/daemon"
)

// A New that fails after binding the SMTP listener closes it again, so a
// corrected configuration can be started in the same process.
func TestNewClosesWhatItOpenedOnFailure(t *testing.T) {
	cfg, err := config.Parse(`
[smtp]
domains = ["sms.localhost"]
[[accounts]]
name = "ops"
emails = ["*@localhost"]
sender_ids = ["Ops"]
[[providers]]
name = "console"
type = "console"
[[routes]]
prefix = "+"
provider = "console"
`, daemon.Kinds)
	if err != nil {
		t.Fatal(err)
	}
	smtpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	smtpAddr := smtpLn.Addr().String()
	smtpLn.Close()
	busy, err := net.Listen("tcp", "127.0.0.1:0") // taken: http.listen fails
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg.Store.Path = filepath.Join(t.TempDir(), "smsbridge.db")
	cfg.SMTP.Listen = smtpAddr
	cfg.HTTP.Listen = busy.Addr().String()

	d, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || d != nil || !strings.HasPrefix(err.Error(), "http.listen: ") {
		t.Fatalf("daemon.New with http.listen taken: %v, %v; want an http.listen error", d, err)
	}
	ln, err := net.Listen("tcp", smtpAddr)
	if err != nil {
		t.Fatalf("smtp.listen %s still bound after New failed: %v", smtpAddr, err)
	}
	ln.Close()
}
