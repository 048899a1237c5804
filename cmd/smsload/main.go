// Command smsload puts an SMTP server, normally smsbridge, under load and
// reports acknowledged messages per second and latency percentiles. Unless
// told otherwise it first runs the same load against a built-in server that
// only discards, the ceiling for any go-smtp server on this machine, and
// reports the target's rate as a fraction of it.
//
//	smsload -addr 127.0.0.1:2525 -c 20 -d 10s -size 1024
//	smsload -discard-only -d 5s
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
	if err := fs.Parse(args); err != nil {
		return c, err
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
	}
	return c, nil
}

// target is one measured server.
type target struct {
	name string
	res  loadtest.Result
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

	var targets []target
	if c.discard || c.discardOnly {
		res, err := loadtest.RunDiscard(ctx, opts)
		if res == nil {
			log.Error("discard server", "err", err)
			return exitError
		}
		targets = append(targets, target{"discard", *res})
		if err != nil {
			log.Warn("discard run cut short", "err", err)
		}
	}
	if !c.discardOnly && ctx.Err() == nil {
		opts.Addr = c.addr
		res, err := loadtest.Run(ctx, opts)
		targets = append(targets, target{c.addr, res})
		if err != nil {
			log.Warn("run cut short", "target", c.addr, "err", err)
		}
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
	}
	if q, ok := ratio(targets); ok {
		rep.Ratio = &q
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
