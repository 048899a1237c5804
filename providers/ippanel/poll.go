package ippanel

import (
	"context"
	"strconv"
	"sync"

	"github.com/smsbridge/smsbridge/bridge"
)

// inboxBatches bounds how many Inbox calls one PollInbox makes, so that a
// backlog is worked off over a few rounds rather than in one long one.
const inboxBatches = 10

var (
	_ bridge.InboxPoller  = (*Provider)(nil)
	_ bridge.ReportPoller = (*Provider)(nil)
)

// inboxSkip remembers the last unreadable inbox message PollInbox passed
// over. The bridge's cursor moves only with a message it records, so
// after an unreadable message that is the newest, the stored cursor stays
// before it: without this, every poll would fetch it, and warn about it,
// again for ever. A poll whose cursor has reached need (every readable
// message before the skipped one was recorded) starts after to instead.
// It lives as long as the provider: a restart or reload warns once more.
type inboxSkip struct {
	mu         sync.Mutex
	need, past int64
}

// PollInbox gives the bridge's poller the SMS received after the one with
// messages_inbox_id after ("" for the start), oldest first. The
// DedupeKey of each is its messages_inbox_id, the cursor to go on from.
// A message that cannot be taken is logged once and left out.
func (p *Provider) PollInbox(ctx context.Context, after string) ([]bridge.Inbound, error) {
	var cursor int64
	if after != "" {
		var err error
		if cursor, err = strconv.ParseInt(after, 10, 64); err != nil || cursor < 0 {
			return nil, bridge.Permanent(bridge.ReasonInvalid, "", "%s: inbox cursor %q is not a messages_inbox_id", p.name, after)
		}
	}
	// readable is where the bridge's cursor will be once it has recorded
	// everything returned so far: skipping moves only this call's cursor.
	readable := cursor
	p.skip.mu.Lock()
	defer p.skip.mu.Unlock()
	if cursor >= p.skip.need && cursor < p.skip.past {
		cursor = p.skip.past
	}
	var out []bridge.Inbound
	for range inboxBatches {
		msgs, err := p.Inbox(ctx, cursor, DefaultInboxPage)
		if err != nil {
			if len(out) > 0 {
				// Hand over what was fetched: the poller records it
				// and goes on from its cursor next round.
				p.log.WarnContext(ctx, "ippanel inbox: stopping after a partial poll", "provider", p.name,
					"messages", len(out), "error", err)
				return out, nil
			}
			return nil, err
		}
		for _, m := range msgs {
			if m.Unreadable != "" {
				if m.ID > p.skip.past {
					p.log.WarnContext(ctx, "ippanel inbox: skipping a message that cannot be taken", "provider", p.name,
						"messages_inbox_id", m.ID, "reason", m.Unreadable)
					p.skip.need, p.skip.past = readable, m.ID
				}
				continue
			}
			readable = m.ID
			out = append(out, bridge.Inbound{
				DedupeKey: strconv.FormatInt(m.ID, 10),
				From:      m.From,
				To:        m.Number,
				Text:      m.Text,
				Received:  m.Time,
				Raw:       m.Raw,
			})
		}
		if len(msgs) == 0 {
			break
		}
		cursor = msgs[len(msgs)-1].ID
	}
	return out, nil
}

// PollReports gives the bridge's poller the state of every recipient of
// the bulk providerID (see Recipients).
func (p *Provider) PollReports(ctx context.Context, providerID string) ([]bridge.DeliveryReport, error) {
	return p.Recipients(ctx, providerID)
}
