package webhook_test

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

const (
	opsToken   = "ops-token"
	salesToken = "sales-token"
)

func conversationBridge() *fakeBridge {
	t0 := time.Date(2025, 3, 12, 21, 20, 2, 0, time.UTC)
	b := &fakeBridge{
		tokens: map[string]*bridge.Account{opsToken: {Name: "ops"}, salesToken: {Name: "sales"}},
		log:    map[string][]bridge.LogEntry{},
	}
	for i, phone := range []string{"+972501234567", "+972527654321", "+972541111111"} {
		b.conversations = append(b.conversations, bridge.Conversation{
			ID: "c" + phone[1:], Phone: phone, Our: "+97233333333", Account: "ops", ReplyTo: "dana@example.com",
			MailMessageID: "<m" + phone[1:] + "@example.com>", Subject: "Booking",
			LastOut: t0.Add(-time.Hour), Created: t0.Add(-2 * time.Hour), Updated: t0.Add(-time.Duration(i) * time.Minute),
		})
	}
	b.conversations = append(b.conversations, bridge.Conversation{ID: "csales", Phone: "+972509999999", Account: "sales", Updated: t0})
	b.log["c972501234567"] = []bridge.LogEntry{
		{At: t0.Add(-time.Hour), Direction: bridge.DirOut, Phone: "+972501234567", Our: "+97233333333", Account: "ops",
			Text: "Your table is booked", State: bridge.StateDelivered, MessageID: "m1", RecipientID: 7},
		{At: t0, Direction: bridge.DirIn, Phone: "+972501234567", Our: "+97233333333", Text: "Thanks!",
			InboundID: "in1", MailTo: "dana@example.com"},
	}
	return b
}

func TestConversationsNeedAToken(t *testing.T) {
	base, _ := startServer(t, conversationBridge(), callbackConfig())
	for _, path := range []string{"/v1/conversations", "/v1/conversations/c972501234567"} {
		if a := do(t, "GET", base+path, "", ""); a.status != http.StatusUnauthorized {
			t.Errorf("%s: HTTP %d", path, a.status)
		}
		if a := do(t, "GET", base+path, "", "", "Authorization", "Bearer nope"); a.status != http.StatusUnauthorized {
			t.Errorf("%s, unknown token: HTTP %d", path, a.status)
		}
	}
}

func TestListConversations(t *testing.T) {
	b := conversationBridge()
	base, _ := startServer(t, b, callbackConfig())
	get := func(query string) answer {
		t.Helper()
		return do(t, "GET", base+"/v1/conversations?"+query, "", "", "Authorization", "Bearer "+opsToken)
	}

	a := get("phone=" + url.QueryEscape("+972501234567") + "&account=ops&since=2025-03-01T00:00:00Z&before=2025-03-13T00:00:00%2B02:00&limit=2")
	if a.status != http.StatusOK {
		t.Fatalf("HTTP %d %s", a.status, a.raw)
	}
	wantFilter := bridge.ConversationFilter{Phone: "+972501234567", Account: "ops",
		Since: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), Before: time.Date(2025, 3, 12, 22, 0, 0, 0, time.UTC), Limit: 2}
	filters, _ := b.asked()
	if f := filters[0]; f.Phone != wantFilter.Phone || f.Account != wantFilter.Account || !f.Since.Equal(wantFilter.Since) ||
		!f.Before.Equal(wantFilter.Before) || f.Limit != 2 {
		t.Errorf("filter %+v, want %+v", f, wantFilter)
	}
	list, _ := a.body["conversations"].([]any)
	if len(list) != 2 {
		t.Fatalf("%d conversations: %s", len(list), a.raw)
	}
	first := list[0].(map[string]any)
	want := map[string]any{
		"id": "c972501234567", "phone": "+972501234567", "our": "+97233333333", "account": "ops",
		"reply_to": "dana@example.com", "mail_message_id": "<m972501234567@example.com>", "subject": "Booking",
		"last_out": "2025-03-12T20:20:02Z", "created": "2025-03-12T19:20:02Z", "updated": "2025-03-12T21:20:02Z",
	}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("conversation %v, want %v", first, want)
	}
	// A full page says where the next one starts.
	if a.body["next_before"] != "2025-03-12T21:19:02Z" {
		t.Errorf("next_before %v", a.body["next_before"])
	}

	a = get("limit=3")
	if list, _ := a.body["conversations"].([]any); a.status != http.StatusOK || len(list) != 3 {
		t.Fatalf("HTTP %d %s", a.status, a.raw)
	}
	if _, ok := a.body["next_before"]; !ok {
		t.Error("no next_before on a full page")
	}
	a = get("")
	filters, _ = b.asked()
	if _, ok := a.body["next_before"]; ok || filters[len(filters)-1].Limit != 50 {
		t.Errorf("short page: %s (limit %d)", a.raw, filters[len(filters)-1].Limit)
	}

	// Empty fields are left out.
	a = do(t, "GET", base+"/v1/conversations", "", "", "Authorization", "Bearer "+salesToken)
	if list, _ := a.body["conversations"].([]any); len(list) != 1 ||
		!reflect.DeepEqual(list[0], map[string]any{"id": "csales", "phone": "+972509999999", "account": "sales", "updated": "2025-03-12T21:20:02Z"}) {
		t.Errorf("sales: %s", a.raw)
	}
}

func TestListConversationsBadQuery(t *testing.T) {
	b := conversationBridge()
	base, _ := startServer(t, b, callbackConfig())
	for query, field := range map[string]string{
		"since=yesterday":   "since",
		"before=2025-03-12": "before",
		"limit=0":           "limit",
		"limit=100000":      "limit",
		"phnoe=1":           "phnoe",
	} {
		a := do(t, "GET", base+"/v1/conversations?"+query, "", "", "Authorization", "Bearer "+opsToken)
		if a.status != http.StatusBadRequest || a.body["field"] != field {
			t.Errorf("%s: HTTP %d %s, want 400 on %s", query, a.status, a.raw, field)
		}
	}
	if filters, _ := b.asked(); len(filters) != 0 {
		t.Errorf("the bridge was asked %d times", len(filters))
	}
	// The bridge parses the phone; its refusal names the query field.
	b.failList(bridge.Permanent(bridge.ReasonBadNumber, "to", "%q is not a phone number", "abc"))
	a := do(t, "GET", base+"/v1/conversations?phone=abc", "", "", "Authorization", "Bearer "+opsToken)
	if a.status != http.StatusBadRequest || a.body["field"] != "phone" || a.body["reason"] != "bad_number" {
		t.Errorf("bad phone: HTTP %d %s", a.status, a.raw)
	}
	// So does its refusal of a state.
	b.failList(bridge.Permanent(bridge.ReasonInvalid, "state", "%q is not a conversation state", "stuck"))
	a = do(t, "GET", base+"/v1/conversations?state=stuck", "", "", "Authorization", "Bearer "+opsToken)
	if a.status != http.StatusBadRequest || a.body["field"] != "state" || a.body["reason"] != "invalid" {
		t.Errorf("bad state: HTTP %d %s", a.status, a.raw)
	}
}

func TestGetConversation(t *testing.T) {
	b := conversationBridge()
	base, _ := startServer(t, b, callbackConfig())
	get := func(path, token string) answer {
		t.Helper()
		return do(t, "GET", base+path, "", "", "Authorization", "Bearer "+token)
	}
	a := get("/v1/conversations/c972501234567?limit=10", opsToken)
	if a.status != http.StatusOK || a.body["id"] != "c972501234567" || a.body["reply_to"] != "dana@example.com" {
		t.Fatalf("HTTP %d %s", a.status, a.raw)
	}
	log, _ := a.body["log"].([]any)
	want := []any{
		map[string]any{"at": "2025-03-12T20:20:02Z", "direction": "out", "phone": "+972501234567", "our": "+97233333333",
			"account": "ops", "text": "Your table is booked", "state": "delivered", "message_id": "m1", "recipient_id": float64(7)},
		map[string]any{"at": "2025-03-12T21:20:02Z", "direction": "in", "phone": "+972501234567", "our": "+97233333333",
			"text": "Thanks!", "inbound_id": "in1", "mail_to": "dana@example.com"},
	}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("log %v\nwant %v", log, want)
	}
	if a := get("/v1/conversations/c972527654321", opsToken); a.status != http.StatusOK || a.body["log"] == nil {
		t.Errorf("empty log: HTTP %d %s", a.status, a.raw)
	}
	if _, got := b.asked(); !reflect.DeepEqual(got, []int{10, 100}) {
		t.Errorf("limits %v, want [10 100]", got)
	}
	// Another account's conversation does not exist for this one.
	if a := get("/v1/conversations/c972501234567", salesToken); a.status != http.StatusNotFound || a.body["reason"] != "not_found" {
		t.Errorf("other account: HTTP %d %s", a.status, a.raw)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "since=2025-03-01T00:00:00Z"} {
		if a := get("/v1/conversations/c972501234567?"+q, opsToken); a.status != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d %s", q, a.status, a.raw)
		}
	}
}
