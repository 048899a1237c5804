package ippaneltest

import (
	"fmt"
	"slices"
)

// phonebook checks a phonebook send: one message to the numbers of known
// phonebooks. f.mu is held.
func (f *Server) phonebook(v *validation, body map[string]any, b *bulk) {
	b.message = requireMessage(v, body)
	f.checkPhonebookParams(v, body["params"])
	b.sendAt = parseSendTime(v, body)
}

// checkPhonebookParams checks phonebook mode's params array. f.mu is held.
func (f *Server) checkPhonebookParams(v *validation, x any) {
	list, ok := x.([]any)
	if !ok || len(list) == 0 {
		v.add("params", required("params"))
		return
	}
	for i, item := range list {
		key := fmt.Sprintf("params.%d", i)
		obj, ok := item.(map[string]any)
		if !ok {
			v.add(key, invalid(key))
			continue
		}
		var allowed []string
		switch obj["type"] {
		case "all":
			allowed = []string{"type", "phonebook_ids", "start", "size"}
			ids := stringList(v, key+".phonebook_ids", obj["phonebook_ids"])
			for j, id := range ids {
				if !f.phonebooks[id] {
					v.add(fmt.Sprintf("%s.phonebook_ids.%d", key, j), invalid("phonebook_ids"))
				}
			}
			for _, opt := range []string{"start", "size"} {
				if s, ok := obj[opt]; ok {
					if s, ok := s.(string); !ok || !isDigits(s) {
						v.add(key+"."+opt, invalid(opt))
					}
				}
			}
		case "detail":
			allowed = []string{"type", "phonebook_id", "number_ids"}
			switch id, ok := obj["phonebook_id"].(string); {
			case !ok || id == "":
				v.add(key+".phonebook_id", required("phonebook_id"))
			case !f.phonebooks[id]:
				v.add(key+".phonebook_id", invalid("phonebook_id"))
			}
			stringList(v, key+".number_ids", obj["number_ids"])
		default:
			v.add(key+".type", invalid("type"))
			continue
		}
		for k := range obj {
			if !slices.Contains(allowed, k) {
				v.add(key+"."+k, notAllowed(k))
			}
		}
	}
}

// stringList checks a required, non-empty array of non-empty strings.
func stringList(v *validation, field string, x any) []string {
	list, ok := x.([]any)
	if !ok || len(list) == 0 {
		v.add(field, required(field))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, s := range list {
		if s, ok := s.(string); ok && s != "" {
			out = append(out, s)
		} else {
			v.add(fmt.Sprintf("%s.%d", field, i), invalid(field))
		}
	}
	return out
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
