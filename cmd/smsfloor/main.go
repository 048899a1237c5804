// Command smsfloor runs loadtest.Floor: the least a durable SMTP-to-SMS
// bridge must do per message, to measure beside smsbridge with smsload.
//
//	smsload -fake-provider 127.0.0.1:8090 ... &   # or any voip-communications fake
//	smsfloor -listen 127.0.0.1:2526 -provider http://127.0.0.1:8090/api-v2/index.php &
//	smsload -addr 127.0.0.1:2526 -rate 100 -d 10s -c 45 -fake-provider 127.0.0.1:8090 -pid $!
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/smsbridge/smsbridge/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("smsfloor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:2526", "SMTP `host:port` to listen on")
	provider := fs.String("provider", "http://127.0.0.1:8090/api-v2/index.php", "voip-communications base `URL` (smsload -fake-provider's)")
	journal := fs.String("journal", "smsfloor.journal", "journal `file` (truncated at start)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	f, err := loadtest.StartFloor(*listen, *journal, *provider)
	if err != nil {
		fmt.Fprintln(stderr, "smsfloor:", err)
		return 1
	}
	fmt.Fprintln(stderr, "smsfloor: listening on", f.Addr)
	<-ctx.Done()
	if err := f.Close(); err != nil {
		fmt.Fprintln(stderr, "smsfloor:", err)
		return 1
	}
	return 0
}
