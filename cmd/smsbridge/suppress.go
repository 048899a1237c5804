package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/internal/daemon"
)

const suppressUsage = `usage: smsbridge suppress list   -config FILE [-phone N] [-account A] [-history] [-limit N]
       smsbridge suppress add    -config FILE -phone N [-account A] [-number SENDER] -reason TEXT
       smsbridge suppress remove -config FILE -phone N [-account A] [-number SENDER] -reason TEXT

A suppression stops SMS to a phone: from one sender ID (-number, with
-account its account's sends from it), from an account (-account), or
from everyone (neither). Every change is kept with who (cli:<user>),
when and why; list -history shows them.
`

// suppressCmd reads and changes the suppression list in the store of the
// configuration directly, through the same bridge rules as the HTTP API,
// so it works whether or not the daemon runs (the daemon reads the list
// at every send).
func suppressCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, suppressUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("suppress "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "smsbridge.toml", "configuration file")
	phone := fs.String("phone", "", "the phone number")
	account := fs.String("account", "", "the account")
	number := fs.String("number", "", "one of the account's sender IDs")
	reason := fs.String("reason", "", "why (kept in the history)")
	history := fs.Bool("history", false, "list every change instead of the current list")
	limit := fs.Int("limit", 100, "at most this many, newest first")
	switch sub {
	case "list", "add", "remove":
	default:
		fmt.Fprintf(stderr, "smsbridge suppress: unknown subcommand %q\n%s", sub, suppressUsage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "smsbridge suppress %s: unexpected argument %q\n", sub, fs.Arg(0))
		return 2
	}
	if sub != "list" && (*phone == "" || strings.TrimSpace(*reason) == "") {
		fmt.Fprintf(stderr, "smsbridge suppress %s: -phone and -reason are required\n", sub)
		return 2
	}
	cfg, err := config.Load(*path, daemon.Kinds)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := daemon.OpenStore(ctx, cfg.Store, log)
	if err != nil {
		fmt.Fprintln(stderr, "smsbridge suppress:", err)
		return 1
	}
	defer st.Close()
	var accounts []bridge.Account
	for _, a := range cfg.Accounts {
		accounts = append(accounts, bridge.Account{Name: a.Name, SenderIDs: a.SenderIDs})
	}
	b, err := bridge.New(st, nil, nil, accounts, bridge.Options{Region: cfg.SMTP.DefaultRegion, Log: log})
	if err != nil {
		fmt.Fprintln(stderr, "smsbridge suppress:", err)
		return 1
	}
	// The operator acts as an admin: any account's list, or everyone's.
	op := &bridge.Account{Name: "cli:" + operator(), Admin: true}
	switch sub {
	case "add":
		s, n, err := b.Suppress(ctx, op, *account, *phone, *number, *reason, "cli")
		if err != nil {
			fmt.Fprintln(stderr, "smsbridge suppress add:", err)
			return 1
		}
		fmt.Fprintf(stdout, "suppressed %s (%s); %d queued SMS cancelled\n", s.Phone, scopeText(*s), n)
	case "remove":
		if err := b.Unsuppress(ctx, op, *account, *phone, *number, *reason, "cli"); err != nil {
			fmt.Fprintln(stderr, "smsbridge suppress remove:", err)
			return 1
		}
		fmt.Fprintf(stdout, "removed the suppression of %s\n", *phone)
	case "list":
		f := bridge.SuppressionFilter{Phone: *phone, Account: *account, Limit: *limit}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		if *history {
			events, err := b.SuppressionHistory(ctx, op, f)
			if err != nil {
				fmt.Fprintln(stderr, "smsbridge suppress list:", err)
				return 1
			}
			fmt.Fprintln(tw, "AT\tACTION\tPHONE\tSCOPE\tSOURCE\tBY\tREASON")
			for _, e := range events {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Action, e.Phone, scopeText(e.Suppression),
					e.Source, e.By, oneLine(e.Reason, 80))
			}
		} else {
			list, err := b.ListSuppressions(ctx, op, f)
			if err != nil {
				fmt.Fprintln(stderr, "smsbridge suppress list:", err)
				return 1
			}
			fmt.Fprintln(tw, "SINCE\tPHONE\tSCOPE\tSOURCE\tBY\tREASON")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Created.UTC().Format(time.RFC3339), s.Phone, scopeText(s),
					s.Source, s.By, oneLine(s.Reason, 80))
			}
		}
		if err := tw.Flush(); err != nil {
			return 1
		}
	}
	return 0
}

func scopeText(s bridge.Suppression) string {
	switch {
	case s.Our != "" && s.Account != "":
		return "number " + s.Our + " of " + s.Account
	case s.Our != "":
		return "number " + s.Our
	case s.Account != "":
		return "account " + s.Account
	}
	return "all"
}

// operator names who runs the command, for the history.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}
