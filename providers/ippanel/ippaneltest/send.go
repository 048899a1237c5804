package ippaneltest

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// sendFields lists the keys each sending type documents.
var sendFields = map[string][]string{
	"webservice": {"sending_type", "from_number", "message", "params", "send_time"},
	"pattern":    {"sending_type", "from_number", "code", "recipients", "params", "phonebook"},
	"phonebook":  {"sending_type", "from_number", "message", "params", "send_time"},
}

// send implements POST /api/send: what the three sending types share
// (sending_type, the documented keys, from_number) here, the rest in the
// type's own check. A valid send becomes a bulk with the next outbox id.
func (f *Server) send(w http.ResponseWriter, r *http.Request, raw []byte) {
	body, ok := decode(w, raw)
	if !ok {
		return
	}
	var v validation
	kind, _ := body["sending_type"].(string)
	fields, ok := sendFields[kind]
	if !ok {
		if kind == "" {
			v.add("sending_type", required("sending_type"))
		} else {
			v.add("sending_type", invalid("sending_type"))
		}
		v.write(w)
		return
	}
	for k := range body {
		if !slices.Contains(fields, k) {
			v.add(k, notAllowed(k))
		}
	}
	switch from, ok := body["from_number"].(string); {
	case !ok || from == "":
		v.add("from_number", required("from_number"))
	case !f.numbers[from]:
		v.add("from_number", invalid("from_number"))
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	b := &bulk{sent: true, status: map[string]int{}}
	switch kind {
	case "webservice":
		webservice(&v, body, b)
	case "pattern":
		f.pattern(&v, body, b)
	case "phonebook":
		f.phonebook(&v, body, b)
	}
	if v.write(w) {
		return
	}

	id := f.nextID
	f.nextID++
	f.bulks[id] = b
	f.requests = append(f.requests, Request{
		SendingType: kind, Body: body, Raw: raw, Header: r.Header.Clone(), OutboxID: id, Time: time.Now(),
	})
	writeOK(w, map[string]any{"message_outbox_ids": []int64{id}}, nil)
}

// webservice checks a webservice send: one message to a list of numbers.
func webservice(v *validation, body map[string]any, b *bulk) {
	b.message = requireMessage(v, body)
	params, ok := body["params"].(map[string]any)
	if !ok {
		v.add("params", required("params"))
		return
	}
	for k := range params {
		if k != "recipients" {
			v.add("params."+k, notAllowed("params."+k))
		}
	}
	b.recipients = e164List(v, "params.recipients", params["recipients"])
	b.sendAt = parseSendTime(v, body)
}

func requireMessage(v *validation, body map[string]any) string {
	msg, ok := body["message"].(string)
	if !ok || msg == "" {
		v.add("message", required("message"))
	}
	return msg
}

// e164List checks a required, non-empty array of E.164 numbers.
func e164List(v *validation, field string, x any) []string {
	list, ok := x.([]any)
	if !ok || len(list) == 0 {
		v.add(field, required(field))
		return nil
	}
	var out []string
	for i, n := range list {
		s, ok := n.(string)
		if !ok || !isE164(s) {
			key := fmt.Sprintf("%s.%d", field, i)
			v.add(key, invalid(key))
			continue
		}
		out = append(out, s)
	}
	return out
}

func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseSendTime checks the optional send_time: exactly
// "YYYY-MM-DD HH:MM:SS", UTC.
func parseSendTime(v *validation, body map[string]any) time.Time {
	x, ok := body["send_time"]
	if !ok {
		return time.Time{}
	}
	const layout = "2006-01-02 15:04:05"
	s, _ := x.(string)
	t, err := time.Parse(layout, s)
	// Parse accepts one-digit hours; the round trip insists on the form.
	if err != nil || t.Format(layout) != s {
		v.add("send_time", invalid("send_time"))
		return time.Time{}
	}
	return t
}
