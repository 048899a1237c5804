package bridge

import (
	"math/rand/v2"
	"time"
)

// Backoff is the delay before the next try after attempts tries (this one
// included): capped exponential backoff with full jitter (the AWS
// architecture blog's "full jitter") above floor. The ceiling doubles from
// floor with each attempt up to ceiling; the delay is drawn uniformly
// between floor and it, so that sends that failed together (a provider
// outage) do not come back together. The dispatcher and the mail worker
// both retry with it.
func Backoff(attempts int, floor, ceiling time.Duration) time.Duration {
	ceil := floor
	for i := 1; i < attempts && ceil < ceiling; i++ {
		ceil *= 2
	}
	ceil = min(ceil, ceiling)
	if ceil <= floor {
		return floor
	}
	return floor + rand.N(ceil-floor)
}
