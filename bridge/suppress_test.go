package bridge_test

import (
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
)

// A suppression is removed by the number its listing shows (E.164) as
// well as by the sender ID as configured (here without the plus), and
// only by a number of the account's own.
func TestUnsuppressListedNumber(t *testing.T) {
	w := newTwoWay(t, "")
	ops, err := w.b.Account("a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.b.Suppress(t.Context(), ops, "", "050-123-4567", "972500000001", "asked", "api"); err != nil {
		t.Fatal(err)
	}
	list, err := w.b.ListSuppressions(t.Context(), ops, bridge.SuppressionFilter{})
	if err != nil || len(list) != 1 || list[0].Our != "+972500000001" {
		t.Fatalf("ListSuppressions = %+v, %v", list, err)
	}
	for _, sender := range []string{"+972500000009", "Other"} {
		if err := w.b.Unsuppress(t.Context(), ops, "", list[0].Phone, sender, "", "api"); bridge.ReasonOf(err) != bridge.ReasonSenderNotAllowed {
			t.Errorf("Unsuppress from %s, not ops's: %v, want sender_not_allowed", sender, err)
		}
	}
	if err := w.b.Unsuppress(t.Context(), ops, "", list[0].Phone, list[0].Our, "", "api"); err != nil {
		t.Fatalf("Unsuppress by the listed number %s: %v", list[0].Our, err)
	}
	if list, err := w.b.ListSuppressions(t.Context(), ops, bridge.SuppressionFilter{}); err != nil || len(list) != 0 {
		t.Fatalf("after removal: %+v, %v", list, err)
	}
}
