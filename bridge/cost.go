package bridge

import (
	"math"
	"strconv"
	"strings"
)

// maxCost bounds a price a provider may report for one SMS: anything
// larger is a provider's mistake (or a forged answer), not a price, and
// would swamp the cost metrics.
const maxCost = 1000

// ParseCost reads a price a provider reported for one SMS (a JSON number
// or a string holding one: "0.01", 0.0100, "1e-2") and returns it as a
// plain decimal ("0.01"), the form stored and shown. ok is false for
// anything else: empty, negative, not finite, over 1000, or not a number.
func ParseCost(s string) (cost string, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 32 {
		return "", false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxCost {
		return "", false
	}
	// Rounded to a millionth of the currency unit: beyond that a float's
	// digits are noise ("0.1" and "1e-1" must read the same).
	f = math.Round(f*1e6) / 1e6
	if f == 0 {
		f = 0 // not "-0"
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}
