// Command smsload puts an SMTP server, normally smsbridge, under load and
// reports acknowledged messages per second and latency percentiles. Unless
// told otherwise it first runs the same load against a built-in server that
// only discards, the ceiling for any go-smtp server on this machine, and
// reports the target's rate as a fraction of it.
//
//	smsload -addr 127.0.0.1:2525 -c 20 -d 10s -size 1024
//	smsload -discard-only -d 5s
//
// With -rate it offers a fixed rate instead (open loop), and with
// -fake-provider it also stands in for the SMS provider, so it can report
// how long accepted messages took to reach it; -pid, -server-pid and
// -metrics add the daemon's (and PostgreSQL's) CPU per SMS and the queue
// depth over time:
//
//	smsload -addr 127.0.0.1:2525 -rate 300 -d 10s -c 64 \
//		-fake-provider 127.0.0.1:8090 -provider-latency 50ms \
//		-pid $(pidof smsbridge) -metrics http://127.0.0.1:8025/metrics
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/smsbridge/smsbridge/loadtest"
)

// Exit codes: load failures are results to report, not reasons to fail
// the command, so only bad invocations and a run that could not start at
// all exit non-zero.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type config struct {
	addr        string
	sessions    int
	messages    int
	duration    time.Duration
	size        int
	from        string
	toDomain    string
	discard     bool
	discardOnly bool
	json        bool
	reconnect   bool

	rate            float64
	fakeProvider    string
	providerLatency time.Duration
	drain           time.Duration
	pid             int
	serverPID       int
	metricsURL      string
	scrapeEvery     time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("smsload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "", "SMTP `host:port` to load (required unless -discard-only)")
	fs.IntVar(&c.sessions, "c", 20, "concurrent SMTP sessions")
	fs.IntVar(&c.messages, "n", 0, "total messages per target (0: run for -d)")
	fs.DurationVar(&c.duration, "d", 10*time.Second, "run time per target when -n is 0")
	fs.IntVar(&c.size, "size", 1024, "approximate message size in bytes, headers included")
	fs.StringVar(&c.from, "from", "load@localhost", "MAIL FROM address")
	fs.StringVar(&c.toDomain, "to-domain", "sms.localhost", "domain of the RCPT TO addresses (+97250xxxxxxx@domain)")
	fs.BoolVar(&c.discard, "discard", true, "first run the same load against a discard-only server and report the ratio")
	fs.BoolVar(&c.discardOnly, "discard-only", false, "only load the discard-only server (measures the ceiling)")
	fs.BoolVar(&c.json, "json", false, "print results as JSON")
	fs.BoolVar(&c.reconnect, "reconnect", false, "open a new connection for every message")
	fs.Float64Var(&c.rate, "rate", 0, "offered `msgs/s` on a fixed timetable (open loop; latency from each message's due time); 0: each session sends as fast as it is answered")
	fs.StringVar(&c.fakeProvider, "fake-provider", "", "serve a fake voip-communications API on `host:port` and report when accepted messages reach it (loadtest/smsbridge-voipcom.toml points the bridge at 127.0.0.1:8090)")
	fs.DurationVar(&c.providerLatency, "provider-latency", 0, "how long the fake provider takes to answer each send")
	fs.DurationVar(&c.drain, "drain", 30*time.Second, "after the load, wait at most this long for accepted messages to reach the fake provider (and the queue to empty, with -metrics)")
	fs.IntVar(&c.pid, "pid", 0, "`pid` of the smsbridge process: report its CPU per SMS (Linux)")
	fs.IntVar(&c.serverPID, "server-pid", 0, "`pid` of the PostgreSQL postmaster: report the server's CPU per SMS, its backends included (Linux)")
	fs.StringVar(&c.metricsURL, "metrics", "", "smsbridge's metrics `URL`: report the queue depth over time")
	fs.DurationVar(&c.scrapeEvery, "scrape-every", time.Second, "interval between -metrics scrapes")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	// The discard comparison measures the closed loop's ceiling; at a
	// fixed rate it would only show the rate again, so it is off unless
	// asked for.
	discardSet := false
	fs.Visit(func(f *flag.Flag) { discardSet = discardSet || f.Name == "discard" })
	if c.rate > 0 && !discardSet {
		c.discard = false
	}

	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	case c.addr == "" && !c.discardOnly:
		return c, errors.New("-addr is required unless -discard-only")
	case c.addr != "" && c.discardOnly:
		return c, errors.New("-addr and -discard-only exclude each other")
	case c.sessions < 1:
		return c, errors.New("-c must be at least 1")
	case c.messages < 0:
		return c, errors.New("-n must not be negative")
	case c.messages == 0 && c.duration <= 0:
		return c, errors.New("-d must be positive when -n is 0")
	case c.size < 1:
		return c, errors.New("-size must be positive")
	case c.toDomain == "":
		return c, errors.New("-to-domain must not be empty")
	case c.rate < 0 || math.IsNaN(c.rate) || math.IsInf(c.rate, 0):
		return c, errors.New("-rate must be a positive number, or 0 for the closed loop")
	case c.providerLatency < 0 || c.drain < 0:
		return c, errors.New("-provider-latency and -drain must not be negative")
	case c.pid < 0 || c.serverPID < 0:
		return c, errors.New("-pid and -server-pid must be process ids")
	case c.metricsURL != "" && c.scrapeEvery <= 0:
		return c, errors.New("-scrape-every must be positive")
	case (c.fakeProvider != "" || c.pid != 0 || c.serverPID != 0 || c.metricsURL != "") && c.discardOnly:
		return c, errors.New("-fake-provider, -pid, -server-pid and -metrics observe a target: not with -discard-only")
	}
	return c, nil
}

// target is one measured server.
type target struct {
	name string
	res  loadtest.Result
	obs  *observed // for the loaded target, what -fake-provider, -pid, -server-pid and -metrics saw
}

// observed is what was seen of the bridge while the load ran and drained.
type observed struct {
	offered    float64 // msgs/s, 0 for the closed loop
	delivery   *loadtest.Delivery
	repeats    int           // sends the fake provider saw twice or without a ref
	window     time.Duration // load and drain, over which CPU was measured
	cpu        *time.Duration
	serverCPU  *time.Duration
	depth      []loadtest.Depth
	depthFails int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "smsload: %v (see smsload -h)\n", err)
		return exitUsage
	}

	opts := loadtest.Options{
		Sessions:  c.sessions,
		Messages:  c.messages,
		Duration:  c.duration,
		Size:      c.size,
		From:      c.from,
		To:        func(i int) string { return fmt.Sprintf("+97250%07d@%s", i%10_000_000, c.toDomain) },
		Reconnect: c.reconnect,
	}

	var fake *loadtest.FakeProvider
	if c.fakeProvider != "" {
		if fake, err = loadtest.StartFakeProvider(c.fakeProvider, c.providerLatency); err != nil {
			log.Error("fake provider", "err", err)
			return exitError
		}
		defer fake.Close()
		log.Info("fake provider", "base_url", fake.URL, "latency", c.providerLatency)
	}

	var targets []target
	if c.discard || c.discardOnly {
		res, err := loadtest.RunDiscard(ctx, opts)
		if res == nil {
			log.Error("discard server", "err", err)
			return exitError
		}
		targets = append(targets, target{name: "discard", res: *res})
		if err != nil {
			log.Warn("discard run cut short", "err", err)
		}
	}
	if !c.discardOnly && ctx.Err() == nil {
		opts.Addr = c.addr
		opts.Rate = c.rate
		t, err := observe(ctx, log, c, fake, func() (loadtest.Result, error) { return loadtest.Run(ctx, opts) })
		if err != nil {
			log.Error("observing the target", "err", err)
			return exitError
		}
		targets = append(targets, t)
	}

	if c.json {
		err = writeJSON(stdout, c.sessions, targets)
	} else {
		err = writeTable(stdout, c.sessions, targets)
	}
	if err != nil {
		log.Error("write results", "err", err)
		return exitError
	}
	return exitOK
}

// ratio is the rate of the second target as a fraction of the first, the
// discard server's, when both ran.
func ratio(targets []target) (float64, bool) {
	if len(targets) != 2 || targets[0].name != "discard" || targets[0].res.Rate == 0 {
		return 0, false
	}
	return targets[1].res.Rate / targets[0].res.Rate, true
}

func writeTable(w io.Writer, sessions int, targets []target) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tsessions\tmessages\tmsgs/s\tp50\tp90\tp99\tmax\terrors")
	for _, t := range targets {
		r := t.res
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%d\n",
			t.name, sessions, r.Sent, r.Rate, ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max), r.Failed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if q, ok := ratio(targets); ok {
		fmt.Fprintf(w, "ratio: %.2f of discard\n", q)
	}
	for _, t := range targets {
		writeObserved(w, t)
	}
	for _, t := range targets {
		if len(t.res.Errors) == 0 {
			continue
		}
		fmt.Fprintf(w, "errors from %s:\n", t.name)
		for _, k := range slices.Sorted(maps.Keys(t.res.Errors)) {
			fmt.Fprintf(w, "  %6d  %s\n", t.res.Errors[k], k)
		}
	}
	return nil
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// jsonRun is a target's result in JSON: durations in milliseconds, and no
// message IDs, which can run to hundreds of thousands.
type jsonRun struct {
	Target   string         `json:"target"`
	Sessions int            `json:"sessions"`
	Sent     int            `json:"sent"`
	Failed   int            `json:"failed"`
	Seconds  float64        `json:"elapsed_s"`
	Rate     float64        `json:"rate"`
	P50      float64        `json:"p50_ms"`
	P90      float64        `json:"p90_ms"`
	P99      float64        `json:"p99_ms"`
	Max      float64        `json:"max_ms"`
	Errors   map[string]int `json:"errors,omitempty"`

	Offered          float64      `json:"offered_rate,omitempty"`
	Provider         *jsonLatency `json:"accept_to_provider,omitempty"`
	WindowSeconds    float64      `json:"observed_s,omitempty"`
	CPUPerSMS        *float64     `json:"daemon_cpu_per_sms_us,omitempty"`
	ServerCPUPerSMS  *float64     `json:"postgres_cpu_per_sms_us,omitempty"`
	Depth            []jsonDepth  `json:"queue_depth,omitempty"`
	DepthScrapeFails int          `json:"queue_depth_scrape_failures,omitempty"`
}

type jsonLatency struct {
	Arrived int     `json:"arrived"`
	Missing int     `json:"missing"`
	Repeats int     `json:"repeats_or_foreign"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

type jsonDepth struct {
	At    float64 `json:"t_s"`
	Depth float64 `json:"depth"`
}

type jsonReport struct {
	Runs  []jsonRun `json:"runs"`
	Ratio *float64  `json:"ratio,omitempty"`
}

func writeJSON(w io.Writer, sessions int, targets []target) error {
	var rep jsonReport
	msf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, t := range targets {
		r := t.res
		rep.Runs = append(rep.Runs, jsonRun{
			Target: t.name, Sessions: sessions, Sent: r.Sent, Failed: r.Failed,
			Seconds: r.Elapsed.Seconds(), Rate: r.Rate,
			P50: msf(r.P50), P90: msf(r.P90), P99: msf(r.P99), Max: msf(r.Max),
			Errors: r.Errors,
		})
		if o := t.obs; o != nil {
			j := &rep.Runs[len(rep.Runs)-1]
			j.Offered, j.WindowSeconds, j.DepthScrapeFails = o.offered, o.window.Seconds(), o.depthFails
			if d := o.delivery; d != nil {
				j.Provider = &jsonLatency{Arrived: d.Arrived, Missing: d.Missing, Repeats: o.repeats,
					P50: msf(d.P50), P99: msf(d.P99), Max: msf(d.Max)}
			}
			perSMS := func(d *time.Duration) *float64 {
				if d == nil || r.Sent == 0 {
					return nil
				}
				v := loadtest.PerMessage(*d, r.Sent)
				return &v
			}
			j.CPUPerSMS, j.ServerCPUPerSMS = perSMS(o.cpu), perSMS(o.serverCPU)
			for _, s := range o.depth {
				j.Depth = append(j.Depth, jsonDepth{At: s.At.Seconds(), Depth: s.Value})
			}
		}
	}
	if q, ok := ratio(targets); ok {
		rep.Ratio = &q
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
