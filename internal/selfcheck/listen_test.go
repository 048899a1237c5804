package selfcheck

import (
	"net"
	"testing"
)

func TestListen(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	it := listenItem("smtp", held.Addr().String())
	if it.Name != "listener smtp "+held.Addr().String() {
		t.Errorf("name %q", it.Name)
	}
	wantResult(t, check(t, it), Skip, `^in use, by a running smsbridge or another program$`)

	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	wantResult(t, check(t, listenItem("http", addr)), OK, `^free: serve can listen there$`)
	// Free still: the check closed what it opened.
	again, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("after the check: %v", err)
	}
	again.Close()

	// TEST-NET-1 is on no host.
	wantResult(t, check(t, listenItem("smtp", "192.0.2.1:2525")), Fail, `cannot assign requested address$`)
}
