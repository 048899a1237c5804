package daemon_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"
)

// writeCert writes a self-signed certificate and its key for 127.0.0.1
// and returns their paths.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// The implicit-TLS listener (port 465) serves the same SMTP front end:
// AUTH is offered at once, mail is queued, and the daemon stops cleanly
// with both listeners open (start's cleanup checks that).
func TestSMTPImplicitTLS(t *testing.T) {
	cert, key := writeCert(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	d := start(t, fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
tls_cert = %q
tls_key = %q
tls_listen = "127.0.0.1:0"
require_auth = true
[[accounts]]
name = "ops"
emails = ["*@example.com"]
sender_ids = ["Ops"]
smtp_password_hash = %q
[[providers]]
name = "c"
type = "console"
[[routes]]
prefix = "+"
provider = "c"
`, cert, key, hash))
	if d.SMTPTLSAddr() == "" || d.SMTPTLSAddr() == d.SMTPAddr() {
		t.Fatalf("SMTPTLSAddr = %q (SMTPAddr %q)", d.SMTPTLSAddr(), d.SMTPAddr())
	}

	c, err := smtp.DialTLS(d.SMTPTLSAddr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") {
		t.Fatalf("AUTH = %v %q, want PLAIN", ok, mechs)
	}
	if err := c.Auth(sasl.NewPlainClient("", "ops", "s3cret pass")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail("robot@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("0501234567@sms.example.com", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "Subject: x\r\n\r\nover TLS\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	_, id, ok := strings.Cut(resp.StatusText, "queued as ")
	if !ok {
		t.Fatalf("DATA reply %q names no message", resp.StatusText)
	}
	m, err := d.Store().Message(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Account != "ops" || m.Text != "over TLS" || len(m.Recipients) != 1 || m.Recipients[0].To != "+972501234567" {
		t.Errorf("stored %+v", m)
	}
}
