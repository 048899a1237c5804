package bridge

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ParseNumber parses a phone number written the way people write it
// ("+972-50-123-4567", "0501234567", "(050) 123 4567", "00972501234567")
// with libphonenumber rules, national numbers read in region (ISO 3166,
// e.g. "IL"). It returns the number in E.164 ("+972501234567").
func ParseNumber(s, region string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", Permanent(ReasonBadNumber, "to", "empty phone number")
	}
	for _, r := range s {
		// Letters are legal in libphonenumber ("1-800-FLOWERS") but an
		// address local part with letters is far more likely a typo or a
		// relay attempt than a vanity number.
		if !strings.ContainsRune("0123456789+-(). /", r) {
			return "", Permanent(ReasonBadNumber, "to", "%q is not a phone number", s)
		}
	}
	// "00" is the international prefix almost everywhere; libphonenumber
	// only knows it for regions that use it, so normalise it first.
	if rest, ok := strings.CutPrefix(s, "00"); ok {
		s = "+" + rest
	}
	n, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", &Error{Reason: ReasonBadNumber, Field: "to", Msg: "\"" + s + "\" is not a phone number", Err: err}
	}
	// A mail local part cannot start with "+" unquoted everywhere, so
	// people write international numbers as bare digits
	// (12812345678@…). Read nationally in region that is a number
	// libphonenumber calls possible but not valid (+972 12812345678);
	// when the international reading is valid, it is what was meant.
	// A valid national reading still wins: 0501234567 stays Israeli.
	if !strings.Contains(s, "+") && !phonenumbers.IsValidNumber(n) {
		if intl, err := phonenumbers.Parse("+"+s, region); err == nil && phonenumbers.IsValidNumber(intl) {
			n = intl
		}
	}
	// libphonenumber's allocation tables lag behind the operators (it
	// calls +972-50-123-4567 unassigned), so a number with a length its
	// country uses is accepted too; lengths still catch typos.
	if !phonenumbers.IsValidNumber(n) &&
		phonenumbers.IsPossibleNumberWithReason(n) != phonenumbers.IS_POSSIBLE {
		return "", Permanent(ReasonBadNumber, "to", "%q is not a valid phone number", s)
	}
	e164 := phonenumbers.Format(n, phonenumbers.E164)
	// Input already written as that E.164 number is its own round trip
	// (below), and spares the second parse, half of the cost.
	if e164 == s {
		return e164, nil
	}
	// The lenient check above lets through some nonsense (all zeros after
	// the country code) that does not survive a round trip; an E.164
	// number must read back as itself.
	if again, err := phonenumbers.Parse(e164, region); err != nil || phonenumbers.Format(again, phonenumbers.E164) != e164 {
		return "", Permanent(ReasonBadNumber, "to", "%q is not a valid phone number", s)
	}
	return e164, nil
}

// ParseDestination reads a destination as written in a mail local part or
// an API "to" field: a phone number, or a provider phonebook written
// "phonebook-<id>" (the whole book) or "phonebook-<id>-<number id>-<number id>…"
// (some of its entries; dashes because commas are not allowed unquoted in
// a mail address). It returns a Recipient.To value.
func ParseDestination(s, region string) (string, error) {
	if rest, ok := cutPrefixFold(s, "phonebook-"); ok {
		parts := strings.Split(rest, "-")
		for _, p := range parts {
			if p == "" || strings.Trim(p, "0123456789") != "" {
				return "", Permanent(ReasonBadNumber, "to", "%q: phonebook ids are digits: phonebook-<id> or phonebook-<id>-<number id>-…", s)
			}
		}
		return Phonebook{ID: parts[0], NumberIDs: parts[1:]}.String(), nil
	}
	return ParseNumber(s, region)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
