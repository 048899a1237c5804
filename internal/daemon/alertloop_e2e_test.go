package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
	"github.com/smsbridge/smsbridge/silence/silencetest"
)

const (
	alertToken    = "tok-alerts-3f9a"
	alertOur      = "+17134567890"
	onCallPhone   = "+17136640001"
	strangerPhone = "+17136640002"
	grafanaToken  = "glsa_test-service-account-token"
)

// alertLoopConfig: account ops pages onCallPhone through the
// voip-communications fake, from a number phones answer; alertsTable
// configures its silencing.
func alertLoopConfig(voipURL, smarthost, alertsTable string) string {
	return fmt.Sprintf(`
[smtp]
domains = ["sms.example.com"]
[replies]
smarthost = %q
retry_min = "100ms"
retry_max = "200ms"
[[accounts]]
name = "ops"
emails = ["*@example.com", "ops@example.com"]
sender_ids = [%q]
api_token_sha256 = %q
on_call = [%q]
%s
[[providers]]
name = "voip"
type = "voipcom"
base_url = %q
api_key = "k"
api_password = "p"
numbers = [%q]
inbound_secret = %q
[[routes]]
prefix = "+1"
provider = "voip"
`, smarthost, alertOur, sha(alertToken), onCallPhone, alertsTable, voipURL, alertOur, callbackSecret)
}

// answer plays phone's SMS to our number through the provider callback,
// and fails unless the bridge took it (a new SMS, 200).
func answer(t *testing.T, fake *voipcomtest.Server, d interface{ HTTPAddr() string }, phone, id, text string) {
	t.Helper()
	form := url.Values{"from": {strings.TrimPrefix(phone, "+")}, "to": {strings.TrimPrefix(alertOur, "+")}, "msg": {text}, "smsid": {id}}
	if code, body := postCallback(t, fake, d, "/v1/providers/voip/inbound", callbackSecret, form); code != 200 || body["duplicate"] != false {
		t.Fatalf("inbound %q from %s: %d %v", text, phone, code, body)
	}
}

// smsTo returns the texts the fake sent to phone, oldest first.
func smsTo(fake *voipcomtest.Server, phone string) []string {
	var out []string
	for _, r := range fake.Requests() {
		for _, to := range r.To {
			if "+"+to == phone {
				out = append(out, r.Form.Get("msg"))
			}
		}
	}
	return out
}

// waitSMS waits for phone's nth SMS (from 1) and returns it.
func waitSMS(t *testing.T, fake *voipcomtest.Server, phone string, n int) string {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("SMS %d to %s", n, phone), func() bool { return len(smsTo(fake, phone)) >= n })
	return smsTo(fake, phone)[n-1]
}

// untilUTC is how the confirmation writes a silence's end.
func untilUTC(now, end time.Time) string {
	if end.UTC().YearDay() == now.UTC().YearDay() {
		return end.UTC().Format("15:04 UTC")
	}
	return end.UTC().Format("Jan 2 15:04 UTC")
}

// The alert loop against a real Alertmanager: an alert fires, the
// on-call phone gets its SMS through the provider, answers "ACK 2h",
// Alertmanager holds an active silence of the group made by that phone
// for two hours, the phone is told so (and the account by mail), and
// "UNACK" expires the silence. A phone the account does not page cannot
// silence anything.
func TestAlertLoopWithAlertmanager(t *testing.T) {
	bin := alertmanagerBinary(t)
	capture := mailtest.Start(t, mailtest.Options{STARTTLS: false})
	fake := voipcomtest.NewServer(t, "k", "p", strings.TrimPrefix(alertOur, "+"))
	amPort := freePort(t)
	d := start(t, alertLoopConfig(fake.URL, capture.Addr(), fmt.Sprintf(`[accounts.alerts.alertmanager]
url = "http://127.0.0.1:%d"`, amPort)))
	am := startAlertmanager(t, bin, amPort, "http://"+d.HTTPAddr()+"/v1/hooks/alertmanager", alertToken)

	alert := []map[string]any{{
		"labels":      map[string]string{"alertname": "DiskFull", "instance": "db1", "severity": "critical"},
		"annotations": map[string]string{"summary": "disk 95% full"},
	}}
	if code := am.do(t, "POST", "/api/v2/alerts", alert, nil); code != 200 {
		t.Fatalf("POST /api/v2/alerts: %d", code)
	}
	if got, want := waitSMS(t, fake, onCallPhone, 1), "#1 [FIRING] DiskFull: disk 95% full"; got != want {
		t.Fatalf("alert SMS %q, want %q", got, want)
	}

	// Someone the account does not page answers as if they were: nothing
	// is silenced and they are not answered.
	answer(t, fake, d, strangerPhone, "in-stranger", "ACK 2h")
	if s := am.silences(t); len(s) != 0 {
		t.Fatalf("a phone not on call made silences: %+v", s)
	}

	before := time.Now()
	answer(t, fake, d, onCallPhone, "in-ack", "ack 2h")
	after := time.Now()
	sils := am.silences(t)
	if len(sils) != 1 {
		t.Fatalf("silences after ACK: %+v; want one", sils)
	}
	s := sils[0]
	matchers := map[string]string{}
	for _, m := range s.Matchers {
		if m.IsRegex || m.IsEqual == nil || !*m.IsEqual {
			t.Errorf("matcher %+v: want an equality matcher", m)
		}
		matchers[m.Name] = m.Value
	}
	if fmt.Sprint(matchers) != fmt.Sprint(map[string]string{"alertname": "DiskFull", "instance": "db1"}) {
		t.Errorf("matchers %v; want the group's labels alertname=DiskFull, instance=db1", matchers)
	}
	if s.Status.State != "active" || s.CreatedBy != onCallPhone || !strings.Contains(s.Comment, "smsbridge") {
		t.Errorf("silence %+v; want active, created by %s, the comment naming the bridge", s, onCallPhone)
	}
	if s.EndsAt.Before(before.Add(2*time.Hour-time.Second)) || s.EndsAt.After(after.Add(2*time.Hour+time.Second)) {
		t.Errorf("silence ends at %s; want two hours after the ACK (%s)", s.EndsAt, before.Add(2*time.Hour))
	}
	want := fmt.Sprintf("Silenced DiskFull on db1 for 2h until %s (#1).", untilUTC(before, s.EndsAt))
	if got := waitSMS(t, fake, onCallPhone, 2); got != want {
		t.Errorf("confirmation %q, want %q", got, want)
	}
	msgs, err := capture.Wait(ctx5(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	h, text := readMailText(t, msgs[0].Data)
	if msgs[0].To[0] != "ops@example.com" || h.Get("X-SMS-Alert-Command") != "ACK #1" || !strings.Contains(text, "ack 2h") ||
		!strings.Contains(text, "[Silenced DiskFull on db1") {
		t.Errorf("mail to %v, X-SMS-Alert-Command %q, text %q; want the account told of the ACK", msgs[0].To, h.Get("X-SMS-Alert-Command"), text)
	}

	answer(t, fake, d, onCallPhone, "in-unack", "UNACK")
	var got amSilence
	if code := am.do(t, "GET", "/api/v2/silence/"+s.ID, nil, &got); code != 200 || got.Status.State != "expired" {
		t.Errorf("silence after UNACK: %d %+v; want expired", code, got)
	}
	if got := waitSMS(t, fake, onCallPhone, 3); got != "Unsilenced DiskFull on db1 (#1): it pages again." {
		t.Errorf("UNACK answer %q", got)
	}
	if n := len(smsTo(fake, strangerPhone)); n != 0 {
		t.Errorf("the stranger got %d SMS", n)
	}

	// The conversation holds the alert, the commands and the answers
	// (an SMS is filed once its send is recorded).
	wantLog := []string{"out #1 [FIRING] DiskFull: disk 95% full", "in ack 2h", "out " + want, "in UNACK",
		"out Unsilenced DiskFull on db1 (#1): it pages again."}
	var entries []string
	eventually(t, 5*time.Second, "the conversation log", func() bool {
		log, err := d.Store().ConversationLog(t.Context(), bridge.ConversationID(onCallPhone, alertOur), 0)
		if err != nil {
			t.Fatal(err)
		}
		entries = entries[:0]
		for _, e := range log {
			entries = append(entries, string(e.Direction)+" "+e.Text)
		}
		return fmt.Sprint(entries) == fmt.Sprint(wantLog)
	})
}

// The same loop through the Grafana hook, against the fake of Grafana's
// silences API, which checks each request as documented: only the
// commanders may act (a phone paged through ?to= but not among them is
// an ordinary reply), an explicit reference, the limits and bad
// commands are answered with what is wrong, and UNACK expires.
func TestAlertLoopGrafana(t *testing.T) {
	capture := mailtest.Start(t, mailtest.Options{STARTTLS: false})
	fake := voipcomtest.NewServer(t, "k", "p", strings.TrimPrefix(alertOur, "+"))
	grafana := silencetest.NewServer(t, silencetest.Grafana, grafanaToken)
	d := start(t, alertLoopConfig(fake.URL, capture.Addr(), fmt.Sprintf(`[accounts.alerts]
commanders = [%q]
max_silence = "24h"
[accounts.alerts.grafana]
url = %q
token = %q`, onCallPhone, grafana.URL, grafanaToken)))
	body, err := os.ReadFile("../../webhook/alerts/testdata/grafana_firing.json")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.HTTPAddr()
	r := call(t, "POST", base+"/v1/hooks/grafana?to="+url.QueryEscape(onCallPhone+","+strangerPhone), alertToken, string(body))
	if r.Status != 202 {
		t.Fatalf("grafana hook: %d %v", r.Status, r.Body)
	}
	if msgs, _ := r.Body["messages"].([]any); len(msgs) != 1 {
		t.Errorf("answer %v; want one message (both phones have #1)", r.Body)
	}
	const sms = "#1 [FIRING:2] High memory usage: This alert was triggered for zone us-1; High CPU usage: This alert was triggered for zone eu-1"
	if got := waitSMS(t, fake, onCallPhone, 1); got != sms {
		t.Fatalf("alert SMS %q, want %q", got, sms)
	}
	if got := waitSMS(t, fake, strangerPhone, 1); got != sms {
		t.Fatalf("alert SMS to the ?to= phone %q, want %q", got, sms)
	}

	// Paged, but not a commander: an ordinary reply.
	answer(t, fake, d, strangerPhone, "g-1", "ACK")
	answer(t, fake, d, strangerPhone, "g-2", "ACK #7") // not even told there is no #7
	if n := len(grafana.Requests()); n != 0 {
		t.Fatalf("a phone that is no commander made %d requests to Grafana", n)
	}

	for i, c := range []struct{ text, want string }{
		{"ACK #7", "No alert #7 was sent to you."},
		{"ACK 5y", `cannot read "5y" as a duration such as 30m, 2h or 1d.`},
		{"ACK 3d", "Not silenced: 3d is longer than the 1d allowed."},
		{"UNACK", "No silence of yours is on for alerts with team=blue (#1)."},
	} {
		answer(t, fake, d, onCallPhone, fmt.Sprintf("g-err-%d", i), c.text)
		if got := waitSMS(t, fake, onCallPhone, 2+i); got != c.want {
			t.Errorf("%q answered %q, want %q", c.text, got, c.want)
		}
	}
	if n := len(grafana.Requests()); n != 0 {
		t.Fatalf("refused commands made %d requests to Grafana", n)
	}

	answer(t, fake, d, onCallPhone, "g-ack", "SILENCE #1 30m")
	sils := grafana.Silences()
	if len(sils) != 1 || len(sils[0].Matchers) != 1 || sils[0].Matchers[0].Name != "team" || sils[0].Matchers[0].Value != "blue" ||
		sils[0].CreatedBy != onCallPhone || sils[0].EndsAt.Sub(sils[0].StartsAt) < 29*time.Minute || sils[0].EndsAt.Sub(sils[0].StartsAt) > 31*time.Minute {
		t.Fatalf("Grafana silences %+v; want team=blue for 30m by %s", sils, onCallPhone)
	}
	if req := grafana.Requests()[0]; req.Header.Get("Authorization") != "Bearer "+grafanaToken || req.Status != 202 {
		t.Errorf("request %+v; want the service account token, answered 202", req)
	}
	if got := waitSMS(t, fake, onCallPhone, 6); !strings.HasPrefix(got, "Silenced alerts with team=blue for 30m until ") {
		t.Errorf("confirmation %q", got)
	}

	// ACK again while it is on: the same silence, extended, not a second one.
	answer(t, fake, d, onCallPhone, "g-ack2", "ack 1h")
	if s := grafana.Silences(); len(s) != 1 || s[0].ID != sils[0].ID || s[0].EndsAt.Sub(sils[0].EndsAt) < 29*time.Minute {
		t.Errorf("after a second ACK: %+v; want the first silence extended", s)
	}
	waitSMS(t, fake, onCallPhone, 7)
	answer(t, fake, d, onCallPhone, "g-unack", "unack #1")
	if s, _ := grafana.Silence(sils[0].ID); s.Active(time.Now()) {
		t.Errorf("silence after UNACK: %+v; want expired", s)
	}
	if got := waitSMS(t, fake, onCallPhone, 8); got != "Unsilenced alerts with team=blue (#1): it pages again." {
		t.Errorf("UNACK answer %q", got)
	}
	if n := len(smsTo(fake, strangerPhone)); n != 1 {
		t.Errorf("the phone that is no commander got %d SMS, want only the alert", n)
	}
}

// Resolved notifications are dropped unless the account sends them, and
// a repeat of an unchanged group to the same phones within the window is
// dropped; both are answered 200, so the sender does not retry. Turned
// on and off, and the SMS kept within the account's alert budget.
func TestAlertSMSResolvedRepeatsAndBudget(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile("../../webhook/alerts/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	firing, resolved := read("alertmanager_firing.json"), read("alertmanager_resolved.json")
	hook := func(d interface{ HTTPAddr() string }, body string) apiResp {
		return call(t, "POST", "http://"+d.HTTPAddr()+"/v1/hooks/alertmanager", alertToken, body)
	}

	fake := voipcomtest.NewServer(t, "k", "p", strings.TrimPrefix(alertOur, "+"))
	d := start(t, alertLoopConfig(fake.URL, "", ""))
	if r := hook(d, firing); r.Status != 202 {
		t.Fatalf("first notification: %d %v", r.Status, r.Body)
	}
	if r := hook(d, firing); r.Status != 200 || r.Body["dropped"] != "repeat" {
		t.Errorf("a repeat within the window: %d %v; want 200, dropped repeat", r.Status, r.Body)
	}
	if r := hook(d, resolved); r.Status != 200 || r.Body["dropped"] != "resolved" {
		t.Errorf("resolved by default: %d %v; want 200, dropped resolved", r.Status, r.Body)
	}
	// Another phone is another page.
	if r := call(t, "POST", "http://"+d.HTTPAddr()+"/v1/hooks/alertmanager?to="+url.QueryEscape(strangerPhone), alertToken, firing); r.Status != 202 {
		t.Errorf("the same alert to another phone: %d %v", r.Status, r.Body)
	}
	waitSMS(t, fake, strangerPhone, 1)
	if n := len(smsTo(fake, onCallPhone)); n != 1 {
		t.Errorf("on-call phone got %d SMS, want 1", n)
	}

	// Resolved sent, every repeat sent, at most one part.
	var group []map[string]any
	for i := range 12 {
		group = append(group, map[string]any{"status": "firing", "labels": map[string]string{"alertname": "DiskFull",
			"instance": fmt.Sprintf("db%d", i), "severity": []string{"warning", "critical"}[i%2]},
			"annotations": map[string]string{"summary": fmt.Sprintf("db%d disk 9%d%% full", i, i%10)}})
	}
	big, _ := json.Marshal(map[string]any{"status": "firing", "alerts": group, "groupLabels": map[string]string{"alertname": "DiskFull"}})
	fake2 := voipcomtest.NewServer(t, "k", "p", strings.TrimPrefix(alertOur, "+"))
	d2 := start(t, alertLoopConfig(fake2.URL, "", `[accounts.alerts]
send_resolved = true
repeat_window = "0s"
max_segments = 1`))
	for i, body := range []string{firing, firing, resolved, string(big)} {
		if r := hook(d2, body); r.Status != 202 {
			t.Fatalf("notification %d: %d %v; want every one sent", i, r.Status, r.Body)
		}
	}
	sms := waitSMS(t, fake2, onCallPhone, 4)
	if got := waitSMS(t, fake2, onCallPhone, 3); !strings.HasPrefix(got, "[RESOLVED] ") {
		t.Errorf("resolved SMS %q", got)
	}
	if n := bridge.CountSegments(sms).Count; n != 1 || !strings.HasPrefix(sms, "[FIRING:12] DiskFull: db1 disk 91% full; db3 disk 93% full") ||
		!strings.HasSuffix(sms, " more)") {
		t.Errorf("group SMS %q (%d parts); want one part, the critical ones first, then +N more", sms, n)
	}
}

// The silencing servers' credentials never reach a log, at debug level,
// nor an SMS: not when a silence is made, nor when the server is down.
func TestAlertLoopKeepsCredentialsSecret(t *testing.T) {
	const grafanaLeak, amLeak = "gt-LEAKCANARY-41c2", "ap-LEAKCANARY-9e17"
	fake := voipcomtest.NewServer(t, "k", "p", strings.TrimPrefix(alertOur, "+"))
	grafana := silencetest.NewServer(t, silencetest.Grafana, grafanaLeak)
	down := fmt.Sprintf("http://127.0.0.1:%d", freePort(t)) // nothing listens
	d, text, jsonl, stop := startLogged(t, alertLoopConfig(fake.URL, "", fmt.Sprintf(`[accounts.alerts.grafana]
url = %q
token = %q
[accounts.alerts.alertmanager]
url = %q
username = "smsbridge"
password = %q`, grafana.URL, grafanaLeak, down, amLeak)))
	for _, hook := range []string{"grafana", "alertmanager"} {
		body, err := os.ReadFile("../../webhook/alerts/testdata/" + hook + "_firing.json")
		if err != nil {
			t.Fatal(err)
		}
		if r := call(t, "POST", "http://"+d.HTTPAddr()+"/v1/hooks/"+hook, alertToken, string(body)); r.Status != 202 {
			t.Fatalf("%s hook: %d %v", hook, r.Status, r.Body)
		}
	}
	waitSMS(t, fake, onCallPhone, 2)
	answer(t, fake, d, onCallPhone, "s-1", "ACK #1")
	answer(t, fake, d, onCallPhone, "s-2", "ACK #2")
	// The two answers are due at once: either may go first.
	waitSMS(t, fake, onCallPhone, 4)
	if got := smsTo(fake, onCallPhone)[2:]; !slices.Contains(got, "Could not silence ProbeFailure: alertmanager did not answer.") {
		t.Errorf("answers %q; want one saying the server did not answer", got)
	}
	if len(grafana.Silences()) != 1 {
		t.Errorf("Grafana silences: %+v; want one", grafana.Silences())
	}
	stop()
	for name, log := range map[string]string{"text log": text.String(), "JSON log": jsonl.String(), "SMS": strings.Join(smsTo(fake, onCallPhone), "\n")} {
		if strings.Contains(log, leakMarker) {
			t.Errorf("%s holds a credential:\n%s", name, grepLines(log, leakMarker))
		}
	}
	if !strings.Contains(text.String(), "silencing an alert by SMS failed") {
		t.Error("the failed silence was not logged")
	}
}
