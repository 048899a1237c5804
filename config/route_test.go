package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/config"
)

// A route that names a provider twice is refused, naming the key: failover
// back to a provider already tried made the queue spin.
func TestRouteNamesEachProviderOnce(t *testing.T) {
	text := `
[smtp]
domains = ["sms.example.com"]
[[accounts]]
name = "ops"
emails = ["*@example.com"]
sender_ids = ["Ops"]
[[providers]]
name = "p"
type = "console"
[[providers]]
name = "q"
type = "console"
[[routes]]
prefix = "+972"
provider = "p"
fallback = ["p"]
[[routes]]
prefix = "+"
provider = "p"
fallback = ["q", "p", "q"]
`
	_, err := config.Parse(text, kinds)
	var probs config.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v, want config.Problems", err)
	}
	want := []string{
		`routes[0].fallback[0]: provider "p" is already in this route`,
		`routes[1].fallback[1]: provider "p" is already in this route`,
		`routes[1].fallback[2]: provider "q" is already in this route`,
	}
	for _, w := range want {
		if !slices.Contains(probs, w) {
			t.Errorf("missing problem %q in:\n%s", w, strings.Join(probs, "\n"))
		}
	}
	if len(probs) != len(want) {
		t.Errorf("problems:\n%s\nwant only the %d above", strings.Join(probs, "\n"), len(want))
	}
}
