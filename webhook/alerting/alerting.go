// Package alerting turns alerting webhook payloads (Prometheus
// Alertmanager, Grafana) into one short SMS text per notification.
package alerting

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
)

// MaxRunes caps the text: an alert page should be one or two SMS, not ten.
const MaxRunes = 300

// alert is the part of one alert both payloads share.
type alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// notification is the part of a notification both payloads share: the
// Alertmanager webhook format, which Grafana extends.
type notification struct {
	Status            string            `json:"status"`
	Alerts            []alert           `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	// Grafana only.
	Title   string `json:"title"`
	Message string `json:"message"`
}

// Alertmanager formats an Alertmanager webhook payload (version 4).
func Alertmanager(body []byte) (string, error) {
	n, err := decode(body)
	if err != nil {
		return "", err
	}
	return n.text(), nil
}

// Grafana formats a Grafana alerting webhook payload.
func Grafana(body []byte) (string, error) {
	n, err := decode(body)
	if err != nil {
		return "", err
	}
	return n.text(), nil
}

func decode(body []byte) (*notification, error) {
	var n notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, &bridge.Error{Reason: bridge.ReasonInvalid, Field: "body", Msg: "not an alert notification: " + err.Error(), Err: err}
	}
	if len(n.Alerts) == 0 {
		return nil, bridge.Permanent(bridge.ReasonInvalid, "alerts", "the notification has no alerts")
	}
	if n.Status == "" {
		return nil, bridge.Permanent(bridge.ReasonInvalid, "status", "the notification has no status")
	}
	return &n, nil
}

// text renders "[FIRING:2] name: summary (+1 more)".
func (n *notification) text() string {
	status := strings.ToUpper(n.Status)
	count := 0
	var first *alert
	for i := range n.Alerts {
		if strings.EqualFold(n.Alerts[i].Status, n.Status) {
			count++
			if first == nil {
				first = &n.Alerts[i]
			}
		}
	}
	if first == nil {
		first, count = &n.Alerts[0], len(n.Alerts)
	}
	count += n.TruncatedAlerts
	head := "[" + status + "]"
	if count > 1 {
		head = fmt.Sprintf("[%s:%d]", status, count)
	}

	name := pick(first.Labels["alertname"], n.CommonLabels["alertname"], n.GroupLabels["alertname"])
	summary := pick(n.CommonAnnotations["summary"], n.CommonAnnotations["description"])
	more := ""
	if summary == "" {
		summary = pick(first.Annotations["summary"], first.Annotations["description"])
		if count > 1 {
			more = fmt.Sprintf(" (+%d more)", count-1)
		}
	}
	if name == "" {
		name = strings.TrimSpace(strings.TrimPrefix(n.Title, strings.SplitN(n.Title, "]", 2)[0]+"]"))
	}
	if summary == "" && n.Message != "" {
		summary = strings.SplitN(strings.TrimSpace(n.Message), "\n", 2)[0]
	}
	text := head
	if name != "" {
		text += " " + name
	}
	if summary != "" {
		if name != "" {
			text += ":"
		}
		text += " " + summary
	}
	return truncate(collapse(text+more), MaxRunes)
}

func pick(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// collapse folds runs of white space (newlines included) into one space.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// truncate cuts s to at most n runes, marking a cut with "…".
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
