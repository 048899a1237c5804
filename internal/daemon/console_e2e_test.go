package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// consoleUser is a browser of the console: a cookie jar that follows
// redirects, as a browser does.
type consoleUser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newConsoleUser(t *testing.T, base string) *consoleUser {
	jar, _ := cookiejar.New(nil)
	return &consoleUser{t: t, base: base, c: &http.Client{Jar: jar}}
}

type page struct {
	Status int
	URL    string
	Body   string
	Header http.Header
}

func (u *consoleUser) do(req *http.Request) page {
	u.t.Helper()
	resp, err := u.c.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{Status: resp.StatusCode, URL: resp.Request.URL.Path, Body: string(b), Header: resp.Header}
}

func (u *consoleUser) get(path string) page {
	req, _ := http.NewRequest("GET", u.base+path, nil)
	return u.do(req)
}

func (u *consoleUser) post(path string, form url.Values) page {
	req, _ := http.NewRequest("POST", u.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return u.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, p page) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("%s: no csrf field in %q", p.URL, p.Body)
	}
	return m[1]
}

const deskPassword = "front desk pass"

// consoleEnv is the HTTP environment with a third account, desk, that
// signs in with its SMTP password.
func consoleEnv(t *testing.T, extra string) *httpEnv {
	hash, err := bcrypt.GenerateFromPassword([]byte(deskPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return newHTTPEnv(t, fmt.Sprintf(`
[[accounts]]
name = "desk"
emails = ["desk@example.com"]
sender_ids = ["Desk"]
smtp_password_hash = %q
%s`, hash, extra))
}

func TestConsoleSignIn(t *testing.T) {
	e := consoleEnv(t, "")

	// Signed out: every page sends the browser to the sign-in form.
	u := newConsoleUser(t, e.base)
	if p := u.get("/ui/"); p.Status != 200 || p.URL != "/ui/login" {
		t.Fatalf("signed out /ui/: %d at %s, want the sign-in page", p.Status, p.URL)
	}

	// A wrong password: 401, no session.
	if p := u.post("/ui/login", url.Values{"account": {"desk"}, "secret": {"wrong"}}); p.Status != 401 || !strings.Contains(p.Body, "Wrong account name") {
		t.Fatalf("wrong password: %d %q", p.Status, p.Body)
	}
	if p := u.get("/ui/"); p.URL != "/ui/login" {
		t.Fatalf("after a failed sign-in /ui/ is at %s", p.URL)
	}

	// The SMTP password: signed in, with a cookie the page's script
	// cannot read, sent to this site only.
	req, _ := http.NewRequest("POST", e.base+"/ui/login", strings.NewReader(url.Values{"account": {"desk"}, "secret": {deskPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookie := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") || !strings.Contains(cookie, "Path=/ui/") {
		t.Fatalf("sign-in: %d, Set-Cookie %q", resp.StatusCode, cookie)
	}
	if strings.Contains(cookie, "Secure") {
		t.Fatalf("plain http without an https public_url got a Secure cookie: %q", cookie)
	}

	// The API token, account name left out.
	ops := newConsoleUser(t, e.base)
	p := ops.post("/ui/login", url.Values{"secret": {opsToken}})
	if p.Status != 200 || p.URL != "/ui/" || !strings.Contains(p.Body, `<span class="who">ops</span>`) {
		t.Fatalf("token sign-in: %d at %s", p.Status, p.URL)
	}
	// A token with another account's name: refused.
	if p := newConsoleUser(t, e.base).post("/ui/login", url.Values{"account": {"other"}, "secret": {opsToken}}); p.Status != 401 {
		t.Fatalf("ops token as other: %d", p.Status)
	}

	// Sign-out ends the session on the server: the old cookie is dead.
	p = ops.get("/ui/")
	if p := ops.post("/ui/logout", url.Values{"csrf": {csrfOf(t, p)}}); p.URL != "/ui/login" {
		t.Fatalf("sign-out ended at %s", p.URL)
	}
	if p := ops.get("/ui/"); p.URL != "/ui/login" {
		t.Fatalf("after sign-out /ui/ is at %s", p.URL)
	}
}

// Failed sign-ins count in SMTP AUTH's throttle (default 10 per client an
// hour): past it, even the right password is not looked at.
func TestConsoleSignInThrottled(t *testing.T) {
	e := consoleEnv(t, "")
	u := newConsoleUser(t, e.base)
	var last page
	for i := 0; i < 12; i++ {
		last = u.post("/ui/login", url.Values{"account": {"desk"}, "secret": {fmt.Sprint("guess", i)}})
		if last.Status == http.StatusTooManyRequests {
			break
		}
	}
	if last.Status != http.StatusTooManyRequests {
		t.Fatalf("after 12 wrong passwords: %d, want 429", last.Status)
	}
	if p := u.post("/ui/login", url.Values{"account": {"desk"}, "secret": {deskPassword}}); p.Status != http.StatusTooManyRequests {
		t.Fatalf("right password while throttled: %d, want 429", p.Status)
	}
}

// Every POST needs the session's CSRF token: missing or wrong, it is
// refused and nothing is sent.
func TestConsoleCSRF(t *testing.T) {
	e := consoleEnv(t, "")
	r := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "0501234567", "text": "hello", "reply_to": "oncall@example.com"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("send: %d %v", r.Status, r.Body)
	}
	u := newConsoleUser(t, e.base)
	u.post("/ui/login", url.Values{"secret": {opsToken}})
	id := waitConversation(t, u)
	for _, token := range []string{"", "forged"} {
		form := url.Values{"text": {"sneaky"}}
		if token != "" {
			form.Set("csrf", token)
		}
		if p := u.post("/ui/c/"+id+"/send", form); p.Status != http.StatusForbidden {
			t.Fatalf("csrf %q: %d, want 403", token, p.Status)
		}
		if p := u.post("/ui/logout", form); p.Status != http.StatusForbidden {
			t.Fatalf("sign-out with csrf %q: %d, want 403", token, p.Status)
		}
	}
	// Search by the phone written another way finds it; a number that
	// is not one is said beside the box.
	if p := u.get("/ui/?phone=" + url.QueryEscape("050-123 4567")); !strings.Contains(p.Body, `href="/ui/c/`+id+`"`) {
		t.Fatalf("search 050-123 4567: %d, conversation %s not listed", p.Status, id)
	}
	if p := u.get("/ui/?phone=" + url.QueryEscape("+1 202 555 0199")); conversationLink.MatchString(p.Body) {
		t.Fatal("search for another number lists a conversation")
	}
	if p := u.get("/ui/?phone=nonsense"); p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `role="alert"`) {
		t.Fatalf("search nonsense: %d", p.Status)
	}
	thread := u.get("/ui/c/" + id)
	if strings.Contains(thread.Body, "sneaky") {
		t.Fatal("a send without the CSRF token was accepted")
	}
}

// [http] console = false: /ui/ is the API's 404, the API still works.
func TestConsoleOff(t *testing.T) {
	e := newHTTPEnv(t, "[http]\nconsole = false\n")
	if r := call(t, "GET", e.base+"/ui/login", "", ""); r.Status != http.StatusNotFound || r.Body["reason"] != "not_found" {
		t.Fatalf("/ui/login with the console off: %d %v", r.Status, r.Body)
	}
	if r := call(t, "GET", e.base+"/healthz", "", ""); r.Status != http.StatusOK {
		t.Fatalf("/healthz: %d", r.Status)
	}
	on := newConsoleUser(t, newHTTPEnv(t, "").base)
	if p := on.get("/ui/login"); p.Status != http.StatusOK || !strings.Contains(p.Body, `<label for="secret">`) {
		t.Fatalf("/ui/login with the console on: %d", p.Status)
	}
}

var conversationLink = regexp.MustCompile(`href="/ui/c/([^"]+)"`)

// waitConversation waits until the list shows a conversation (the
// dispatcher files it when it sends) and returns the newest's id.
func waitConversation(t *testing.T, u *consoleUser) string {
	t.Helper()
	var id string
	eventually(t, 10*time.Second, "a conversation listed", func() bool {
		if m := conversationLink.FindStringSubmatch(u.get("/ui/").Body); m != nil {
			id = m[1]
		}
		return id != ""
	})
	return id
}

// Another account's conversation and message do not exist for a
// non-admin: 404 on reading, sending into it and cancelling.
func TestConsoleOtherAccountRefused(t *testing.T) {
	e := consoleEnv(t, "")
	later := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	r := call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "+1 713 555 0100", "text": "ops only", "send_at": "`+later+`"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("send: %d %v", r.Status, r.Body)
	}
	msg := r.Body["id"].(string)
	call(t, "POST", e.base+"/v1/messages", opsToken, `{"to": "0501234567", "text": "now", "reply_to": "oncall@example.com"}`)
	ops := newConsoleUser(t, e.base)
	ops.post("/ui/login", url.Values{"secret": {opsToken}})
	conv := waitConversation(t, ops)

	other := newConsoleUser(t, e.base)
	list := other.post("/ui/login", url.Values{"secret": {otherToken}})
	if conversationLink.MatchString(list.Body) {
		t.Fatalf("other lists ops's conversation: %q", list.Body)
	}
	csrf := csrfOf(t, list)
	for _, p := range []page{
		other.get("/ui/c/" + conv),
		other.get("/ui/m/" + msg),
		other.post("/ui/c/"+conv+"/send", url.Values{"csrf": {csrf}, "text": {"hijack"}}),
		other.post("/ui/m/"+msg+"/cancel", url.Values{"csrf": {csrf}}),
	} {
		if p.Status != http.StatusNotFound || strings.Contains(p.Body, "ops only") {
			t.Errorf("other at %s: %d, want 404 without ops's text", p.URL, p.Status)
		}
	}
	if g := call(t, "GET", e.base+"/v1/messages/"+msg, opsToken, ""); g.Body["recipients"].([]any)[0].(map[string]any)["state"] != "queued" {
		t.Fatalf("ops's scheduled message after other's cancel: %v", g.Body)
	}
	// Its owner sees it and may cancel it.
	p := ops.get("/ui/m/" + msg)
	if p.Status != 200 || !strings.Contains(p.Body, "Cancel the queued recipients") {
		t.Fatalf("ops's message page: %d", p.Status)
	}
	if p := ops.post("/ui/m/"+msg+"/cancel", url.Values{"csrf": {csrfOf(t, p)}}); p.Status != 200 || !strings.Contains(p.Body, "state-cancelled") {
		t.Fatalf("cancel: %d %q", p.Status, p.Body)
	}
}
