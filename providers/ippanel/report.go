package ippanel

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

// IPPanel documents no webhooks: inbound SMS and delivery reports are
// polled (README.md; the Edge "Inbox Report" and "Bulk Recipients" pages).

// DefaultInboxPage is how many inbound SMS Inbox asks for when told 0.
const DefaultInboxPage = 100

// recipientsPerPage is the page size Recipients walks a bulk with (the API
// defaults to 10 and documents no maximum).
const recipientsPerPage = 100

// maxPages bounds a walk through a report: a million recipients at
// recipientsPerPage, far beyond any bulk this bridge sends.
const maxPages = 10_000

// countryCode is put before numbers the API gives without one. IPPanel is
// an Iranian gateway whose documents write every number E.164 with +98,
// so a number written any other way is an Iranian one.
const countryCode = "98"

// InboxMessage is one SMS received on one of the account's numbers.
type InboxMessage struct {
	ID     int64  // messages_inbox_id: the cursor to poll from next
	From   string // the phone, E.164
	Number string // our number it was sent to, E.164
	Text   string
	Time   time.Time // when IPPanel received it; zero if not given
	Raw    string    // the data[] entry as received, for the conversation log
	// Unreadable says why a message cannot be taken (no sender, a field
	// of the wrong type), "" when it can. Such a message is still
	// returned, with its ID and Raw only, so the caller's cursor can move
	// past it instead of meeting it again on every poll.
	Unreadable string
}

// Inbox returns the inbound SMS with an id above fromID, oldest first: at
// most perPage of them (DefaultInboxPage when 0), the rest are for the
// next call with the last ID returned.
//
// The API filters on from_id ("messages received after this ID") but
// lists newest first, so the oldest unseen messages are on the last page.
// Inbox asks for page 1 to learn how many pages there are, then for the
// last one, and checks that the last page is still the last when it
// arrives: a message received in between shifts every page, and reading a
// stale last page would return newer messages and skip the older ones for
// good once the caller's cursor moved past them. Should the API list
// oldest first after all, page 1 already holds the oldest. Either way ids
// at or below fromID are dropped, so an inclusive from_id fetches nothing
// twice.
func (p *Provider) Inbox(ctx context.Context, fromID int64, perPage int) ([]InboxMessage, error) {
	if fromID < 0 {
		return nil, bridge.Permanent(bridge.ReasonInvalid, "", "%s: negative inbox cursor %d", p.name, fromID)
	}
	if perPage <= 0 {
		perPage = DefaultInboxPage
	}
	msgs, meta, err := p.inboxPage(ctx, fromID, 1, perPage)
	if err != nil {
		return nil, err
	}
	page := int64(1)
	if meta.more(page, len(msgs), perPage) && !ascending(msgs) {
		page = meta.LastPage
		if page <= 1 {
			// A full page and no last_page: more pages, but not
			// where the oldest are. Returning this one would skip
			// them.
			return nil, p.inboxGarbage("a full page without meta.last_page")
		}
		for try := 0; ; try++ {
			if try == 3 {
				return nil, &bridge.Error{Reason: bridge.ReasonProviderDown, Temp: true,
					Msg: fmt.Sprintf("%s: messages-inbox kept moving while it was read", p.name)}
			}
			if msgs, meta, err = p.inboxPage(ctx, fromID, page, perPage); err != nil {
				return nil, err
			}
			if meta.LastPage == page || meta.LastPage == 0 {
				break
			}
			page = meta.LastPage
		}
	}
	out := msgs[:0]
	for _, m := range msgs {
		if m.ID > fromID {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b InboxMessage) int { return cmp.Compare(a.ID, b.ID) })
	out = slices.CompactFunc(out, func(a, b InboxMessage) bool { return a.ID == b.ID })
	p.log.DebugContext(ctx, "ippanel inbox", "provider", p.name, "from_id", fromID, "page", page, "messages", len(out))
	return out, nil
}

// ascending reports whether a page is listed oldest first. A page of one
// cannot tell; the documented order (newest first) is assumed.
func ascending(msgs []InboxMessage) bool {
	return len(msgs) > 1 && msgs[0].ID < msgs[len(msgs)-1].ID
}

// inboxRequest is the documented body of POST /api/report/messages-inbox.
type inboxRequest struct {
	Page    int64        `json:"page"`
	PerPage int          `json:"per_page"`
	Filters inboxFilters `json:"filters"`
}

type inboxFilters struct {
	FromID int64 `json:"from_id"`
}

func (p *Provider) inboxPage(ctx context.Context, fromID, page int64, perPage int) ([]InboxMessage, pageMeta, error) {
	resp, env, err := p.do(ctx, p.inboxURL, inboxRequest{Page: page, PerPage: perPage, Filters: inboxFilters{FromID: fromID}})
	if err != nil {
		p.log.DebugContext(ctx, "ippanel inbox failed", "provider", p.name, "from_id", fromID, "page", page, "error", err)
		return nil, pageMeta{}, err
	}
	return decodeInbox(p.name, p.token, resp, env)
}

func (p *Provider) inboxGarbage(what string) error {
	return &bridge.Error{Reason: bridge.ReasonProviderDown, Temp: true,
		Msg: fmt.Sprintf("%s: messages-inbox answered %s", p.name, what)}
}

// pageMeta is the pagination the report endpoints add to meta.
type pageMeta struct {
	LastPage int64 // 0 when the answer did not say
}

// more reports whether pages follow page, which held n of perPage items.
// Without last_page, a full page may have more behind it.
func (m pageMeta) more(page int64, n, perPage int) bool {
	if m.LastPage > 0 {
		return m.LastPage > page
	}
	return n >= perPage
}

// inboxItem is one documented data[] entry of messages-inbox. Numbers are
// read from strings too: the documents write message_status and msg_parts
// as strings elsewhere, and a client that choked on the other form would
// stop reading the inbox altogether.
type inboxItem struct {
	ID      flexInt    `json:"messages_inbox_id"`
	From    flexString `json:"from"`
	Number  flexString `json:"number"`
	Message string     `json:"message"`
	Time    flexInt    `json:"time"`
}

// decodeInbox reads one page of messages-inbox.
func decodeInbox(provider, secret string, r *providers.Response, env envelope) ([]InboxMessage, pageMeta, error) {
	var raws []json.RawMessage
	meta, err := decodePage(r.Body, env, &raws)
	if err != nil {
		return nil, pageMeta{}, garbage(provider, r, secret)
	}
	out := make([]InboxMessage, 0, len(raws))
	for _, raw := range raws {
		var id struct {
			ID flexInt `json:"messages_inbox_id"`
		}
		// Without an id there is no cursor: no way to go past such an
		// entry, nor to know where it is in the order, but to stop here.
		if err := json.Unmarshal(raw, &id); err != nil || id.ID <= 0 {
			return nil, pageMeta{}, garbage(provider, r, secret)
		}
		m := InboxMessage{ID: int64(id.ID), Raw: strings.ToValidUTF8(string(raw), "\uFFFD")}
		var it inboxItem
		if err := json.Unmarshal(raw, &it); err != nil {
			// Not the error itself: it may quote the value, which can
			// be message text, and this reason is logged.
			m.Unreadable = "a field is not of its documented type"
			out = append(out, m)
			continue
		}
		if strings.TrimSpace(string(it.From)) == "" {
			// Without a sender there is nobody to reply to.
			m.Unreadable = "no sender"
			out = append(out, m)
			continue
		}
		m.From, m.Number, m.Text = e164(string(it.From)), e164(string(it.Number)), it.Message
		if it.Time > 0 {
			m.Time = time.Unix(int64(it.Time), 0).UTC()
		}
		out = append(out, m)
	}
	return out, meta, nil
}

// decodePage reads data into v and the pagination out of meta.
func decodePage(body []byte, env envelope, v any) (pageMeta, error) {
	if len(bytes.TrimSpace(env.Data)) == 0 || string(env.Data) == "null" {
		return pageMeta{}, fmt.Errorf("no data")
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		return pageMeta{}, err
	}
	var m struct {
		Meta struct {
			LastPage flexInt `json:"last_page"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return pageMeta{}, err
	}
	if m.Meta.LastPage < 0 {
		return pageMeta{}, fmt.Errorf("last_page %d", m.Meta.LastPage)
	}
	return pageMeta{LastPage: int64(m.Meta.LastPage)}, nil
}

// Recipients returns the delivery state of every recipient of a bulk (the
// message_outbox_id Send returned as the provider id), walking all pages.
// message_status 2 is delivered, 3 not delivered, 4 blacklisted
// (undelivered, detail "blacklisted"); 0 and 1 (with the operator) are
// StateSent: no news yet.
func (p *Provider) Recipients(ctx context.Context, bulkID string) ([]bridge.DeliveryReport, error) {
	id, err := strconv.ParseInt(bulkID, 10, 64)
	if err != nil || id <= 0 {
		return nil, bridge.Permanent(bridge.ReasonInvalid, "", "%s: %q is not a message_outbox_id", p.name, bulkID)
	}
	now := time.Now().UTC()
	var out []bridge.DeliveryReport
	index := map[string]int{}
	for page := int64(1); ; page++ {
		if page > maxPages {
			return nil, &bridge.Error{Reason: bridge.ReasonProviderDown, Temp: true,
				Msg: fmt.Sprintf("%s: bulk %d has more than %d pages of recipients", p.name, id, maxPages)}
		}
		q := url.Values{"bulk_id": {strconv.FormatInt(id, 10)}, "page": {strconv.FormatInt(page, 10)},
			"per_page": {strconv.Itoa(recipientsPerPage)}}
		resp, env, err := p.get(ctx, p.recipientsURL+"?"+q.Encode())
		if err != nil {
			p.log.DebugContext(ctx, "ippanel recipients failed", "provider", p.name, "bulk_id", id, "page", page, "error", err)
			return nil, err
		}
		items, meta, err := decodeRecipients(p.name, p.token, resp, env)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			rep := bridge.DeliveryReport{Provider: p.name, ProviderID: strconv.FormatInt(id, 10), To: it.to,
				State: it.state, Detail: it.detail, At: now}
			// Pages that shift while they are read repeat a recipient;
			// the later word is the newer one.
			if i, ok := index[rep.To]; ok {
				out[i] = rep
				continue
			}
			index[rep.To] = len(out)
			out = append(out, rep)
		}
		if !meta.more(page, len(items), recipientsPerPage) || len(items) == 0 {
			break
		}
	}
	p.log.DebugContext(ctx, "ippanel recipients", "provider", p.name, "bulk_id", id, "recipients", len(out))
	return out, nil
}

type recipientItem struct {
	Recipient     flexString `json:"recipient"`
	MessageStatus flexInt    `json:"message_status"`
}

type recipientState struct {
	to     string
	state  bridge.State
	detail string
}

// decodeRecipients reads one page of report/recipients.
func decodeRecipients(provider, secret string, r *providers.Response, env envelope) ([]recipientState, pageMeta, error) {
	var items []recipientItem
	meta, err := decodePage(r.Body, env, &items)
	if err != nil {
		return nil, pageMeta{}, garbage(provider, r, secret)
	}
	out := make([]recipientState, 0, len(items))
	for _, it := range items {
		if it.Recipient == "" {
			return nil, pageMeta{}, garbage(provider, r, secret)
		}
		st, detail := messageStatus(int64(it.MessageStatus))
		out = append(out, recipientState{to: e164(string(it.Recipient)), state: st, detail: detail})
	}
	return out, meta, nil
}

// messageStatus maps the documented message_status values. An
// undocumented value is no news rather than an error: one odd recipient
// must not stop the reports of the others.
func messageStatus(s int64) (bridge.State, string) {
	switch s {
	case 0:
		return bridge.StateSent, "sent to operator"
	case 1:
		return bridge.StateSent, "received by operator"
	case 2:
		return bridge.StateDelivered, "delivered"
	case 3:
		return bridge.StateUndelivered, "not delivered"
	case 4:
		return bridge.StateUndelivered, "blacklisted"
	}
	return bridge.StateSent, "message_status " + strconv.FormatInt(s, 10)
}

// e164 writes a number the API gave as E.164: "+98..." stays, "0098..."
// and "98..." get a "+" (no Iranian national number starts with 98), a
// national "0912..." or "912..." gets "+98" (see countryCode).
// Anything else (letters, a "+" number that is not E.164) is returned
// trimmed but otherwise unchanged for the bridge to judge.
func e164(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || isE164(s) || strings.Trim(s, "0123456789") != "" {
		return s
	}
	var out string
	switch {
	case strings.HasPrefix(s, "00"):
		out = "+" + s[2:]
	case strings.HasPrefix(s, "0"):
		out = "+" + countryCode + s[1:]
	case strings.HasPrefix(s, countryCode):
		out = "+" + s
	default:
		out = "+" + countryCode + s
	}
	// Too short to be anybody's number: leave it for the bridge to refuse.
	if !isE164(out) || len(out) < len("+98")+4 {
		return s
	}
	return out
}

// flexInt is an integer written as a JSON number or a numeric string.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "null" || s == "" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not an integer", b)
	}
	*n = flexInt(v)
	return nil
}

// flexString is a string written as a JSON string or number (a phone
// number may come as either).
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	if string(b) == "null" {
		*s = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = flexString(n.String())
	return nil
}
