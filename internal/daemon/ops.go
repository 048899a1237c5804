package daemon

import (
	"context"
	"time"

	"github.com/smsbridge/smsbridge/console"
	"github.com/smsbridge/smsbridge/metrics"
)

// operations reads the console's operations page: the queues from the
// store's counters (what the queue gauges read), the providers' circuits
// and last hour from the metrics, the pollers' last rounds.
type operations struct {
	d *Daemon
	m *metrics.Metrics
}

func (o operations) Operations(ctx context.Context) (*console.Ops, error) {
	d := o.d
	out := &console.Ops{At: time.Now(), Window: metrics.Recent, MailOff: d.mail == nil}
	var err error
	if out.Queue, err = d.store.Stats(ctx); err != nil {
		return nil, err
	}
	if out.Mail, err = d.store.MailStats(ctx); err != nil {
		return nil, err
	}
	open, sends := o.m.OpenCircuits(), o.m.SendsLastHour()
	for _, name := range d.providerNames() {
		c := sends[name]
		out.Providers = append(out.Providers, console.ProviderOps{Name: name, CircuitOpen: open[name],
			Sent: c.Sent, Retried: c.Retried, Failed: c.Failed})
	}
	for _, p := range d.pollers {
		out.Pollers = append(out.Pollers, p.Status())
	}
	return out, nil
}

// providerNames are the providers of the configuration in force, in its
// order.
func (d *Daemon) providerNames() []string {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	names := make([]string, 0, len(d.loaded.Providers))
	for _, p := range d.loaded.Providers {
		names = append(names, p.Name)
	}
	return names
}

var _ console.Operations = operations{}
