package ippanel_test

import (
	"context"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers/ippanel"
	"github.com/smsbridge/smsbridge/providers/providertest"
)

func TestLiveCheckReadsTheCredit(t *testing.T) {
	s := newSetup(t)
	s.fake.SetCredit(6084722932.705052, 0)
	got, err := s.p.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != "credit 6084722932.705052" {
		t.Errorf("Check = %q", got)
	}
	s.fake.SetCredit(0, 25)
	if got, err := s.p.Check(context.Background()); err != nil || got != "credit 0, gift 25" {
		t.Errorf("gift only: Check = %q, %v", got, err)
	}
	if n := s.fake.CreditRequests(); n != 2 {
		t.Errorf("%d credit requests, want 2", n)
	}
	if n := len(s.fake.Requests()); n != 0 {
		t.Errorf("%d sends made by a check", n)
	}
}

func TestLiveCheckFailures(t *testing.T) {
	t.Run("wrong token", func(t *testing.T) {
		s := newSetup(t, func(c *ippanel.Config) { c.Token = "not-" + token })
		_, err := s.p.Check(context.Background())
		if bridge.ReasonOf(err) != bridge.ReasonProviderAuth {
			t.Fatalf("err %v, want an authentication error", err)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("the error shows the token: %v", err)
		}
		if n := s.fake.CreditRequests(); n != 0 {
			t.Errorf("%d credit requests answered", n)
		}
	})
	t.Run("no credit", func(t *testing.T) {
		s := newSetup(t)
		s.fake.SetCredit(0, 0)
		_, err := s.p.Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "no credit left") {
			t.Errorf("err %v, want no credit left", err)
		}
	})
	t.Run("not the API", func(t *testing.T) {
		s := newSetup(t)
		s.fake.Faults.Push(providertest.Fault{Status: 200, Body: "<html>maintenance</html>"})
		_, err := s.p.Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "unexpected response") {
			t.Errorf("err %v, want unexpected response", err)
		}
	})
	t.Run("down", func(t *testing.T) {
		s := newSetup(t)
		s.fake.Faults.Push(providertest.Fault{Status: 503})
		if _, err := s.p.Check(context.Background()); !bridge.IsTemporary(err) {
			t.Errorf("err %v, want a temporary error", err)
		}
	})
}
