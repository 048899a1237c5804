package voipcomtest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// PostInbound posts the fields as a form, the way the provider's call API
// posts its callbacks.
func TestVoipcomPostInbound(t *testing.T) {
	f := voipcomtest.NewServer(t, "key", "pw", "97233333333")
	got := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		got <- r
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	resp, err := f.PostInbound(context.Background(), srv.URL+"/cb?secret=s", url.Values{"from": {"972501234567"}, "msg": {"שלום & bye"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("HTTP %d: the callback's answer was not passed back", resp.StatusCode)
	}
	r := <-got
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
		r.URL.Query().Get("secret") != "s" || r.PostForm.Get("from") != "972501234567" || r.PostForm.Get("msg") != "שלום & bye" {
		t.Errorf("%s %s %q form %v", r.Method, r.URL, r.Header.Get("Content-Type"), r.PostForm)
	}
}
