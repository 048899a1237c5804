package console

import (
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

func TestSessionsIdleExpiryAndCap(t *testing.T) {
	now := time.Unix(1e9, 0)
	s := newSessions(10*time.Minute, 3, func() time.Time { return now })
	a := s.create(&bridge.Account{Name: "a"})
	if a.id == "" || a.csrf == "" || a.id == a.csrf {
		t.Fatalf("ids: %q %q", a.id, a.csrf)
	}
	now = now.Add(9 * time.Minute)
	if s.get(a.id) == nil {
		t.Fatal("a session used within the idle timeout expired")
	}
	now = now.Add(9 * time.Minute) // 9 minutes since the last use
	if s.get(a.id) == nil {
		t.Fatal("use did not extend the session")
	}
	now = now.Add(11 * time.Minute)
	if s.get(a.id) != nil {
		t.Fatal("an idle session outlived the timeout")
	}

	// At the cap, the least recently used goes.
	var ids []string
	for i := 0; i < 3; i++ {
		now = now.Add(time.Second)
		ids = append(ids, s.create(&bridge.Account{Name: "x"}).id)
	}
	now = now.Add(time.Second)
	s.get(ids[0])
	s.create(&bridge.Account{Name: "y"})
	if n := s.len(); n != 3 {
		t.Fatalf("%d sessions, cap 3", n)
	}
	if s.get(ids[1]) != nil || s.get(ids[0]) == nil || s.get(ids[2]) == nil {
		t.Fatal("the cap evicted another session than the least recently used")
	}
}
