package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeTimeout bounds each store read a scrape makes: a store that hangs
// shows as not ready (or a depth of -1) instead of holding the scrape
// past Prometheus' own 10 s default timeout.
const scrapeTimeout = 5 * time.Second

// ReadyFunc says whether the store takes writes (nil) or not.
type ReadyFunc func(ctx context.Context) error

var (
	queueDesc = queueDescs{
		depth: prometheus.NewDesc("smsbridge_queue_depth", "Recipients waiting to be sent (-1: the store could not be read).", nil, nil),
		age: prometheus.NewDesc("smsbridge_queue_oldest_age_seconds",
			"Age of the oldest message with a queued recipient.", nil, nil),
	}
	mailQueueDesc = queueDescs{
		depth: prometheus.NewDesc("smsbridge_mail_queue_depth",
			"Mails (replies, bounces, delivery notices) waiting for the smarthost (-1: the store could not be read).", nil, nil),
		age: prometheus.NewDesc("smsbridge_mail_queue_oldest_age_seconds",
			"Age of the oldest mail waiting for the smarthost.", nil, nil),
	}
	readyDesc = prometheus.NewDesc("smsbridge_store_ready",
		"1 while the store takes writes (what /readyz checks), 0 otherwise.", nil, nil)
)

type queueDescs struct{ depth, age *prometheus.Desc }

// WatchMailQueue adds the smarthost queue's depth and age gauges, read
// from stats at each scrape.
func (m *Metrics) WatchMailQueue(stats StatsFunc) {
	m.reg.MustRegister(queueCollector{stats: stats, desc: mailQueueDesc})
}

// WatchStore adds smsbridge_store_ready, asking ready at each scrape.
func (m *Metrics) WatchStore(ready ReadyFunc) {
	m.reg.MustRegister(readyCollector{ready})
}

// queueCollector reports a queue's depth and age gauges from one read of
// the store per scrape (two gauge functions would read it twice).
type queueCollector struct {
	stats StatsFunc
	desc  queueDescs
}

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc.depth
	ch <- c.desc.age
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	depth, age := -1.0, 0.0
	if st, err := c.stats(ctx); err == nil {
		depth = float64(st.Queued)
		if !st.OldestQueued.IsZero() {
			age = time.Since(st.OldestQueued).Seconds()
		}
	}
	ch <- prometheus.MustNewConstMetric(c.desc.depth, prometheus.GaugeValue, depth)
	ch <- prometheus.MustNewConstMetric(c.desc.age, prometheus.GaugeValue, age)
}

// readyCollector asks the store at scrape time rather than remembering
// the last /readyz answer: nothing may be polling /readyz.
type readyCollector struct{ ready ReadyFunc }

func (c readyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- readyDesc }

func (c readyCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	v := 1.0
	if err := c.ready(ctx); err != nil {
		v = 0
	}
	ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, v)
}
