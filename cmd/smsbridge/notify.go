package main

import (
	"net"
	"os"
)

// notify reports the daemon's state to the service manager with
// systemd's sd_notify protocol: one datagram to the unix socket named by
// $NOTIFY_SOCKET ("@name" is an abstract socket, which Go dials as such).
// "READY=1" once the listeners are bound; "RELOADING=1" when SIGHUP is
// taken, then "READY=1" with a STATUS saying whether the new file was
// applied. A unit with Type=notify learns when the daemon is up, and
// anyone watching can tell that a reload has happened rather than guess.
// Without $NOTIFY_SOCKET it does nothing; a failure to notify is not the
// daemon's failure, so it is returned only for the caller to log.
func notify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
