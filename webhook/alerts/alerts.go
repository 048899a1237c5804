// Package alerts turns alerting webhook payloads (Prometheus Alertmanager,
// Grafana unified alerting) into one short SMS text per notification.
//
// The package is pure: it parses bytes and returns a string, so the HTTP
// side decides routing, authentication and recipients.
package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/smsbridge/smsbridge/bridge"
)

// payload holds the fields of an Alertmanager (version "4") notification
// that the text needs. Grafana's contact point payload is a superset, so it
// shares the type; fields not listed here (values, URLs, fingerprints) are
// ignored by encoding/json, which keeps us tolerant of new versions.
type payload struct {
	Status            string            `json:"status"`
	Alerts            []alert           `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`

	// Grafana only; documented as "will be deprecated soon", so they are
	// last-resort fallbacks.
	Title   string `json:"title"`
	Message string `json:"message"`
}

type alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// Notification is one parsed alerting notification.
type Notification struct {
	p       *payload
	grafana bool
}

// Parse reads an Alertmanager (grafana false) or Grafana unified
// alerting webhook payload. Malformed payloads yield a permanent
// *bridge.Error naming the JSON field.
func Parse(body []byte, grafana bool) (*Notification, error) {
	p, err := decode(body)
	if err != nil {
		return nil, err
	}
	return &Notification{p: p, grafana: grafana}, nil
}

// Alertmanager parses a Prometheus Alertmanager webhook payload and returns
// the SMS text, e.g. "[FIRING:2] HighLatency: p99 above 2s on api-1 (+1 more)".
func Alertmanager(body []byte) (string, error) {
	n, err := Parse(body, false)
	if err != nil {
		return "", err
	}
	return n.Text(Format{}), nil
}

// Grafana parses a Grafana unified alerting webhook contact point payload
// and returns the SMS text in the same format as Alertmanager. It also falls
// back to Grafana's top-level title and message when alerts carry no name or
// annotations.
func Grafana(body []byte) (string, error) {
	n, err := Parse(body, true)
	if err != nil {
		return "", err
	}
	return n.Text(Format{}), nil
}

// Format says how a notification is written.
type Format struct {
	// Ref, if not 0, is the reference answers name the group by: the
	// text starts "#3 ".
	Ref int
	// MaxSegments is the most SMS parts the text may take (counted as
	// phones count them, before smart encoding, which only ever saves
	// parts); 0 is DefaultSegments.
	MaxSegments int
}

// DefaultSegments is Format.MaxSegments when it is 0: a pager message
// only has to say what broke and where to look, and every part costs.
const DefaultSegments = 2

// Text is the SMS text of the notification: its status and count, then
// its alerts, the most severe first (by their severity label), as many as
// fit in f.MaxSegments parts, and "+N more" for the rest.
func (n *Notification) Text(f Format) string {
	if f.MaxSegments <= 0 {
		f.MaxSegments = DefaultSegments
	}
	head := ""
	if f.Ref > 0 {
		head = "#" + strconv.Itoa(f.Ref) + " "
	}
	return n.p.text(n.grafana, head, func(s string) bool { return bridge.CountSegments(s).Count <= f.MaxSegments })
}

// Resolved reports whether the notification says its group resolved.
func (n *Notification) Resolved() bool {
	return strings.EqualFold(clean(n.p.Status), "resolved")
}

// Fingerprint identifies what the notification says: its status and
// which alerts are in which state. A repeat of an unchanged group has the
// same fingerprint; an alert firing or resolving changes it. Annotations
// and values do not count: a disk at 95% and then 96% is no news.
func (n *Notification) Fingerprint() string {
	var alerts []string
	for _, a := range n.p.Alerts {
		keys := make([]string, 0, len(a.Labels))
		for k := range a.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		b.WriteString(strings.ToLower(clean(a.Status)))
		for _, k := range keys {
			b.WriteString("\x00" + k + "\x00" + a.Labels[k])
		}
		alerts = append(alerts, b.String())
	}
	slices.Sort(alerts)
	h := sha256.New()
	h.Write([]byte(strings.ToLower(clean(n.p.Status))))
	for _, a := range alerts {
		h.Write([]byte("\x01" + a))
	}
	fmt.Fprintf(h, "\x02%d", n.p.TruncatedAlerts)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// GroupLabels are the labels that make the notification's group:
// Alertmanager's groupLabels, or, for a route that groups by nothing, the
// labels every alert of it shares (commonLabels). Blank names and values
// are left out: a silence cannot match on them.
func (n *Notification) GroupLabels() map[string]string {
	src := n.p.GroupLabels
	if len(src) == 0 {
		src = n.p.CommonLabels
	}
	out := map[string]string{}
	for k, v := range src {
		if strings.TrimSpace(k) != "" && strings.TrimSpace(v) != "" {
			out[k] = v
		}
	}
	return out
}

func decode(body []byte) (*payload, error) {
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			e := bridge.Permanent(bridge.ReasonInvalid, te.Field, "%s: want JSON %s, got %s", te.Field, te.Type, te.Value)
			e.Err = err
			return nil, e
		}
		// A syntax error has no field; "body" tells the caller the document
		// itself is broken rather than one value in it.
		e := bridge.Permanent(bridge.ReasonInvalid, "body", "the body is not valid JSON")
		e.Err = err
		return nil, e
	}
	if strings.TrimSpace(p.Status) == "" {
		return nil, bridge.Permanent(bridge.ReasonInvalid, "status", `status is missing; want "firing" or "resolved"`)
	}
	if len(p.Alerts) == 0 {
		return nil, bridge.Permanent(bridge.ReasonInvalid, "alerts", "alerts is missing or empty; nothing to notify about")
	}
	return &p, nil
}

// text renders the notification as one line starting with head, as
// long as fits allows.
func (p *payload) text(grafana bool, head string, fits func(string) bool) string {
	status := strings.ToUpper(clean(p.Status))

	// The group status is "firing" while any alert fires, so resolved alerts
	// riding along in a firing group are left out of the count and summary.
	var group []alert
	for _, a := range p.Alerts {
		if a.Status == "" || strings.EqualFold(clean(a.Status), status) {
			group = append(group, a)
		}
	}
	if len(group) == 0 {
		group = p.Alerts
	}
	// The most severe first: the one that woke someone is the one read.
	slices.SortStableFunc(group, func(a, b alert) int { return severity(a) - severity(b) })
	first := group[0]
	// Alerts dropped by max_alerts are still alerts the reader should know about.
	more := len(group) - 1 + max(p.TruncatedAlerts, 0)

	var b strings.Builder
	b.WriteString(head + "[" + status)
	if len(group) > 1 {
		b.WriteString(":" + strconv.Itoa(len(group)))
	}
	b.WriteString("]")

	name := firstOf(first.Labels["alertname"], p.GroupLabels["alertname"], p.CommonLabels["alertname"])
	if name == "" && grafana {
		name = stripStatusPrefix(clean(p.Title))
	}
	summary, perAlert := p.summary(first, more > 0, grafana)

	if name != "" {
		b.WriteString(" " + name)
		if summary != "" {
			b.WriteString(":")
		}
	}
	if summary != "" {
		b.WriteString(" " + summary)
	}
	text := b.String()
	if !perAlert || more == 0 {
		// A group-wide summary already speaks for every alert.
		return cut(text, "", fits)
	}
	// Then the next alerts, each "name: summary" (the name left out when
	// it is the one before's), while the text and what it says of the
	// rest fit.
	shown, prev := 1, name
	for _, a := range group[1:] {
		n := clean(a.Labels["alertname"])
		s := firstOf(a.Annotations["summary"], a.Annotations["description"])
		item := s
		if n != "" && n != prev {
			item = n
			if s != "" {
				item += ": " + s
			}
		}
		if item == "" {
			break
		}
		next := text + "; " + item
		if !fits(next + moreText(more-shown)) {
			break
		}
		text, prev = next, firstOf(n, prev)
		shown++
	}
	return cut(text, moreText(more-(shown-1)), fits)
}

// moreText is what the text says of the alerts it leaves out.
func moreText(n int) string {
	if n <= 0 {
		return ""
	}
	return " (+" + strconv.Itoa(n) + " more)"
}

// cut returns text followed by tail, the text cut (at a rune, ending with
// "..." in GSM-7, "…" in UCS-2, which GSM-7 lacks) as much as it takes for
// the whole to fit.
func cut(text, tail string, fits func(string) bool) string {
	if fits(text + tail) {
		return text + tail
	}
	marker := "…"
	if bridge.CountSegments(text+tail).Encoding == bridge.GSM7 {
		marker = "..."
	}
	runes := []rune(text)
	// The longest prefix that fits: fits is monotonic in length.
	lo, hi := 0, len(runes)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(strings.TrimRight(string(runes[:mid]), " ") + marker + tail) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return strings.TrimRight(string(runes[:lo]), " ") + marker + tail
}

// severity ranks an alert by its severity label, most severe first; an
// alert without one comes last.
func severity(a alert) int {
	switch strings.ToLower(clean(a.Labels["severity"])) {
	case "critical", "crit", "fatal", "emergency", "emerg", "alert", "page", "disaster", "p1":
		return 0
	case "error", "err", "high", "major", "p2":
		return 1
	case "warning", "warn", "medium", "average", "minor", "p3":
		return 2
	case "info", "informational", "notice", "low", "p4", "p5":
		return 3
	case "":
		return 5
	}
	return 4
}

// summary picks the describing sentence and reports whether it came from a
// single alert (so the caller appends "+N more").
func (p *payload) summary(first alert, several, grafana bool) (text string, perAlert bool) {
	if several {
		if s := firstOf(p.CommonAnnotations["summary"], p.CommonAnnotations["description"]); s != "" {
			return s, false
		}
	}
	if s := firstOf(first.Annotations["summary"], first.Annotations["description"]); s != "" {
		return s, true
	}
	if grafana {
		for line := range strings.Lines(p.Message) {
			if s := clean(line); s != "" {
				return s, false
			}
		}
	}
	return "", true
}

// firstOf returns the first value that is not blank, cleaned.
func firstOf(values ...string) string {
	for _, v := range values {
		if s := clean(v); s != "" {
			return s
		}
	}
	return ""
}

// clean collapses runs of whitespace and control characters (which a
// handset would render as garbage) into single spaces and trims the ends.
func clean(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
}

// stripStatusPrefix drops the "[FIRING:2] " Grafana puts at the front of its
// title, since the text carries its own status.
func stripStatusPrefix(title string) string {
	if strings.HasPrefix(title, "[") {
		if i := strings.Index(title, "]"); i > 0 {
			return strings.TrimSpace(title[i+1:])
		}
	}
	return title
}
