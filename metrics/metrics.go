// Package metrics exposes smsbridge's Prometheus metrics. The front ends
// and the dispatcher report events through small interfaces they declare;
// this package implements them with prometheus/client_golang.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/smsbridge/smsbridge/bridge"
)

// Metrics holds every smsbridge metric in its own registry.
type Metrics struct {
	reg      *prometheus.Registry
	accepted *prometheus.CounterVec
	refused  *prometheus.CounterVec
	sends    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	inbound  *prometheus.CounterVec
	mails    *prometheus.CounterVec
	reports  *prometheus.CounterVec
	circuit  *prometheus.GaugeVec
	limit    *prometheus.GaugeVec
	parts    *prometheus.CounterVec
	cost     *prometheus.CounterVec
	saved    *prometheus.CounterVec
	consent  *prometheus.CounterVec
	recent   *recent // the last hour of sends, for the console

	provMu    sync.Mutex
	providers map[string]bool // the names Providers was last given
}

// StatsFunc reads the queue for the depth and age gauges. It is called
// once per scrape, so it must not grow with the queue (the stores keep a
// counter and an index for it).
type StatsFunc func(ctx context.Context) (bridge.QueueStats, error)

// New registers the metrics. stats is called at each scrape.
func New(stats StatsFunc) *Metrics {
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		recent: newRecent(),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsbridge_messages_accepted_total", Help: "Messages accepted (stored), by channel.",
		}, []string{"channel"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsbridge_messages_refused_total", Help: "Messages or recipients refused, by channel and reason.",
		}, []string{"channel", "reason"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsbridge_sends_total", Help: "Recipient send attempts, by provider and outcome (sent, retry, failed, expired).",
		}, []string{"provider", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "smsbridge_provider_request_seconds", Help: "Duration of provider API calls.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"provider"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsbridge_retries_total", Help: "Recipients scheduled for another attempt, by provider.",
		}, []string{"provider"}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsbridge_inbound_messages_total", Help: "SMS received from phones, by provider.",
		}, []string{"provider"}),
		mails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsbridge_mails_total", Help: "Mail delivery attempts to the smarthost, by kind (reply, bounce) and outcome (sent, retry, failed).",
		}, []string{"kind", "outcome"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsbridge_delivery_reports_total", Help: "Delivery reports applied, by provider and state.",
		}, []string{"provider", "state"}),
		circuit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smsbridge_provider_circuit_open", Help: "1 while a provider's circuit breaker is open (it is not being called).",
		}, []string{"provider"}),
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smsbridge_provider_concurrency_limit",
			Help: "How many calls to a provider may be under way at once: its fixed concurrency, or where its adaptive limit stands.",
		}, []string{"provider"}),
		parts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsbridge_sms_parts_total", Help: "SMS parts sent (accepted by the provider), by account and provider.",
		}, []string{"account", "provider"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsbridge_sms_cost_total", Help: "What providers reported the SMS sent cost, in each provider account's currency, by account and provider.",
		}, []string{"account", "provider"}),
		saved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsbridge_smart_encoding_parts_saved_total", Help: "SMS parts smart encoding saved in messages accepted (per recipient), by account.",
		}, []string{"account"}),
		consent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsbridge_consent_keywords_total",
			Help: "Inbound SMS that were a consent keyword, by provider and keyword (opt_out, opt_in, help). Sends refused because a phone opted out are smsbridge_messages_refused_total{reason=\"opted_out\"}.",
		}, []string{"provider", "keyword"}),
	}
	m.reg.MustRegister(m.accepted, m.refused, m.sends, m.latency, m.retries, m.inbound, m.mails, m.reports, m.circuit,
		m.limit, m.parts, m.cost, m.saved, m.consent, queueCollector{stats: stats, desc: queueDesc},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Accepted counts a stored message.
func (m *Metrics) Accepted(channel bridge.Channel) { m.accepted.WithLabelValues(string(channel)).Inc() }

// Refused counts a refusal with its reason ("" becomes "internal").
func (m *Metrics) Refused(channel bridge.Channel, reason bridge.Reason) {
	if reason == "" {
		reason = "internal"
	}
	m.refused.WithLabelValues(string(channel), string(reason)).Inc()
}

// Attempt records a provider call and the outcome of each recipient in it.
func (m *Metrics) Attempt(provider string, took time.Duration, outcomes []bridge.Outcome) {
	m.latency.WithLabelValues(provider).Observe(took.Seconds())
	for _, o := range outcomes {
		outcome := string(o.State)
		if o.State == bridge.StateQueued {
			outcome = "retry"
			m.retries.WithLabelValues(provider).Inc()
		}
		m.sends.WithLabelValues(provider, outcome).Inc()
	}
	m.recent.add(provider, outcomes)
}

// Inbound counts an SMS received from a phone.
func (m *Metrics) Inbound(provider string) { m.inbound.WithLabelValues(provider).Inc() }

// Mail counts one attempt to hand a mail to the smarthost.
func (m *Metrics) Mail(kind bridge.MailKind, state bridge.MailState) {
	outcome := string(state)
	if state == bridge.MailQueued {
		outcome = "retry"
	}
	m.mails.WithLabelValues(string(kind), outcome).Inc()
}

// Report counts a delivery report applied to the log.
func (m *Metrics) Report(provider string, state bridge.State) {
	m.reports.WithLabelValues(provider, string(state)).Inc()
}

// Circuit records a provider's circuit breaker opening or closing.
func (m *Metrics) Circuit(provider string, open bool) {
	v := 0.0
	if open {
		v = 1
	}
	m.circuit.WithLabelValues(provider).Set(v)
}

// Providers names the configured providers: each gets its circuit series
// at 0 (closed) until it opens, so the dashboard and the alert rules see
// every provider from the start, and a provider no longer configured
// loses its series (an open circuit of a removed provider would stay 1),
// its concurrency limit's included.
func (m *Metrics) Providers(names []string) {
	m.provMu.Lock()
	defer m.provMu.Unlock()
	keep := map[string]bool{}
	for _, n := range names {
		keep[n] = true
		m.circuit.WithLabelValues(n) // created at 0 if new; an open one stays open
	}
	for n := range m.providers {
		if !keep[n] {
			m.circuit.DeleteLabelValues(n)
			m.limit.DeleteLabelValues(n)
		}
	}
	m.providers = keep
}

// ConcurrencyLimit records how many calls to a provider may be under way
// at once.
func (m *Metrics) ConcurrencyLimit(provider string, limit int) {
	m.limit.WithLabelValues(provider).Set(float64(limit))
}

// Sent counts the parts and the cost of an SMS a provider accepted.
func (m *Metrics) Sent(msg *bridge.Message, o bridge.Outcome) {
	if o.State != bridge.StateSent {
		return
	}
	if msg.Parts > 0 {
		m.parts.WithLabelValues(msg.Account, o.Provider).Add(float64(msg.Parts))
	}
	if c, err := strconv.ParseFloat(o.Cost, 64); err == nil && c > 0 {
		m.cost.WithLabelValues(msg.Account, o.Provider).Add(c)
	}
}

// Saved counts SMS parts smart encoding saved an account.
func (m *Metrics) Saved(account string, parts int) {
	m.saved.WithLabelValues(account).Add(float64(parts))
}

// Consent counts an inbound SMS that was a consent keyword.
func (m *Metrics) Consent(provider string, k bridge.Keyword) {
	m.consent.WithLabelValues(provider, k.String()).Inc()
}
