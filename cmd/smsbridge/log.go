package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/internal/daemon"
)

// logCmd prints the conversation log as threads: each conversation, then
// its SMS both ways, oldest first. It reads the store of the configuration
// directly, so it works whether or not the daemon runs.
func logCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("log", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "smsbridge.toml", "configuration file")
	phone := fs.String("phone", "", "only conversations with this number")
	account := fs.String("account", "", "only conversations this account wrote in last")
	since := fs.String("since", "", "only conversations active since: a duration (24h), a date (2006-01-02) or an RFC 3339 time")
	limit := fs.Int("limit", 20, "at most this many conversations, newest first")
	entries := fs.Int("entries", 50, "at most this many SMS per conversation (the newest)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "smsbridge log: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	now := time.Now()
	f := bridge.ConversationFilter{Account: *account, Limit: *limit}
	if *since != "" {
		t, err := parseSince(*since, now)
		if err != nil {
			fmt.Fprintln(stderr, "smsbridge log: -since:", err)
			return 2
		}
		f.Since = t
	}
	cfg, err := config.Load(*path, daemon.Kinds)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	if *phone != "" {
		n, err := bridge.ParseNumber(*phone, cfg.SMTP.DefaultRegion)
		if err != nil {
			fmt.Fprintln(stderr, "smsbridge log: -phone:", err)
			return 2
		}
		f.Phone = n
	}
	ctx := context.Background()
	st, err := daemon.OpenStore(ctx, cfg.Store, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintln(stderr, "smsbridge log:", err)
		return 1
	}
	defer st.Close()
	if err := printLog(ctx, stdout, st, f, *entries); err != nil {
		fmt.Fprintln(stderr, "smsbridge log:", err)
		return 1
	}
	return 0
}

// parseSince reads -since: a duration back from now, a date, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: give a positive duration", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a duration (24h), a date (2006-01-02) or an RFC 3339 time", s)
}

func printLog(ctx context.Context, w io.Writer, cs bridge.Conversations, f bridge.ConversationFilter, entries int) error {
	convs, err := cs.ListConversations(ctx, f)
	if err != nil {
		return err
	}
	if len(convs) == 0 {
		fmt.Fprintln(w, "no conversations")
		return nil
	}
	for i, c := range convs {
		log, err := cs.ConversationLog(ctx, c.ID, entries)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "== %s with %s  (%s", c.Phone, orDash(c.Our), c.ID)
		if c.Account != "" {
			fmt.Fprintf(w, ", account %s", c.Account)
		}
		if c.ReplyTo != "" {
			fmt.Fprintf(w, ", replies to %s", c.ReplyTo)
		}
		fmt.Fprintln(w, ")")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, e := range log {
			status := string(e.State)
			if e.Direction == bridge.DirIn {
				status = "received"
				if e.MailTo != "" {
					status = "mailed to " + e.MailTo
				}
			} else if e.Error != "" && e.State != bridge.StateSent && e.State != bridge.StateDelivered {
				status += " (" + oneLine(e.Error, 60) + ")"
			}
			if e.Direction == bridge.DirOut {
				status += sendDetails(e)
			}
			arrow := "→"
			if e.Direction == bridge.DirIn {
				arrow = "←"
			}
			fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\n", e.At.Local().Format("2006-01-02 15:04:05"), arrow, e.Direction,
				e.Phone, status, oneLine(e.Text, 200))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// oneLine keeps a log line one line: SMS text may hold newlines (and
// anything else a phone sends).
func oneLine(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == '\t' }), " ⏎ ")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sendDetails is what an SMS sent took: its parts and encoding, and its
// cost where the provider reported one, e.g. ", 2 parts GSM-7, cost 0.02".
func sendDetails(e bridge.LogEntry) string {
	var s string
	if e.Parts > 0 {
		noun := " parts "
		if e.Parts == 1 {
			noun = " part "
		}
		s += ", " + strconv.Itoa(e.Parts) + noun + string(e.Encoding)
	}
	if e.Cost != "" {
		s += ", cost " + oneLine(e.Cost, 20)
	}
	if e.Notified != "" {
		s += ", notified " + oneLine(e.Notified, 60)
	}
	return s
}
