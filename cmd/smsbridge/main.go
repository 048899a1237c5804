// Command smsbridge bridges email and SMS. See the README for a tour.
//
//	smsbridge serve -config FILE [-log-format text|json]
//	smsbridge check-config -config FILE [-live [-timeout D]]
//	smsbridge log -config FILE [-phone N] [-account A] [-since D]
//	smsbridge version
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // provider time zones must load on hosts without zoneinfo

	"golang.org/x/crypto/bcrypt"

	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/internal/daemon"
	"github.com/smsbridge/smsbridge/internal/selfcheck"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: smsbridge <command> [flags]

commands:
  serve         -config FILE [-log-format text|json]   run the daemon
  check-config  -config FILE [-live [-timeout 10s]]    validate a configuration; -live also proves the
                                                       providers, smarthost, store and listeners work
  log           -config FILE [-phone N] [-account A] [-since 24h|DATE] [-limit N]
                                                       print conversations as threads
  suppress      list|add|remove -config FILE …         the suppression list (opt-outs); see smsbridge suppress
  migrate-store -from sqlite:PATH -to postgres://…    copy the store to PostgreSQL
  hash-password                                        read a password on stdin, print its bcrypt hash
                                                       (for [[accounts]] smtp_password_hash)
  version                                              print the version, commit and build date
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "check-config":
		return checkConfig(args, stdout, stderr)
	case "migrate-store":
		return migrateStore(args, stdout, stderr)
	case "log":
		return logCmd(args, stdout, stderr)
	case "suppress":
		return suppressCmd(args, stdout, stderr)
	case "hash-password":
		return hashPasswordCmd(args, os.Stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "smsbridge", currentVersion())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "smsbridge: unknown command %q\n%s", cmd, usage)
	return 2
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "smsbridge.toml", "configuration file")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path, daemon.Kinds)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	log, err := newLogger(stderr, *format, cfg.Log.Level)
	if err != nil {
		fmt.Fprintln(stderr, "smsbridge:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := daemon.New(ctx, cfg, log)
	if err != nil {
		log.Error("starting", "err", err)
		return 1
	}
	tell := func(state string) {
		if err := notify(state); err != nil {
			log.Warn("notifying the service manager", "err", err)
		}
	}
	// SIGHUP reloads accounts, routes and providers; a configuration
	// that does not load leaves the running one in place.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				tell("STOPPING=1")
				return
			case <-hup:
				tell("RELOADING=1")
				cfg, err := config.Load(*path, daemon.Kinds)
				if err == nil {
					err = d.Reload(cfg)
				}
				if err != nil {
					log.Error("reload refused; the running configuration stays", "err", err)
					tell("READY=1\nSTATUS=reload refused, the running configuration stays: see the log")
					continue
				}
				tell("READY=1\nSTATUS=reloaded " + *path)
			}
		}
	}()
	tell("READY=1\nSTATUS=serving")
	if err := d.Run(ctx); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "smsbridge.toml", "configuration file")
	live := fs.Bool("live", false, "also prove that the providers, the smarthost, the store and the listeners work, sending nothing")
	timeout := fs.Duration("timeout", 10*time.Second, "with -live: how long each check may take")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "smsbridge: -timeout must be positive")
		return 2
	}
	cfg, err := config.Load(*path, daemon.Kinds)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	// Warnings describe a valid but dangerous configuration: loud, on
	// stderr, but not a failure (a deploy script must not break on them).
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stderr, "smsbridge: WARNING:", w)
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	if !*live {
		return 0
	}
	results := selfcheck.Run(context.Background(), selfcheck.Plan(cfg), *timeout, selfcheck.Redactor(cfg))
	for _, r := range results {
		fmt.Fprintln(stdout, r)
	}
	if !selfcheck.Passed(results) {
		return 1
	}
	return 0
}

// printConfigError lists every problem on its own line.
func printConfigError(w io.Writer, err error) {
	var probs config.Problems
	if errors.As(err, &probs) {
		fmt.Fprintf(w, "smsbridge: %d configuration problem(s):\n", len(probs))
		for _, p := range probs {
			fmt.Fprintln(w, "  "+p)
		}
		return
	}
	fmt.Fprintln(w, "smsbridge:", err)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format must be text or json, not %q", format)
}

const hashPasswordUsage = `usage: smsbridge hash-password

Reads one line, the password (at least 8 characters), from standard input
and prints its bcrypt hash for an account's smtp_password_hash:

  smsbridge hash-password <<< 'the password'
`

// hashPasswordCmd is `smsbridge hash-password`. It takes no flags: -h
// prints what it does instead of waiting on standard input, which looks
// like a hang to whoever only asked for help.
func hashPasswordCmd(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), hashPasswordUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, hashPasswordUsage)
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "smsbridge: hash-password takes no arguments; it reads the password from standard input\n%s", hashPasswordUsage)
		return 2
	}
	if fi, err := stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		// Typed at a terminal: say what is awaited (it is echoed).
		fmt.Fprint(stderr, "password (one line, shown as typed): ")
	}
	return hashPassword(stdin, stdout, stderr)
}

// hashPassword reads one line (the password) and prints its bcrypt hash.
func hashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "smsbridge: reading the password:", err)
		return 1
	}
	pass := strings.TrimRight(line, "\r\n")
	if len(pass) < 8 {
		fmt.Fprintln(stderr, "smsbridge: the password must have at least 8 characters")
		return 1
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), 12)
	if err != nil {
		fmt.Fprintln(stderr, "smsbridge:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(hash))
	return 0
}
