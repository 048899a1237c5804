package daemon_test

import (
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/contrib"
	"github.com/smsbridge/smsbridge/internal/daemon"
	"github.com/smsbridge/smsbridge/internal/promsel"
	"github.com/smsbridge/smsbridge/mailout/mailtest"
	"github.com/smsbridge/smsbridge/providers/providertest"
	"github.com/smsbridge/smsbridge/providers/voipcom/voipcomtest"
)

// usedMetrics returns every metric name the dashboard and the rules
// select, each with where it is used.
func usedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	qs, err := contrib.Queries()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string][]string{}
	for _, q := range qs {
		names, err := promsel.Names(q.Expr)
		if err != nil {
			t.Fatalf("%s: %q: %v", q.Where, q.Expr, err)
		}
		for _, n := range names {
			used[n] = append(used[n], q.Where)
		}
	}
	return used
}

// exported parses a scrape and returns the names PromQL can select:
// a histogram's _bucket, _sum and _count series, every other family's
// own name.
func exported(t *testing.T, body string) map[string]bool {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := map[string]bool{}
	for name, f := range families {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[name], out[name+"_sum"], out[name+"_count"] = true, true, true
		default:
			out[name] = true
		}
	}
	return out
}

// Every metric the Grafana dashboard and the alert rules name is one the
// daemon exports: after traffic that makes every smsbridge metric move
// (a send, a refusal, a provider failure for good and one for a retry, a
// delivery report, a reply from the phone and its mail, a STOP, a
// bounce), /metrics has a series of each.
func TestDashboardAndRulesNameExportedMetrics(t *testing.T) {
	used := usedMetrics(t)
	for _, want := range []string{"smsbridge_queue_depth", "smsbridge_store_ready", "smsbridge_mail_queue_oldest_age_seconds",
		"smsbridge_provider_circuit_open", "smsbridge_sends_total"} {
		if used[want] == nil {
			t.Fatalf("the dashboard and rules do not use %s; the parsing of their expressions is broken", want)
		}
	}

	capture := mailtest.Start(t, mailtest.Options{})
	fake := voipcomtest.NewServer(t, "key", "pw-voip", "972500000001", "972500000002")
	fake.FailRecipient("972501111111", 400, "number is blacklisted")
	d := start(t, voipTwoWayConfig(fake.URL, capture.Addr()))
	base := "http://" + d.HTTPAddr()

	// One recipient sent, one refused for good: that one bounces.
	reply, err := sendMail(t, d.SMTPAddr(), "alice@example.com", []string{"0501234567@sms.example.com", "0501111111@sms.example.com"},
		"From: Alice <alice@example.com>\nSubject: Dinner\nX-SMS-Sender: 972500000001\n\nAre you coming at 8?\n")
	if err != nil {
		t.Fatal(err)
	}
	_, msgID, _ := strings.Cut(reply, "queued as ")
	var sent *bridge.Message
	eventually(t, 5*time.Second, "one recipient sent and one failed", func() bool {
		sent, err = d.Store().Message(t.Context(), msgID)
		return err == nil && len(sent.Recipients) == 2 && sent.Recipients[0].State.Final() && sent.Recipients[1].State.Final()
	})
	var providerID string
	for _, r := range sent.Recipients {
		if r.State == bridge.StateSent {
			providerID = r.ProviderID
		}
	}
	if providerID == "" {
		t.Fatalf("no recipient sent: %+v", sent.Recipients)
	}
	// The provider reports it delivered; the phone answers, then opts out.
	status := url.Values{"smsid": {providerID}, "status": {"DELIVRD"}}
	if code, body := postCallback(t, fake, d, "/v1/providers/voip/status", callbackSecret, status); code != 200 {
		t.Fatalf("status callback: %d %v", code, body)
	}
	for i, text := range []string{"Yes!", "STOP"} {
		form := url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {text}, "smsid": {"in-" + text}}
		if code, body := postCallback(t, fake, d, "/v1/providers/voip/inbound", callbackSecret, form); code != 200 {
			t.Fatalf("inbound %d: %d %v", i, code, body)
		}
	}
	// The bounce, the reply and the opt-out note reach the smarthost.
	if _, err := capture.Wait(ctx5(t), 3); err != nil {
		t.Fatal(err)
	}
	// A send the provider answers 503: a retry. A bad number: a refusal.
	fake.Faults.Push(providertest.Fault{Status: http.StatusServiceUnavailable})
	if r := call(t, "POST", base+"/v1/messages", aliceToken, `{"to": "0507654321", "text": "Your code is 4821"}`); r.Status != 202 {
		t.Fatalf("send: %d %v", r.Status, r.Body)
	}
	if r := call(t, "POST", base+"/v1/messages", aliceToken, `{"to": "12", "text": "x"}`); r.Status != 422 {
		t.Fatalf("bad number: %d %v, want 422", r.Status, r.Body)
	}

	var missing []string
	defer func() {
		if t.Failed() && len(missing) > 0 {
			for _, n := range missing {
				t.Errorf("%s (used by %s) is not in /metrics", n, strings.Join(used[n], ", "))
			}
		}
	}()
	eventually(t, 10*time.Second, "every metric the dashboard and rules use in /metrics", func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		have := exported(t, string(b))
		missing = missing[:0]
		for n := range used {
			if !have[n] {
				missing = append(missing, n)
			}
		}
		slices.Sort(missing)
		return len(missing) == 0
	})
}

// Every configured provider has a circuit series from the start (the
// dashboard's Circuit state and the alert see it closed, not absent), and
// a reload that removes a provider removes its series.
func TestCircuitSeriesFollowTheConfiguration(t *testing.T) {
	voip := voipcomtest.NewServer(t, "k", "p", "17134567890")
	cfgText := httpConfig(voip.URL, "http://127.0.0.1:9", "")
	d := start(t, cfgText)
	circuits := func() map[string]float64 {
		resp, err := http.Get("http://" + d.HTTPAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		families, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, m := range families["smsbridge_provider_circuit_open"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "provider" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
		return out
	}
	if got, want := circuits(), map[string]float64{"voip": 0, "held": 0, "edge": 0}; !maps.Equal(got, want) {
		t.Errorf("circuits at start = %v, want %v", got, want)
	}
	// The same configuration without the ippanel provider and its route.
	i := strings.Index(cfgText, "[[providers]]\nname = \"edge\"")
	j := strings.Index(cfgText, "[[routes]]")
	k := strings.LastIndex(cfgText, "[[routes]]")
	if i < 0 || j < i || k < j {
		t.Fatal("httpConfig changed shape")
	}
	cfg, err := config.Parse(cfgText[:i]+cfgText[j:k], daemon.Kinds)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := circuits(), map[string]float64{"voip": 0, "held": 0}; !maps.Equal(got, want) {
		t.Errorf("circuits after reload = %v, want %v", got, want)
	}
}
