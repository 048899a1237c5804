package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/silence"
)

// Silencer creates and expires silences at an alerting server
// (silence.Client).
type Silencer interface {
	Create(ctx context.Context, s silence.Silence) (string, error)
	Expire(ctx context.Context, id string) error
}

// AlertSource is what an account's hook for one source (alertmanager,
// grafana) lets the phones it pages do by SMS.
type AlertSource struct {
	// Silencer makes the silences; nil: alert SMS from this hook carry
	// no reference and their answers are ordinary replies.
	Silencer Silencer
	// Commanders, E.164, are the only phones whose commands act; empty:
	// every phone the hook paged about the group.
	Commanders []string
	// DefaultSilence is how long ACK without a duration silences;
	// MaxSilence the longest a command may ask for.
	DefaultSilence time.Duration
	MaxSilence     time.Duration
}

// AlertOptions configures an account's alert hooks.
type AlertOptions struct {
	// Sources by hook name ("alertmanager", "grafana").
	Sources map[string]*AlertSource
	// MaxSegments caps an alert SMS (the account's own cap still
	// applies); 0: the account's.
	MaxSegments int
	// SendResolved sends notifications of resolved groups; otherwise
	// they are answered and dropped.
	SendResolved bool
	// RepeatWindow drops a notification of a group unchanged since the
	// same notification was sent less than this long ago; 0: none.
	RepeatWindow time.Duration
}

// AlertSource returns the account's settings for source, or nil.
func (a *Account) AlertSource(source string) *AlertSource {
	return a.Alerts.Sources[source]
}

// MayCommand reports whether phone's commands act on this source's
// alerts.
func (s *AlertSource) MayCommand(phone string) bool {
	return len(s.Commanders) == 0 || slices.Contains(s.Commanders, phone)
}

// ChannelAlert marks the bridge's answers to alert commands.
const ChannelAlert Channel = "alert"

// alertKeyPrefix marks the idempotency keys of those answers, so a
// provider's retried callback answers once.
const alertKeyPrefix = "alert:"

// alertCommand acts on in if it is a command about an alert SMS the
// phone received (see silence.Parse), and answers it by SMS. It returns
// the account whose alert it was when it acted (or answered an error),
// nil when in is an ordinary reply: not a command, not from a phone the
// account paged, or from one that may not command. Like consent, it runs
// before in is recorded, and an error (the answer could not be queued)
// makes the provider retry: the retry updates the same silence and
// answers once (the answer's idempotency key is the inbound's).
func (b *Bridge) alertCommand(ctx context.Context, in *Inbound, c *Conversation) (*Account, error) {
	cmd, perr := silence.Parse(in.Text)
	if errors.Is(perr, silence.ErrNotCommand) || !strings.HasPrefix(in.From, "+") {
		return nil, nil
	}
	log := b.opt.Log.With("provider", in.Provider, "conversation", c.ID)
	if c.ID != ConversationID(in.From, in.To) {
		log.WarnContext(ctx, "alert command through a provider that does not own the conversation; ordinary reply")
		return nil, nil
	}
	ar, ok := b.store.(AlertRefs)
	acct, sender := b.answerer(c, in.To)
	if !ok || acct == nil {
		return nil, nil
	}
	ref, err := ar.AlertRef(ctx, in.From, acct.Name, cmd.Ref)
	unknown := errors.Is(err, ErrNotFound) && cmd.Ref != 0
	if unknown {
		// A reference the phone was never given: an error for a phone
		// that may command the account's latest alert to it, an
		// ordinary reply from anyone else.
		ref, err = ar.AlertRef(ctx, in.From, acct.Name, 0)
	}
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("reading alert references: %w", err)
		}
		log.WarnContext(ctx, "alert command from a phone the account has not paged; ordinary reply", "account", acct.Name)
		return nil, nil
	}
	src := acct.AlertSource(ref.Source)
	if src != nil && !src.MayCommand(in.From) {
		log.WarnContext(ctx, "alert command from a phone that may not command; ordinary reply", "account", acct.Name, "source", ref.Source)
		return nil, nil
	}
	var text string
	switch {
	case unknown:
		text = fmt.Sprintf("No alert #%d was sent to you.", cmd.Ref)
	case src == nil || src.Silencer == nil:
		text = fmt.Sprintf("%s (#%d) cannot be silenced by SMS any more: the account has no %s configured.",
			ref.Title, ref.Ref, ref.Source)
	case perr != nil:
		text = perr.Error() + "."
	case cmd.Verb == silence.VerbSilence:
		text = b.silenceAlert(ctx, in, ref, src, cmd)
	default:
		text = b.unsilenceAlert(ctx, in, ref, src)
	}
	in.Note = text
	in.Command = fmt.Sprintf("%s #%d", cmd.Verb, ref.Ref)
	if unknown || perr != nil {
		in.Command = "refused: " + clipReason(in.Text)
	}
	return acct, b.answerAlert(ctx, in, acct, sender, text)
}

// silenceAlert creates (or extends) the phone's silence of ref's group
// and says what it did.
func (b *Bridge) silenceAlert(ctx context.Context, in *Inbound, ref *AlertRef, src *AlertSource, cmd silence.Command) string {
	d, err := cmd.Resolve(src.DefaultSilence, src.MaxSilence)
	if err != nil {
		return fmt.Sprintf("Not silenced: %s.", err)
	}
	now := b.opt.Now()
	s := silence.Silence{StartsAt: now, EndsAt: now.Add(d), CreatedBy: in.From,
		Comment: fmt.Sprintf("Acknowledged by SMS from %s through smsbridge (account %s, alert #%d: %s)", in.From, ref.Account, ref.Ref, ref.Title)}
	for _, k := range sortedKeys(ref.Labels) {
		s.Matchers = append(s.Matchers, silence.Matcher{Name: k, Value: ref.Labels[k]})
	}
	if ref.SilenceID != "" && ref.SilencedUntil.After(now) {
		s.ID = ref.SilenceID // the phone's own silence, still on: changed, not doubled
	}
	id, err := src.Silencer.Create(ctx, s)
	if errors.Is(err, silence.ErrNotFound) && s.ID != "" {
		s.ID = "" // the server lost it (restarted without its data)
		id, err = src.Silencer.Create(ctx, s)
	}
	if err != nil {
		b.opt.Log.WarnContext(ctx, "silencing an alert by SMS failed", "account", ref.Account, "source", ref.Source, "ref", ref.Ref, "err", err)
		return fmt.Sprintf("Could not silence %s: %s.", ref.Title, shortError(err))
	}
	if err := b.store.(AlertRefs).SetAlertSilence(ctx, in.From, ref.Ref, id, s.EndsAt); err != nil {
		// The silence stands; only UNACK will not find it.
		b.opt.Log.ErrorContext(ctx, "recording a silence made by SMS", "silence", id, "err", err)
	}
	b.opt.Log.InfoContext(ctx, "alert silenced by SMS", "account", ref.Account, "source", ref.Source, "ref", ref.Ref, "silence", id,
		"until", s.EndsAt)
	return fmt.Sprintf("Silenced %s for %s until %s (#%d).", ref.Title, silence.Format(d), untilText(now, s.EndsAt), ref.Ref)
}

// unsilenceAlert expires the phone's silence of ref's group.
func (b *Bridge) unsilenceAlert(ctx context.Context, in *Inbound, ref *AlertRef, src *AlertSource) string {
	now := b.opt.Now()
	if ref.SilenceID == "" || !ref.SilencedUntil.After(now) {
		return fmt.Sprintf("No silence of yours is on for %s (#%d).", ref.Title, ref.Ref)
	}
	err := src.Silencer.Expire(ctx, ref.SilenceID)
	if err != nil && !errors.Is(err, silence.ErrNotFound) {
		b.opt.Log.WarnContext(ctx, "expiring a silence by SMS failed", "account", ref.Account, "source", ref.Source, "ref", ref.Ref, "err", err)
		return fmt.Sprintf("Could not unsilence %s: %s.", ref.Title, shortError(err))
	}
	if err := b.store.(AlertRefs).SetAlertSilence(ctx, in.From, ref.Ref, "", time.Time{}); err != nil {
		b.opt.Log.ErrorContext(ctx, "recording a silence expired by SMS", "silence", ref.SilenceID, "err", err)
	}
	b.opt.Log.InfoContext(ctx, "alert silence expired by SMS", "account", ref.Account, "source", ref.Source, "ref", ref.Ref, "silence", ref.SilenceID)
	return fmt.Sprintf("Unsilenced %s (#%d): it pages again.", ref.Title, ref.Ref)
}

// untilText is when a silence ends, for an SMS: the time in UTC, with the
// date when it is not today's.
func untilText(now, t time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.Year() == now.Year() && t.YearDay() == now.YearDay() {
		return t.Format("15:04 UTC")
	}
	return t.Format("Jan 2 15:04 UTC")
}

// shortError is what the phone is told of a failed call: the server's
// status and word, or that it did not answer; the log has the rest.
func shortError(err error) string {
	var se *silence.Error
	if !errors.As(err, &se) {
		return "the silence was refused"
	}
	name := se.Server
	if i := strings.IndexByte(name, ' '); i > 0 {
		name = name[:i]
	}
	if se.Status == 0 {
		return name + " did not answer"
	}
	msg := fmt.Sprintf("%s answered %d", name, se.Status)
	if se.Detail != "" {
		msg += " (" + clipReason(se.Detail) + ")"
	}
	return msg
}

// answerAlert queues text to the phone in came from, as consent answers
// are, but through the ordinary consent check: a phone that opted out of
// the number gets nothing.
func (b *Bridge) answerAlert(ctx context.Context, in *Inbound, acct *Account, sender, text string) error {
	return b.answer(ctx, in, acct, sender, text, ChannelAlert, alertKeyPrefix)
}

// accountAddress is the first of acct's emails that is an address (not a
// *@domain pattern): where the account is told of alert commands.
func accountAddress(acct *Account) string {
	if acct == nil {
		return ""
	}
	for _, e := range acct.Emails {
		if !strings.HasPrefix(e, "*@") {
			return e
		}
	}
	return ""
}
