// Package loadtest drives an SMTP server with concurrent sessions and
// measures how many messages per second it acknowledges and how long each
// acknowledgement takes. It also provides a discard-only server to run the
// same load against, as the ceiling a real server is compared with.
package loadtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Options describes one load run. Zero fields take the documented defaults.
type Options struct {
	Addr     string        // SMTP address to load, host:port
	Sessions int           // concurrent SMTP sessions (default 20)
	Messages int           // total messages (0 = run for Duration)
	Duration time.Duration // run time when Messages == 0 (default 10s)
	Size     int           // approximate message size in bytes, headers included (default 1024)
	From     string        // MAIL FROM (default "load@localhost")
	// To returns the RCPT TO of message i (default: a valid Israeli mobile
	// number at sms.localhost that varies with i).
	To func(i int) string
	// Reconnect opens a new connection for every message instead of
	// sending one MAIL/RCPT/DATA after another on a kept-open session.
	// The zero value is the kept-open session, the usual way an MTA or
	// application talks to a relay.
	Reconnect bool
	// Rate, if positive, makes the run open-loop: message i is due at
	// start + i/Rate whatever happened to the ones before, and its
	// latency is measured from that due time, so a server that stalls is
	// charged for the messages it kept waiting (no coordinated
	// omission). Sessions bounds the messages in flight: give it at least
	// Rate × the expected latency. 0 is the closed loop: each session
	// sends its next message as soon as the last one was answered.
	Rate float64
}

// Result is the outcome of a run. Latencies cover acknowledged messages
// only, from sending MAIL to reading the 250 after DATA; connecting and
// EHLO are not part of them.
type Result struct {
	Sent, Failed       int
	Elapsed            time.Duration
	Rate               float64 // acknowledged messages per second
	P50, P90, P99, Max time.Duration
	// Errors counts failures by stage and reply, e.g.
	// "RCPT: 550 5.1.1 no such user". Only the first few distinct texts
	// get their own entry; the rest are counted under OtherErrors.
	Errors map[string]int
	// IDs holds the text after "250 " of each acknowledged DATA, in no
	// particular order. smsbridge puts the message id there.
	IDs []string
	// Accepts holds each acknowledged message's reference (see Ref) and
	// when its 250 arrived, in no particular order.
	Accepts []Accept
}

// Accept is one acknowledged message.
type Accept struct {
	Ref string    // the reference on the first line of its text
	At  time.Time // when the 250 after DATA arrived
}

// OtherErrors is the Result.Errors key counting failures whose text is not
// among the first maxErrorKinds distinct ones.
const OtherErrors = "(other)"

const (
	defaultSessions = 20
	defaultDuration = 10 * time.Second
	defaultSize     = 1024
	defaultFrom     = "load@localhost"

	// maxErrorKinds bounds Result.Errors: network errors carry port
	// numbers, and a run against a dead server would otherwise grow one
	// entry per attempt.
	maxErrorKinds = 10

	// commandTimeout replaces go-smtp's RFC 5321 timeouts of 5 and 12
	// minutes: a server that sits on a reply for 30 s has failed a load
	// test, and the run should not hang on it.
	commandTimeout = 30 * time.Second

	// maxBackoff caps the pause after a failed connect, so a run against a
	// dead server neither spins nor stops noticing that it came back.
	maxBackoff = time.Second
)

func defaultTo(i int) string {
	return fmt.Sprintf("+97250%07d@sms.localhost", i%10_000_000)
}

func (o Options) withDefaults() (Options, error) {
	if o.Addr == "" {
		return o, errors.New("loadtest: no address to load")
	}
	if o.Sessions < 0 || o.Messages < 0 || o.Duration < 0 || o.Size < 0 || o.Rate < 0 {
		return o, errors.New("loadtest: sessions, messages, duration, size and rate must not be negative")
	}
	if o.Sessions == 0 {
		o.Sessions = defaultSessions
	}
	if o.Messages == 0 && o.Duration == 0 {
		o.Duration = defaultDuration
	}
	if o.Size == 0 {
		o.Size = defaultSize
	}
	if o.From == "" {
		o.From = defaultFrom
	}
	if o.To == nil {
		o.To = defaultTo
	}
	return o, nil
}

// Run loads o.Addr until o.Messages have been attempted or o.Duration has
// passed; messages in flight when the duration ends are finished and
// counted. Failed messages (refused at any stage, or lost with their
// connection) are counted and the session carries on, reconnecting if it
// has to. Cancelling ctx stops Run at once: it closes every connection,
// returns what was measured so far and ctx's error. Messages cut off by the
// cancellation are counted neither as sent nor as failed.
func Run(ctx context.Context, o Options) (Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Result{}, err
	}

	start := time.Now()
	var deadline time.Time
	if o.Messages == 0 {
		deadline = start.Add(o.Duration)
	}
	var next atomic.Int64
	claim := func() (int, time.Time, bool) {
		if ctx.Err() != nil {
			return 0, time.Time{}, false
		}
		i := int(next.Add(1) - 1)
		if o.Messages > 0 && i >= o.Messages {
			return 0, time.Time{}, false
		}
		if o.Rate > 0 {
			// Open loop: the timetable, not the clock at claim time,
			// decides which messages belong to the run.
			due := start.Add(time.Duration(float64(i) * float64(time.Second) / o.Rate))
			return i, due, o.Messages > 0 || due.Before(deadline)
		}
		return i, time.Time{}, o.Messages > 0 || time.Now().Before(deadline)
	}

	// The header is the same length give or take a few digits for every
	// message; size the shared body from message 0's.
	runID := rand.Text()[:12]
	hdr := header(o.From, o.To(0), 0, runID, start)
	gen := generator{o: o, runID: runID, body: body(o.Size - len(hdr) - len(refLine(runID, 0)))}

	sessions := make([]*session, o.Sessions)
	var wg sync.WaitGroup
	for k := range sessions {
		s := &session{gen: &gen, addr: o.Addr, reconnect: o.Reconnect, errs: map[string]int{}}
		sessions[k] = s
		wg.Go(func() { s.run(ctx, claim) })
	}
	wg.Wait()

	res := merge(sessions, time.Since(start))
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("loadtest: run interrupted: %w", err)
	}
	return res, nil
}

// generator builds the messages of a run.
type generator struct {
	o     Options
	runID string
	body  []byte
}

// session is one SMTP client connection and what it measured. Only its own
// goroutine touches it until Run merges the results.
type session struct {
	gen       *generator
	addr      string
	reconnect bool

	c       *smtp.Client
	unwatch func() bool // stops closing c's connection on cancel
	backoff time.Duration

	sent, failed int
	latencies    []time.Duration
	ids          []string
	accepts      []Accept
	errs         map[string]int
}

func (s *session) run(ctx context.Context, claim func() (int, time.Time, bool)) {
	defer s.hangUp()
	for {
		i, due, ok := claim()
		if !ok {
			return
		}
		if !due.IsZero() && !waitUntil(ctx, due) {
			return
		}
		s.send(ctx, i, due)
	}
}

// waitUntil waits for t, reporting false if ctx ended first.
func waitUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// send makes one attempt at message i and records its outcome. due is
// when an open-loop run scheduled it (zero in a closed loop): its latency
// runs from then, and includes any wait for a connection.
func (s *session) send(ctx context.Context, i int, due time.Time) {
	if s.c == nil {
		if err := s.dial(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.fail("connect", err)
			s.pause(ctx)
			return
		}
	}

	to := s.gen.o.To(i)
	hdr := header(s.gen.o.From, to, i, s.gen.runID, time.Now())
	ref := refLine(s.gen.runID, i)
	start := time.Now()
	if !due.IsZero() {
		start = due
	}
	id, stage, err := s.transaction(to, hdr, ref)
	if err == nil {
		now := time.Now()
		s.sent++
		s.latencies = append(s.latencies, now.Sub(start))
		s.ids = append(s.ids, id)
		s.accepts = append(s.accepts, Accept{Ref: Ref(s.gen.runID, i), At: now})
		if s.reconnect {
			s.hangUp()
		}
		return
	}
	if ctx.Err() != nil {
		// Cut off by the cancellation, not refused by the server.
		s.drop()
		return
	}
	s.fail(stage, err)

	// A refusal leaves the connection usable once the transaction is
	// reset; anything else (a broken connection, 421) means starting over.
	// Reset makes go-smtp forget the EHLO, so say it again now rather than
	// inside the next message's measured time.
	var serr *smtp.SMTPError
	if s.reconnect || !errors.As(err, &serr) || serr.Code == 421 ||
		s.c.Reset() != nil || s.c.Hello("localhost") != nil {
		s.drop()
	}
}

// transaction sends one message on the open session and returns the DATA
// reply text, or the stage that failed and why.
func (s *session) transaction(to, hdr, ref string) (id, stage string, err error) {
	if err := s.c.Mail(s.gen.o.From, nil); err != nil {
		return "", "MAIL", err
	}
	if err := s.c.Rcpt(to, nil); err != nil {
		return "", "RCPT", err
	}
	w, err := s.c.Data()
	if err != nil {
		return "", "DATA", err
	}
	if _, err := w.Write([]byte(hdr)); err != nil {
		return "", "DATA", err
	}
	if _, err := w.Write([]byte(ref)); err != nil {
		return "", "DATA", err
	}
	if _, err := w.Write(s.gen.body); err != nil {
		return "", "DATA", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", "DATA", err
	}
	return resp.StatusText, "", nil
}

func (s *session) dial(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return err
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = commandTimeout
	c.SubmissionTimeout = commandTimeout
	// go-smtp takes no context, and it resets deadlines around every
	// command, so closing the connection is the one sure way to unblock it.
	s.c, s.unwatch = c, context.AfterFunc(ctx, func() { conn.Close() })
	if err := c.Hello("localhost"); err != nil {
		s.drop()
		return err
	}
	s.backoff = 0
	return nil
}

// pause waits after a failed connect, longer each time in a row.
func (s *session) pause(ctx context.Context) {
	s.backoff = min(max(2*s.backoff, 10*time.Millisecond), maxBackoff)
	t := time.NewTimer(s.backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// hangUp ends the session politely, if there is one.
func (s *session) hangUp() {
	if s.c == nil {
		return
	}
	s.unwatch()
	if err := s.c.Quit(); err != nil {
		s.c.Close()
	}
	s.c = nil
}

// drop closes the connection without QUIT.
func (s *session) drop() {
	if s.c == nil {
		return
	}
	s.unwatch()
	s.c.Close()
	s.c = nil
}

func (s *session) fail(stage string, err error) {
	s.failed++
	addError(s.errs, stage+": "+errorText(err), 1)
}

func errorText(err error) string {
	var serr *smtp.SMTPError
	if !errors.As(err, &serr) {
		return err.Error()
	}
	if serr.EnhancedCode == (smtp.EnhancedCode{}) {
		return fmt.Sprintf("%d %s", serr.Code, serr.Message)
	}
	c := serr.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s", serr.Code, c[0], c[1], c[2], serr.Message)
}

func addError(errs map[string]int, key string, n int) {
	if _, ok := errs[key]; !ok && len(errs) >= maxErrorKinds {
		key = OtherErrors
	}
	errs[key] += n
}

func merge(sessions []*session, elapsed time.Duration) Result {
	res := Result{Elapsed: elapsed, Errors: map[string]int{}}
	var lat []time.Duration
	for _, s := range sessions {
		res.Sent += s.sent
		res.Failed += s.failed
		lat = append(lat, s.latencies...)
		res.IDs = append(res.IDs, s.ids...)
		res.Accepts = append(res.Accepts, s.accepts...)
		// Sorted so that which texts get their own entry does not
		// depend on map order.
		for _, k := range slices.Sorted(maps.Keys(s.errs)) {
			addError(res.Errors, k, s.errs[k])
		}
	}
	if elapsed > 0 {
		res.Rate = float64(res.Sent) / elapsed.Seconds()
	}
	slices.Sort(lat)
	res.P50 = percentile(lat, 0.50)
	res.P90 = percentile(lat, 0.90)
	res.P99 = percentile(lat, 0.99)
	res.Max = percentile(lat, 1)
	return res
}

// percentile returns the nearest-rank p-th percentile of sorted, the
// smallest value at least a fraction p of the samples do not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

// PerMessage is d spread over n messages, in microseconds (0 for none).
func PerMessage(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}
