package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AlertRef is one alert group a phone was paged about, under the short
// reference (#3) its SMS carried: what an answer naming it (or answering
// the latest alert) acts on.
type AlertRef struct {
	Phone   string // E.164
	Ref     int    // the phone's own numbering, from 1
	Account string // the account whose hook paged
	Source  string // the hook: "alertmanager" or "grafana"
	// GroupKey identifies the group within the account and source
	// (AlertGroupKey): paging the phone about the same group again keeps
	// its reference.
	GroupKey string
	// Labels are the group's labels: a silence matches exactly them.
	Labels map[string]string
	// Title names the group in answers ("DiskFull on db1").
	Title string
	Paged time.Time // the last SMS about the group to the phone
	// SilenceID and SilencedUntil are the silence this phone made for
	// the group (none: "" and zero).
	SilenceID     string
	SilencedUntil time.Time
}

// AlertRefs keeps the references of alert SMS. Stores implement it beside
// Store; retention purges references not paged since its cutoff
// (PurgeAlertRefs).
type AlertRefs interface {
	// PageAlert files an SMS about group g (Account, Source, GroupKey,
	// Labels, Title, Paged set; Phone and Ref ignored) to each of phones
	// and returns each phone's reference for it: the one the phone
	// already has for the group (its labels, title and time updated), or
	// the phone's next (AlertRefNext), in one transaction.
	PageAlert(ctx context.Context, g AlertRef, phones []string) (map[string]int, error)
	// AlertRef returns phone's reference ref from account, or with ref 0
	// the one paged last; ErrNotFound if there is none.
	AlertRef(ctx context.Context, phone, account string, ref int) (*AlertRef, error)
	// SetAlertSilence records the silence phone made for its reference
	// ref (id "" and a zero until: none); ErrNotFound if the reference
	// is gone.
	SetAlertSilence(ctx context.Context, phone string, ref int, id string, until time.Time) error
}

// PurgeAlertRefs are alert references whose phone was last paged about
// the group before the cutoff.
const PurgeAlertRefs PurgeKind = "alert_refs"

// MaxAlertRef is the highest reference a phone is given; past it the
// phone's least recently paged reference is reused (by then it is
// hundreds of thousands of alerts old).
const MaxAlertRef = 999_999

// Limits on what an alert reference keeps, so that a hook's payload
// cannot make the store hold more: the labels become a silence's
// matchers, which the APIs cap too.
const (
	MaxAlertLabels     = 32
	MaxAlertLabelBytes = 256
	maxAlertTitle      = 120
)

// AlertGroupKey identifies an alert group: its source and labels. Two
// notifications of one group (a repeat, or a change in its alerts) have
// the same key.
func AlertGroupKey(source string, labels map[string]string) string {
	h := sha256.New()
	h.Write([]byte(source))
	for _, k := range sortedKeys(labels) {
		fmt.Fprintf(h, "\x00%s\x00%s", k, labels[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// CheckAlertRef refuses a group that a store must not keep: no labels
// (a silence of nothing would silence everything), too many or too long
// ones, or missing fields.
func CheckAlertRef(g AlertRef) error {
	switch {
	case g.Account == "" || g.Source == "" || g.GroupKey == "":
		return Permanent(ReasonInvalid, "alerts", "alert group without account, source or key")
	case len(g.Labels) == 0:
		return Permanent(ReasonInvalid, "groupLabels", "the alert group has no labels to silence it by")
	case len(g.Labels) > MaxAlertLabels:
		return Permanent(ReasonInvalid, "groupLabels", "the alert group has %d labels, at most %d", len(g.Labels), MaxAlertLabels)
	}
	for k, v := range g.Labels {
		if k == "" || v == "" || len(k) > MaxAlertLabelBytes || len(v) > MaxAlertLabelBytes {
			return Permanent(ReasonInvalid, "groupLabels", "alert group label %q: names and values must be 1 to %d bytes",
				clipReason(k), MaxAlertLabelBytes)
		}
	}
	return nil
}

// alertTitle is how answers name a group: its alertname and where
// ("DiskFull on db1"), or, for a group of several alerts, the labels
// they share ("alerts with team=blue").
func alertTitle(labels map[string]string) string {
	if name := labels["alertname"]; name != "" {
		for _, where := range []string{"instance", "host", "job", "service"} {
			if v := labels[where]; v != "" {
				return clipTitle(name + " on " + v)
			}
		}
		return clipTitle(name)
	}
	var pairs []string
	for _, k := range sortedKeys(labels) {
		pairs = append(pairs, k+"="+labels[k])
	}
	return clipTitle("alerts with " + strings.Join(pairs, ", "))
}

func clipTitle(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxAlertTitle {
		s = strings.ToValidUTF8(s[:maxAlertTitle], "") + "..."
	}
	return s
}

// AlertPage is an alert notification to file before it is sent.
type AlertPage struct {
	Account *Account
	Source  string
	// Labels are the group's labels (Alertmanager's groupLabels, or its
	// commonLabels when the route groups by nothing).
	Labels map[string]string
}

// PageAlert files an alert SMS to phones (E.164) under a reference per
// phone, and returns them. It returns nil, and files nothing, when the
// account cannot be answered about the source (no silencer configured):
// then the SMS carries no reference.
func (b *Bridge) PageAlert(ctx context.Context, p AlertPage, phones []string) (map[string]int, error) {
	src := p.Account.AlertSource(p.Source)
	if src == nil || src.Silencer == nil {
		return nil, nil
	}
	ar, ok := b.store.(AlertRefs)
	if !ok {
		return nil, nil
	}
	g := AlertRef{Account: p.Account.Name, Source: p.Source, GroupKey: AlertGroupKey(p.Source, p.Labels),
		Labels: p.Labels, Title: alertTitle(p.Labels), Paged: b.opt.Now()}
	if err := CheckAlertRef(g); err != nil {
		// Paging matters more than answering: the SMS goes without a
		// reference.
		b.opt.Log.WarnContext(ctx, "alert group cannot be silenced by SMS; paging without a reference",
			"account", g.Account, "source", g.Source, "err", err)
		return nil, nil
	}
	refs, err := ar.PageAlert(ctx, g, phones)
	if err != nil {
		return nil, Temporary(ReasonStoreUnavailable, err, "cannot file the alert's reference")
	}
	return refs, nil
}
