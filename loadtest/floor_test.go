package loadtest

import (
	"bytes"
	"net/smtp"
	"os"
	"path/filepath"
	"testing"
)

// The floor journals a message before its 250 and then sends it to the
// provider; its outcome is journaled after the call.
func TestFloorJournalsThenSends(t *testing.T) {
	p, err := StartFakeProvider("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	journal := filepath.Join(t.TempDir(), "floor.journal")
	f, err := StartFloor("127.0.0.1:0", journal, p.URL)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			f.Close()
		}
	}()

	ref := Ref("floor", 1)
	msg := "From: load@localhost\r\nTo: +972501234567@sms.localhost\r\nSubject: x\r\n\r\n" + refLine("floor", 1) + "hello\r\n"
	if err := smtp.SendMail(f.Addr, nil, "load@localhost", []string{"+972501234567@sms.localhost"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	// Accepted means journaled: the record is in the file before the
	// provider is asked.
	data, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("+972501234567\n")) || !bytes.Contains(data, []byte(ref)) {
		t.Fatalf("journal after the 250 = %q, want the message", data)
	}

	// Close waits for the send under way and journals its outcome.
	closed = true
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if d := p.Delivery([]Accept{{Ref: ref}}); d.Arrived != 1 {
		t.Fatalf("delivery %+v, want the SMS at the provider", d)
	}
	if data, err = os.ReadFile(journal); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("sent +972501234567")) {
		t.Errorf("journal after Close = %q, want the outcome", data)
	}
}
