package storeutil

import (
	"slices"

	"github.com/smsbridge/smsbridge/bridge"
)

// CheckClaimPhones refuses a ClaimSenders call that names no phone.
func CheckClaimPhones(phones []string) error {
	if len(phones) == 0 {
		return bridge.Permanent(bridge.ReasonInvalid, "to", "claiming a sender for no phone")
	}
	return nil
}

// LockOrder is phones sorted and without repeats: the order in which a
// store takes their locks, so that two claims naming the same phones
// never wait for each other in a cycle.
func LockOrder(phones []string) []string {
	out := slices.Clone(phones)
	slices.Sort(out)
	return slices.Compact(out)
}

// CheckClaims refuses claims a ClaimSenders chooser returned that the
// call could not store: one for a phone the call did not lock (a claim
// made beside another choice for that phone would break the promise that
// no two overlap), or one that names no number or writer.
func CheckClaims(phones []string, claims []bridge.SenderClaim) error {
	for _, c := range claims {
		switch {
		case !slices.Contains(phones, c.Phone):
			return bridge.Permanent(bridge.ReasonInvalid, "to", "sender claim for %s, a phone the claim did not name", c.Phone)
		case c.Our == "" || c.Writer == "" || c.Until.IsZero():
			return bridge.Permanent(bridge.ReasonInvalid, "sender", "sender claim for %s without a number, writer or end", c.Phone)
		}
	}
	return nil
}

// CheckImportedClaims refuses sender claims another store exported
// (`smsbridge migrate-store`) that ClaimSenders could not have stored: one
// without a phone, number, writer or end.
func CheckImportedClaims(claims []bridge.SenderClaim) error {
	for _, c := range claims {
		if c.Phone == "" {
			return bridge.Permanent(bridge.ReasonInvalid, "to", "sender claim without a phone")
		}
		if err := CheckClaims([]string{c.Phone}, []bridge.SenderClaim{c}); err != nil {
			return err
		}
	}
	return nil
}

// DeadClaimsBatch is how many claims that ran out, of any phone, a
// ClaimSenders call for phones phones deletes besides their own: twice
// what it may store and a few, so that claims of phones nobody writes to
// again are deleted faster than new ones are made.
func DeadClaimsBatch(phones int) int { return 2*phones + 16 }

// ClaimCols are the columns ScanClaim reads, in its order.
const ClaimCols = `phone, our, writer, until`

// ScanClaim reads a row of ClaimCols.
func ScanClaim(row Row) (bridge.SenderClaim, error) {
	var c bridge.SenderClaim
	var until int64
	if err := row.Scan(&c.Phone, &c.Our, &c.Writer, &until); err != nil {
		return c, err
	}
	c.Until = FromMillis(until)
	return c, nil
}
