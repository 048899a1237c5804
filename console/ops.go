package console

import (
	"context"
	"net/http"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Operations reads what the operations page shows. The daemon implements
// it from the store's counters, the metrics and its pollers.
type Operations interface {
	Operations(ctx context.Context) (*Ops, error)
}

// Ops is the daemon's state as the operations page shows it.
type Ops struct {
	At    time.Time         // when it was read
	Queue bridge.QueueStats // SMS recipients waiting
	// Mail is the queue of mail for the smarthost; MailOff says there is
	// no smarthost (replies are only logged).
	Mail      bridge.QueueStats
	MailOff   bool
	Window    time.Duration // what ProviderOps counts over
	Providers []ProviderOps
	Pollers   []bridge.PollStatus
}

// ProviderOps is one provider's health: its circuit breaker, and its
// send outcomes over Ops.Window in this instance.
type ProviderOps struct {
	Name                  string
	CircuitOpen           bool
	Sent, Retried, Failed int
}

func (c *Console) ops(w http.ResponseWriter, r *http.Request, s *session) {
	if c.cfg.Ops == nil {
		c.notFound(w, r, s)
		return
	}
	o, err := c.cfg.Ops.Operations(r.Context())
	if err != nil {
		c.problem(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "ops", s, page{Title: "Operations", Data: o})
}
