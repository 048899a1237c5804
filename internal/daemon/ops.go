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
type operations struct{ d *Daemon }

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
	open, sends := d.metrics.OpenCircuits(), d.metrics.SendsLastHour()
	for _, name := range d.configuredProviders() {
		c := sends[name]
		out.Providers = append(out.Providers, console.ProviderOps{Name: name, CircuitOpen: open[name],
			Sent: c.Sent, Retried: c.Retried, Failed: c.Failed})
	}
	for _, p := range d.pollers {
		out.Pollers = append(out.Pollers, p.Status())
	}
	return out, nil
}

// configuredProviders are the providers of the configuration in force,
// in its order.
func (d *Daemon) configuredProviders() []string {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	return providerNames(d.loaded)
}

var _ console.Operations = operations{}
