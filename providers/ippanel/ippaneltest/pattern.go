package ippaneltest

import (
	"encoding/json"
	"strconv"
)

// pattern checks a pattern send: a known pattern code filled in for one
// recipient. f.mu is held.
func (f *Server) pattern(v *validation, body map[string]any, b *bulk) {
	switch code, ok := body["code"].(string); {
	case !ok || code == "":
		v.add("code", required("code"))
	case !f.patterns[code]:
		v.add("code", invalid("code"))
	}
	b.recipients = e164List(v, "recipients", body["recipients"])
	if len(b.recipients) > 1 {
		v.add("recipients", "فقط یک گیرنده مجاز است") // only one recipient is allowed
	}
	patternParams(v, body)
	if pb, ok := body["phonebook"]; ok {
		checkContact(v, pb)
	}
}

func patternParams(v *validation, body map[string]any) {
	params, ok := body["params"].(map[string]any)
	if !ok {
		v.add("params", required("params"))
		return
	}
	for k, x := range params {
		switch x.(type) {
		case string, json.Number:
		default:
			v.add("params."+k, invalid("params."+k))
		}
	}
}

// checkContact checks a pattern send's phonebook object.
func checkContact(v *validation, x any) {
	pb, ok := x.(map[string]any)
	if !ok {
		v.add("phonebook", invalid("phonebook"))
		return
	}
	if n, ok := pb["id"].(json.Number); !ok {
		v.add("phonebook.id", required("phonebook.id"))
	} else if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
		v.add("phonebook.id", invalid("phonebook.id"))
	}
	for k, x := range pb {
		switch k {
		case "id":
		case "name", "pre", "email":
			if _, ok := x.(string); !ok {
				v.add("phonebook."+k, invalid("phonebook."+k))
			}
		case "options":
			opts, ok := x.(map[string]any)
			if !ok {
				v.add("phonebook.options", invalid("phonebook.options"))
			}
			for id, val := range opts {
				if _, ok := val.(string); !ok {
					v.add("phonebook.options."+id, invalid("phonebook.options."+id))
				}
			}
		default:
			v.add("phonebook."+k, notAllowed("phonebook."+k))
		}
	}
}
