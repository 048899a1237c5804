package mailout_test

import (
	"bytes"
	"io"
	"net/textproto"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-message"
)

var date = time.Date(2025, 3, 14, 9, 26, 53, 0, time.FixedZone("IST", 2*3600))

// keys returns a header's field names, canonical and sorted, repeats kept.
func keys(h message.Header) []string {
	var ks []string
	for f := h.Fields(); f.Next(); {
		ks = append(ks, textproto.CanonicalMIMEHeaderKey(f.Key()))
	}
	slices.Sort(ks)
	return ks
}

// readMail parses a built mail, failing the test if it does not parse.
func readMail(t testing.TB, data []byte) *message.Entity {
	t.Helper()
	e, err := message.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parsing the mail: %v\n%s", err, data)
	}
	return e
}

// body reads a part's body after transfer decoding.
func body(t testing.TB, e *message.Entity) string {
	t.Helper()
	b, err := io.ReadAll(e.Body)
	if err != nil {
		t.Fatalf("reading a body: %v", err)
	}
	return string(b)
}
