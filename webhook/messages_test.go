package webhook_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
)

// A send_at that is not an RFC 3339 time is answered 422 naming send_at
// (not 400 malformed JSON), without echoing a huge value, before anything
// is resolved or submitted.
func TestPostMessageBadSendAt(t *testing.T) {
	b := &fakeBridge{tokens: map[string]*bridge.Account{opsToken: {Name: "ops"}}}
	base, _ := startServer(t, b, callbackConfig())
	for _, v := range []string{`"tomorrow"`, `"2030-01-02 09:00"`, `5`, `{"at": 1}`, `"` + strings.Repeat("9", 100_000) + `"`} {
		body := `{"to": "0501234567", "text": "hi", "send_at": ` + v + `}`
		a := do(t, "POST", base+"/v1/messages", "application/json", body, "Authorization", "Bearer "+opsToken)
		if a.status != http.StatusUnprocessableEntity || a.body["field"] != "send_at" || a.body["reason"] != "invalid" {
			t.Errorf("send_at %.40s: HTTP %d %s, want 422 on send_at", v, a.status, a.raw)
		}
		if len(a.raw) > 1024 {
			t.Errorf("send_at %.40s: %d bytes of error body", v, len(a.raw))
		}
	}
}
