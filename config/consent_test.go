package config_test

import (
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/config"
)

func TestConsentDefaults(t *testing.T) {
	c, err := config.Parse(minimal, kinds)
	if err != nil {
		t.Fatal(err)
	}
	if c.Consent.Scope != "number" || c.Consent.OptOut != nil || *c.Consent.Confirmation != config.DefaultConfirmation ||
		*c.Consent.OptInConfirmation != config.DefaultOptInConfirmation {
		t.Errorf("defaults: %+v", c.Consent)
	}
	// Explicit empty values stay empty: no keyword, no answer.
	c, err = config.Parse(minimal+"[consent]\nopt_in = []\nconfirmation = \"\"\n", kinds)
	if err != nil {
		t.Fatal(err)
	}
	if c.Consent.OptIn == nil || len(c.Consent.OptIn) != 0 || *c.Consent.Confirmation != "" {
		t.Errorf("explicit empties: opt_in %#v, confirmation %q", c.Consent.OptIn, *c.Consent.Confirmation)
	}
}

func TestConsentProblemsNameTheirKeys(t *testing.T) {
	text := strings.Replace(minimal, `sender_ids = ["Ops"]`, `sender_ids = ["Ops"]
help_text = "`+strings.Repeat("x", 641)+`"`, 1) + `
[consent]
scope = "everyone"
opt_out = ["STOP", " "]
opt_in = ["stop"]
confirmation = "` + strings.Repeat("y", 641) + `"
`
	_, err := config.Parse(text, kinds)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`consent.scope: must be number, account or all, not "everyone"`,
		"consent.opt_out[1]: a keyword cannot be empty",
		`consent.opt_in[0]: "stop" is also in consent.opt_out`,
		"consent.confirmation: at most 640 bytes",
		"accounts[0].help_text: at most 640 bytes",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
