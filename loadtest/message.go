package loadtest

import (
	"fmt"
	"strings"
	"time"
)

// words fill message bodies. They are plain lower-case ASCII so the body
// needs no transfer encoding and survives any MIME → text conversion the
// target does unchanged.
var words = strings.Fields(`
	your appointment is confirmed for tomorrow at the clinic please arrive
	ten minutes early and bring the referral letter reply to this message
	if you need to change the time the order has shipped and will arrive
	within three business days thank you for choosing us monitoring alert
	disk usage on server is above the threshold of ninety percent`)

// maxLine keeps body lines well under the 78 character limit of RFC 5322
// §2.1.1 so no target has reason to rewrap them.
const maxLine = 72

// header returns the header block (ending in the blank line) of message i.
func header(from, to string, i int, runID string, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <%s>\r\n", from)
	fmt.Fprintf(&b, "To: <%s>\r\n", to)
	fmt.Fprintf(&b, "Subject: load test message %d\r\n", i)
	fmt.Fprintf(&b, "Message-ID: <%s.%d@loadtest.localhost>\r\n", runID, i)
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("\r\n")
	return b.String()
}

// Ref is message i's reference in run runID. It is the first line of the
// message's text (see refLine), so whatever receives the text, a fake
// provider for one, can tell which message it is.
func Ref(runID string, i int) string { return fmt.Sprintf("%s-%d", runID, i) }

// refLine is the first body line of message i.
func refLine(runID string, i int) string { return "ref " + Ref(runID, i) + "\r\n" }

// RefOf returns the reference in a text that starts with a ref line, as
// an SMS made from a message of this package does.
func RefOf(text string) (string, bool) {
	rest, ok := strings.CutPrefix(text, "ref ")
	if !ok {
		return "", false
	}
	// The first word: a target may join the lines of a paragraph.
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", false
	}
	return f[0], true
}

// body returns exactly n bytes (at least 3) of CRLF-terminated lines of
// words. Messages share one body so generating it costs nothing per message;
// only the headers differ.
func body(n int) []byte {
	n = max(n, 3)
	b := make([]byte, 0, n)
	w := 0
	for rest := n; rest > 0; {
		// A line costs its text plus CRLF. Stretch the last full line
		// rather than leave a remainder too short to be a line of its own.
		line := min(maxLine, rest-2)
		if rest-(line+2) < 3 {
			line = rest - 2
		}
		start := len(b)
		for room := line; room > 0; room = line - (len(b) - start) {
			if len(b) > start {
				if room == 1 {
					// No room for a space and a word: end on a
					// letter, never on trailing white space.
					b = append(b, 's')
					break
				}
				b = append(b, ' ')
				room--
			}
			word := words[w%len(words)]
			w++
			// The last word is cut to make the line come out exact.
			b = append(b, word[:min(len(word), room)]...)
		}
		b = append(b, '\r', '\n')
		rest -= line + 2
	}
	return b
}
