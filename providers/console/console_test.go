package console_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers/console"
)

// Message text is personal data: it reaches the log only when the
// operator sets log_text.
func TestTextLoggedOnlyWhenAskedFor(t *testing.T) {
	for _, logText := range []bool{false, true} {
		var buf bytes.Buffer
		p := console.New("c", &console.Config{LogText: logText}, slog.New(slog.NewJSONHandler(&buf, nil)))
		res, err := p.Send(t.Context(), &bridge.SendRequest{MessageID: "m1", Text: "secret appointment at 10", To: []string{"+972501234567", "+972507654321"}})
		if err != nil || len(res) != 2 || res[0].ProviderID == "" || res[0].ProviderID == res[1].ProviderID {
			t.Fatalf("Send = %+v, %v", res, err)
		}
		if got := strings.Contains(buf.String(), "secret appointment"); got != logText {
			t.Errorf("log_text=%v: text in log = %v\n%s", logText, got, buf.String())
		}
		if !strings.Contains(buf.String(), "+972507654321") {
			t.Errorf("log_text=%v: recipient missing from the log:\n%s", logText, buf.String())
		}
	}
}
