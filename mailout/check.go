package mailout

import (
	"context"
	"crypto/tls"
	"strings"
	"time"
)

// Check proves the smarthost takes our session without sending any mail:
// it connects, secures the connection as the TLS mode says (verifying the
// certificate), says EHLO, authenticates when a username is configured,
// and says QUIT. It answers how the session was secured and whether AUTH
// was accepted; its errors are Send's (the password never in them).
func (c *Client) Check(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	sc, tc, done, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer done()
	if err := sc.Quit(); err != nil {
		return "", c.fail(ctx, "QUIT", false, err)
	}
	var parts []string
	switch {
	case tc == nil && c.cfg.TLS == TLSNone:
		parts = append(parts, "plain text (tls = none)")
	case tc == nil:
		parts = append(parts, "plain text: the smarthost does not offer STARTTLS")
	default:
		st := tc.ConnectionState()
		how := "STARTTLS"
		if c.cfg.TLS == TLSImplicit {
			how = "implicit TLS"
		}
		parts = append(parts, how+", "+tls.VersionName(st.Version))
		if len(st.PeerCertificates) > 0 {
			parts = append(parts, "certificate valid until "+st.PeerCertificates[0].NotAfter.UTC().Format(time.DateOnly))
		}
	}
	if c.cfg.Username != "" {
		parts = append(parts, "AUTH PLAIN as "+c.cfg.Username+" accepted")
	} else {
		parts = append(parts, "no AUTH configured")
	}
	return strings.Join(parts, ", "), nil
}
