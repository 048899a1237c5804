package mindcrm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/providers/mindcrm/mindcrmtest"
	"github.com/smsbridge/smsbridge/providers/providertest"
)

func TestLiveCheckCallsWithoutParameters(t *testing.T) {
	fake := mindcrmtest.NewServer(t)
	p := newProvider(t, fake, nil, nil)
	got, err := p.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "reachable; MindCRM has no credentials to prove") {
		t.Errorf("Check = %q", got)
	}
	// One call, refused for its missing parameters: nothing sent.
	rej := fake.Rejected()
	if len(rej) != 1 || rej[0].StatCode != 1 || len(rej[0].Query) != 0 {
		t.Errorf("rejected %+v, want one call without parameters answered stat_code 1", rej)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d SMS sent by a check", n)
	}
}

func TestLiveCheckFailures(t *testing.T) {
	fake := mindcrmtest.NewServer(t)
	p := newProvider(t, fake, nil, nil)
	for _, c := range []struct {
		fault providertest.Fault
		want  string
	}{
		{providertest.Fault{Status: 200, Body: `{"stat_code": 0, "description": "SMS sent successfully"}`}, "stat_code 0 (SMS sent successfully), not 1"},
		{providertest.Fault{Status: 200, Body: `<html>login</html>`}, "unexpected answer"},
		{providertest.Fault{Status: 404, Body: `not here`}, "HTTP 404"},
		{providertest.Fault{Status: 503}, "HTTP 503"},
	} {
		fake.Faults.Push(c.fault)
		if _, err := p.Check(context.Background()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("fault %+v: err %v, want %q", c.fault, err, c.want)
		}
	}

	// Not a MindCRM at all: a web server with no send_sms.php.
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	p = newProvider(t, &mindcrmtest.Server{URL: other.URL}, nil, nil)
	if _, err := p.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("no MindCRM there: err %v", err)
	}
}
