package daemon_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// TestPacingEndToEnd: two voip-communications accounts, one paced at
// rate = 10. Thirty recipients of one mail to each: the paced account
// receives them ten a second at most (counted per recipient, from the
// fake's own request times, in any 900 ms: the HTTP round trip may move a
// request a little), the other all thirty, and nothing is lost.
func TestPacingEndToEnd(t *testing.T) {
	paced := voipcomtest.NewServer(t, "k", "p", "972500000001")
	free := voipcomtest.NewServer(t, "k", "p", "972500000001")
	d := start(t, fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
max_recipients = 30
[[accounts]]
name = "ops"
emails = ["ops@example.com"]
sender_ids = ["+972500000001"]
[[providers]]
name = "paced"
type = "voipcom"
base_url = %q
api_key = "k"
api_password = "p"
numbers = ["972500000001"]
rate = 10
[[providers]]
name = "free"
type = "voipcom"
base_url = %q
api_key = "k"
api_password = "p"
numbers = ["972500000001"]
[[routes]]
prefix = "+97250"
provider = "paced"
[[routes]]
prefix = "+97252"
provider = "free"
`, paced.URL, free.URL))
	for _, prefix := range []string{"050", "052"} {
		var to []string
		for i := range 30 {
			to = append(to, fmt.Sprintf("%s00000%02d@sms.example.com", prefix, i))
		}
		if _, err := sendMail(t, d.SMTPAddr(), "ops@example.com", to, "Subject: x\n\nhello\n"); err != nil {
			t.Fatal(err)
		}
	}
	count := func(f *voipcomtest.Server) (n int) {
		for _, r := range f.Requests() {
			n += len(r.To)
		}
		return n
	}
	eventually(t, 20*time.Second, "30 recipients at each provider", func() bool { return count(paced) == 30 && count(free) == 30 })

	var times []time.Time
	for _, r := range paced.Requests() {
		for range r.To {
			times = append(times, r.Time)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i := 10; i < len(times); i++ {
		if gap := times[i].Sub(times[i-10]); gap < 900*time.Millisecond {
			t.Errorf("recipients %d and %d reached the paced provider %v apart: more than 10 within a second", i-10, i, gap)
		}
	}
}
