package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/smsbridge/smsbridge/loadtest"
)

// observe runs the load against the target and, as the flags ask, samples
// the queue depth throughout, waits for the accepted messages to reach
// the fake provider (and the queue to empty), and takes the daemon's and
// the PostgreSQL server's CPU over the whole window.
func observe(ctx context.Context, log *slog.Logger, c config, fake *loadtest.FakeProvider, load func() (loadtest.Result, error)) (target, error) {
	obs := &observed{offered: c.rate}
	cpuOf := func(read func(int) (time.Duration, error), pid int) (func() *time.Duration, error) {
		if pid == 0 {
			return func() *time.Duration { return nil }, nil
		}
		before, err := read(pid)
		if err != nil {
			return nil, fmt.Errorf("CPU of process %d: %w", pid, err)
		}
		return func() *time.Duration {
			after, err := read(pid)
			if err != nil {
				log.Warn("CPU after the run", "pid", pid, "err", err)
				return nil
			}
			d := after - before
			return &d
		}, nil
	}
	daemonCPU, err := cpuOf(loadtest.ProcessCPUOf, c.pid)
	if err != nil {
		return target{}, err
	}
	serverCPU, err := cpuOf(loadtest.ServerCPUOf, c.serverPID)
	if err != nil {
		return target{}, err
	}

	sampling, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var sampled sync.WaitGroup
	if c.metricsURL != "" {
		sampled.Go(func() { obs.depth, obs.depthFails = loadtest.SampleDepth(sampling, c.metricsURL, c.scrapeEvery) })
	}

	start := time.Now()
	res, err := load()
	if err != nil {
		log.Warn("run cut short", "target", c.addr, "err", err)
	}
	drained := drain(ctx, c, fake, res.Sent)
	if !drained {
		log.Warn("not drained within -drain", "drain", c.drain)
	}
	obs.window = time.Since(start)
	obs.cpu, obs.serverCPU = daemonCPU(), serverCPU()
	stopSampling()
	sampled.Wait()
	if fake != nil {
		d := fake.Delivery(res.Accepts)
		obs.delivery = &d
		_, obs.repeats = fake.Received()
	}
	return target{name: c.addr, res: res, obs: obs}, nil
}

// drain waits until the fake provider has had every accepted message and
// the queue is empty, as far as the flags let it tell, or -drain passes.
func drain(ctx context.Context, c config, fake *loadtest.FakeProvider, sent int) bool {
	if fake == nil && c.metricsURL == "" {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, c.drain)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		done := true
		if fake != nil {
			n, _ := fake.Received()
			done = n >= sent
		}
		if done && c.metricsURL != "" {
			depth, err := loadtest.ScrapeDepth(ctx, client, c.metricsURL)
			done = err == nil && depth == 0
		}
		if done {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// writeObserved prints what observe saw, under the results table.
func writeObserved(w io.Writer, t target) {
	o := t.obs
	if o == nil {
		return
	}
	if o.offered > 0 {
		fmt.Fprintf(w, "offered: %.0f msgs/s on a fixed timetable (latencies from each message's due time)\n", o.offered)
	}
	if d := o.delivery; d != nil {
		fmt.Fprintf(w, "accept→provider: p50 %s  p99 %s  max %s  (%d reached the provider, %d not, %d repeats or foreign)\n",
			ms(d.P50), ms(d.P99), ms(d.Max), d.Arrived, d.Missing, o.repeats)
	}
	perSMS := func(d time.Duration) string {
		if t.res.Sent == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0fµs", float64(d.Microseconds())/float64(t.res.Sent))
	}
	if o.cpu != nil {
		fmt.Fprintf(w, "daemon CPU: %s over %.1fs, %s per SMS\n", o.cpu.Round(time.Millisecond), o.window.Seconds(), perSMS(*o.cpu))
	}
	if o.serverCPU != nil {
		fmt.Fprintf(w, "PostgreSQL CPU: %s, %s per SMS\n", o.serverCPU.Round(time.Millisecond), perSMS(*o.serverCPU))
	}
	if len(o.depth) > 0 {
		var b strings.Builder
		peak := 0.0
		for _, s := range o.depth {
			peak = max(peak, s.Value)
			fmt.Fprintf(&b, " %.0fs:%.0f", s.At.Seconds(), s.Value)
		}
		fmt.Fprintf(w, "queue depth: peak %.0f;%s\n", peak, b.String())
	}
	if o.depthFails > 0 {
		fmt.Fprintf(w, "metrics scrapes failed: %d\n", o.depthFails)
	}
}
