package ippanel

import (
	"context"
	"strconv"

	"github.com/smsbridge/smsbridge/bridge"
)

// inboxBatches bounds how many Inbox calls one PollInbox makes, so that a
// backlog is worked off over a few rounds rather than in one long one.
const inboxBatches = 10

var (
	_ bridge.InboxPoller  = (*Provider)(nil)
	_ bridge.ReportPoller = (*Provider)(nil)
)

// PollInbox gives the bridge's poller the SMS received after the one with
// messages_inbox_id after ("" for the start), oldest first. The
// DedupeKey of each is its messages_inbox_id, the cursor to go on from.
func (p *Provider) PollInbox(ctx context.Context, after string) ([]bridge.Inbound, error) {
	var cursor int64
	if after != "" {
		var err error
		if cursor, err = strconv.ParseInt(after, 10, 64); err != nil || cursor < 0 {
			return nil, bridge.Permanent(bridge.ReasonInvalid, "", "%s: inbox cursor %q is not a messages_inbox_id", p.name, after)
		}
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
