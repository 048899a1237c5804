package storeutil

import (
	"encoding/json"
	"strings"

	"github.com/smsbridge/smsbridge/bridge"
)

// CheckAlertPage refuses a PageAlert call a store must not record: a
// group it must not keep (bridge.CheckAlertRef), no phone, or a phone
// that is not E.164.
func CheckAlertPage(g bridge.AlertRef, phones []string) error {
	if err := bridge.CheckAlertRef(g); err != nil {
		return err
	}
	if len(phones) == 0 {
		return bridge.Permanent(bridge.ReasonInvalid, "to", "paging an alert to no phone")
	}
	for _, p := range phones {
		if !strings.HasPrefix(p, "+") {
			return bridge.Permanent(bridge.ReasonBadNumber, "to", "alert reference for %q, not an E.164 number", p)
		}
	}
	return nil
}

// AlertLabels encodes a group's labels for the labels column (encoding/
// json sorts the keys, so one group always encodes alike).
func AlertLabels(labels map[string]string) (string, error) {
	b, err := json.Marshal(labels)
	return string(b), err
}

// NextAlertRef is the reference a phone whose highest is max gets next:
// max+1, or, past bridge.MaxAlertRef, none (reuse the phone's least
// recently paged reference instead).
func NextAlertRef(max int) (ref int, reuse bool) {
	if max >= bridge.MaxAlertRef {
		return 0, true
	}
	return max + 1, false
}

// AlertRefCols are the columns ScanAlertRef reads, in its order.
const AlertRefCols = `phone, ref, account, source, group_key, labels, title, paged, silence_id, silenced_until`

// ScanAlertRef reads a row of AlertRefCols and then extra.
func ScanAlertRef(row Row, extra ...any) (*bridge.AlertRef, error) {
	var (
		r             bridge.AlertRef
		labels        string
		paged, silent int64
	)
	dest := append([]any{&r.Phone, &r.Ref, &r.Account, &r.Source, &r.GroupKey, &labels, &r.Title, &paged, &r.SilenceID, &silent}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
		return nil, err
	}
	r.Paged, r.SilencedUntil = FromMillis(paged), FromMillis(silent)
	return &r, nil
}

// CheckImportedAlertRef refuses an alert reference another store exported
// (`smsbridge migrate-store`) that this one could not keep as PageAlert
// would have filed it: a group PageAlert refuses, or a reference outside
// 1 to bridge.MaxAlertRef, which the phone's next one (NextAlertRef)
// could then collide with or never reach.
func CheckImportedAlertRef(r bridge.AlertRef) error {
	if err := CheckAlertPage(r, []string{r.Phone}); err != nil {
		return err
	}
	if r.Ref < 1 || r.Ref > bridge.MaxAlertRef {
		return bridge.Permanent(bridge.ReasonInvalid, "ref", "alert reference #%d of %s, not 1 to %d", r.Ref, r.Phone, bridge.MaxAlertRef)
	}
	return nil
}
