package ippaneltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Documented bodies and messages. Persian prose beyond the documented
// strings follows their pattern ("تکمیل گزینه X الزامی است": "X is required").
const (
	msgDone      = "انجام شد"
	msgBadAuth   = "اطلاعات وارد شده صحیح نمی باشد"
	msgNotFound  = "پیام مورد نظر یافت نشد"
	messageLabel = "پیام" // the label of the message field in the documented 422
)

func required(field string) string {
	if field == "message" {
		field = messageLabel
	}
	return "تکمیل گزینه " + field + " الزامی است"
}

func invalid(field string) string { return field + " معتبر نیست" }

func notAllowed(field string) string { return field + " مجاز نیست" }

// validation collects 422 errors in the order found; the first is
// also meta.message, as in the documented 422 body.
type validation struct {
	keys []string
	errs map[string][]string
}

func (v *validation) add(field, msg string) {
	if v.errs == nil {
		v.errs = map[string][]string{}
	}
	if _, ok := v.errs[field]; !ok {
		v.keys = append(v.keys, field)
	}
	v.errs[field] = append(v.errs[field], msg)
}

// write answers 422 and reports true if anything was found.
func (v *validation) write(w http.ResponseWriter) bool {
	if len(v.keys) == 0 {
		return false
	}
	writeFail(w, http.StatusUnprocessableEntity, "400-2", v.errs[v.keys[0]][0], v.errs)
	return true
}

func toInt64(x any) (int64, error) {
	n, ok := x.(json.Number)
	if !ok {
		return 0, fmt.Errorf("not a number: %v", x)
	}
	return strconv.ParseInt(n.String(), 10, 64)
}

// decode decodes a JSON object body, keeping numbers exact.
func decode(w http.ResponseWriter, raw []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil || body == nil || dec.More() {
		writeFail(w, http.StatusBadRequest, "400-2", "invalid JSON body", nil)
		return nil, false
	}
	return body, true
}

// writeOK writes the documented success envelope; extra adds fields to
// meta (pagination).
func writeOK(w http.ResponseWriter, data any, extra map[string]any) {
	meta := map[string]any{
		"status": true, "message": msgDone, "message_parameters": []any{}, "message_code": "200-1",
	}
	for k, x := range extra {
		meta[k] = x
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "meta": meta})
}

// writeFail writes the documented failure envelope. errs nil leaves
// meta.errors out; the documented 401 has an empty object.
func writeFail(w http.ResponseWriter, status int, code, message string, errs map[string][]string) {
	meta := map[string]any{
		"status": false, "message": message, "message_parameters": []any{}, "message_code": code,
	}
	if errs != nil {
		meta["errors"] = errs
	}
	writeJSON(w, status, map[string]any{"data": nil, "meta": meta})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
