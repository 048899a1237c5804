package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// ReasonOptedOut refuses a send to a phone that asked for no more SMS
// (STOP) from the number, the account or the bridge.
const ReasonOptedOut Reason = "opted_out"

// Keyword is what an inbound SMS asks of the bridge, if anything.
type Keyword int

const (
	KeywordNone   Keyword = iota // an ordinary SMS
	KeywordOptOut                // STOP and the like: no more SMS
	KeywordOptIn                 // START: SMS again
	KeywordHelp                  // HELP: the account's help text
)

func (k Keyword) String() string {
	switch k {
	case KeywordOptOut:
		return "opt_out"
	case KeywordOptIn:
		return "opt_in"
	case KeywordHelp:
		return "help"
	}
	return "none"
}

// Default keyword lists. The English ones are what US carriers and CTIA
// require; the Hebrew and Persian ones are what people in Israel and Iran
// send ("הסר", remove, is the Israeli anti-spam law's word; "لغو", cancel,
// is what Iranian operators tell subscribers to send).
var (
	DefaultOptOutKeywords = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE",
		"הסר", "הסרה", "עצור", "הפסק", "لغو", "توقف", "انصراف"}
	DefaultOptInKeywords = []string{"START", "UNSTOP", "YES", "התחל", "شروع"}
	DefaultHelpKeywords  = []string{"HELP", "INFO", "עזרה", "راهنما"}
)

// Scope says which sends an opt-out received by SMS stops.
type Scope string

const (
	ScopeNumber  Scope = "number"  // from the number the phone wrote to
	ScopeAccount Scope = "account" // from the account that number belongs to
	ScopeAll     Scope = "all"     // from anyone, through any number
)

// ConsentOptions configures opt-out, opt-in and help keywords.
type ConsentOptions struct {
	// Keywords, matched against an inbound SMS's whole text (see
	// NormalizeKeyword); nil lists take the defaults, empty ones none.
	OptOut, OptIn, Help []string
	Scope               Scope // default ScopeNumber
	// Confirmation answers an opt-out, OptInConfirmation an opt-in; ""
	// sends none. HelpText answers HELP for accounts without their own.
	Confirmation      string
	OptInConfirmation string
	HelpText          string
	// MaxPerAccount caps the suppressions added through the API or the
	// CLI that one account's rows may hold (and the rows for every
	// account, account ""), so a client cannot grow the list, which
	// retention never purges, without bound. Opt-outs phones send are
	// never refused. Default DefaultMaxSuppressions.
	MaxPerAccount int
	// Changed, if set, is told of every consent change an SMS made
	// ("opt_out", "opt_in") and every help answer (for metrics).
	Changed func(provider string, k Keyword)
}

// Keywords matches inbound SMS against the keyword lists.
type Keywords struct {
	words map[string]Keyword
}

// NewKeywords builds a matcher. A word in more than one list keeps the
// first meaning, in the order opt-out, opt-in, help: an ambiguous word
// errs on the side of not texting the phone again.
func NewKeywords(optOut, optIn, help []string) *Keywords {
	k := &Keywords{words: map[string]Keyword{}}
	for _, l := range []struct {
		words []string
		k     Keyword
	}{{optOut, KeywordOptOut}, {optIn, KeywordOptIn}, {help, KeywordHelp}} {
		for _, w := range l.words {
			n := NormalizeKeyword(w)
			if _, ok := k.words[n]; !ok && n != "" {
				k.words[n] = l.k
			}
		}
	}
	return k
}

// Match says what text, an inbound SMS's whole text, asks for.
func (k *Keywords) Match(text string) Keyword {
	if k == nil || len(text) > maxKeywordBytes {
		return KeywordNone
	}
	return k.words[NormalizeKeyword(text)]
}

// maxKeywordBytes: no keyword is longer; a long SMS is not normalised
// just to find it is none.
const maxKeywordBytes = 256

var folder = cases.Fold()

// persianLetters maps the Arabic code points of letters Persian writes
// with its own (keyboards differ in which they send) to the Persian ones.
var persianLetters = strings.NewReplacer("\u064A", "\u06CC", "\u0649", "\u06CC", "\u0643", "\u06A9")

// NormalizeKeyword is how keywords and inbound texts are compared:
// NFKC (full-width and other compatibility forms become plain letters),
// case-folded, Arabic yeh and kaf read as their Persian forms, and
// trimmed of white space, invisible format characters (direction marks,
// zero-width spaces) and trailing full stops and exclamation marks
// ("Stop." and "STOP!" are opt-outs too). Inner spaces are collapsed to
// one, so "stop the car" stays three words and matches nothing.
func NormalizeKeyword(s string) string {
	s = norm.NFKC.String(s)
	// Folding can leave what NFKC would change again (and the reverse).
	s = norm.NFKC.String(folder.String(s))
	s = persianLetters.Replace(s)
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	return strings.TrimRightFunc(s, func(r rune) bool { return r == '.' || r == '!' || r == ' ' })
}

// Suppression is a phone that gets no SMS from a number, an account, or
// at all. Our "" covers every number, Account "" every account; both set,
// the account's sends from that number.
type Suppression struct {
	Phone   string // E.164
	Our     string // OurKey of our number or sender ID, or ""
	Account string
	Reason  string // why: the keyword received, or what an operator said
	Source  string // "sms", "api", "cli" or "console"
	By      string // who: the phone, an account, a system user
	Created time.Time
}

// Scope is the scope s was made with.
func (s Suppression) Scope() Scope {
	switch {
	case s.Our != "":
		return ScopeNumber
	case s.Account != "":
		return ScopeAccount
	}
	return ScopeAll
}

// SuppressionChange adds or removes a suppression, and says who asked.
type SuppressionChange struct {
	Suppression
	// Senders are the sender IDs as messages store them whose OurKey is
	// Our: Suppress cancels queued recipients of messages from them.
	Senders []string
	At      time.Time
}

// SuppressionEvent is one change in a suppression's history.
type SuppressionEvent struct {
	ID     int64
	Action string // "add" or "remove"
	Suppression
	At time.Time
}

// SuppressionFilter selects suppressions or history to list.
type SuppressionFilter struct {
	Phone string // E.164, or "" for all
	// Account, if set, keeps what concerns that account: its own rows,
	// rows of every account for the numbers in Ours, and rows of everyone.
	Account string
	Ours    []string
	Limit   int
}

// Suppressions keeps the suppression list and its history. Stores
// implement it beside Store.
type Suppressions interface {
	// Suppress stores c's suppression, records an "add" event and
	// cancels the queued recipients to c.Phone it covers that no
	// dispatcher holds, in one transaction; it returns how many it
	// cancelled. added is false, and nothing changes, when the same
	// suppression (phone, our, account) exists already.
	Suppress(ctx context.Context, c SuppressionChange) (added bool, cancelled int, err error)
	// Unsuppress removes c's suppression (with covering, every one that
	// stops sends from c.Our by c.Account to c.Phone) and records a
	// "remove" event for each, with c's reason, source and author; it
	// returns how many it removed.
	Unsuppress(ctx context.Context, c SuppressionChange, covering bool) (int, error)
	// HeldAtProvider returns the recipients to c.Phone that c covers and
	// that a provider holds for a scheduled send (sent, their message's
	// SendAt after now): only the provider can still stop them.
	HeldAtProvider(ctx context.Context, c SuppressionChange, now time.Time) ([]Recipient, error)
	// Suppressed returns the suppressions that stop sends from our by
	// account to any of phones, at most one per phone.
	Suppressed(ctx context.Context, account, our string, phones []string) ([]Suppression, error)
	// ListSuppressions returns suppressions matching f, newest first.
	ListSuppressions(ctx context.Context, f SuppressionFilter) ([]Suppression, error)
	// SuppressionHistory returns the changes matching f, newest first.
	SuppressionHistory(ctx context.Context, f SuppressionFilter) ([]SuppressionEvent, error)
	// CountSuppressions returns how many suppressions account's rows
	// hold that were not added by a phone's SMS (source "sms").
	CountSuppressions(ctx context.Context, account string) (int, error)
}

// DefaultMaxSuppressions is ConsentOptions.MaxPerAccount's default.
const DefaultMaxSuppressions = 100_000

func (b *Bridge) suppressions() (Suppressions, error) {
	s, ok := b.store.(Suppressions)
	if !ok {
		return nil, Permanent(ReasonInvalid, "", "this store keeps no suppression list")
	}
	return s, nil
}

// ResolveTo is Resolve for a front end: it also refuses a phone that
// opted out of the account's default sender (the sender asked for in the
// mail or request is checked again by Submit).
func (b *Bridge) ResolveTo(ctx context.Context, acct *Account, dest string) (Recipient, error) {
	r, err := b.Resolve(acct, dest)
	if err != nil {
		return r, err
	}
	our := b.ourKey(acct.DefaultSender())
	at := b.opt.Now()
	if err := b.checkConsent(ctx, acct.Name, acct.DefaultSender(), []string{r.To}); err != nil {
		return Recipient{}, err
	}
	r.consent = consentRead{account: acct.Name, our: our, at: at}
	return r, nil
}

// consentRead records a consent read that let a recipient through: by
// which account, for which sender (its OurKey), and when (taken before
// the read, so a STOP recorded during it counts as after).
type consentRead struct {
	account, our string
	at           time.Time
}

// unread returns the phones of rs whose consent to SMS from our by
// account must still be read at now: all but those a read made less than
// consentFresh ago let through, and the time of the oldest such read (now
// if there is none).
func unread(rs []Recipient, account, our string, now time.Time) ([]string, time.Time) {
	var phones []string
	oldest := now
	for _, r := range rs {
		c := r.consent
		if c.account != account || c.our != our || c.at.After(now) || now.Sub(c.at) >= consentFresh {
			phones = append(phones, r.To)
			continue
		}
		if c.at.Before(oldest) {
			oldest = c.at
		}
	}
	return phones, oldest
}

// checkConsent refuses the first of phones that opted out of sends from
// sender by account.
func (b *Bridge) checkConsent(ctx context.Context, account, sender string, phones []string) error {
	ss, ok := b.store.(Suppressions)
	if !ok {
		return nil
	}
	var numbers []string
	for _, p := range phones {
		if strings.HasPrefix(p, "+") {
			numbers = append(numbers, p)
		}
	}
	if len(numbers) == 0 {
		return nil
	}
	found, err := ss.Suppressed(ctx, account, b.ourKey(sender), numbers)
	if err != nil {
		return Temporary(ReasonStoreUnavailable, err, "cannot read the suppression list")
	}
	if len(found) == 0 {
		return nil
	}
	return optedOut(found[0])
}

func optedOut(s Suppression) *Error {
	what := "SMS"
	switch s.Scope() {
	case ScopeNumber:
		what = "SMS from " + s.Our
	case ScopeAccount:
		what = "SMS from account " + s.Account
	}
	return Permanent(ReasonOptedOut, "to", "%s opted out of %s (%s, %s): it must send START to receive them again",
		s.Phone, what, clipReason(s.Reason), s.Created.UTC().Format("2006-01-02"))
}

func clipReason(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") + "..."
	}
	if s == "" {
		s = "no reason given"
	}
	return s
}

func (b *Bridge) ourKey(sender string) string {
	if k, ok := b.pol().ourKeys[sender]; ok {
		return k
	}
	return b.OurKey(sender)
}

// sendersOf are the configured sender IDs whose OurKey is our, and our.
func (b *Bridge) sendersOf(our string) []string {
	out := []string{our}
	for id, k := range b.pol().ourKeys {
		if k == our && id != our {
			out = append(out, id)
		}
	}
	return out
}

// heldBack is the dispatcher's last look (DispatchOptions.Consent): of
// the phones a batch of m is about to go to, those that opted out since
// the message was accepted, with why.
func (b *Bridge) heldBack(ctx context.Context, m *Message, phones []string) (map[string]string, error) {
	ss, ok := b.store.(Suppressions)
	if !ok {
		return nil, nil
	}
	var numbers []string
	for _, p := range phones {
		if strings.HasPrefix(p, "+") {
			numbers = append(numbers, p)
		}
	}
	if len(numbers) == 0 || m.Channel == ChannelConsent {
		return nil, nil // a confirmation goes out to a phone that just opted out
	}
	found, err := ss.Suppressed(ctx, m.Account, b.ourKey(m.Sender), numbers)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range found {
		out[s.Phone] = optedOut(s).Msg
	}
	return out, nil
}

// HeldBack is DispatchOptions.Consent for this bridge.
func (b *Bridge) HeldBack(ctx context.Context, m *Message, phones []string) (map[string]string, error) {
	return b.heldBack(ctx, m, phones)
}

// ChannelConsent marks the bridge's own answers to keywords: the
// dispatcher sends them to a phone that just opted out (the confirmation).
const ChannelConsent Channel = "consent"

// consentKeyPrefix marks the idempotency keys of the bridge's own answers
// to keywords, so a provider's retried callback answers once.
const consentKeyPrefix = "consent:"

// consent acts on a keyword in in, received in conversation c: it
// changes the suppression list and answers through the provider and
// number the SMS came through. It runs before the inbound is recorded,
// and every step is idempotent (the change is a no-op when made already;
// the answer's idempotency key is the inbound's), so a provider's retry
// after a failure finishes the job without doing it twice.
func (b *Bridge) consent(ctx context.Context, in *Inbound, c *Conversation, answer bool) (Keyword, error) {
	k := b.keywords.Match(in.Text)
	if k == KeywordNone || !strings.HasPrefix(in.From, "+") {
		return KeywordNone, nil
	}
	if c.ID != ConversationID(in.From, in.To) {
		// Filed apart: the provider reported an SMS to a number or a
		// conversation of another provider's, which it does not speak
		// for (see inboundConversation). Its word changes nobody's
		// consent, and nothing is answered through it.
		b.opt.Log.WarnContext(ctx, "consent keyword through a provider that does not own the conversation; ignored", "provider", in.Provider)
		return KeywordNone, nil
	}
	ss, err := b.suppressions()
	if err != nil {
		return KeywordNone, err
	}
	acct, sender := b.answerer(c, in.To)
	now := b.opt.Now()
	ch := SuppressionChange{Suppression: Suppression{Phone: in.From, Reason: "SMS " + strings.TrimSpace(in.Text),
		Source: "sms", By: in.From, Created: now}, At: now}
	scope := b.opt.Consent.Scope
	if scope == ScopeAccount && acct == nil || scope == ScopeNumber && in.To == "" {
		scope = ScopeAll // nothing narrower is known
	}
	switch scope {
	case ScopeNumber:
		ch.Our, ch.Senders = in.To, b.sendersOf(in.To)
	case ScopeAccount:
		ch.Account = acct.Name
	}
	var text string
	switch k {
	case KeywordOptOut:
		added, n, err := ss.Suppress(ctx, ch)
		if err != nil {
			return k, err
		}
		if added {
			recalled, kept := b.recall(ctx, ss, ch)
			b.opt.Log.InfoContext(ctx, "phone opted out", "provider", in.Provider, "scope", string(scope), "cancelled", n,
				"recalled", recalled, "left_at_provider", kept)
		}
		text = b.opt.Consent.Confirmation
	case KeywordOptIn:
		// Whatever stops this number's SMS to the phone goes: the phone
		// asked for them.
		ch.Our, ch.Account = in.To, ""
		if acct != nil {
			ch.Account = acct.Name
		}
		if _, err := ss.Unsuppress(ctx, ch, true); err != nil {
			return k, err
		}
		text = b.opt.Consent.OptInConfirmation
	case KeywordHelp:
		text = b.opt.Consent.HelpText
		if acct != nil && acct.HelpText != "" {
			text = acct.HelpText
		}
	}
	if b.opt.Consent.Changed != nil {
		b.opt.Consent.Changed(in.Provider, k)
	}
	if !answer || strings.TrimSpace(text) == "" || acct == nil {
		return k, nil
	}
	return k, b.answer(ctx, in, acct, sender, text, ChannelConsent, consentKeyPrefix)
}

// answerer is the account, and its sender ID, that answers a keyword
// sent to our: the conversation's account if our is one of its numbers,
// else the first account (in configuration order) that has it.
func (b *Bridge) answerer(c *Conversation, our string) (*Account, string) {
	if our == "" {
		return nil, ""
	}
	pol := b.pol()
	find := func(a *Account) string {
		for _, s := range a.SenderIDs {
			if pol.ourKeys[s] == our {
				return s
			}
		}
		return ""
	}
	if c.Account != "" {
		if a := pol.accounts.ByName(c.Account); a != nil {
			if s := find(a); s != "" {
				return a, s
			}
		}
	}
	for _, a := range pol.accounts.All() {
		if s := find(a); s != "" {
			return a, s
		}
	}
	return nil, ""
}

// answer queues text to the phone in came from, through in's provider
// and from the number it wrote to, on channel, with an idempotency key of
// keyPrefix and in's identity. Its acceptance skips the suppression
// check, and on ChannelConsent so does the dispatcher's (an opt-out's
// confirmation goes to a phone that just opted out).
func (b *Bridge) answer(ctx context.Context, in *Inbound, acct *Account, sender, text string, channel Channel, keyPrefix string) error {
	now := b.opt.Now()
	sum := sha256.Sum256([]byte(in.Provider + "\x00" + in.DedupeKey))
	seg := CountSegments(text)
	m := &Message{Encoding: seg.Encoding, Parts: seg.Count,
		ID: NewID(), Channel: channel, Account: acct.Name, Sender: sender, Text: text, Created: now,
		IdempotencyKey: keyPrefix + hex.EncodeToString(sum[:16]),
		Recipients: []Recipient{{To: in.From, Providers: []string{in.Provider}, Provider: in.Provider,
			State: StateQueued, NextAttempt: now}},
	}
	err := b.store.Enqueue(ctx, m)
	if errors.Is(err, ErrDuplicateKey) {
		return nil // answered on an earlier delivery of the same SMS
	}
	if err != nil {
		return fmt.Errorf("queueing the answer to an SMS (%s): %w", channel, err)
	}
	if b.opt.Enqueued != nil {
		b.opt.Enqueued()
	}
	return nil
}

// consentNote is what the writer's mail says about a keyword.
func consentNote(k Keyword, phone, our string) string {
	switch k {
	case KeywordOptOut:
		return fmt.Sprintf("%s opted out: the bridge refuses further SMS to it from %s until it sends START.", phone, our)
	case KeywordOptIn:
		return fmt.Sprintf("%s opted in again: SMS to it from %s are accepted.", phone, our)
	}
	return ""
}

// Suppress adds a suppression on behalf of an account (or, for an admin
// with account "", of everyone): an import from another system, or an
// opt-out received elsewhere. our is one of the account's sender IDs or "".
func (b *Bridge) Suppress(ctx context.Context, acct *Account, account, phone, sender, reason, source string) (*Suppression, int, error) {
	ss, err := b.suppressions()
	if err != nil {
		return nil, 0, err
	}
	ch, err := b.change(acct, account, phone, sender, reason, source)
	if err != nil {
		return nil, 0, err
	}
	// Counted before the write, so concurrent adds may pass the cap by
	// as many as run at once: a bound, not an exact quota.
	have, err := ss.CountSuppressions(ctx, ch.Account)
	if err != nil {
		return nil, 0, Temporary(ReasonStoreUnavailable, err, "cannot read the suppression list")
	}
	if max := b.opt.Consent.MaxPerAccount; have >= max {
		return nil, 0, Permanent(ReasonInvalid, "phone", "account %q has %d suppressions, the most consent.max_per_account allows (%d)",
			ch.Account, have, max)
	}
	added, n, err := ss.Suppress(ctx, ch)
	if err != nil {
		return nil, 0, err
	}
	if added {
		recalled, _ := b.recall(ctx, ss, ch)
		n += recalled
	}
	return &ch.Suppression, n, nil
}

// Unsuppress removes one suppression (the one Suppress with the same
// arguments adds).
func (b *Bridge) Unsuppress(ctx context.Context, acct *Account, account, phone, sender, reason, source string) error {
	ss, err := b.suppressions()
	if err != nil {
		return err
	}
	ch, err := b.change(acct, account, phone, sender, reason, source)
	if err != nil {
		return err
	}
	if !acct.Admin && ch.Account == "" {
		return Permanent(ReasonSenderNotAllowed, "account", "only an admin account removes a suppression of every account")
	}
	n, err := ss.Unsuppress(ctx, ch, false)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// change checks what acct may change: its own account's suppressions,
// from its own sender IDs; an admin any account's, or everyone's.
func (b *Bridge) change(acct *Account, account, phone, sender, reason, source string) (SuppressionChange, error) {
	n, err := ParseNumber(phone, b.opt.Region)
	if err != nil {
		return SuppressionChange{}, Permanent(ReasonBadNumber, "phone", "%q is not a phone number", clipReason(phone))
	}
	if account == "" && !acct.Admin {
		account = acct.Name
	}
	if account != acct.Name && !acct.Admin {
		return SuppressionChange{}, Permanent(ReasonSenderNotAllowed, "account", "account %s may not change account %q's suppressions", acct.Name, clipReason(account))
	}
	if account != "" && b.pol().accounts.ByName(account) == nil {
		return SuppressionChange{}, Permanent(ReasonInvalid, "account", "no account %q", clipReason(account))
	}
	if len(reason) > 500 {
		return SuppressionChange{}, Permanent(ReasonInvalid, "reason", "reason is longer than 500 bytes")
	}
	reason = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(reason, "\uFFFD"))
	now := b.opt.Now()
	ch := SuppressionChange{Suppression: Suppression{Phone: n, Account: account, Reason: reason, Source: source,
		By: acct.Name, Created: now}, At: now}
	if sender != "" {
		owner := b.pol().accounts.ByName(account)
		sender = b.senderID(owner, sender)
		// A number nobody sends from would stop nothing.
		if owner != nil && !owner.MaySend(sender) {
			return SuppressionChange{}, Permanent(ReasonSenderNotAllowed, "number", "%q is not one of account %s's sender IDs", clipReason(sender), owner.Name)
		}
		if _, ok := b.pol().ourKeys[sender]; !ok {
			return SuppressionChange{}, Permanent(ReasonSenderNotAllowed, "number", "%q is no account's sender ID", clipReason(sender))
		}
		ch.Our = b.ourKey(sender)
		ch.Senders = b.sendersOf(ch.Our)
	}
	return ch, nil
}

// senderID is the configured sender ID that sender names: itself, or,
// for a number written another way (E.164, as a listing shows our
// numbers), the one of owner's (of anyone's, owner nil) with its OurKey.
func (b *Bridge) senderID(owner *Account, sender string) string {
	pol := b.pol()
	if _, ok := pol.ourKeys[sender]; ok && (owner == nil || owner.MaySend(sender)) {
		return sender
	}
	key := b.OurKey(sender)
	if owner != nil {
		for _, id := range owner.SenderIDs {
			if pol.ourKeys[id] == key {
				return id
			}
		}
		return sender
	}
	for id, k := range pol.ourKeys {
		if k == key {
			return id // any of them: they share the key Suppress stores
		}
	}
	return sender
}

// ListSuppressions returns the suppressions acct may see: an admin's, all
// (or one account's); another's, those that stop its own sends.
func (b *Bridge) ListSuppressions(ctx context.Context, acct *Account, f SuppressionFilter) ([]Suppression, error) {
	ss, f, err := b.suppressionFilter(acct, f)
	if err != nil {
		return nil, err
	}
	return ss.ListSuppressions(ctx, f)
}

// SuppressionHistory returns the changes acct may see (as ListSuppressions).
func (b *Bridge) SuppressionHistory(ctx context.Context, acct *Account, f SuppressionFilter) ([]SuppressionEvent, error) {
	ss, f, err := b.suppressionFilter(acct, f)
	if err != nil {
		return nil, err
	}
	return ss.SuppressionHistory(ctx, f)
}

func (b *Bridge) suppressionFilter(acct *Account, f SuppressionFilter) (Suppressions, SuppressionFilter, error) {
	ss, err := b.suppressions()
	if err != nil {
		return nil, f, err
	}
	if f.Phone != "" {
		n, err := ParseNumber(f.Phone, b.opt.Region)
		if err != nil {
			return nil, f, Permanent(ReasonBadNumber, "phone", "%q is not a phone number", clipReason(f.Phone))
		}
		f.Phone = n
	}
	if !acct.Admin {
		f.Account = acct.Name
	}
	if f.Account != "" {
		if a := b.pol().accounts.ByName(f.Account); a != nil {
			f.Ours = nil
			for _, s := range a.SenderIDs {
				f.Ours = append(f.Ours, b.ourKey(s))
			}
		}
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	return ss, f, nil
}

// consent cancels the jobs of b whose phone opted out after the message
// was accepted (Suppress cancels those queued; these were claimed by the
// time it ran). A suppression list that cannot be read holds the jobs
// back for a retry: an SMS to a phone that said STOP is worse than a late
// one.
func (d *Dispatcher) consent(ctx context.Context, b batch, live []Job, outcomes []Outcome, now time.Time) ([]Job, []Outcome) {
	if d.opt.Consent == nil || len(live) == 0 {
		return live, outcomes
	}
	phones := make([]string, len(live))
	for i, j := range live {
		phones[i] = j.Recipient.To
	}
	held, err := d.opt.Consent(ctx, b.msg, phones)
	if err != nil {
		// Not the provider's fault: no failover, no expiry; the next
		// look is a backoff step away.
		msg := "cannot read the suppression list: " + err.Error()
		for _, j := range live {
			outcomes = append(outcomes, Outcome{RecipientID: j.Recipient.ID, State: StateQueued, Provider: b.provider,
				Error: msg, NextAttempt: now.Add(d.opt.RetryMin), At: now})
		}
		return nil, outcomes
	}
	if len(held) == 0 {
		return live, outcomes
	}
	keep := live[:0:0]
	for _, j := range live {
		why, ok := held[j.Recipient.To]
		if !ok {
			keep = append(keep, j)
			continue
		}
		outcomes = append(outcomes, Outcome{RecipientID: j.Recipient.ID, State: StateCancelled,
			Provider: b.provider, Error: why, At: now})
	}
	return keep, outcomes
}

// recall cancels, at providers that can (Canceller), the scheduled sends
// they hold that ch's suppression covers, and records them cancelled. It
// returns how many it recalled and how many stay with a provider that
// cannot cancel (or failed to): those are logged, and go out when due.
func (b *Bridge) recall(ctx context.Context, ss Suppressions, ch SuppressionChange) (recalled, kept int) {
	now := b.opt.Now()
	held, err := ss.HeldAtProvider(ctx, ch, now)
	if err != nil {
		b.opt.Log.WarnContext(ctx, "cannot list the scheduled sends providers hold for a suppressed phone", "err", err)
		return 0, 0
	}
	pol := b.pol()
	var outcomes []Outcome
	for _, r := range held {
		c, ok := pol.providers[r.Provider].(Canceller)
		if !ok || r.ProviderID == "" {
			kept++
			continue
		}
		if err := c.Cancel(ctx, r.ProviderID); err != nil {
			b.opt.Log.WarnContext(ctx, "provider could not cancel a scheduled send to a suppressed phone", "message", r.MessageID,
				"recipient", r.ID, "err", err)
			kept++
			continue
		}
		outcomes = append(outcomes, Outcome{RecipientID: r.ID, State: StateCancelled, Provider: r.Provider,
			ProviderID: r.ProviderID, Error: "cancelled at the provider: " + ch.Phone + " opted out", At: now})
	}
	if kept > 0 {
		b.opt.Log.WarnContext(ctx, "scheduled sends to a suppressed phone stay with a provider that cannot cancel them", "count", kept)
	}
	if err := b.store.Complete(ctx, outcomes); err != nil {
		b.opt.Log.WarnContext(ctx, "recording recalled sends", "err", err)
		return 0, kept + len(outcomes)
	}
	return len(outcomes), kept
}
