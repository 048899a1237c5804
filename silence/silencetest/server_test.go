package silencetest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/silence/silencetest"
)

// The fake refuses what the API's model validation refuses, so a client
// that passes against it sends what the documentation asks.
func TestFakeRefusesUndocumentedRequests(t *testing.T) {
	fake := silencetest.NewServer(t, silencetest.Grafana, "tok")
	url := fake.URL + "/api/alertmanager/grafana/api/v2/silences"
	end := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	start := time.Now().UTC().Format(time.RFC3339)
	valid := `{"matchers":[{"name":"alertname","value":"X","isRegex":false,"isEqual":true}],"startsAt":"` + start +
		`","endsAt":"` + end + `","createdBy":"+1555","comment":"c"}`
	post := func(token, ctype, body string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("tok", "application/json", valid); code != 202 {
		t.Fatalf("valid silence: %d", code)
	}
	for name, tt := range map[string]struct {
		token, ctype, body string
		want               int
	}{
		"no token":         {"", "application/json", valid, 401},
		"wrong token":      {"nope", "application/json", valid, 401},
		"form body":        {"tok", "application/x-www-form-urlencoded", valid, 415},
		"no matchers":      {"tok", "application/json", strings.Replace(valid, `{"name":"alertname","value":"X","isRegex":false,"isEqual":true}`, ``, 1), 400},
		"no isRegex":       {"tok", "application/json", strings.Replace(valid, `"isRegex":false,`, ``, 1), 400},
		"no comment":       {"tok", "application/json", strings.Replace(valid, `"comment":"c"`, `"comment":""`, 1), 400},
		"no createdBy":     {"tok", "application/json", strings.Replace(valid, `"createdBy":"+1555",`, ``, 1), 400},
		"end before start": {"tok", "application/json", strings.Replace(valid, end, "2001-01-01T00:00:00Z", 1), 400},
		"not a date":       {"tok", "application/json", strings.Replace(valid, end, "tomorrow", 1), 400},
		"unknown id":       {"tok", "application/json", strings.Replace(valid, `{"matchers"`, `{"id":"nope","matchers"`, 1), 404},
		"not JSON":         {"tok", "application/json", "{", 400},
	} {
		if code := post(tt.token, tt.ctype, tt.body); code != tt.want {
			t.Errorf("%s: %d, want %d", name, code, tt.want)
		}
	}
	if n := len(fake.Silences()); n != 1 {
		t.Errorf("%d silences kept, want only the valid one", n)
	}
}
