package webhook_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/webhook"
)

// /readyz answers anyone who can reach the listener, so a failing store
// must not show them its error (host names, paths, user names): the body
// says only that the daemon is not ready.
func TestReadyzHidesTheCause(t *testing.T) {
	cause := errors.New(`failed to connect to host=db.internal user=smsbridge database=sms: dial tcp 10.0.3.7:5432: connection refused`)
	base, _ := startServer(t, &fakeBridge{}, webhook.Config{Ready: func(context.Context) error { return cause }})
	a := do(t, "GET", base+"/readyz", "", "")
	if a.status != 503 || a.body["reason"] != "not_ready" {
		t.Fatalf("readyz = %d %s, want 503 not_ready", a.status, a.raw)
	}
	for _, leak := range []string{"db.internal", "10.0.3.7", "user=", "5432"} {
		if strings.Contains(string(a.raw), leak) {
			t.Errorf("readyz body shows %q: %s", leak, a.raw)
		}
	}
}
