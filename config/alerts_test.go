package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/config"
)

func withAlerts(table string) string {
	return strings.Replace(minimal, `sender_ids = ["Ops"]`, `sender_ids = ["Ops"]
`+table, 1)
}

func TestAlertsEffective(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "grafana.token")
	os.WriteFile(tokenFile, []byte("glsa_from-file\n"), 0o600)
	c, err := config.Parse(withAlerts(fmt.Sprintf(`[accounts.alerts]
commanders = ["050-000-0001"]
default_silence = "1h"
[accounts.alerts.alertmanager]
url = "http://alertmanager:9093"
username = "sms"
password = "am-pass"
max_silence = "6h"
[accounts.alerts.grafana]
url = "https://grafana.example.com/"
token_file = %q
commanders = []
default_silence = "30m"
`, tokenFile)), kinds)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Accounts[0].Alerts
	cmd, def, max := a.Effective(a.Alertmanager)
	if len(cmd) != 1 || def != time.Hour || max != 6*time.Hour || a.Alertmanager.Password.Value() != "am-pass" {
		t.Errorf("alertmanager: commanders %v, default %s, max %s", cmd, def, max)
	}
	cmd, def, max = a.Effective(a.Grafana)
	if cmd == nil || len(cmd) != 0 || def != 30*time.Minute || max != config.DefaultMaxSilence || a.Grafana.Token.Value() != "glsa_from-file" {
		t.Errorf("grafana: commanders %#v (want an empty list: any paged phone), default %s, max %s, token %q", cmd, def, max, a.Grafana.Token.Value())
	}
	if s := fmt.Sprintf("%v %+v", *a.Alertmanager, *a.Grafana); strings.Contains(s, "am-pass") || strings.Contains(s, "glsa_") {
		t.Errorf("a printed server shows its secret: %s", s)
	}
}

func TestAlertsProblemsNameTheirKeys(t *testing.T) {
	_, err := config.Parse(withAlerts(`[accounts.alerts]
commanders = ["not a number"]
default_silence = "3h"
max_silence = "2h"
[accounts.alerts.alertmanager]
url = "http://user:pw@alertmanager:9093"
username = "sms"
token = "t"
[accounts.alerts.grafana]
url = "grafana.example.com"
password = "p"
password_file = "/x"
timeout = "-1s"
max_silence = "2400h"
colour = "red"
`), kinds)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`accounts[0].alerts.commanders[0]: "not a number" is not a phone number`,
		"accounts[0].alerts.default_silence: 3h0m0s is longer than max_silence (2h0m0s)",
		"accounts[0].alerts.alertmanager.url: must not hold credentials",
		"accounts[0].alerts.alertmanager.username: username and password must be set together",
		"accounts[0].alerts.grafana.url: must be the server's absolute http or https URL",
		"accounts[0].alerts.grafana: password and password_file: set only one",
		"accounts[0].alerts.grafana.timeout: must be positive",
		"accounts[0].alerts.grafana.max_silence: must be positive and at most 2160h0m0s",
		"accounts[0].alerts.grafana.colour: unknown key",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Errorf("the problem list quotes the URL's password:\n%v", err)
	}
}
