package config_test

import (
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/config"
)

// queue.workers limits nothing: a configuration that sets it still loads,
// whatever its value, and is warned that the key is ignored and what
// limits provider calls instead; one that does not set it is not.
func TestObsoleteWorkersWarns(t *testing.T) {
	c, err := config.Parse(minimal, kinds)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings without queue.workers: %q", w)
	}
	for _, n := range []string{"8", "0"} {
		c, err := config.Parse(minimal+"[queue]\nworkers = "+n+"\n", kinds)
		if err != nil {
			t.Fatalf("workers = %s: %v", n, err)
		}
		w := c.Warnings()
		if len(w) != 1 || !strings.HasPrefix(w[0], "queue.workers = "+n+" is obsolete and ignored") ||
			!strings.Contains(w[0], "providers[].max_concurrency") || !strings.Contains(w[0], "providers[].concurrency") {
			t.Errorf("workers = %s: warnings %q, want one saying it is ignored and naming the providers' limits", n, w)
		}
	}
}
