package selfcheck

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// listenItem checks that serve can listen on addr by listening there and
// closing at once. An address in use is a skip, not a failure: checking
// the configuration of a running daemon finds its own listeners there.
func listenItem(name, addr string) Item {
	return Item{Name: "listener " + name + " " + addr, Checker: CheckFunc(func(ctx context.Context) (string, error) {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", addr)
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			return "", Skipped("in use, by a running smsbridge or another program")
		case err != nil:
			return "", err
		}
		if err := ln.Close(); err != nil {
			return "", err
		}
		return "free: serve can listen there", nil
	})}
}
