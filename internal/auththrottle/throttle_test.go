package auththrottle

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// User names are the client's choice: a flood of fresh ones must not
// grow the table past its bound, and the flooding client's own bucket
// still holds it back.
func TestAuthThrottleBounded(t *testing.T) {
	th := New(3, 5, nil)
	now := time.Unix(1e9, 0)
	client := netip.MustParsePrefix("192.0.2.1/32")
	for i := range maxThrottled + 500 {
		th.Failed(client, fmt.Sprintf("user%d", i), now)
	}
	if n := len(th.accounts); n > maxThrottled {
		t.Errorf("%d user buckets, want at most %d", n, maxThrottled)
	}
	if th.Allowed(client, "someone", now) {
		t.Error("the flooding client is not throttled")
	}
	// Buckets refill: an hour later the client may try again, and a
	// refilled bucket is the first to go when the table is full.
	later := now.Add(time.Hour)
	if !th.Allowed(client, "user1", later) {
		t.Error("still throttled an hour later")
	}
	other := netip.MustParsePrefix("198.51.100.7/32")
	for range 5 {
		th.Failed(other, "victim", later)
	}
	if th.Allowed(netip.MustParsePrefix("203.0.113.9/32"), "victim", later) {
		t.Error("victim's bucket is not shared across clients")
	}
	for i := range 100 {
		th.Failed(other, fmt.Sprintf("fresh%d", i), later)
	}
	if th.Allowed(netip.MustParsePrefix("203.0.113.9/32"), "victim", later) {
		t.Error("victim's emptied bucket was pruned before the full ones")
	}
}

// With the names that can sign in known, a flood of made-up names from
// ever new clients leaves the per-account table alone: a real account's
// emptied bucket stays empty.
func TestAuthThrottleKnownNames(t *testing.T) {
	th := New(3, 5, func(user string) bool { return user == "victim" })
	now := time.Unix(1e9, 0)
	for i := range 5 {
		th.Failed(netip.MustParsePrefix(fmt.Sprintf("198.51.100.%d/32", i)), "victim", now)
	}
	for i := range maxThrottled + 500 {
		client := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		th.Failed(client, fmt.Sprintf("user%d", i), now)
	}
	if n := len(th.accounts); n != 1 {
		t.Errorf("%d user buckets, want only the known name's", n)
	}
	if th.Allowed(netip.MustParsePrefix("203.0.113.9/32"), "victim", now) {
		t.Error("the flood reset the victim's emptied bucket")
	}
}
