package config

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/smsbridge/smsbridge/bridge"
)

// Warnings lists what a valid configuration does that an operator
// should know is dangerous, or that does not do what it says. check-config
// prints them and serve logs them; they do not stop the daemon.
func (c *Config) Warnings() []string {
	out := c.obsolete()
	if c.SMTP.RequireAuth {
		return out
	}
	var exposed []string
	for _, l := range []struct{ key, addr string }{{"smtp.listen", c.SMTP.Listen}, {"smtp.tls_listen", c.SMTP.TLSListen}} {
		if l.addr != "" && !onLoopback(l.addr) {
			exposed = append(exposed, fmt.Sprintf("%s %s", l.key, l.addr))
		}
	}
	if len(exposed) == 0 {
		return out
	}
	everywhere := func(key string, list []string, who string) {
		for i, n := range list {
			if p, err := netip.ParsePrefix(n); err == nil && p.Bits() == 0 {
				out = append(out, fmt.Sprintf("%s[%d]: %s trusts unauthenticated mail from everywhere, and %s is not on loopback: "+
					"anyone who reaches it can send SMS as %s by naming its address as envelope sender "+
					"(see \"Security model\" in the README: put Postfix in front, or set smtp.require_auth)",
					key, i, n, exposed[0], who))
			}
		}
	}
	everywhere("smtp.allowed_networks", c.SMTP.AllowedNetworks, "any account without networks of its own")
	for i, a := range c.Accounts {
		everywhere(fmt.Sprintf("accounts[%d].networks", i), a.Networks, fmt.Sprintf("account %q", a.Name))
	}
	return out
}

// onLoopback reports whether a listen address (host:port) accepts only
// connections from this host.
func onLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// obsolete warns of keys still accepted, so that older configurations
// load, that no longer do anything: an operator setting one believes it
// limits or changes something.
func (c *Config) obsolete() []string {
	var out []string
	if c.Queue.Workers != nil {
		out = append(out, fmt.Sprintf("queue.workers = %d is obsolete and ignored: it limits nothing. "+
			"Provider calls are limited per provider only, by each provider's adaptive concurrency limit "+
			"(up to providers[].max_concurrency, default %d) or its fixed providers[].concurrency; remove queue.workers",
			*c.Queue.Workers, bridge.DefaultMaxConcurrency))
	}
	return out
}
