package bridge

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// Options configures a Bridge.
type Options struct {
	Region      string // default region for national numbers ("IL")
	MaxSegments int    // longest SMS accepted, in parts (Account.MaxSegments overrides it)
	// SmartEncoding replaces typographic look-alikes when that makes a
	// text GSM-7 (SmartEncode); Account.SmartEncoding overrides it.
	SmartEncoding bool
	MaxRecipients int // most recipients in one message
	// DestinationPerMinute caps SMS to one number per minute; 0: no cap.
	DestinationPerMinute int
	// ScheduleHorizon is how far ahead a send may be scheduled
	// (default DefaultScheduleHorizon).
	ScheduleHorizon time.Duration
	Now             func() time.Time
	// Enqueued, if set, is called after a message is committed, to wake
	// the dispatcher, unless the message's recipients were all handed
	// over to it (see Handoff).
	Enqueued func()
	// Handoff, if set, returns the dispatcher's hand-off: with a store
	// that implements EnqueueClaimer, the recipients the dispatcher has
	// room for are claimed as they are stored and handed to it.
	Handoff func() *Handoff
	Log     *slog.Logger

	// ReplyWindow is how long after someone wrote to a phone its replies
	// go to them (default 7 days); CatchAll gets the replies nobody is
	// waiting for ("" logs them only).
	ReplyWindow time.Duration
	CatchAll    string
	// Ambiguous is where a reply goes that more than one writer may be
	// meant for (default AmbiguousLast).
	Ambiguous Ambiguous
	// Composer builds reply and bounce mails; nil means nothing is mailed
	// (no smarthost): inbound SMS are only logged.
	Composer Composer
	// MailQueued, if set, is called after mail is queued, to wake the
	// mail worker.
	MailQueued func()
	// Received and Reported, if set, are told of each inbound SMS recorded
	// and each delivery report applied (for metrics).
	Received func(provider string)
	Reported func(provider string, state State)
	// Saved, if set, is told after a message is stored how many SMS
	// parts smart encoding saved it: per recipient (see shape), times its
	// recipients (for metrics).
	Saved func(account string, parts int)
	// Consent configures opt-out, opt-in and help keywords (optout.go).
	Consent ConsentOptions
}

// ConversationStore is the store a Bridge needs: the message queue and,
// in the same store, the conversation log, since Complete files an
// outcome's conversation in the outcome's own transaction and replies are
// routed by what it filed.
type ConversationStore interface {
	Store
	Conversations
}

// Bridge validates submissions from any front end and commits them to the
// store. SMTP and HTTP call the same methods, so the same rules give the
// same answers on both.
type Bridge struct {
	store ConversationStore
	opt   Options
	// policy is swapped whole by Reload: a submission sees one consistent
	// set of accounts, routes and providers from start to end.
	policy         atomic.Pointer[policy]
	perDestination *limiters
	keywords       *Keywords
}

// policy is what SIGHUP reloads: who may send, and where SMS go.
type policy struct {
	providers  map[string]Provider
	routes     *Routes
	accounts   *Accounts
	perAccount map[string]*limiters // by account name
	// ourKeys are the configured sender IDs' OurKey: every SMS sent is
	// filed under its sender's key, and parsing a number is not free.
	ourKeys map[string]string
	// numberOwners are, by OurKey, the providers that receive on each
	// number they declare (NumberOwner).
	numberOwners map[string][]string
}

// New assembles a Bridge. Every provider named by a route must be given.
func New(store ConversationStore, providers []Provider, routes []Route, accounts []Account, opt Options) (*Bridge, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.MaxSegments <= 0 {
		opt.MaxSegments = 10
	}
	if opt.ReplyWindow <= 0 {
		opt.ReplyWindow = 7 * 24 * time.Hour
	}
	if opt.Ambiguous == "" {
		opt.Ambiguous = AmbiguousLast
	}
	if opt.ScheduleHorizon <= 0 {
		opt.ScheduleHorizon = DefaultScheduleHorizon
	}
	if opt.Consent.OptOut == nil {
		opt.Consent.OptOut = DefaultOptOutKeywords
	}
	if opt.Consent.OptIn == nil {
		opt.Consent.OptIn = DefaultOptInKeywords
	}
	if opt.Consent.Help == nil {
		opt.Consent.Help = DefaultHelpKeywords
	}
	if opt.Consent.MaxPerAccount <= 0 {
		opt.Consent.MaxPerAccount = DefaultMaxSuppressions
	}
	if opt.Consent.Scope == "" {
		opt.Consent.Scope = ScopeNumber
	}
	b := &Bridge{store: store, opt: opt,
		keywords: NewKeywords(opt.Consent.OptOut, opt.Consent.OptIn, opt.Consent.Help)}
	if opt.DestinationPerMinute > 0 {
		b.perDestination = newLimiters(opt.DestinationPerMinute)
	}
	if err := b.Reload(providers, routes, accounts); err != nil {
		return nil, err
	}
	return b, nil
}

// Reload replaces the accounts, routes and providers, for submissions that
// start after it returns; those under way finish with the old ones. Every
// provider a route names must be given, or nothing changes. An account
// whose rate limit stays the same keeps its bucket, so a reload does not
// hand out a fresh allowance.
func (b *Bridge) Reload(providers []Provider, routes []Route, accounts []Account) error {
	pol := &policy{
		providers:  map[string]Provider{},
		routes:     NewRoutes(routes),
		accounts:   NewAccounts(accounts),
		perAccount: map[string]*limiters{},
		ourKeys:    map[string]string{},

		numberOwners: map[string][]string{},
	}
	for _, p := range providers {
		pol.providers[p.Name()] = p
		if o, ok := p.(NumberOwner); ok {
			for _, n := range o.Numbers() {
				key := b.OurKey(n)
				pol.numberOwners[key] = append(pol.numberOwners[key], p.Name())
			}
		}
	}
	for _, name := range pol.routes.All() {
		if pol.providers[name] == nil {
			return fmt.Errorf("bridge: route names unknown provider %q", name)
		}
	}
	for _, a := range accounts {
		for _, id := range a.SenderIDs {
			pol.ourKeys[id] = b.OurKey(id)
		}
	}
	old := b.policy.Load()
	for _, a := range accounts {
		if a.MessagesPerMinute <= 0 {
			continue
		}
		if old != nil && old.perAccount[a.Name] != nil && old.perAccount[a.Name].perMinute == a.MessagesPerMinute {
			pol.perAccount[a.Name] = old.perAccount[a.Name]
			continue
		}
		pol.perAccount[a.Name] = newLimiters(a.MessagesPerMinute)
	}
	b.policy.Store(pol)
	return nil
}

func (b *Bridge) pol() *policy { return b.policy.Load() }

// Store returns the bridge's store (for read endpoints and the CLI).
func (b *Bridge) Store() Store { return b.store }

// Account returns the account that may send as addr.
func (b *Bridge) Account(addr string) (*Account, error) { return b.pol().accounts.ByEmail(addr) }

// Authenticate checks an SMTP AUTH login.
func (b *Bridge) Authenticate(user, password string) (*Account, error) {
	return b.pol().accounts.Authenticate(user, password)
}

// KnownAccount reports whether name is a configured account's name (the
// user name of SMTP AUTH and the console's sign-in).
func (b *Bridge) KnownAccount(name string) bool { return b.pol().accounts.names[name] != nil }

// AccountByToken returns the account an HTTP API token belongs to.
func (b *Bridge) AccountByToken(token string) (*Account, error) {
	return b.pol().accounts.ByToken(token)
}

// Resolve turns a destination as written by a person (a phone number or a
// phonebook form, see ParseDestination) into a routed Recipient, or says
// why it can never be sent. It is called at RCPT time.
func (b *Bridge) Resolve(acct *Account, dest string) (Recipient, error) {
	pol := b.pol()
	to, err := ParseDestination(dest, b.opt.Region)
	if err != nil {
		return Recipient{}, err
	}
	var candidates []string
	if _, ok := ParsePhonebook(to); ok {
		if !acct.AllowPhonebooks {
			return Recipient{}, Permanent(ReasonSenderNotAllowed, "to", "account %s may not send to phonebooks", acct.Name)
		}
		// Phonebooks live at one provider: the first routed provider
		// that accepts phonebook targets.
		candidates = pol.routes.All()
	} else {
		candidates = pol.routes.Lookup(to)
	}
	if len(candidates) == 0 {
		return Recipient{}, Permanent(ReasonNoRoute, "to", "no route for %s", to)
	}
	var usable []string
	var firstErr error
	for _, name := range candidates {
		if c, ok := pol.providers[name].(RecipientChecker); ok {
			if err := c.CheckRecipient(to); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
		}
		usable = append(usable, name)
	}
	if len(usable) == 0 {
		if ReasonOf(firstErr) == "" {
			firstErr = &Error{Reason: ReasonNoRoute, Field: "to", Msg: "no provider can reach " + to, Err: firstErr}
		}
		return Recipient{}, firstErr
	}
	return Recipient{To: to, Providers: usable, Provider: usable[0], State: StateQueued}, nil
}

// Submission is a message as a front end received it, with recipients
// already resolved.
type Submission struct {
	Account       *Account
	Channel       Channel
	EnvelopeFrom  string
	MailMessageID string
	Headers       string
	Subject       string // decoded
	// ReplyTo is where the phone's replies are mailed (Message.ReplyTo);
	// Submit refuses one the account may not name (Account.MayReplyTo).
	ReplyTo string
	// MailRefs are the mail's In-Reply-To and References: an answer to one
	// of our reply mails goes out from the number the phone wrote to.
	MailRefs []string
	// EnvelopeID and Return are the mail's RFC 3461 ENVID and RET
	// (Message.EnvelopeID, Message.Return). Each recipient's NOTIFY and
	// ORCPT come in its Recipient; one without NOTIFY gets the account's
	// default.
	EnvelopeID string
	Return     DSNReturn
	// IdempotencyKey makes a retried submission return the first one's
	// message (HTTP Idempotency-Key).
	IdempotencyKey string
	// RequestDigest identifies the request (see Message.RequestDigest).
	RequestDigest string

	// Sender is the sender ID asked for explicitly, or "" for the default.
	Sender   string
	Text     string
	Template string
	Params   map[string]string
	SendAt   time.Time

	Recipients []Recipient
}

// Submit validates s as a whole (sender ID, content, what each routed
// provider accepts) and commits it to the store. It returns only once the
// message is durable; the caller may then acknowledge it.
func (b *Bridge) Submit(ctx context.Context, s *Submission) (*Message, error) {
	pol := b.pol()
	if len(s.Recipients) == 0 {
		return nil, Permanent(ReasonInvalid, "to", "no recipients")
	}
	if b.opt.MaxRecipients > 0 && len(s.Recipients) > b.opt.MaxRecipients {
		return nil, Permanent(ReasonTooManyRecipients, "to", "%d recipients; at most %d", len(s.Recipients), b.opt.MaxRecipients)
	}
	if err := checkContent(s); err != nil {
		return nil, err
	}
	if err := checkSchedule(s, b.opt.Now(), b.opt.ScheduleHorizon); err != nil {
		return nil, err
	}
	if s.ReplyTo != "" && !s.Account.MayReplyTo(s.ReplyTo) {
		// The SMTP side only ever offers an allowed address (see
		// smtpin's Mail.ReplyAddress); this is the HTTP reply_to, and the
		// last word for any front end.
		return nil, Permanent(ReasonInvalid, "reply_to", "reply_to: %s is neither an address of account %s nor in its reply_to list", s.ReplyTo, s.Account.Name)
	}
	sender := strings.TrimSpace(s.Sender)
	if sender == "" && len(s.MailRefs) > 0 && len(s.Recipients) == 1 {
		sender = b.ReplySender(ctx, s.Account, s.Recipients[0].To, s.MailRefs)
	}
	switch {
	case sender != "" && !s.Account.MaySend(sender):
		return nil, Permanent(ReasonSenderNotAllowed, "sender", "sender ID %q is not allowed for account %s", sender, s.Account.Name)
	case sender == "" && s.Template == "" && len(s.Account.Pool) == 0:
		sender = s.Account.DefaultSender()
		// With a template and no explicit sender, the template's own
		// sender applies (providers that have one). With a pool, the
		// sender is chosen from it below (stickySender).
	}
	if s.Template == "" && strings.TrimSpace(s.Text) == "" {
		return nil, Permanent(ReasonEmpty, "text", "nothing to send: the message text is empty")
	}
	var sh shaped
	if s.Text != "" {
		var err error
		if sh, err = b.shape(s.Account, s.Text); err != nil {
			return nil, err
		}
		if s.Template == "" && strings.TrimSpace(sh.text) == "" {
			return nil, Permanent(ReasonEmpty, "text", "nothing to send: the message text is only invisible characters")
		}
	}
	now := b.opt.Now()
	sendAt := s.SendAt
	if !sendAt.IsZero() && !sendAt.After(now) {
		sendAt = time.Time{} // in the past: send now
	}
	if s.IdempotencyKey != "" {
		if m, err := b.store.MessageByKey(ctx, s.Account.Name, s.IdempotencyKey); err == nil {
			return replay(m, s)
		}
	}
	if s.Template == "" || sender != "" {
		// Made before the provider checks and the rate limit: a claim of
		// a submission refused there stays until it runs out, harmless,
		// as it holds a number for a writer who meant to write.
		var err error
		if sender, err = b.stickySender(ctx, pol, s, sender); err != nil {
			return nil, err
		}
		if sender == "" && s.Template == "" {
			sender = s.Account.DefaultSender() // the pool could not be used
		}
	}
	m := &Message{
		IdempotencyKey: s.IdempotencyKey,
		RequestDigest:  s.RequestDigest,
		ID:             NewID(),
		Channel:        s.Channel,
		Account:        s.Account.Name,
		EnvelopeFrom:   s.EnvelopeFrom,
		MailMessageID:  s.MailMessageID,
		Headers:        s.Headers,
		Subject:        s.Subject,
		EnvelopeID:     s.EnvelopeID,
		Return:         s.Return,
		ReplyTo:        s.ReplyTo,
		Sender:         sender,
		Text:           s.Text,
		Template:       s.Template,
		Params:         s.Params,
		SendAt:         sendAt,
		Created:        now,
	}
	if s.Text != "" {
		if sh.text != s.Text {
			m.SMSText = sh.text
		}
		m.Encoding, m.Parts = sh.seg.Encoding, sh.seg.Count
	}
	req := m.request()
	seen := map[string]bool{}
	for _, r := range s.Recipients {
		if seen[r.To] {
			continue // the same number twice gets one SMS
		}
		seen[r.To] = true
		r, err := b.checkRequest(pol, r, req)
		if err != nil {
			return nil, err
		}
		r.State = StateQueued
		r.NextAttempt = now
		if r.Notify == 0 {
			r.Notify = s.Account.Notify
		}
		if !sendAt.IsZero() && !schedulesNatively(pol.providers[r.Provider], req) {
			r.NextAttempt = sendAt
		}
		m.Recipients = append(m.Recipients, r)
	}
	// A recipient whose consent ResolveTo read a moment ago for the same
	// sender is not read again: the dispatcher reads it once more before
	// the call unless that read is still fresh (see consentFresh).
	phones, consentAt := unread(m.Recipients, m.Account, b.ourKey(m.Sender), now)
	if err := b.checkConsent(ctx, m.Account, m.Sender, phones); err != nil {
		return nil, err
	}
	m.consentAt = consentAt
	if err := b.admit(pol, now, s.Account, m.Recipients); err != nil {
		return nil, err
	}
	claimed, err := b.enqueue(ctx, m, now)
	if err != nil {
		if errors.Is(err, ErrDuplicateKey) {
			// A concurrent retry with the same key won the race.
			first, err := b.store.MessageByKey(ctx, s.Account.Name, s.IdempotencyKey)
			if err != nil {
				return nil, err
			}
			return replay(first, s)
		}
		return nil, fmt.Errorf("storing message: %w", err)
	}
	if b.opt.Enqueued != nil && claimed < len(m.Recipients) {
		b.opt.Enqueued()
	}
	if b.opt.Saved != nil && sh.saved > 0 {
		b.opt.Saved(m.Account, sh.saved*len(m.Recipients))
	}
	return m, nil
}

// enqueue stores m, handing the dispatcher at once what it has room for,
// if the store can; it returns how many recipients it handed over.
func (b *Bridge) enqueue(ctx context.Context, m *Message, now time.Time) (int, error) {
	if ec, ok := b.store.(EnqueueClaimer); ok && b.opt.Handoff != nil {
		return ec.EnqueueClaim(ctx, m, now, b.opt.Handoff())
	}
	return 0, b.store.Enqueue(ctx, m)
}

// replay answers a submission whose idempotency key found first, the
// message an earlier request with the key created: that message when the
// requests are the same, a conflict naming the key (and not the first
// request's result) when they differ.
func replay(first *Message, s *Submission) (*Message, error) {
	if first.RequestDigest != "" && s.RequestDigest != "" && first.RequestDigest != s.RequestDigest {
		return nil, Permanent(ReasonIdempotencyConflict, "Idempotency-Key",
			"Idempotency-Key %q was used before with a different request; use a new key for a new request", s.IdempotencyKey)
	}
	first.Replayed = true
	return first, nil
}

// admit applies the account's and each destination's rate limit. It runs
// last, so refused submissions do not use up anyone's allowance.
//
// A message that no wait could let through (more recipients than the
// account may send in a minute) is refused for good, naming the limit: a
// client told to try again later would do so for ever.
func (b *Bridge) admit(pol *policy, now time.Time, acct *Account, rcpts []Recipient) error {
	reqs := []limitReq{{l: pol.perAccount[acct.Name], key: acct.Name, n: len(rcpts),
		what: "account " + acct.Name + "'s messages_per_minute"}}
	for _, r := range rcpts {
		reqs = append(reqs, limitReq{l: b.perDestination, key: r.To, n: 1, what: "limits.destination_per_minute"})
	}
	wait, never, ok := admit(now, reqs)
	switch {
	case never != nil:
		return Permanent(ReasonOverLimit, "to", "%d SMS in one message, more than %s (%d) allows in a minute: split the message",
			never.n, never.what, never.l.perMinute)
	case !ok:
		return &Error{Reason: ReasonRateLimited, Temp: true, RetryAfter: wait,
			Msg: fmt.Sprintf("rate limit reached, try again in %s", wait.Round(time.Second))}
	}
	return nil
}

// Cancel cancels the recipients of an account's message that are not sent
// yet, and those a provider holds for a scheduled send where its API can
// cancel them. It returns the message as it stands afterwards.
func (b *Bridge) Cancel(ctx context.Context, acct *Account, id string) (*Message, error) {
	pol := b.pol()
	m, err := b.store.Message(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Account != acct.Name {
		return nil, ErrNotFound
	}
	now := b.opt.Now()
	if _, err := b.store.Cancel(ctx, id, now); err != nil {
		return nil, err
	}
	var outcomes []Outcome
	if m.SendAt.After(now) {
		for _, r := range m.Recipients {
			c, ok := pol.providers[r.Provider].(Canceller)
			if r.State != StateSent || !ok || r.ProviderID == "" {
				continue
			}
			if err := c.Cancel(ctx, r.ProviderID); err != nil {
				b.opt.Log.WarnContext(ctx, "provider could not cancel a scheduled send", "message", id, "recipient", r.ID, "err", err)
				continue
			}
			outcomes = append(outcomes, Outcome{RecipientID: r.ID, State: StateCancelled, Provider: r.Provider,
				ProviderID: r.ProviderID, Error: "cancelled at the provider", At: now})
		}
	}
	if err := b.store.Complete(ctx, outcomes); err != nil {
		return nil, err
	}
	return b.store.Message(ctx, id)
}

// Message returns one of the account's messages.
func (b *Bridge) Message(ctx context.Context, acct *Account, id string) (*Message, error) {
	m, err := b.store.Message(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Account != acct.Name && !acct.Admin {
		return nil, ErrNotFound // another account's message does not exist for you
	}
	return m, nil
}

// checkRequest keeps the recipient's providers that accept the content,
// so a sender ID or template one provider refuses falls over to another
// that accepts it; with none left, the first refusal is the answer.
func (b *Bridge) checkRequest(pol *policy, r Recipient, req *SendRequest) (Recipient, error) {
	var usable []string
	var firstErr error
	for _, name := range r.Providers {
		p := pol.providers[name]
		if c, ok := p.(RequestChecker); ok {
			preq := req
			if !req.SendAt.IsZero() && !schedulesNatively(p, req) {
				// We hold it until due; the provider sees a send for now.
				cp := *req
				cp.SendAt = time.Time{}
				preq = &cp
			}
			if err := c.CheckRequest(preq); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
		}
		usable = append(usable, name)
	}
	if len(usable) == 0 {
		return r, firstErr
	}
	r.Providers, r.Provider = usable, usable[0]
	return r, nil
}

// request builds the provider request for m, without recipients.
func (m *Message) request() *SendRequest {
	return &SendRequest{
		MessageID: m.ID,
		Sender:    m.Sender,
		Text:      m.SendText(),
		Template:  m.Template,
		Params:    m.Params,
		SendAt:    m.SendAt,
	}
}

// Scheduler is implemented by providers that schedule sends themselves:
// a future send they accept is handed to them at once with SendAt set (so
// the provider validates it now), instead of being held in our queue.
type Scheduler interface {
	SchedulesNatively(req *SendRequest) bool
}

func schedulesNatively(p Provider, req *SendRequest) bool {
	s, ok := p.(Scheduler)
	return ok && s.SchedulesNatively(req)
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a new message id: 48 bits of milliseconds since the epoch
// then 32 random bits, in Crockford's base32, so it is safe in SMTP
// replies, URLs and file names. Ids sort by creation time, so a store's
// index on them grows at one end instead of touching a random page per
// insert (which made every commit write more pages).
func NewID() string {
	var b [10]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return idEncoding.EncodeToString(b[:])
}
