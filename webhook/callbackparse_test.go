package webhook

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
)

const testSecret = "cb-secret-7Yq2-do-not-log"

func multipartBody(t testing.TB, fields map[string]string, file string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if file != "" {
		fw, err := mw.CreateFormFile("msg", "note.txt")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write([]byte(file))
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

func TestReadCallback(t *testing.T) {
	mpType, mpBody := multipartBody(t, map[string]string{"Sender": "972501234567", "Body": "hi from multipart"}, "a file is no text")
	for _, tc := range []struct {
		name   string
		method string
		ctype  string
		query  string
		body   string
		want   fields
	}{
		{
			name: "form", method: "POST", ctype: "application/x-www-form-urlencoded; charset=utf-8",
			query: "secret=" + testSecret,
			body:  "from=972501234567&to=97233333333&msg=hello+there&smsid=abc123",
			want:  fields{"from": "972501234567", "to": "97233333333", "msg": "hello there", "smsid": "abc123"},
		},
		{
			name: "JSON with numbers and mixed case", method: "POST", ctype: "application/json",
			body: `{"From": 972501234567, "TEXT": "שלום", "ID": 12345678901234567890, "flag": true, "nested": {"x": 1}, "none": null}`,
			want: fields{"from": "972501234567", "text": "שלום", "id": "12345678901234567890", "flag": "true"},
		},
		{
			name: "JSON without content type", method: "POST",
			body: ` {"msisdn": "+972501234567", "content": "x"}`,
			want: fields{"msisdn": "+972501234567", "content": "x"},
		},
		{
			name: "multipart skips files", method: "POST", ctype: mpType, body: string(mpBody),
			want: fields{"sender": "972501234567", "body": "hi from multipart"},
		},
		{
			name: "GET query without the secret", method: "GET",
			query: "secret=" + testSecret + "&from=972501234567&msg=q&Secret=other",
			want:  fields{"from": "972501234567", "msg": "q"},
		},
		{
			name: "body wins over query", method: "POST", ctype: "application/x-www-form-urlencoded",
			query: "msg=from-query&to=123", body: "msg=from-body",
			want: fields{"msg": "from-body", "to": "123"},
		},
		{
			name: "first of repeated values", method: "POST", ctype: "application/x-www-form-urlencoded",
			body: "msg=one&msg=two",
			want: fields{"msg": "one"},
		},
		{
			name: "form without content type", method: "POST", body: "from=1&msg=2",
			want: fields{"from": "1", "msg": "2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			req, err := readCallback(tc.method, "/v1/providers/p/inbound", tc.ctype, q, []byte(tc.body), testSecret)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(req.fields, tc.want) {
				t.Errorf("fields %v, want %v", req.fields, tc.want)
			}
			if strings.Contains(req.raw, testSecret) || strings.Contains(strings.ToLower(req.raw), "secret=") {
				t.Errorf("secret in raw %q", req.raw)
			}
			if !strings.HasPrefix(req.raw, tc.method+" /v1/providers/p/inbound") {
				t.Errorf("raw %q does not start with the request line", req.raw)
			}
			if tc.body != "" && !strings.Contains(req.raw, tc.body[:10]) {
				t.Errorf("raw %q lacks the body", req.raw)
			}
		})
	}
}

func TestReadCallbackRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ctype  string
		body   string
		status int
	}{
		{"text/plain", "text/plain", "from=1&msg=2", http.StatusUnsupportedMediaType},
		{"XML", "application/xml", "<sms/>", http.StatusUnsupportedMediaType},
		{"unparseable content type", "a/b; =", "x=1", http.StatusUnsupportedMediaType},
		{"broken JSON", "application/json", `{"from": `, http.StatusBadRequest},
		{"JSON array", "application/json", `[{"from": "1"}]`, http.StatusBadRequest},
		{"JSON null", "application/json", `null`, http.StatusBadRequest},
		{"two JSON values", "application/json", `{"a":"1"} {"b":"2"}`, http.StatusBadRequest},
		{"bad form escape", "application/x-www-form-urlencoded", "msg=%zz", http.StatusBadRequest},
		{"multipart without boundary", "multipart/form-data", "--x\r\n", http.StatusBadRequest},
		{"broken multipart", "multipart/form-data; boundary=xyz", "--xyz\r\nno header end", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readCallback("POST", "/", tc.ctype, nil, []byte(tc.body), "")
			bad, ok := err.(*badRequest)
			if !ok || bad.status != tc.status {
				t.Fatalf("err %v, want HTTP %d", err, tc.status)
			}
		})
	}
}

// A provider retrying a request that carries no id must produce the same
// dedupe digest; the secret (which may be rotated) must not matter; any
// other difference must.
func TestCallbackDigest(t *testing.T) {
	digest := func(query, body string) string {
		t.Helper()
		q, _ := url.ParseQuery(query)
		req, err := readCallback("POST", "/", "application/x-www-form-urlencoded", q, []byte(body), "")
		if err != nil {
			t.Fatal(err)
		}
		return req.digest
	}
	a := digest("secret=one&x=1", "from=1&msg=hi")
	if !strings.HasPrefix(a, "sha256:") || len(a) != len("sha256:")+64 {
		t.Fatalf("digest %q", a)
	}
	if b := digest("x=1&secret=two", "from=1&msg=hi"); b != a {
		t.Errorf("secret changed the digest")
	}
	if b := digest("x=1", "from=1&msg=hi!"); b == a {
		t.Errorf("different body, same digest")
	}
	if b := digest("x=2", "from=1&msg=hi"); b == a {
		t.Errorf("different query, same digest")
	}
}

func TestReadCallbackCapsRaw(t *testing.T) {
	body := "from=1&msg=" + strings.Repeat("é", maxRaw)
	req, err := readCallback("POST", "/", "application/x-www-form-urlencoded", nil, []byte(body), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(req.raw) > maxRaw+len("\n[truncated]") || !strings.HasSuffix(req.raw, "[truncated]") || !utf8.ValidString(req.raw) {
		t.Errorf("raw of %d bytes, valid UTF-8 %v", len(req.raw), utf8.ValidString(req.raw))
	}
	if _, ok := req.fields["msg"]; ok {
		t.Errorf("a %d-byte field was kept", len(req.fields["msg"]))
	}
}

func TestParseInbound(t *testing.T) {
	at := time.Date(2025, 5, 21, 6, 15, 25, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		f      fields
		names  InboundFields
		want   inboundSMS
		errFld string
	}{
		{
			name: "usual names",
			f:    fields{"from": "972501234567", "to": "97233333333", "msg": "hello", "smsid": "s1", "time": "1747808125"},
			want: inboundSMS{From: "972501234567", To: "97233333333", Text: "hello", ID: "s1", Received: at},
		},
		{
			name: "other usual names",
			f:    fields{"sender": "+972501234567", "did": "+97233333333", "content": " spaced ", "message_id": "m-9", "received": "2025-05-21T09:15:25+03:00"},
			want: inboundSMS{From: "+972501234567", To: "+97233333333", Text: " spaced ", ID: "m-9", Received: at},
		},
		{
			name:  "configured names first",
			f:     fields{"from": "111", "caller": "222", "msg": "usual", "sms_body": "configured", "ref": "r1", "id": "i1", "date": "2025-05-21 06:15:25"},
			names: InboundFields{From: []string{"Caller"}, Text: []string{"SMS_BODY"}, ID: []string{"ref"}},
			want:  inboundSMS{From: "222", Text: "configured", ID: "r1", Received: at},
		},
		{
			name:  "empty configured field falls back",
			f:     fields{"caller": " ", "from": "111", "msg": "x"},
			names: InboundFields{From: []string{"caller"}},
			want:  inboundSMS{From: "111", Text: "x"},
		},
		{
			name: "unreadable time is ignored",
			f:    fields{"from": "1", "msg": "x", "time": "yesterday"},
			want: inboundSMS{From: "1", Text: "x"},
		},
		{name: "no from", f: fields{"to": "1", "msg": "x"}, errFld: "from"},
		{name: "blank from", f: fields{"from": "  ", "msg": "x"}, errFld: "from"},
		{name: "no text", f: fields{"from": "1", "smsid": "2"}, errFld: "text"},
		{name: "empty text", f: fields{"from": "1", "msg": ""}, errFld: "text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseInbound(tc.f, tc.names)
			if tc.errFld != "" {
				bad, ok := err.(*badRequest)
				if !ok || bad.field != tc.errFld || bad.status != http.StatusBadRequest {
					t.Fatalf("err %v, want 400 on %s", err, tc.errFld)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Received.Equal(tc.want.Received) {
				t.Errorf("received %v, want %v", got.Received, tc.want.Received)
			}
			got.Received, tc.want.Received = time.Time{}, time.Time{}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	for word, want := range map[string]bridge.State{
		"delivered": bridge.StateDelivered, "DELIVRD": bridge.StateDelivered, "delivrd": bridge.StateDelivered,
		"Success": bridge.StateDelivered, "2": bridge.StateDelivered,
		"undelivered": bridge.StateUndelivered, "UNDELIV": bridge.StateUndelivered, "failed": bridge.StateUndelivered,
		"rejected": bridge.StateUndelivered, "expired": bridge.StateUndelivered, "REJECTD": bridge.StateUndelivered,
		"EXPIRED": bridge.StateUndelivered, "3": bridge.StateUndelivered, "4": bridge.StateUndelivered,
		"sent": bridge.StateSent, "accepted": bridge.StateSent, "queued": bridge.StateSent,
		"ENROUTE": bridge.StateSent, "0": bridge.StateSent, "1": bridge.StateSent,
	} {
		r, err := parseStatus(fields{"id": "x1", "status": word}, StatusFields{})
		if err != nil || r.State != want {
			t.Errorf("%q: state %q, %v; want %q", word, r.State, err, want)
		}
	}

	r, err := parseStatus(fields{"messageid": "m1", "dlr": "UNDELIV", "recipient": "972501234567", "reason": "absent subscriber", "timestamp": "1747808125"}, StatusFields{})
	if err != nil {
		t.Fatal(err)
	}
	want := statusReport{ID: "m1", To: "972501234567", Word: "UNDELIV", State: bridge.StateUndelivered, Detail: "absent subscriber", At: time.Unix(1747808125, 0).UTC()}
	if r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
	// Without a reason, the status word is the detail of a failure.
	if r, _ := parseStatus(fields{"id": "1", "status": "EXPIRED"}, StatusFields{}); r.Detail != "EXPIRED" {
		t.Errorf("detail %q", r.Detail)
	}
	r, err = parseStatus(fields{"ref": "c1", "id": "other", "stat": "DELIVRD", "status": "failed"}, StatusFields{ID: []string{"ref"}, Status: []string{"stat"}})
	if err != nil || r.ID != "c1" || r.State != bridge.StateDelivered {
		t.Errorf("configured names: %+v, %v", r, err)
	}

	for _, tc := range []struct {
		f     fields
		field string
	}{
		{fields{"status": "delivered"}, "id"},
		{fields{"id": "1"}, "status"},
		{fields{"id": "1", "status": "maybe"}, "status"},
		{fields{"id": "1", "status": "5"}, "status"},
	} {
		_, err := parseStatus(tc.f, StatusFields{})
		if bad, ok := err.(*badRequest); !ok || bad.field != tc.field || bad.status != http.StatusBadRequest {
			t.Errorf("%v: err %v, want 400 on %s", tc.f, err, tc.field)
		}
	}
}

func TestParseTime(t *testing.T) {
	at := time.Date(2025, 5, 21, 6, 15, 25, 0, time.UTC)
	for s, want := range map[string]time.Time{
		"1747808125":                at,
		"1747808125000":             at,
		"2025-05-21T06:15:25Z":      at,
		"2025-05-21T09:15:25+03:00": at,
		"2025-05-21T06:15:25.5Z":    at.Add(500 * time.Millisecond),
		"2025-05-21 06:15:25":       at,
		"2025-05-21T06:15:25":       at,
		"":                          {},
		"0":                         {},
		"-5":                        {},
		"1999-12-31T23:59:59Z":      {},
		"9999999999999999":          {},
		"21/05/2025":                {},
		"2025-05-21":                {},
	} {
		got, ok := parseTime(s)
		if !got.Equal(want) || ok == want.IsZero() {
			t.Errorf("%q: %v %v, want %v", s, got, ok, want)
		}
		if ok && got.Location() != time.UTC {
			t.Errorf("%q: not UTC", s)
		}
	}
}

func FuzzReadCallback(f *testing.F) {
	mpType, mpBody := multipartBody(f, map[string]string{"from": "1", "msg": "m"}, "file")
	for _, s := range []struct{ ctype, query, body string }{
		{"application/x-www-form-urlencoded", "secret=" + testSecret, "from=972501234567&msg=hi&smsid=1"},
		{"application/json", "", `{"from": 972501234567, "text": "שלום", "id": 1, "time": "2025-05-21 06:15:25"}`},
		{"", "from=1&msg=2&secret=x", ""},
		{mpType, "", string(mpBody)},
		{"application/json", "", `{"id": "1", "status": "DELIVRD", "detail": "` + testSecret + `"}`},
		{"multipart/form-data; boundary=b", "", "--b\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\n1\r\n--b--\r\n"},
		{"text/plain", "", "x"},
	} {
		f.Add(s.ctype, s.query, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ctype, query string, body []byte) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		req, err := readCallback("POST", "/v1/providers/p/inbound", ctype, q, body, testSecret)
		if err != nil {
			if _, ok := err.(*badRequest); !ok {
				t.Fatalf("%T is not a *badRequest: %v", err, err)
			}
			return
		}
		if strings.Contains(req.raw, testSecret) {
			t.Fatalf("secret in raw %q", req.raw)
		}
		if !utf8.ValidString(req.raw) || len(req.raw) > maxRaw+len("\n[truncated]") {
			t.Fatalf("raw of %d bytes, valid UTF-8 %v", len(req.raw), utf8.ValidString(req.raw))
		}
		for k, v := range req.fields {
			if !utf8.ValidString(k) || !utf8.ValidString(v) || k != strings.ToLower(k) {
				t.Fatalf("field %q = %q", k, v)
			}
		}
		if in, err := parseInbound(req.fields, InboundFields{From: []string{"caller"}}); err == nil {
			if strings.TrimSpace(in.From) == "" || in.Text == "" {
				t.Fatalf("accepted %+v", in)
			}
		}
		if r, err := parseStatus(req.fields, StatusFields{}); err == nil {
			switch r.State {
			case bridge.StateDelivered, bridge.StateUndelivered, bridge.StateSent:
			default:
				t.Fatalf("state %q", r.State)
			}
			if r.ID == "" {
				t.Fatal("report without id")
			}
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"1747808125", "1747808125000", "2025-05-21T06:15:25Z", "2025-05-21 06:15:25", "-1", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTime(s)
		if ok != !got.IsZero() {
			t.Fatalf("%q: %v %v", s, got, ok)
		}
		if ok && (got.Year() < 2000 || got.After(time.Now().Add(25*time.Hour)) || got.Location() != time.UTC) {
			t.Fatalf("%q: %v", s, got)
		}
	})
}

func TestParseConversationFilter(t *testing.T) {
	since := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	before := time.Date(2025, 3, 12, 21, 20, 2, 123456789, time.UTC)
	q, _ := url.ParseQuery("phone=%2B972501234567&account=ops&provider=voip&state=failed&since=2025-03-01T00:00:00Z&before=2025-03-12T21:20:02.123456789Z&limit=20")
	f, err := parseConversationFilter(q)
	want := bridge.ConversationFilter{Phone: "+972501234567", Account: "ops", Provider: "voip", State: bridge.StateFailed,
		Since: since, Before: before, Limit: 20}
	if err != nil || !reflect.DeepEqual(f, want) {
		t.Errorf("got %+v, %v; want %+v", f, err, want)
	}
	if f, err := parseConversationFilter(url.Values{}); err != nil || f.Limit != defaultConversations {
		t.Errorf("defaults: %+v, %v", f, err)
	}
	for query, field := range map[string]string{
		"since=yesterday":           "since",
		"before=2025-03-12":         "before",
		"limit=0":                   "limit",
		"limit=501":                 "limit",
		"limit=ten":                 "limit",
		"phone=1&accout=ops":        "accout",
		"since=2025-03-12 21:20:02": "since",
	} {
		q, _ := url.ParseQuery(query)
		_, err := parseConversationFilter(q)
		if bad, ok := err.(*badRequest); !ok || bad.field != field || bad.status != http.StatusBadRequest {
			t.Errorf("%s: err %v, want 400 on %s", query, err, field)
		}
	}
}

func FuzzParseConversationFilter(f *testing.F) {
	for _, s := range []string{"phone=%2B972501234567&limit=5", "since=2025-03-01T00:00:00Z", "limit=-1", "x=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		flt, err := parseConversationFilter(q)
		if err == nil && (flt.Limit < 1 || flt.Limit > maxConversations) {
			t.Fatalf("limit %d accepted", flt.Limit)
		}
		if err != nil {
			if _, ok := err.(*badRequest); !ok {
				t.Fatalf("%T: %v", err, err)
			}
		}
	})
}
