package mindcrm

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/providers"
)

// FuzzVerdict checks that any 2xx body yields a well-formed outcome:
// success only for JSON with stat_code 0, a permanent refusal only for JSON
// with another code, and a temporary failure for anything else.
func FuzzVerdict(f *testing.F) {
	for _, s := range []string{
		`{"stat_code": 0, "description": "SMS sent successfully", "data": "SMS sent successfully"}`,
		`{"stat_code": 1, "description": "Missing mandatory parameter", "data": "Missing mandatory parameter"}`,
		`{"stat_code": 5, "description": "SMS template not found", "data": "SMS template not found"}`,
		`{"stat_code": 42}`,
		`{"stat_code": -1, "description": ""}`,
		`{"stat_code": "0"}`,
		`{"stat_code": 0.5}`,
		`{"stat_code": null}`,
		`{"description": 7}`,
		`[]`,
		`null`,
		``,
		`<html>502 Bad Gateway</html>`,
		"\xef\xbb\xbf{\"stat_code\": 0}",
		`{"stat_code": 0} trailing`,
	} {
		f.Add([]byte(s))
	}
	p := &Provider{name: "mindcrm"}
	f.Fuzz(func(t *testing.T, body []byte) {
		info, err := p.verdict(body)
		var be *bridge.Error
		switch {
		case err == nil:
			if !json.Valid(body) || info["stat_code"] != "0" {
				t.Fatalf("body %q: success with info %v", body, info)
			}
		case !errors.As(err, &be):
			t.Fatalf("body %q: err %v is not a *bridge.Error", body, err)
		case be.Temp:
			if info != nil || be.Reason != bridge.ReasonProviderDown {
				t.Fatalf("body %q: temporary %v with info %v", body, err, info)
			}
		default:
			if !json.Valid(body) || info["stat_code"] == "" || info["stat_code"] == "0" ||
				(be.Reason != bridge.ReasonProviderRejected && be.Reason != bridge.ReasonTemplateUnknown) {
				t.Fatalf("body %q: permanent %v (reason %q) with info %v", body, err, be.Reason, info)
			}
		}
		if !json.Valid(body) && (err == nil || !bridge.IsTemporary(err)) {
			t.Fatalf("invalid JSON %q: err = %v, want temporary", body, err)
		}
	})
}

func TestVerdict(t *testing.T) {
	p := &Provider{name: "mindcrm"}
	tests := []struct {
		body   string
		ok     bool
		temp   bool
		reason bridge.Reason
		field  string
	}{
		{body: `{"stat_code": 0, "description": "SMS sent successfully", "data": "SMS sent successfully"}`, ok: true},
		{body: `{"stat_code": 2, "description": "Invalid phone number format"}`, reason: bridge.ReasonProviderRejected, field: "to"},
		{body: `{"stat_code": 3}`, reason: bridge.ReasonProviderRejected, field: "text"},
		{body: `{"stat_code": 4}`, reason: bridge.ReasonProviderRejected, field: "sender"},
		{body: `{"stat_code": 5}`, reason: bridge.ReasonTemplateUnknown, field: "template"},
		{body: `{"stat_code": 77}`, reason: bridge.ReasonProviderRejected},
		{body: `{"stat_code": 1.5}`, temp: true, reason: bridge.ReasonProviderDown},
		{body: `{"stat_code": 0, "description": ["x"]}`, temp: true, reason: bridge.ReasonProviderDown},
		{body: `OK`, temp: true, reason: bridge.ReasonProviderDown},
	}
	for _, tt := range tests {
		info, err := p.verdict([]byte(tt.body))
		if tt.ok {
			if err != nil || info["description"] != "SMS sent successfully" {
				t.Errorf("verdict(%s) = %v, %v; want success", tt.body, info, err)
			}
			continue
		}
		var be *bridge.Error
		if !errors.As(err, &be) || be.Temp != tt.temp || be.Reason != tt.reason || be.Field != tt.field {
			t.Errorf("verdict(%s) = %#v, want temporary %v, reason %q, field %q", tt.body, err, tt.temp, tt.reason, tt.field)
		}
	}
	if _, err := p.verdict([]byte(`{"stat_code": 77}`)); err == nil || err.Error() != "mindcrm: stat_code 77: undocumented error" {
		t.Errorf("unknown code without description: %v", err)
	}
}

// FuzzProbe feeds arbitrary answers to the live check's judge: no panic;
// success only for a 2xx whose JSON has stat_code 1; every failure a
// *bridge.Error.
func FuzzProbe(f *testing.F) {
	f.Add(200, []byte(`{"stat_code": 1, "description": "Missing mandatory parameter", "data": "Missing mandatory parameter"}`))
	f.Add(200, []byte(`{"stat_code": 0, "description": "SMS sent successfully"}`))
	f.Add(200, []byte(`{"stat_code": "1"}`))
	f.Add(200, []byte(`<html>login</html>`))
	f.Add(404, []byte(`not found`))
	f.Add(503, []byte(`{"stat_code": 1}`))
	p := &Provider{name: "mindcrm", now: time.Now}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		what, err := p.probe(&providers.Response{Status: status, Header: http.Header{}, Body: body})
		if err == nil {
			var r struct {
				StatCode int64 `json:"stat_code"`
			}
			if status < 200 || status > 299 || json.Unmarshal(body, &r) != nil || r.StatCode != 1 || what == "" {
				t.Fatalf("success %q for HTTP %d %q", what, status, body)
			}
			return
		}
		var be *bridge.Error
		if !errors.As(err, &be) {
			t.Fatalf("%T is not a *bridge.Error: %v", err, err)
		}
	})
}
