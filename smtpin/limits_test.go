package smtpin

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
)

// tinyHeaders returns n header fields of a few bytes each.
func tinyHeaders(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-%d: v\r\n", i)
	}
	return b.String()
}

// The header block of the mail and of each part is bounded in fields and
// bytes; at the limit a mail still reads.
func TestReadMailHeaderLimits(t *testing.T) {
	lim := Limits{MaxHeaderFields: 50, MaxHeaderBytes: 2048}
	part := func(header string) string {
		return "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + header +
			"Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"
	}
	long := "Subject: " + strings.Repeat("x", 2048-len("Subject: \r\n")) + "\r\n"
	tests := []struct {
		name, raw string
		refused   bool
	}{
		{"fields at the limit", tinyHeaders(50) + "\r\nhello\r\n", false},
		{"one field too many", tinyHeaders(51) + "\r\nhello\r\n", true},
		{"bytes at the limit", long + "\r\nhello\r\n", false},
		{"one byte too many", "X" + long + "\r\nhello\r\n", true},
		{"continuation lines are no fields", "Subject: a\r\n" + strings.Repeat(" b\r\n", 100) + "\r\nhello\r\n", false},
		{"a folded line counts its bytes", "Subject: a\r\n" + strings.Repeat(" b\r\n", 600) + "\r\nhello\r\n", true},
		{"part header fields at the limit", part(tinyHeaders(49)), false},
		{"part header with too many fields", part(tinyHeaders(51)), true},
		{"part header too large", part("X-Big: " + strings.Repeat("y", 2100) + "\r\n"), true},
		{"header without an end", tinyHeaders(51), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadMail(strings.NewReader(tt.raw), lim)
			if !tt.refused {
				if err != nil {
					t.Fatalf("ReadMail: %v", err)
				}
				if m.Body != "hello" {
					t.Errorf("Body = %q", m.Body)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadMail = %+v, want a refusal", m)
			}
			if r := bridge.ReasonOf(err); r != bridge.ReasonTooLong || bridge.IsTemporary(err) {
				t.Fatalf("err = %v (reason %q), want a permanent %q", err, r, bridge.ReasonTooLong)
			}
			if got := Reply(err); got.Code != 552 || got.EnhancedCode != [3]int{5, 3, 4} ||
				!strings.Contains(got.Message, "smtp.max_header_") {
				t.Errorf("reply %d %v %q, want 552 5.3.4 naming the limit", got.Code, got.EnhancedCode, got.Message)
			}
		})
	}
}

// A text found before maxParts parts is read; past maxParts parts without
// one the mail is refused.
func TestReadMailMaxParts(t *testing.T) {
	parts := func(n int, text bool) string {
		var b strings.Builder
		b.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n")
		for range n {
			b.WriteString("--b\r\nContent-Type: image/png\r\n\r\nx\r\n")
		}
		if text {
			b.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n")
		}
		b.WriteString("--b--\r\n")
		return b.String()
	}
	m, err := ReadMail(strings.NewReader(parts(maxParts-1, true)), Limits{})
	if err != nil || m.Body != "hello" {
		t.Fatalf("ReadMail = %+v, %v; want the text of the last part", m, err)
	}
	_, err = ReadMail(strings.NewReader(parts(maxParts, true)), Limits{})
	if bridge.ReasonOf(err) != bridge.ReasonTooLong {
		t.Fatalf("err = %v, want %q", err, bridge.ReasonTooLong)
	}
}

// What the store keeps of a header: the bounce fields, each on one line
// of at most maxBounceField bytes, never more than maxBounceHeaders.
func TestBounceHeaders(t *testing.T) {
	big := strings.Repeat("é", 3000)
	raw := "Received: from x\r\n" + tinyHeaders(300) +
		"From: a@example.com\r\nTo: b@example.com,\r\n c@example.com\r\nSubject: " + big + "\r\n" +
		"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <id@x>\r\nCc: " + big + "\r\nX-SMS-Sender: A\r\n\r\nhi\r\n"
	m, err := ReadMail(strings.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(m.BounceHeaders, "\r\n"), "\r\n")
	var names []string
	for _, l := range lines {
		name, _, _ := strings.Cut(l, ":")
		names = append(names, name)
		if len(l) > maxBounceField {
			t.Errorf("line of %d bytes: %.40q", len(l), l)
		}
		if !strings.HasPrefix(l, "Subject: éé") && !strings.HasPrefix(l, "Cc: éé") && len(l) > 100 {
			t.Errorf("unexpected long line %.40q", l)
		}
	}
	if got, want := strings.Join(names, ","), "From,To,Cc,Subject,Date,Message-ID"; got != want {
		t.Errorf("fields %s, want %s", got, want)
	}
	if lines[1] != "To: b@example.com, c@example.com" {
		t.Errorf("To unfolded as %q", lines[1])
	}
	if len(m.BounceHeaders) > maxBounceHeaders {
		t.Errorf("%d bytes kept", len(m.BounceHeaders))
	}
}

// hostileMails are 1 MB mails shaped to make a careless reader hold many
// times their size: a header of tiny fields (refused), part headers of
// tiny fields, a million blank or quoted lines, an HTML body of line
// breaks, one huge line, many parts and deep nesting.
func hostileMails() map[string][]byte {
	const size = 1 << 20
	fill := func(prefix, unit, suffix string) []byte {
		var b bytes.Buffer
		b.WriteString(prefix)
		for b.Len() < size-len(suffix) {
			b.WriteString(unit)
		}
		b.WriteString(suffix)
		return b.Bytes()
	}
	return map[string][]byte{
		"header of tiny fields":      fill("", "a:b\r\n", "\r\nx\r\n"),
		"part header of tiny fields": fill("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n", "a:b\r\n", "\r\nx\r\n--b--\r\n"),
		"blank lines":                fill("\r\nhi\r\n", "\r\n", "end\r\n"),
		"quotes between blank lines": fill("\r\nhi:\r\n", "\r\n>q\r\n", "end\r\n"),
		"HTML line breaks":           fill("Content-Type: text/html\r\n\r\nhi", "<br>", "end\r\n"),
		"HTML block elements":        fill("Content-Type: text/html\r\n\r\nhi", "<p>a</p>", "end\r\n"),
		"one huge line":              fill("\r\n", "abcdefgh", "\r\n"),
		"many parts":                 fill("Content-Type: multipart/mixed; boundary=b\r\n\r\n", "--b\r\nContent-Type: image/gif\r\n\r\nx\r\n", "--b--\r\n"),
		"deep nesting":               []byte(deepMultipart(size / 60)),
		"base64 text":                fill("Content-Transfer-Encoding: base64\r\n\r\n", "QUJDREVGR0gK", "\r\n"),
	}
}

// TestReadMailMemory reads each hostile mail and checks that everything
// ReadMail allocated (garbage included, so a bound on its peak too) stays
// within a small multiple of the mail's size.
func TestReadMailMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes what allocates")
	}
	for name, raw := range hostileMails() {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := ReadMail(bytes.NewReader(raw), Limits{})
			runtime.ReadMemStats(&after)
			if err != nil && bridge.ReasonOf(err) != bridge.ReasonTooLong && bridge.ReasonOf(err) != bridge.ReasonInvalid {
				t.Fatalf("ReadMail: %v", err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes allocated for %d bytes of mail (%.1fx), err %v", alloc, len(raw), float64(alloc)/float64(len(raw)), err)
			if alloc > 10*uint64(len(raw)) {
				t.Errorf("%d bytes allocated for %d bytes of mail: over 10x", alloc, len(raw))
			}
		})
	}
}

// FuzzHeaderGuard checks the guard against a plain reading of the header
// block: it passes every byte through, and refuses a header exactly when
// it has more fields or bytes than allowed.
func FuzzHeaderGuard(f *testing.F) {
	f.Add([]byte("Subject: x\r\nFrom: a\r\n folded\r\n\r\nbody\r\n"))
	f.Add([]byte("a:b\nc:d\n\n"))
	f.Add([]byte("\r\r\r\nX"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fields, size := 0, 0
		for l := range bytes.SplitAfterSeq(raw, []byte("\n")) {
			body := bytes.TrimRight(bytes.TrimSuffix(l, []byte("\n")), "\r")
			if len(body) == 0 {
				break // the blank line (or CRs at the end) ends the header
			}
			size += len(l)
			if c := l[0]; c != ' ' && c != '\t' && c != '\r' {
				fields++
			}
		}
		read := func(lim Limits) ([]byte, error) {
			var out bytes.Buffer
			_, err := out.ReadFrom(newHeaderGuard(bytes.NewReader(raw), lim, nil))
			return out.Bytes(), err
		}
		out, err := read(Limits{MaxHeaderFields: fields, MaxHeaderBytes: size})
		if err != nil || !bytes.Equal(out, raw) {
			t.Fatalf("at %d fields and %d bytes: err %v, %d of %d bytes through", fields, size, err, len(out), len(raw))
		}
		if fields > 0 {
			if _, err := read(Limits{MaxHeaderFields: fields - 1, MaxHeaderBytes: size}); bridge.ReasonOf(err) != bridge.ReasonTooLong {
				t.Fatalf("%d fields with a limit of %d: err %v", fields, fields-1, err)
			}
		}
		if size > 0 {
			if _, err := read(Limits{MaxHeaderFields: fields, MaxHeaderBytes: size - 1}); bridge.ReasonOf(err) != bridge.ReasonTooLong {
				t.Fatalf("%d bytes with a limit of %d: err %v", size, size-1, err)
			}
		}
	})
}

// Message ids too long for a header line are not kept (nor stored).
func TestReadMailLongMessageIDs(t *testing.T) {
	long := strings.Repeat("i", maxMsgID+1) + "@x"
	raw := "Message-ID: <" + long + ">\r\nIn-Reply-To: " + long + "\r\nReferences: <a@x> <" + long + "> <b@x>\r\n\r\nhi\r\n"
	m, err := ReadMail(strings.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageID != "" || m.InReplyTo != "" || strings.Join(m.References, " ") != "a@x b@x" {
		t.Errorf("MessageID %.20q, InReplyTo %.20q, References %.40q", m.MessageID, m.InReplyTo, m.References)
	}
	var refs strings.Builder
	for i := range 50 {
		fmt.Fprintf(&refs, " <r%d@x>", i)
	}
	m, err = ReadMail(strings.NewReader("References:"+refs.String()+"\r\n\r\nhi\r\n"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.References) != maxRefs || m.References[maxRefs-1] != "r49@x" || m.References[0] != "r30@x" {
		t.Errorf("References %q, want the last %d", m.References, maxRefs)
	}
}
