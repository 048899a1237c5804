package ippaneltest

import (
	"net/http"
	"slices"
	"time"
)

// Cancelled returns the outbox ids cancelled so far, in order.
func (f *Server) Cancelled() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cancelled)
}

// cancel implements POST /api/send/cancel.
func (f *Server) cancel(w http.ResponseWriter, _ *http.Request, raw []byte) {
	body, ok := decode(w, raw)
	if !ok {
		return
	}
	var v validation
	id, err := toInt64(body["message_outbox_id"])
	if err != nil {
		v.add("message_outbox_id", required("message_outbox_id"))
		v.write(w)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bulks[id]
	if !ok || !b.sent {
		writeFail(w, http.StatusNotFound, "400-1", msgNotFound, map[string][]string{})
		return
	}
	// Only future sends can be cancelled, until five minutes before.
	if b.cancelled || b.sendAt.IsZero() || time.Until(b.sendAt) < 5*time.Minute {
		v.add("message_outbox_id", "امکان لغو این پیام وجود ندارد") // this message cannot be cancelled
		v.write(w)
		return
	}
	b.cancelled = true
	f.cancelled = append(f.cancelled, id)
	writeOK(w, nil, nil)
}
