package storeutil

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/smsbridge/smsbridge/bridge"
)

// ClaimStep is one query of a Claim: the due recipients of Provider, or,
// with Others set, those of every provider not in Exclude; at most Limit.
type ClaimStep struct {
	Provider string
	Others   bool
	Exclude  []string
	Limit    int
}

// ClaimSteps plans a Claim of at most limit recipients under quota (see
// bridge.Store.Claim): one step per provider quota gives room to, in name
// order, then one for the providers it does not name. A nil quota is one
// step for every provider. The store runs the steps in one transaction,
// each limited to the smaller of its Limit and what is left of limit.
func ClaimSteps(limit int, quota map[string]int) []ClaimStep {
	if quota == nil {
		return []ClaimStep{{Others: true, Limit: limit}}
	}
	names := make([]string, 0, len(quota))
	for p := range quota {
		names = append(names, p)
	}
	slices.Sort(names)
	var steps []ClaimStep
	for _, p := range names {
		if quota[p] > 0 {
			steps = append(steps, ClaimStep{Provider: p, Limit: quota[p]})
		}
	}
	return append(steps, ClaimStep{Others: true, Exclude: names, Limit: limit})
}

// SortJobs puts claimed jobs in the order one query over every provider
// would have returned them: by next attempt, then id.
func SortJobs(jobs []bridge.Job) {
	slices.SortStableFunc(jobs, func(a, b bridge.Job) int {
		if c := a.Recipient.NextAttempt.Compare(b.Recipient.NextAttempt); c != 0 {
			return c
		}
		return cmp.Compare(a.Recipient.ID, b.Recipient.ID)
	})
}

// Placeholders returns n SQL parameters from first on, comma-separated:
// "?, ?" for SQLite (dollar false) or "$3, $4" for PostgreSQL.
func Placeholders(first, n int, dollar bool) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		if dollar {
			b.WriteString("$")
			b.WriteString(strconv.Itoa(first + i))
		} else {
			b.WriteString("?")
		}
	}
	return b.String()
}
