package providers_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

func TestClassify(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status     int
		retryAfter string
		ok         bool
		temporary  bool
		reason     bridge.Reason
		wait       time.Duration
	}{
		{200, "", true, false, "", 0},
		{201, "", true, false, "", 0},
		{204, "", true, false, "", 0},
		{400, "", false, false, bridge.ReasonProviderRejected, 0},
		{401, "", false, false, bridge.ReasonProviderAuth, 0},
		{403, "", false, false, bridge.ReasonProviderAuth, 0},
		{404, "", false, false, bridge.ReasonProviderRejected, 0},
		{408, "", false, true, bridge.ReasonProviderDown, 0},
		{422, "", false, false, bridge.ReasonProviderRejected, 0},
		{429, "", false, true, bridge.ReasonProviderDown, 0},
		{429, "7", false, true, bridge.ReasonProviderDown, 7 * time.Second},
		{429, "Mon, 23 Nov 2026 10:01:00 GMT", false, true, bridge.ReasonProviderDown, time.Minute},
		{429, "Mon, 23 Nov 2026 09:00:00 GMT", false, true, bridge.ReasonProviderDown, 0}, // in the past
		{429, "soon", false, true, bridge.ReasonProviderDown, 0},                          // garbage
		{429, "-3", false, true, bridge.ReasonProviderDown, 0},
		{500, "", false, true, bridge.ReasonProviderDown, 0},
		{502, "", false, true, bridge.ReasonProviderDown, 0},
		{503, "120", false, true, bridge.ReasonProviderDown, 2 * time.Minute},
		{504, "", false, true, bridge.ReasonProviderDown, 0},
	} {
		h := http.Header{}
		if tc.retryAfter != "" {
			h.Set("Retry-After", tc.retryAfter)
		}
		err := providers.Classify("p", &providers.Response{Status: tc.status, Header: h}, "detail", now)
		if tc.ok {
			if err != nil {
				t.Errorf("%d: err = %v, want success", tc.status, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%d: success, want an error", tc.status)
			continue
		}
		if got := bridge.IsTemporary(err); got != tc.temporary {
			t.Errorf("%d: temporary = %v, want %v", tc.status, got, tc.temporary)
		}
		if got := bridge.ReasonOf(err); got != tc.reason {
			t.Errorf("%d: reason = %s, want %s", tc.status, got, tc.reason)
		}
		if got := bridge.RetryAfterOf(err); got != tc.wait {
			t.Errorf("%d Retry-After %q: wait = %v, want %v", tc.status, tc.retryAfter, got, tc.wait)
		}
		if !strings.Contains(err.Error(), "detail") {
			t.Errorf("%d: %q lacks the provider's detail", tc.status, err)
		}
	}
}

func TestDoNetworkFailuresAreTemporary(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	closed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	}))
	defer closed.Close()
	down := httptest.NewServer(nil)
	downURL := down.URL
	down.Close()

	for name, tc := range map[string]struct {
		url    string
		client *http.Client
	}{
		"client timeout":     {slow.URL + "/?secret=hunter2", &http.Client{Timeout: 50 * time.Millisecond}},
		"connection closed":  {closed.URL + "/?secret=hunter2", http.DefaultClient},
		"connection refused": {downURL + "/?secret=hunter2", http.DefaultClient},
	} {
		req, _ := http.NewRequest("GET", tc.url, nil)
		_, err := providers.Do(context.Background(), tc.client, "p", req)
		if err == nil || !bridge.IsTemporary(err) || bridge.ReasonOf(err) != bridge.ReasonProviderDown {
			t.Errorf("%s: err = %v, want temporary provider_unavailable", name, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %q shows the request URL", name, err)
		}
	}

	// A context deadline is a timeout too.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequest("GET", slow.URL, nil)
	_, err := providers.Do(ctx, http.DefaultClient, "p", req)
	if !bridge.IsTemporary(err) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("ctx deadline: err = %v", err)
	}
}

func TestRedact(t *testing.T) {
	if got := providers.Redact("token abc and abc again", "abc", ""); got != "token [REDACTED] and [REDACTED] again" {
		t.Errorf("Redact = %q", got)
	}
}

// Snippet cuts at a character boundary: an error body in Persian cut in
// the middle of a letter would be invalid UTF-8 in logs and replies.
func TestSnippetKeepsCharactersWhole(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"سلام", 3, "س…"}, // 2-byte letters: byte 3 is inside the second
		{"سلام", 4, "سل…"},
		{"سلام", 8, "سلام"},
		{"  ok  ", 2, "ok"},
		{"a\xffb", 10, "a\uFFFDb"},
		{"€uro", 1, "…"},
	} {
		if got := providers.Snippet([]byte(c.in), c.n); got != c.want {
			t.Errorf("Snippet(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func FuzzSnippet(f *testing.F) {
	f.Add([]byte("سلام دنیا"), 5)
	f.Add([]byte("a\xffb"), 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		s := providers.Snippet(b, n)
		if !utf8.ValidString(s) {
			t.Fatalf("Snippet(%q, %d) = %q: invalid UTF-8", b, n, s)
		}
		if body, ok := strings.CutSuffix(s, "…"); ok && len(body) > n {
			t.Fatalf("Snippet(%q, %d) = %q: longer than %d bytes", b, n, s, n)
		}
	})
}
