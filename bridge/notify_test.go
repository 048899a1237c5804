package bridge_test

import (
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
)

func TestNotifyWants(t *testing.T) {
	for _, c := range []struct {
		n                       bridge.Notify
		success, failure, delay bool
	}{
		{0, false, true, false}, // unset: what a server does without NOTIFY
		{bridge.NotifyNever, false, false, false},
		{bridge.NotifySuccess | bridge.NotifyDelay, true, false, true},
		{bridge.NotifyFailure, false, true, false},
	} {
		if c.n.Wants(bridge.NotifySuccess) != c.success || c.n.Wants(bridge.NotifyFailure) != c.failure || c.n.Wants(bridge.NotifyDelay) != c.delay {
			t.Errorf("%q: wants success %v failure %v delay %v", c.n, c.n.Wants(bridge.NotifySuccess), c.n.Wants(bridge.NotifyFailure), c.n.Wants(bridge.NotifyDelay))
		}
	}
}

// FuzzParseNotify: what parses is "never" alone or a set of the other
// three, and reads back the same from its String (the stored form).
func FuzzParseNotify(f *testing.F) {
	for _, s := range []string{"success,delay", "NEVER", "never,failure", "failure,failure", "", " delay ", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := bridge.ParseNotify(strings.Split(s, ","))
		if err != nil {
			return
		}
		if n&bridge.NotifyNever != 0 && n != bridge.NotifyNever {
			t.Fatalf("%q parsed as %v", s, n)
		}
		if n == 0 {
			return
		}
		back, err := bridge.ParseNotify(strings.Split(n.String(), ","))
		if err != nil || back != n {
			t.Fatalf("%q: %v does not read back (%v, %v)", s, n, back, err)
		}
	})
}
