package silence_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/providers/providertest"
	"github.com/smsbridge/smsbridge/silence"
	"github.com/smsbridge/smsbridge/silence/silencetest"
)

const token = "glsa_service-account-token-0123456789"

func newSilence(now time.Time) silence.Silence {
	return silence.Silence{
		Matchers:  []silence.Matcher{{Name: "alertname", Value: "DiskFull"}, {Name: "instance", Value: "db1"}},
		StartsAt:  now,
		EndsAt:    now.Add(2 * time.Hour),
		CreatedBy: "+972501234567",
		Comment:   "ACK by SMS through smsbridge",
	}
}

// Grafana's silence call: the documented path, method, JSON body and
// bearer token; 202 with the ID; the silence kept as sent; DELETE expires
// it.
func TestGrafanaCreateAndExpire(t *testing.T) {
	fake := silencetest.NewServer(t, silencetest.Grafana, token)
	c, err := silence.NewGrafana(fake.URL+"/", silence.Options{Auth: silence.Auth{Token: token}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Millisecond)
	id, err := c.Create(t.Context(), newSilence(now))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/api/alertmanager/grafana/api/v2/silences" || reqs[0].Status != 202 {
		t.Fatalf("requests = %+v; want one POST of .../api/v2/silences answered 202", reqs)
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if _, hasID := body["id"]; hasID {
		t.Errorf("a new silence was posted with an id: %s", reqs[0].Body)
	}
	s, ok := fake.Silence(id)
	if !ok || len(s.Matchers) != 2 || s.Matchers[0].Name != "alertname" || s.Matchers[0].Value != "DiskFull" ||
		*s.Matchers[0].IsRegex || !*s.Matchers[0].IsEqual || !s.EndsAt.Equal(now.Add(2*time.Hour)) ||
		s.CreatedBy != "+972501234567" || s.Comment != "ACK by SMS through smsbridge" {
		t.Fatalf("silence %q = %+v", id, s)
	}

	// The same ID again with a later end updates it in place.
	again := newSilence(now)
	again.ID, again.EndsAt = id, now.Add(3*time.Hour)
	if id2, err := c.Create(t.Context(), again); err != nil || id2 != id {
		t.Fatalf("update: %q, %v; want %q", id2, err, id)
	}
	if s, _ := fake.Silence(id); !s.EndsAt.Equal(now.Add(3 * time.Hour)) {
		t.Errorf("after the update the silence ends at %s", s.EndsAt)
	}

	if err := c.Expire(t.Context(), id); err != nil {
		t.Fatalf("Expire: %v", err)
	}
	if s, _ := fake.Silence(id); s.Active(time.Now()) {
		t.Errorf("silence still active after Expire: %+v", s)
	}
	if last := fake.Requests()[2]; last.Method != "DELETE" || last.Path != "/api/alertmanager/grafana/api/v2/silence/"+id || last.Status != 200 {
		t.Errorf("expire request = %+v", last)
	}
	err = c.Expire(t.Context(), "no-such-silence")
	var se *silence.Error
	if !errors.Is(err, silence.ErrNotFound) || !errors.As(err, &se) || se.Status != 404 {
		t.Errorf("Expire of an unknown silence = %v; want ErrNotFound (404)", err)
	}
}

func TestAlertmanagerBasicAuthAndPrefix(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"silenceID":"a1b2"}`))
	}))
	t.Cleanup(srv.Close)
	c, err := silence.NewAlertmanager(srv.URL+"/am", silence.Options{Auth: silence.Auth{Username: "sms", Password: "pw-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Create(t.Context(), newSilence(time.Now()))
	if err != nil || id != "a1b2" {
		t.Fatalf("Create = %q, %v", id, err)
	}
	user, pass, ok := got.BasicAuth()
	if got.URL.Path != "/am/api/v2/silences" || !ok || user != "sms" || pass != "pw-secret" || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s basic=%v %q; want /am/api/v2/silences with Basic auth and JSON", got.Method, got.URL.Path, ok, user)
	}
}

// Every way a call can fail says what failed, where, and how, and never
// carries the credentials.
func TestClientErrors(t *testing.T) {
	fake := silencetest.NewServer(t, silencetest.Alertmanager, "")
	c, err := silence.NewAlertmanager(fake.URL, silence.Options{Auth: silence.Auth{Username: "u", Password: "pw-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	check := func(name string, err error, status int, want string) {
		t.Helper()
		var se *silence.Error
		if !errors.As(err, &se) || se.Status != status || !strings.Contains(err.Error(), want) ||
			!strings.Contains(err.Error(), "alertmanager "+fake.URL) {
			t.Errorf("%s: %v; want a silence.Error with status %d naming the server and saying %q", name, err, status, want)
		}
		if err != nil && strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("%s: the error carries the password: %v", name, err)
		}
	}
	fake.Faults.Push(providertest.Fault{Status: 500, Body: `"silence store unavailable"`})
	_, err = c.Create(t.Context(), newSilence(now))
	check("500", err, 500, "creating a silence: HTTP 500: silence store unavailable")

	fake.Faults.Push(providertest.Fault{Close: true})
	_, err = c.Create(t.Context(), newSilence(now))
	check("connection dropped", err, 0, "creating a silence: EOF")

	fake.Faults.Push(providertest.Fault{Status: 200, Body: strings.Repeat("x", 1<<20)})
	_, err = c.Create(t.Context(), newSilence(now))
	check("garbage", err, 200, "the answer is not JSON")
	if len(err.Error()) > 300 {
		t.Errorf("an error quoting a 1 MiB answer is %d bytes", len(err.Error()))
	}

	fake.Faults.Push(providertest.Fault{Status: 200, Body: `{"silenceID":"../../x"}`})
	_, err = c.Create(t.Context(), newSilence(now))
	check("unusable id", err, 200, "no usable silence ID")

	s := newSilence(now)
	s.ID = "gone"
	_, err = c.Create(t.Context(), s)
	if !errors.Is(err, silence.ErrNotFound) {
		t.Errorf("update of an unknown silence: %v; want ErrNotFound", err)
	}

	fake.Faults.Push(providertest.Fault{Status: 307, Body: `{}`})
	_, err = c.Create(t.Context(), newSilence(now))
	check("redirect", err, 307, "HTTP 307")
}

// A silence the API would refuse is refused before any request.
func TestCheck(t *testing.T) {
	now := time.Now()
	for name, change := range map[string]func(*silence.Silence){
		"no matchers":    func(s *silence.Silence) { s.Matchers = nil },
		"ends in past":   func(s *silence.Silence) { s.StartsAt, s.EndsAt = now.Add(-2*time.Hour), now.Add(-time.Hour) },
		"ends at start":  func(s *silence.Silence) { s.EndsAt = s.StartsAt },
		"no createdBy":   func(s *silence.Silence) { s.CreatedBy = " " },
		"bad label":      func(s *silence.Silence) { s.Matchers[0].Name = "0x" },
		"empty value":    func(s *silence.Silence) { s.Matchers[1].Value = "" },
		"label too long": func(s *silence.Silence) { s.Matchers[1].Value = strings.Repeat("v", 2000) },
	} {
		s := newSilence(now)
		change(&s)
		if err := s.Check(now); err == nil {
			t.Errorf("%s: Check passed %+v", name, s)
		}
	}
	fake := silencetest.NewServer(t, silencetest.Grafana, token)
	c, _ := silence.NewGrafana(fake.URL, silence.Options{Auth: silence.Auth{Token: token}})
	s := newSilence(now)
	s.Matchers = nil
	if _, err := c.Create(t.Context(), s); err == nil || len(fake.Requests()) != 0 {
		t.Errorf("Create without matchers: %v, %d requests; want refused before any", err, len(fake.Requests()))
	}
}

func TestNewClientRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "alertmanager:9093", "ftp://h", "http://user:pw@h:9093", "http://h/?x=1"} {
		if _, err := silence.NewAlertmanager(u, silence.Options{}); err == nil {
			t.Errorf("NewAlertmanager(%q) accepted", u)
		} else if strings.Contains(err.Error(), "pw") && strings.Contains(u, "pw") {
			t.Errorf("NewAlertmanager(%q): error quotes the password: %v", u, err)
		}
	}
}
