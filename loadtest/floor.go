package loadtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Floor is the least any durable SMTP-to-SMS bridge must do per message,
// written as plainly as Go allows, so that a bridge's CPU per SMS can be
// set beside what the same machine, load and provider cost at the
// minimum: the SMTP exchange (go-smtp, as smsbridge); the message
// appended to a journal and fdatasync'd before its 250 (commits shared by
// the sessions waiting at the same time, as smsbridge's group commit);
// one HTTP POST to the provider (voip-communications' form, as
// smsbridge's provider); its outcome appended to the journal, durable
// with the next commit. It does nothing else: no parsing of MIME, no
// addresses checked, no accounts, limits, consent, conversation log,
// retries or metrics. Run it as its own process (cmd/smsfloor) and point
// smsload -pid at it.
type Floor struct {
	Addr string // the SMTP listener's address

	srv      *smtp.Server
	served   <-chan error
	journal  *os.File
	provider string // the voip-communications send URL
	client   *http.Client

	mu      sync.Mutex
	pending []byte        // records not yet written
	waiters []chan error  // sessions waiting for the next fdatasync
	kick    chan struct{} // wakes the committer
	late    bool          // a timer will wake the committer for records appended without waiting
	closed  bool          // Close has begun: no new messages, no new sends
	stop    chan struct{} // ends the committer
	sends   sync.WaitGroup
	commits sync.WaitGroup
}

// StartFloor listens for SMTP on addr, journals to path (created or
// truncated) and sends to providerURL, a voip-communications base_url
// (as FakeProvider.URL) whose credentials are FakeProviderKey and
// FakeProviderPassword.
func StartFloor(addr, path, providerURL string) (*Floor, error) {
	j, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("loadtest: floor journal: %w", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("loadtest: floor: %w", err)
	}
	f := &Floor{
		Addr: l.Addr().String(), journal: j,
		provider: strings.TrimSuffix(providerURL, "/") + "/sms/send",
		client:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second},
		kick:     make(chan struct{}, 1), stop: make(chan struct{}),
	}
	f.commits.Add(1)
	go f.committer()
	f.srv, f.served = serveSMTP(l, func() smtp.Session { return &floorSession{f: f} })
	return f, nil
}

// Close stops accepting, waits for the sends under way (their outcomes
// journaled) and the last commit, and closes the journal.
func (f *Floor) Close() error {
	err := f.srv.Close()
	if serr := <-f.served; serr != nil && !errors.Is(serr, smtp.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	// Sessions cut off by the server's close may still be in Data.
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.sends.Wait()
	close(f.stop)
	f.commits.Wait()
	return errors.Join(err, f.journal.Close())
}

// append adds a record to the journal; with wait, it returns once the
// record is on disk.
func (f *Floor) append(rec []byte, wait bool) error {
	var done chan error
	f.mu.Lock()
	if wait && f.closed {
		f.mu.Unlock()
		return errFloorClosed
	}
	f.pending = binary.AppendUvarint(f.pending, uint64(len(rec)))
	f.pending = append(f.pending, rec...)
	if !wait {
		// Outcomes join the next commit, or one lateJoin later: as
		// smsbridge's late writes, they cost no fsync of their own
		// while messages keep coming.
		if !f.late {
			f.late = true
			time.AfterFunc(lateJoin, f.wake)
		}
		f.mu.Unlock()
		return nil
	}
	done = make(chan error, 1)
	f.waiters = append(f.waiters, done)
	f.mu.Unlock()
	f.wake()
	return <-done
}

// lateJoin is how long a record appended without waiting may wait for a
// commit (smsbridge's group.Options.MaxJoin).
const lateJoin = 10 * time.Millisecond

func (f *Floor) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// committer writes and fdatasyncs what has been appended, one commit for
// every session that appended meanwhile.
func (f *Floor) committer() {
	defer f.commits.Done()
	var buf []byte
	for {
		select {
		case <-f.kick:
		case <-f.stop:
			f.commit(buf)
			return
		}
		buf = f.commit(buf)
	}
}

func (f *Floor) commit(buf []byte) []byte {
	f.mu.Lock()
	buf, f.pending = f.pending, buf[:0]
	waiters := f.waiters
	f.waiters = nil
	f.late = false
	f.mu.Unlock()
	if len(buf) == 0 {
		return buf
	}
	_, err := f.journal.Write(buf)
	if err == nil {
		err = f.journal.Sync()
	}
	for _, w := range waiters {
		w <- err
	}
	return buf
}

// send posts one SMS and journals its outcome (made durable by the next
// commit, as a bridge may: a lost outcome means a resend, not a loss).
func (f *Floor) send(to, text string) {
	defer f.sends.Done()
	form := url.Values{"to": {to}, "msg": {text}, "from": {"floor"}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, f.provider, strings.NewReader(form.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(FakeProviderKey, FakeProviderPassword)
	outcome := "sent"
	resp, err := f.client.Do(req)
	if err != nil {
		outcome = "failed"
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			outcome = "failed"
		}
	}
	f.append([]byte(outcome+" "+to), false)
}

type floorSession struct {
	f   *Floor
	rcp []string
}

func (s *floorSession) Mail(string, *smtp.MailOptions) error { return nil }

// Rcpt takes the phone from <phone>@domain, as the bridge's addresses.
func (s *floorSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	phone, _, _ := strings.Cut(to, "@")
	s.rcp = append(s.rcp, phone)
	return nil
}

func (s *floorSession) Reset()        { s.rcp = nil }
func (s *floorSession) Logout() error { return nil }

// Data journals the message, durably, answers, then sends: the SMS text
// is the body, as smsload's messages are plain text.
func (s *floorSession) Data(r io.Reader) error {
	msg, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return err
	}
	rec := append([]byte(strings.Join(s.rcp, ",")+"\n"), msg...)
	if err := s.f.append(rec, true); err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "journal: " + err.Error()}
	}
	_, body, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	text := string(body)
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.closed {
		return nil // journaled: a bridge would send it after its restart
	}
	for _, to := range s.rcp {
		s.f.sends.Add(1)
		go s.f.send(to, text)
	}
	return nil
}

var errFloorClosed = errors.New("floor closed")
